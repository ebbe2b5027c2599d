"""Baselines as algorithm containers: the entry point of the baseline family image and the per-method image builder.

Inside ``spinebench/baselines-cpu`` (built by ``containers/build.sh baselines``) ``python3 -m baselines.container``
loads the checkpoint at ``/opt/spinebench/checkpoint.pt`` (or ``$SPINEBENCH_CHECKPOINT``; the checkpoint names its
task and method), reads ``/input`` in the task's documented layout (docs/formats.md: one case's files, or
``/input/<case_id>/...`` for a batch phase), predicts through ``baselines.api.predict`` (the very code the in-process
executor runs) and writes the prediction files to ``/output`` (``/output/<case_id>/...`` for a batch).
``--check`` only loads the checkpoint and imports the method module (used after building an image); ``--list``
prints every registered method with ``ok`` or the reason the image cannot import it (no torchvision here).

On the host, ``build_method_image(checkpoint=, tag=, family_image=)`` makes a per-method image ``FROM`` the family
image with the checkpoint baked in (``docker build``, offline), checks it with ``--check``, and optionally
``docker save``s it into an archive that uploads to an algorithm phase like any participant image. The family image
is referred to by its image id only: a name is looked up in the trusted image registry that
``containers/build.sh`` writes when it builds the family (never resolved through the engine's tag, which an
uploaded archive could once re-point), and the built image is checked to sit on exactly that image's layers.
``spinebench baselines image CKPT --tag TAG [--save ARCHIVE]`` is the command for it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FAMILY_IMAGE = "spinebench/baselines-cpu:latest"
CHECKPOINT_PATH = Path("/opt/spinebench/checkpoint.pt")
INPUT_DIR = Path("/input")
OUTPUT_DIR = Path("/output")
SINGLE_CASE_ID = "case"
METHOD_DOCKERFILE = """\
ARG FAMILY_IMAGE
FROM ${FAMILY_IMAGE}
COPY checkpoint.pt /opt/spinebench/checkpoint.pt
LABEL org.spinebench.baseline.task="%(task)s" org.spinebench.baseline.method="%(method)s" \\
      org.spinebench.baseline.family="%(family)s"
"""
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
REPO_ROOT = Path(__file__).resolve().parents[1]


class ImageBuildError(RuntimeError):
    """Building, checking or saving a per-method baseline image failed; the message carries the engine's output."""


