"""docker-compose.yml is valid (`docker-compose config`) and has the deployment roles the platform needs."""

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import require_service

from .conftest import REPO_ROOT


@pytest.mark.docker  # the docker-compose tool of a Docker installation
def test_compose_config_passes_and_names_every_role():
    require_service("docker-compose", shutil.which("docker-compose") is not None, why="apt-get install docker-compose")
    result = subprocess.run(
        ["docker-compose", "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"postgres", "redis", "web", "worker", "baselines-worker", "gpu-worker", "beat"} <= set(services)
    assert "gunicorn" in " ".join(
        services["web"]["command"] if isinstance(services["web"]["command"], list) else [services["web"]["command"]]
    )
    assert "containers-cpu" in " ".join(services["worker"]["command"])
    assert "containers-gpu" in " ".join(services["gpu-worker"]["command"])
    baselines = services["baselines-worker"]
    assert baselines["command"][baselines["command"].index("-Q") + 1] == "baselines"
    assert baselines["command"][baselines["command"].index("--concurrency") + 1] == "1"
    assert baselines["environment"]["SPINEBENCH_TORCH_THREADS"] == baselines["environment"]["OMP_NUM_THREADS"]
    assert services["gpu-worker"]["runtime"] == "nvidia"
    assert services["worker"]["build"]["dockerfile"] == "containers/platform/Dockerfile"
