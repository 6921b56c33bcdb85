"""`make demo`'s first start against the demo before it grew, on this machine, in the same run.

What it does: checks the baseline commit out in a temporary git worktree (default 909cc6e, the last commit before
the demo grew to 1 000 imported imagettes and the simulated crowd; it shares this checkout's .venv and front-end
packages), warms both trees once (bytecode), then starts `scripts/demo.sh` of each in turn, `--runs` times, each
with a fresh CRYOLABEL_VAR_DIR and on embedded defaults, and times from the start to both its addresses printed
and its log-in page answering (the old demo printed its addresses before its web server was up; this one's web
server is up before the data are in, and it prints its addresses once they are). Each start is stopped (SIGTERM
to its process group) once timed. Prints every time, the medians and their ratio, and PASS/FAIL against the
target: the larger demo starts within the old one's time (median ratio <= 1.05: runs of one tree vary by +-10 %
on a shared two-core machine).

Run from the repository root:  .venv/bin/python bench/bench_demo_start.py [--runs 5] [--baseline REF]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, PLATFORM_ENV, exit_on_sigterm, free_port, machine_line, verdict  # noqa: E402,I001

TARGET = 1.05
BASELINE = "909cc6e"  # the parent of 652a073, which made the demo data 1 000 + 300 imagettes and a crowd
TIMEOUT = 300.0  # seconds for one start


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/accounts/login/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _env(var_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_ENV and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "CRYOLABEL_VAR_DIR": str(var_dir), "CRYOLABEL_PORT": str(port), "CRYOLABEL_HOST": "127.0.0.1"}


def start_once(tree: Path, work: Path) -> float:
    """Seconds from `scripts/demo.sh` to its log-in page answering, on a fresh var folder; then stopped."""
    var_dir = Path(tempfile.mkdtemp(prefix="var-", dir=work))
    port = free_port()
    log = (var_dir / "demo.out").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(["scripts/demo.sh"], cwd=tree, env=_env(var_dir, port), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Both: the addresses printed ("Cryolabel is starting/running on") and the page answering. The old demo
        # printed before its web server was up; this one's web server answers (what is in so far) before the
        # data are in and it prints.
        while not (b"Cryolabel is " in (var_dir / "demo.out").read_bytes() and _answers(port)):
            if proc.poll() is not None:
                raise RuntimeError(f"{tree}: demo.sh ended with {proc.returncode}; see {log.name}")
            if time.monotonic() - started > TIMEOUT:
                raise RuntimeError(f"{tree}: no answer within {TIMEOUT:.0f} s")
            time.sleep(0.05)
        return time.monotonic() - started
    finally:
        with_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with_group(proc, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(var_dir, ignore_errors=True)


def with_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def baseline_tree(ref: str, work: Path) -> Path:
    tree = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    (tree / ".venv").symlink_to(REPO / ".venv")
    vendor = REPO / "frontend" / "static" / "vendor"
    if vendor.exists():
        shutil.copytree(vendor, tree / "frontend" / "static" / "vendor", dirs_exist_ok=True)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed starts of each tree")
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare with")
    args = parser.parse_args()
    exit_on_sigterm()
    print(machine_line())
    work = Path(tempfile.mkdtemp(prefix="cryolabel-bench-demo-start-"))
    tree = None
    try:
        tree = baseline_tree(args.baseline, work)
        trees = {"baseline": tree, "now": REPO}
        for name, path in trees.items():  # bytecode and page caches, untimed
            print(f"warm-up {name}: {start_once(path, work):.1f} s")
        times: dict[str, list[float]] = {name: [] for name in trees}
        for run in range(args.runs):
            for name, path in trees.items():  # in turn, so that a drift of the machine's load hits both
                times[name].append(start_once(path, work))
            print(f"run {run + 1}: baseline {times['baseline'][-1]:.1f} s, now {times['now'][-1]:.1f} s")
        base, now = statistics.median(times["baseline"]), statistics.median(times["now"])
        ratio = now / base
        print(f"median start to log-in page: baseline ({args.baseline}) {base:.1f} s, now {now:.1f} s; "
              f"ratio {ratio:.2f} (target <= {TARGET}): {verdict(ratio <= TARGET)}")
        return 0 if ratio <= TARGET else 1
    finally:
        if tree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
