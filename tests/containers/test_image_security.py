"""Attacks on the engine side, with the real engine: an uploaded archive naming the platform's own tags (H1) leaves
every tag where it was; a platform image whose tag was re-pointed is refused before it runs; an image whose USER is
root in disguise (`00`, a name its /etc/passwd maps to uid 0) is refused, by the upload check and by the runner; every
container runs with an explicit numeric uid:gid and no supplementary group; an archive the engine cannot load is
reported as an archive problem, not an engine failure."""

import json
import subprocess
from dataclasses import replace

import docker
import pytest
from django.core.files import File

from spinebench.algorithms import runner, trusted_images
from spinebench.submissions.services import create_submission

from .archive_builders import image_config, layer_tar, write_archive
from .conftest import AASCE_OUTPUTS, EXAMPLE_IMAGE, managed_containers, output_mounts

pytestmark = pytest.mark.docker

BRANCH = "sec-containers"
LIMITS = replace(runner.PRESETS["tiny"], wall_clock_s=30, memory_mb=128)
DOCKERFILES = {
    # writes its uid and gid as "angles" and prints its groups: what the container really ran as
    "whoami": 'USER algorithm\nENTRYPOINT ["/bin/sh", "-c", '
    '"printf \'{\\"angles\\": [%s, %s, 0]}\' $(id -u) $(id -g) > /output/angles.json; id -G"]',
    "user-00": 'USER 00\nENTRYPOINT ["/bin/sh", "-c", "id -u > /output/angles.json"]',
    "user-toor": 'COPY passwd /etc/passwd\nUSER toor\nENTRYPOINT ["/bin/sh", "-c", "id -u > /output/angles.json"]',
}
# the base's accounts plus `toor`, a second name for uid 0 (COPY, not RUN: the build starts no container)
PASSWD = "root:x:0:0:root:/root:/bin/sh\nalgorithm:x:1000:1000::/home/algorithm:/bin/sh\ntoor:x:0:0::/tmp:/bin/sh\n"


def user_image(name: str) -> str:
    return f"{BRANCH}-test/{name}:latest"


@pytest.fixture(scope="module")
def user_images(built_images, tmp_path_factory):
    base = built_images.images.get("spinebench/base:latest").id
    for name, body in DOCKERFILES.items():
        context = tmp_path_factory.mktemp(name)
        (context / "Dockerfile").write_text(f"FROM {base}\n{body}\n")
        (context / "passwd").write_text(PASSWD)
        build = subprocess.run(
            ["docker", "build", "-q", "-t", user_image(name), str(context)], text=True, capture_output=True, timeout=300
        )
        assert build.returncode == 0, build.stderr[-2000:]
    yield built_images
    for name in DOCKERFILES:
        built_images.images.remove(user_image(name), force=True)


def submit_file(phase, user, path, capture):
    with capture(execute=True), open(path, "rb") as handle:
        submission = create_submission(phase=phase, user=user, upload=File(handle, name=path.name))
    submission.refresh_from_db()
    return submission


def test_every_container_runs_with_an_explicit_non_root_uid_and_gid(user_images, tmp_path, case_input):
    input_dir, _ = case_input
    result = runner.run_algorithm(
        client=user_images,
        image=user_image("whoami"),
        input_dir=input_dir,
        collect_to=tmp_path / "pred",
        limits=LIMITS,
        allowed_names=AASCE_OUTPUTS,
    )
    assert result.succeeded, (result.reason, result.log_tail)
    assert json.loads((tmp_path / "pred" / "angles.json").read_text())["angles"] == [1000, 1000, 0]
    assert result.log_tail == ["1000"]  # no supplementary group (the explicit uid:gid form takes none from /etc/group)


@pytest.mark.parametrize("name", ["user-00", "user-toor"])
def test_root_in_disguise_is_refused_by_the_runner(user_images, tmp_path, case_input, name):
    input_dir, _ = case_input
    result = runner.run_algorithm(
        client=user_images,
        image=user_image(name),
        input_dir=input_dir,
        collect_to=tmp_path / "pred",
        limits=LIMITS,
        allowed_names=AASCE_OUTPUTS,
    )
    assert not result.succeeded and "is uid 0" in result.reason and result.exit_code is None
    assert not (tmp_path / "pred" / "angles.json").exists()
    assert managed_containers(user_images) == [] and output_mounts() == []


