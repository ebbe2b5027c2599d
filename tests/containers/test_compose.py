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


@pytest.mark.docker  # the docker-compose tool of a Docker installation
def test_the_remote_worker_profile_has_no_database_and_no_data_folder():
    require_service("docker-compose", shutil.which("docker-compose") is not None, why="apt-get install docker-compose")
    result = subprocess.run(["docker-compose", "--profile", "remote-worker", "config"], cwd=REPO_ROOT,
                            capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=60)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    remote = services["remote-worker"]
    assert remote["command"][:2] == ["spinebench", "worker"]
    assert "DATABASE_URL" not in remote["environment"] and remote["environment"]["CELERY_BROKER_URL"].startswith(
        "amqp://")
    assert not any("/srv/spinebench/data" in str(volume) for volume in remote["volumes"])
    assert "rabbitmq" in services
    # Only with the profile are the two started (plain `docker-compose up` leaves them out).
    assert remote["profiles"] == ["remote-worker"] and services["rabbitmq"]["profiles"] == ["remote-worker"]
