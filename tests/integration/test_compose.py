"""docker-compose.yml is valid (Debian's docker-compose validates it without a Docker engine)."""

import shutil
import subprocess

import yaml

from tests.conftest import REPO


def test_compose_file_validates():
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose is missing: `make test` installs it (apt-get install docker-compose)"
    result = subprocess.run([docker_compose, "-f", "docker-compose.yml", "config", "-q"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_services_and_gpu_worker():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker-cpu", "worker-gpu"} <= set(services)
    gpu = services["worker-gpu"]
    assert gpu["command"][gpu["command"].index("-Q") + 1] == "gpu"
    assert gpu["command"][gpu["command"].index("--concurrency") + 1] == "1"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    # All from one image, built from the one Dockerfile.
    assert {services[name]["image"] for name in ("web", "worker-cpu", "worker-gpu")} == {"cryolabel:latest"}
    assert (REPO / "Dockerfile").is_file()