@pytest.mark.django_db
def test_root_in_disguise_is_refused_at_upload(
    user_images, algorithm_phase, algorithm_participant, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    archive = tmp_path / "toor.tar"
    subprocess.run(["docker", "save", "-o", str(archive), user_image("user-toor")], check=True, timeout=300)
    submission = submit_file(algorithm_phase, algorithm_participant, archive, django_capture_on_commit_callbacks)
    assert submission.status == "failed"
    assert submission.error_message.startswith("Archive refused: the image runs as root (USER 'toor' is uid 0)")


@pytest.mark.django_db
def test_archive_tags_are_never_applied(
    built_images, algorithm_phase, algorithm_participant, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    """H1: the archive claims the evaluator's and the baseline family's tags (in manifest.json and in the legacy
    `repositories` file); after the upload both tags are where they were and the loaded image has no tag."""
    client = built_images
    evaluator = client.images.get("spinebench/evaluator:latest")
    victims = [f"spinebench/evaluator:{BRANCH}-victim", f"spinebench/baselines-cpu:{BRANCH}-victim"]
    evaluator.tag("spinebench/evaluator", f"{BRANCH}-victim")
    digest = write_archive(tmp_path / "retag.tar", repo_tags=victims, repositories=True)
    try:
        submission = submit_file(
            algorithm_phase, algorithm_participant, tmp_path / "retag.tar", django_capture_on_commit_callbacks
        )
        loaded = client.images.get(f"sha256:{digest}")  # it was loaded (then failed: it holds no program)
        assert client.images.get(victims[0]).id == evaluator.id
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(victims[1])
        assert loaded.tags == []
        assert submission.status == "failed"
        assert "could not start: the image's entrypoint or command is missing" in submission.error_message
        assert submission.algorithm_run.image.image_id == f"sha256:{digest}"
    finally:
        for reference in (f"sha256:{digest}", *victims):
            try:
                client.images.remove(reference, force=True)
            except docker.errors.ImageNotFound:
                pass


def test_a_retagged_platform_image_is_refused_before_it_runs(built_images, tmp_path, case_input, monkeypatch):
    """The runner verifies a platform reference against the id recorded for it: re-pointing the tag at another
    image (as a loaded archive could have) makes it refuse instead of running the impostor."""
    monkeypatch.setenv("SPINEBENCH_TRUSTED_IMAGES", str(tmp_path / "trusted.json"))
    client = built_images
    reference = f"spinebench/example-algorithm:{BRANCH}-victim"
    client.images.get(EXAMPLE_IMAGE).tag("spinebench/example-algorithm", f"{BRANCH}-victim")
    input_dir, _ = case_input
    try:
        trusted_images.record(reference, client.images.get(EXAMPLE_IMAGE).id)
        first = runner.run_algorithm(
            client=client,
            image=reference,
            input_dir=input_dir,
            collect_to=tmp_path / "a",
            limits=LIMITS,
            allowed_names=AASCE_OUTPUTS,
        )
        assert first.succeeded, first.reason
        client.images.get("spinebench/hostile-sleep:latest").tag("spinebench/example-algorithm", f"{BRANCH}-victim")
        with pytest.raises(runner.SandboxRefusal, match="now points at sha256:.*not at sha256:.*recorded"):
            runner.run_algorithm(
                client=client,
                image=reference,
                input_dir=input_dir,
                collect_to=tmp_path / "b",
                limits=replace(LIMITS, wall_clock_s=3),
                allowed_names=AASCE_OUTPUTS,
            )
        assert managed_containers(client) == []
    finally:
        client.images.remove(reference)


def test_build_script_records_the_platform_images(built_images):
    recorded = trusted_images.recorded()
    for reference in (EXAMPLE_IMAGE, "spinebench/base:latest", "spinebench/hostile-sleep:latest"):
        assert recorded[reference] == built_images.images.get(reference).id
    assert trusted_images.recorded_image(built_images, EXAMPLE_IMAGE) == recorded[EXAMPLE_IMAGE]
    with pytest.raises(trusted_images.UntrustedImage, match="has no recorded image id"):
        trusted_images.recorded_image(built_images, "spinebench/never-built:latest")


@pytest.mark.django_db
def test_an_archive_the_engine_cannot_load_is_an_archive_problem(
    built_images, algorithm_phase, algorithm_participant, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    """Valid to the validator, but its config lists another layer than the archive holds: the engine refuses it."""
    layers = [layer_tar()]
    config = image_config(layers=[layer_tar({"other.txt": b"other"})])
    write_archive(tmp_path / "mismatch.tar", layers=layers, config=config)
    submission = submit_file(
        algorithm_phase, algorithm_participant, tmp_path / "mismatch.tar", django_capture_on_commit_callbacks
    )
    assert submission.status == "failed"
    assert submission.error_message.startswith("Archive refused: the engine could not load the image"), (
        submission.error_message
    )