# ---------------------------------------------------------------------------------------------------------------
# Inside the container
# ---------------------------------------------------------------------------------------------------------------


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Whole CPUs (at least 1) of the container's CPU quota, or None without one: cgroup v2 ``cpu.max``
    (``QUOTA PERIOD`` or ``max PERIOD``) or cgroup v1 ``cpu/cpu.cfs_quota_us`` (-1 = none) over ``cpu.cfs_period_us``.
    torch's OpenMP threads beyond the quota are throttled into a crawl (20-30x slower measured), so it matters."""
    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return max(1, int(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def input_cases(input_dir: Path) -> dict[str, Path]:
    """{case_id: folder}: ``input_dir`` itself when it holds files (one case), else each sub-folder (a batch)."""
    entries = sorted(input_dir.iterdir()) if input_dir.is_dir() else []
    if not entries:
        raise FileNotFoundError(f"{input_dir} is empty or missing: expected the input files of one case")
    if any(entry.is_file() for entry in entries):
        return {SINGLE_CASE_ID: input_dir}
    return {entry.name: entry for entry in entries if entry.is_dir()}


def stage_dataset(task_id: str, cases: dict[str, Path], root: Path) -> Path:
    """A SpineBench dataset folder under ``root`` (manifest + ``inputs/<case_id>`` linking to the read-only inputs)."""
    from evaluators.layout import INPUTS, CaseEntry, Manifest, write_manifest

    dataset = root / "dataset"
    (dataset / INPUTS).mkdir(parents=True)
    for case_id, folder in cases.items():
        (dataset / INPUTS / case_id).symlink_to(folder.resolve(), target_is_directory=True)
    manifest = Manifest(task=task_id, split="test", domain="test", cases=tuple(CaseEntry(id=c) for c in cases))
    write_manifest(dataset, manifest)
    return dataset


def run(*, checkpoint: Path, input_dir: Path, output_dir: Path, work_dir: Path) -> list[Path]:
    """Predict every case under ``input_dir`` with the checkpoint's method; returns the files written to output."""
    from baselines import api

    stored = api.load_checkpoint(checkpoint)
    task_id, method = stored["task"], stored["method"]
    cases = input_cases(input_dir)
    dataset = stage_dataset(task_id, cases, work_dir)
    predictions = api.predict(
        task_id, method, checkpoint=checkpoint, data_dir=dataset, out=work_dir / "predictions", device="cpu",
        progress=False,
    )
    single = list(cases) == [SINGLE_CASE_ID] and cases[SINGLE_CASE_ID] == input_dir
    written = []
    for case_id in cases:
        target = output_dir if single else output_dir / case_id
        target.mkdir(parents=True, exist_ok=True)
        for produced in sorted((predictions / case_id).iterdir()):
            written.append(Path(shutil.copyfile(produced, target / produced.name)))
    return written


def check(checkpoint: Path) -> str:
    """Load the checkpoint and import its method module; returns ``task method``."""
    from baselines import api
    from baselines.registry import get_method

    stored = api.load_checkpoint(checkpoint)
    get_method(stored["task"], stored["method"]).load()
    return f"{stored['task']} {stored['method']}"


def importable_methods() -> dict[tuple[str, str], str]:
    """{(task, method): "" when its module imports here, else the import error} for every registered method."""
    from baselines.registry import METHODS

    problems = {}
    for task_id, methods in METHODS.items():
        for name, spec in methods.items():
            try:
                spec.load()
                problems[task_id, name] = ""
            except ImportError as error:
                problems[task_id, name] = f"{type(error).__name__}: {error}"
    return problems


def container_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m baselines.container", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only load the checkpoint and import the method")
    parser.add_argument("--list", action="store_true", help="list which methods this image can import, and why not")
    args = parser.parse_args(argv)
    if args.list:
        for (task_id, method), problem in importable_methods().items():
            print(f"{task_id}\t{method}\t{problem or 'ok'}")
        return 0
    checkpoint = Path(os.environ.get("SPINEBENCH_CHECKPOINT", CHECKPOINT_PATH))
    import torch

    torch.set_num_threads(min(cgroup_cpus() or os.cpu_count() or 1, len(os.sched_getaffinity(0))))
    if args.check:
        print(f"ok: {check(checkpoint)} (torch {torch.__version__})")
        return 0
    with tempfile.TemporaryDirectory(prefix="baseline-") as work:
        written = run(checkpoint=checkpoint, input_dir=INPUT_DIR, output_dir=OUTPUT_DIR, work_dir=Path(work))
    print(f"wrote {len(written)} prediction file(s)")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# On the host
# ---------------------------------------------------------------------------------------------------------------


def _docker(*args: str, what: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, encoding="utf-8", errors="replace")
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise ImageBuildError(f"{what} failed (docker {args[0]}, exit {result.returncode}): {output}")
    return result.stdout


def trusted_registry() -> Path:
    """The trusted image registry of the platform's images ({reference: image id}, written by containers/build.sh
    through platform/spinebench/algorithms/trusted_images.py): ``$SPINEBENCH_TRUSTED_IMAGES``, else
    ``$SPINEBENCH_VAR_DIR/trusted-images.json``, else the repository's ``var/trusted-images.json``."""
    explicit = os.environ.get("SPINEBENCH_TRUSTED_IMAGES")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("SPINEBENCH_VAR_DIR") or REPO_ROOT / "var") / "trusted-images.json"


