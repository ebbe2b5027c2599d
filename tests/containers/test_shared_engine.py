"""Two sites on one Docker engine: each labels its containers with its instance id (SPINEBENCH_INSTANCE_ID, by
default derived from SECRET_KEY and the database name) and its recovery removes only orphans with its own label,
never the other site's containers, whose runs it cannot know (issue "Security and reliability campaign")."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from spinebench.algorithms import execution, runner

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db, pytest.mark.docker]


def site_container(client, *, scope: str, submission: int):
    """A managed container of site `scope` for a submission this database does not know (created, never started)."""
    return client.containers.create(
        "spinebench/hostile-sleep:latest",
        labels={runner.LABEL_MANAGED: "1", runner.LABEL_SUBMISSION: str(submission), runner.LABEL_JOB: "0",
                runner.LABEL_SCOPE: scope},
    )


def exists(client, container) -> bool:
    return bool(client.containers.list(all=True, filters={"id": container.id}))


def test_recovery_removes_only_its_own_sites_orphans(built_images, monkeypatch):
    client = built_images
    monkeypatch.delenv("SPINEBENCH_CONTAINER_SCOPE", raising=False)  # the instance id decides, as in production
    site_a, site_b = f"site-a-{uuid.uuid4().hex[:8]}", f"site-b-{uuid.uuid4().hex[:8]}"
    ours = site_container(client, scope=site_a, submission=987654)
    theirs = site_container(client, scope=site_b, submission=987654)
    try:
        runner.configure_scope(site_a)
        assert execution.recover(client=client) == {"requeued": 0, "containers_removed": 1}
        assert not exists(client, ours) and exists(client, theirs)
        # What site A creates carries its label (the run's container options and the probe of image_files).
        options = runner.container_options(image="x", user="1:1", input_dir=Path("/in"), output_dir=Path("/out"),
                                           limits=runner.Limits(), labels={}, name=None)
        assert options["labels"][runner.LABEL_SCOPE] == site_a
        runner.configure_scope(site_b)
        assert execution.recover(client=client) == {"requeued": 0, "containers_removed": 1}
        assert not exists(client, theirs)
    finally:
        runner.configure_scope(settings.SPINEBENCH_INSTANCE_ID)
        for container in (ours, theirs):
            if exists(client, container):
                runner.remove_container(container)


def instance_id(**environment) -> str:
    """SPINEBENCH_INSTANCE_ID as a fresh process with `environment` computes it."""
    env = {key: value for key, value in os.environ.items() if key not in ("SPINEBENCH_INSTANCE_ID", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="spinebench.settings.local", PYTHONPATH=f"{REPO / 'platform'}:{REPO}",
               **environment)
    return subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SPINEBENCH_INSTANCE_ID)"],
        env=env, capture_output=True, text=True, check=True, cwd="/", timeout=60,
    ).stdout.strip()


def test_the_instance_id_differs_between_sites_and_can_be_set(tmp_path):
    first = instance_id(DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}")
    assert len(first) == 16 and int(first, 16) >= 0
    assert instance_id(DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}") == first  # stable: workers agree
    assert instance_id(DATABASE_URL=f"sqlite:///{tmp_path / 'b.sqlite3'}") != first
    assert instance_id(DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}", SECRET_KEY="another-site-key") != first
    assert instance_id(SPINEBENCH_INSTANCE_ID="hospital-7") == "hospital-7"


def test_two_removals_of_one_running_container_both_succeed(built_images):
    """The lease sweep and a requeued run may remove the same orphan at once: the engine answers the second with
    409 "removal already in progress", which is not a failure of the run (it failed a fault test in CI once)."""
    import threading

    client = built_images
    errors: list[BaseException] = []
    for _ in range(5):  # the engine's window for the 409 is short: try a few containers
        container = client.containers.run("spinebench/hostile-sleep:latest", detach=True, network_mode="none",
                                          labels={runner.LABEL_MANAGED: "1", runner.LABEL_SUBMISSION: "987655"})
        views = [client.containers.get(container.id) for _ in range(4)]

        def remove(view):
            try:
                runner.remove_container(view)
            except BaseException as error:  # collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=remove, args=(view,)) for view in views]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not exists(client, container)
    assert errors == []
