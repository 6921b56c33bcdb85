"""The web process never imports torch (DESIGN: only workers do), nor crowd-kit / scikit-learn / pandas, so it
starts fast and stays small. Checked in
a fresh interpreter that loads what Daphne loads: the ASGI application, every URL pattern and the job kinds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_asgi_application_and_every_view_load_without_torch() -> None:
    script = textwrap.dedent("""
        import sys
        from eoplatform.asgi import application  # noqa: F401  (django.setup(), the routing, the consumers)
        from django.urls import get_resolver
        from jobs.registry import job_kinds

        def walk(patterns, count=0):
            for p in patterns:
                count = walk(p.url_patterns, count) if hasattr(p, "url_patterns") else count + 1
            return count

        views = walk(get_resolver().url_patterns)
        kinds = sorted(job_kinds())
        heavy = [name for name in ("torch", "torchvision", "crowdkit", "sklearn", "pandas") if name in sys.modules]
        print(views, ",".join(kinds), ",".join(heavy) or "-")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**_env(), "DJANGO_SETTINGS_MODULE": "eoplatform.settings"})  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    views, kinds, heavy = out.stdout.split()
    assert int(views) > 30 and "train" in kinds.split(",")  # it did load the routes and the training job kind
    assert heavy == "-", f"the web process loaded {heavy}"  # crowd-kit & co. only load to compute a consensus


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
