"""Per-method baseline images are built on the family image's recorded id, never on its tag (issue "Security and
reliability campaign", H1's last door): an image re-tagged with the family's name (as an uploaded archive naming
`spinebench/baselines-cpu:latest` once could) is not what the method image is built on. A stand-in family built
here (the base image plus an entrypoint that accepts `--check`) keeps the test off the torch family's long build;
its reference is unique to the test, in a registry of its own, so the shared engine's platform tags are untouched."""

import json
import subprocess
import uuid

import pytest
import torch

from baselines import api
from baselines.container import ImageBuildError, build_method_image, family_image_id
from spinebench.algorithms.trusted_images import recorded_image

pytestmark = pytest.mark.docker


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=300).stdout.strip()


def image_from_base(base_id: str, folder, *, marker: str) -> str:
    """base + one layer holding `marker` + an entrypoint that exits 0 (stands for `--check`)."""
    folder.mkdir()
    (folder / "marker").write_text(marker)
    (folder / "Dockerfile").write_text(f'FROM {base_id}\nCOPY marker /marker\nENTRYPOINT ["/bin/true"]\n')
    return docker("build", "-q", str(folder))


def layers(image: str) -> list[str]:
    return json.loads(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image))


@pytest.fixture
def families(built_images, tmp_path, monkeypatch):
    """(reference, genuine family id, impostor id): the registry records the genuine one for the reference, whose
    tag on the engine points at the impostor."""
    base = recorded_image(built_images, "spinebench/base:latest")
    genuine = image_from_base(base, tmp_path / "genuine", marker="genuine")
    impostor = image_from_base(base, tmp_path / "impostor", marker="impostor")
    reference = f"spinebench/baselines-cpu-test-{uuid.uuid4().hex[:10]}:latest"
    registry = tmp_path / "trusted-images.json"
    registry.write_text(json.dumps({reference: genuine}))
    monkeypatch.setenv("SPINEBENCH_TRUSTED_IMAGES", str(registry))
    docker("tag", impostor, reference)  # the re-tagging attack
    made = [reference]
    yield reference, genuine, impostor, made
    for name in made:
        subprocess.run(["docker", "rmi", name], capture_output=True, check=False)
    subprocess.run(["docker", "rmi", genuine, impostor], capture_output=True, check=False)


def checkpoint(path):
    torch.save({"format": api.CHECKPOINT_FORMAT, "task": "aasce-cobb", "method": "top-down"}, path)
    return path


def test_method_image_is_built_on_the_recorded_family_not_on_its_tag(families, tmp_path):
    reference, genuine, impostor, made = families
    assert docker("image", "inspect", "--format", "{{.Id}}", reference) == impostor
    assert family_image_id(reference) == genuine
    tag = f"spinebench-test/method-{uuid.uuid4().hex[:10]}:latest"
    made.append(tag)
    image = build_method_image(checkpoint=checkpoint(tmp_path / "model.pt"), tag=tag, family_image=reference)
    built = layers(image)
    assert built[:-1] == layers(genuine) and layers(impostor)[-1] not in built
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image))
    assert labels["org.spinebench.baseline.family"] == genuine
    assert labels["org.spinebench.baseline.method"] == "top-down"


def test_unrecorded_or_missing_family_images_are_refused(families, tmp_path):
    reference, genuine, impostor, made = families
    with pytest.raises(ImageBuildError, match="no recorded image id"):
        family_image_id("spinebench/never-built-family")
    with pytest.raises(ImageBuildError, match="family image"):
        family_image_id("sha256:" + "0" * 64)
    assert family_image_id(genuine) == genuine  # an id is used as given, once the engine confirms it
    with pytest.raises(ImageBuildError, match="no recorded image id"):
        build_method_image(checkpoint=checkpoint(tmp_path / "model.pt"), tag="spinebench-test/never:latest",
                           family_image="spinebench/never-built-family")
