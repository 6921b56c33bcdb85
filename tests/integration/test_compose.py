"""The deployed set-up, checked without a Docker engine: docker-compose.yml is valid (Debian's docker-compose
validates it), runs everywhere by default (no GPU device reserved: worker-gpu on the CPU), reserves the NVIDIA
device only with docker-compose.gpu.yml, and refuses to start without a SECRET_KEY; the Dockerfile builds the
front-end packages in a Node stage whose vendor folder the final image copies before collectstatic."""

import os
import re
import shutil
import subprocess

import yaml

from tests.conftest import REPO

GPU_OVERRIDE = "docker-compose.gpu.yml"


def compose(*files: str, secret: str | None = "a-test-secret", tmp_path) -> subprocess.CompletedProcess:
    """`docker-compose -f FILE... config` with an empty env file (a developer's .env must not decide the test)
    and SECRET_KEY set or not."""
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose is missing: `make test` installs it (apt-get install docker-compose)"
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    args = [docker_compose, "--env-file", str(env_file)]
    for name in files:
        args += ["-f", name]
    return subprocess.run([*args, "config"], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


def reservations(service: dict) -> list:
    return (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []


def test_compose_file_validates_and_runs_without_a_gpu(tmp_path):
    result = compose("docker-compose.yml", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"postgres", "redis", "web", "worker-cpu", "worker-gpu"} <= set(services)
    # The default asks for no device, so it starts on a host without the NVIDIA runtime; worker-gpu still
    # consumes the gpu queue, one job at a time, on the CPU.
    assert {name: reservations(s) for name, s in services.items() if reservations(s)} == {}
    assert not any("NVIDIA_VISIBLE_DEVICES" in (s.get("environment") or {}) for s in services.values())
    gpu = services["worker-gpu"]
    assert gpu["command"][gpu["command"].index("-Q") + 1] == "gpu"
    assert gpu["command"][gpu["command"].index("--concurrency") + 1] == "1"
    # All from one image, built from the one Dockerfile.
    assert {services[name]["image"] for name in ("web", "worker-cpu", "worker-gpu")} == {"cryolabel:latest"}
    assert all(services[name]["environment"]["SECRET_KEY"] == "a-test-secret"
               for name in ("web", "worker-cpu", "worker-gpu"))


def test_the_gpu_override_reserves_the_nvidia_device_for_worker_gpu_only(tmp_path):
    result = compose("docker-compose.yml", GPU_OVERRIDE, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert [name for name, s in services.items() if reservations(s)] == ["worker-gpu"]
    device = reservations(services["worker-gpu"])[0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert services["worker-gpu"]["environment"]["NVIDIA_VISIBLE_DEVICES"] == "all"
    # The override adds the device and keeps the rest of the service (the merge is not a replacement).
    assert services["worker-gpu"]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert "-Q" in services["worker-gpu"]["command"]


def test_secret_key_is_required(tmp_path):
    """No public fallback key: without SECRET_KEY, compose refuses and says what to set."""
    result = compose("docker-compose.yml", secret=None, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "set SECRET_KEY" in result.stderr
    assert "change-me" not in (REPO / "docker-compose.yml").read_text()


def dockerfile_stages() -> list[dict]:
    """The Dockerfile's stages: base image, name, and instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    stages: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"image": parts[0], "name": name, "steps": []})
        else:
            stages[-1]["steps"].append((word.upper(), rest.strip()))
    return stages


def test_the_image_builds_the_front_end_packages_in_a_node_stage():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    node, final = stages[0], stages[-1]
    assert node["image"].startswith("node:") and node["name"]
    node_copies = " ".join(rest for word, rest in node["steps"] if word == "COPY")
    assert all(name in node_copies for name in ("package.json", "package-lock.json", "scripts/vendor.sh"))
    assert any(word == "RUN" and "scripts/vendor.sh" in rest for word, rest in node["steps"])
    assert "npm ci" in (REPO / "scripts" / "vendor.sh").read_text()  # vendor.sh installs from the lock file

    assert final["image"].startswith("python:")
    steps = final["steps"]
    vendor_copy = next(i for i, (word, rest) in enumerate(steps)
                       if word == "COPY" and f"--from={node['name']}" in rest and "frontend/static/vendor" in rest)
    collect = next(i for i, (word, rest) in enumerate(steps) if word == "RUN" and "collectstatic" in rest)
    app_copy = next(i for i, (word, rest) in enumerate(steps) if word == "COPY" and rest.startswith(". "))
    assert app_copy < vendor_copy < collect  # the built vendor folder wins, and is collected into STATIC_ROOT
    assert not any(word == "RUN" and ("npm" in rest or "node" in rest.split()) for word, rest in steps)

    ignored = (REPO / ".dockerignore").read_text().split()
    assert "frontend/static/vendor" in ignored and ".env" in ignored and "node_modules" in ignored
    assert not {"package.json", "package-lock.json", "scripts", "scripts/vendor.sh"} & set(ignored)


def test_the_vendor_files_the_pages_load_are_the_ones_vendor_sh_copies():
    """What the pages load from static/vendor/ is what scripts/vendor.sh puts there (so the image has it)."""
    front = REPO / "frontend"
    sources = [*front.glob("templates/**/*.html"), *front.glob("static/frontend/**/*.js")]
    wanted = {match for path in sources
              for match in re.findall(r"vendor/([\w.-]+)/([\w./-]+?)['\"`]", path.read_text(encoding="utf-8"))}
    assert wanted, "no page loads anything from vendor/"
    script = (REPO / "scripts" / "vendor.sh").read_text()
    for package, file in wanted:
        copy = re.search(rf"^copy {re.escape(package)} (.+)$", script, re.M)
        assert copy, f"vendor.sh does not copy {package}"
        assert any(f.split("/")[-1] == file.split("/")[-1] for f in copy.group(1).split()), (package, file)