def family_image_id(family_image: str) -> str:
    """The image id to build on: an id as given, a name (``spinebench/baselines-cpu`` = ``...:latest``) as recorded
    in the trusted registry when it was built. Either must be in the engine under that very id. The engine's tag is
    never consulted, so an image re-tagged with the family's name changes nothing."""
    if IMAGE_ID.fullmatch(family_image):
        image_id = family_image
    else:
        reference = family_image if ":" in family_image.rsplit("/", 1)[-1] else f"{family_image}:latest"
        path = trusted_registry()
        try:
            recorded = json.loads(path.read_text())
        except FileNotFoundError:
            recorded = {}
        except (OSError, ValueError) as error:
            raise ImageBuildError(f"the trusted image registry {path} is unreadable ({error})") from None
        image_id = recorded.get(reference) if isinstance(recorded, dict) else None
        if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
            raise ImageBuildError(
                f"{reference} has no recorded image id in {path}: build it with containers/build.sh baselines "
                "(or give the family image's id)"
            )
    found = _docker("image", "inspect", "--format", "{{.Id}}", image_id,
                    what=f"family image {family_image} ({image_id[:19]}; build it: containers/build.sh baselines)")
    if found.strip() != image_id:
        raise ImageBuildError(f"the engine answered {found.strip()[:19]} for family image {image_id[:19]}")
    return image_id


def _layers(image: str) -> list[str]:
    return json.loads(_docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image,
                              what=f"inspecting {image}"))


def build_method_image(*, checkpoint, tag: str, family_image: str = FAMILY_IMAGE, save_to=None) -> str:
    """Build ``tag`` FROM the family image's id (``family_image_id``) with ``checkpoint`` baked in, check that it
    sits on that image's layers, loads the checkpoint and imports the method (a method the image cannot run fails
    here, with the container's message), and ``docker save`` it to ``save_to`` when given. Returns the image id."""
    from baselines import api

    checkpoint = Path(checkpoint)
    stored = api.load_checkpoint(checkpoint)
    family_id = family_image_id(family_image)
    with tempfile.TemporaryDirectory(prefix="baseline-image-") as context:
        context = Path(context)
        shutil.copyfile(checkpoint, context / "checkpoint.pt")
        (context / "Dockerfile").write_text(
            METHOD_DOCKERFILE % {"task": stored["task"], "method": stored["method"], "family": family_id}
        )
        _docker("build", "-q", "--build-arg", f"FAMILY_IMAGE={family_id}", "-t", tag, str(context),
                what=f"building {tag}")
    image_id = _docker("image", "inspect", "--format", "{{.Id}}", tag, what=f"inspecting {tag}").strip()
    family_layers = _layers(family_id)
    built_layers = _layers(image_id)
    if built_layers[: len(family_layers)] != family_layers or len(built_layers) != len(family_layers) + 1:
        raise ImageBuildError(f"{tag} is not the family image {family_id[:19]} plus its checkpoint layer")
    _docker("run", "--rm", "--network", "none", "--read-only", image_id, "--check",
            what=f"checking that {family_image} can run {stored['task']} {stored['method']} ({tag})")
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        _docker("save", "-o", str(save_to), tag, what=f"saving {tag}")
    return image_id


def _image_command(args) -> int:
    try:
        image_id = build_method_image(
            checkpoint=args.checkpoint, tag=args.tag, family_image=args.family, save_to=args.save
        )
    except ImageBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.tag} {image_id}" + (f" saved to {args.save}" if args.save else ""))
    return 0


def add_image_command(subparsers, guard) -> None:
    """Add ``image CKPT --tag TAG [--family IMAGE] [--save ARCHIVE]`` (``guard`` wraps user errors)."""
    parser = subparsers.add_parser("image", help="build an algorithm image for a trained baseline (Docker)")
    parser.add_argument("checkpoint", help="checkpoint written by `baselines train`")
    parser.add_argument("--tag", required=True, help="image name:tag to build")
    parser.add_argument(
        "--family",
        default=FAMILY_IMAGE,
        help=f"baseline family image: an image id, or a name recorded by containers/build.sh (default {FAMILY_IMAGE})",
    )
    parser.add_argument("--save", help="also `docker save` the image to this archive (upload it to a phase)")
    parser.set_defaults(func=guard(_image_command))


if __name__ == "__main__":
    sys.exit(container_main())
