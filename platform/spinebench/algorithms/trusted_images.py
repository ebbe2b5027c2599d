"""The platform's own images (`spinebench/...`: the evaluator, the baseline family, the example and test images) are
verified by image id before each use: `containers/build.sh` records the id of every image it builds or finds up to
date in a small JSON registry ({"spinebench/evaluator:latest": "sha256:...", ...}), and `resolve_image` refuses a
platform reference whose tag now points at another image (someone re-tagged it, e.g. by loading an archive that
names it). A platform reference never seen before is recorded at its first use (trust on first use).

No Django and no relative imports: build.sh runs this file as a script (`python trusted_images.py record NAME ID`).
The registry is `$SPINEBENCH_TRUSTED_IMAGES`, by default `$SPINEBENCH_VAR_DIR/trusted-images.json` (the repository's
`var/` when that is unset), the same path for the build script and the workers.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

PLATFORM_NAMESPACE = "spinebench/"
REPO_ROOT = Path(__file__).resolve().parents[3]


class UntrustedImage(RuntimeError):
    """A platform image reference points at an image other than the one recorded for it."""


def registry_path() -> Path:
    explicit = os.environ.get("SPINEBENCH_TRUSTED_IMAGES")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("SPINEBENCH_VAR_DIR") or REPO_ROOT / "var") / "trusted-images.json"


def canonical(reference: str) -> str:
    """`docker.io/spinebench/x` and `spinebench/x` are the same reference; no tag means `latest`."""
    for prefix in ("docker.io/", "index.docker.io/"):
        if reference.startswith(prefix):
            reference = reference[len(prefix):]
    name = reference.rsplit("/", 1)[-1]
    if "@" not in reference and ":" not in name:
        reference += ":latest"
    return reference


def is_platform_reference(reference: str) -> bool:
    return canonical(reference).startswith(PLATFORM_NAMESPACE)


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recorded() -> dict[str, str]:
    path = registry_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise UntrustedImage(f"the trusted image registry {path} is unreadable ({error}); rebuild the images with "
                             "containers/build.sh") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UntrustedImage(f"the trusted image registry {path} is not a mapping of references to image ids")
    return data


def record(reference: str, image_id: str, *, only_if_new: bool = False) -> str:
    """Record `image_id` for `reference` (atomically); with only_if_new, keep an existing record. Returns the id
    now recorded."""
    if not image_id.startswith("sha256:") or len(image_id) != 71:
        raise ValueError(f"not an image id: {image_id!r}")
    path = registry_path()
    with _locked(path):
        data = recorded()
        key = canonical(reference)
        if only_if_new and key in data:
            return data[key]
        data[key] = image_id
        descriptor, temporary = tempfile.mkstemp(prefix=".trusted-images-", dir=path.parent)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(temporary, path)
    return image_id


def resolve_image(client, reference: str) -> str:
    """The image id to run for `reference`: an id as given (content-addressed already), any other name as the
    engine resolves it; a platform (`spinebench/`) name must resolve to its recorded id (UntrustedImage if not).
    The engine's ImageNotFound propagates."""
    if reference.startswith("sha256:"):
        return client.images.get(reference).id
    image_id = client.images.get(reference).id
    if is_platform_reference(reference):
        check(reference, image_id)
    return image_id


def check(reference: str, image_id: str) -> None:
    """UntrustedImage unless `image_id` is the id recorded for `reference` (recorded now when there is none)."""
    expected = record(reference, image_id, only_if_new=True)
    if expected != image_id:
        raise UntrustedImage(
            f"{canonical(reference)} now points at {image_id[:19]}, not at {expected[:19]} recorded when it was "
            "built: refusing to use it (rebuild it with containers/build.sh, which records the new id)")


def recorded_image(client, reference: str) -> str:
    """The id recorded for a platform reference, after checking that the engine holds an image with that id (an id
    is the digest of the image's config, so no upload can stand in for it); the tag itself is not consulted, so a
    re-pointed tag changes nothing. UntrustedImage when nothing is recorded or the image is gone."""
    image_id = recorded().get(canonical(reference))
    if image_id is None:
        raise UntrustedImage(f"{canonical(reference)} has no recorded image id; build it with containers/build.sh")
    try:
        return client.images.get(image_id).id
    except Exception as error:  # noqa: BLE001 - ImageNotFound and engine errors alike: the image cannot be used
        raise UntrustedImage(f"the image recorded for {canonical(reference)} ({image_id[:19]}) is not in the engine "
                             f"({type(error).__name__}); rebuild it with containers/build.sh") from None


def main(argv: list[str]) -> int:
    """`record REFERENCE IMAGE_ID` (after a build) or `check REFERENCE IMAGE_ID` (before building on an image)."""
    if len(argv) == 3 and argv[0] == "record":
        record(argv[1], argv[2])
        return 0
    if len(argv) == 3 and argv[0] == "check":
        try:
            check(argv[1], argv[2])
        except UntrustedImage as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    print("usage: trusted_images.py record|check REFERENCE IMAGE_ID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
