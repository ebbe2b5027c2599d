"""Runs one untrusted algorithm container under SpineBench's sandbox, through the docker SDK. No Django here: the
Celery task, the tests and the overhead benchmark all call `run_algorithm` the same way.

The sandbox of every run:
- `/input` a read-only bind mount of the case folder (or of the folder of all cases in batch mode);
- `/output` a host tmpfs mounted with `size=` (the kernel enforces the cap, and the files are still readable after
  the container exits), bind-mounted into the container; read back without following any symlink;
- no network (`network_mode=none`), read-only root filesystem, a small `/tmp` tmpfs, every capability dropped,
  `no-new-privileges`, a pids limit, memory equal to memory + swap, a CPU quota, one GPU only when asked;
- an explicit numeric `--user uid:gid`: the image's USER resolved as the engine would (users.py, through the image's
  own /etc/passwd and /etc/group), refused before anything runs when the uid or the gid is 0;
- the image referred to by its id only: a name is resolved once, and a platform name (`spinebench/...`) must resolve
  to the id recorded when it was built (trusted_images.py);
- a wall-clock limit after which the container is killed; json-file logs capped at 1 MiB, of which the last lines
  are kept; labels naming the job and submission so dead jobs' containers can be found and removed.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests
import urllib3
from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

from .trusted_images import UntrustedImage, resolve_image
from .users import MAX_ACCOUNT_FILE_BYTES, UserError, needs_account_files, refuse_root, resolve_user, shown

LABEL_MANAGED = "org.spinebench.managed"
LABEL_JOB = "org.spinebench.job"
LABEL_SUBMISSION = "org.spinebench.submission"
LABEL_WORKER = "org.spinebench.worker"
LABEL_OUTPUT = "org.spinebench.output-area"
LABEL_SCOPE = "org.spinebench.scope"
LABEL_EVALUATION = "org.spinebench.evaluation"  # an evaluation image's run: the submission it scores
LOG_LINE_CHARS = 300
POLL_SECONDS = 0.5
MEBIBYTE = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Resource limits of one container run. `PRESETS` holds named sets; the platform builds one per phase."""

    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 128
    wall_clock_s: float = 300.0
    output_mb: int = 256
    tmp_mb: int = 64
    output_files: int = 256
    gpu: bool = False
    log_lines: int = 50


PRESETS: dict[str, Limits] = {
    "tiny": Limits(
        memory_mb=128, cpus=0.5, pids=32, wall_clock_s=20, output_mb=8, tmp_mb=8, output_files=32, log_lines=20
    ),
    "default": Limits(),
    "gpu": Limits(memory_mb=16384, cpus=4.0, pids=512, wall_clock_s=1800, output_mb=1024, tmp_mb=1024, gpu=True),
}


@dataclass
class RunResult:
    """What happened to one container run. `reason` is empty on success and otherwise a sentence that is safe to
    show the submitter (it never quotes the inputs); `log_tail` is the raw end of stdout/stderr, for the caller to
    show or withhold (hidden phases withhold it)."""

    succeeded: bool
    reason: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    log_tail: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def shown_reason(self, *, hide_exit_code: bool) -> str:
        """The reason, without the exit code when it must be hidden: on a phase with hidden test data an algorithm
        could spell what it read in its exit codes (a side channel)."""
        if hide_exit_code and self.exit_code and self.reason == exit_code_reason(self.exit_code):
            return "the algorithm exited with a non-zero code (withheld: this phase's test data are hidden)"
        return self.reason


class SandboxRefusal(RuntimeError):
    """The run was refused before a container was created (the message says why and is safe to show)."""


class OutputRefusal(RuntimeError):
    """What the container left in /output is refused (symlink, special file, too large, too many files)."""


#: This site's instance id (SPINEBENCH_INSTANCE_ID), set by the algorithms app at ready time; None outside Django.
_instance_scope: str | None = None


def configure_scope(scope: str | None) -> None:
    """Label every container this process creates with `scope`, and limit every search and clean-up to it."""
    global _instance_scope
    _instance_scope = scope or None


def scope_labels() -> dict[str, str]:
    """The scope label of every container this process creates, and the filter of every search and clean-up: two
    sites (or two test sessions) sharing one engine never see or remove each other's containers. The scope is
    `SPINEBENCH_CONTAINER_SCOPE` when set (the container tests give each session its own), else the site's instance
    id (configure_scope; Django's ready time); with neither (the runner used without the platform), every managed
    container is in scope."""
    scope = os.environ.get("SPINEBENCH_CONTAINER_SCOPE", "") or _instance_scope
    return {LABEL_SCOPE: scope} if scope else {}


def docker_client(timeout: int = 60) -> docker.DockerClient:
    """The engine from DOCKER_HOST or the default socket."""
    return docker.from_env(timeout=timeout)


def engine_available() -> bool:
    try:
        return bool(docker_client(timeout=5).ping())
    except Exception:  # noqa: BLE001 - any failure to reach the engine means "not available"
        return False


PROBE_ENTRYPOINT = ["/spinebench-probe-never-started"]
_UNREADABLE_FILE = object()
_RUN_AS_CACHE: dict[str, tuple[int, int]] = {}  # image id -> (uid, gid): ids are content addresses, never stale


def image_run_as(
    client: docker.DockerClient, image_id: str, *, labels: dict[str, str] | None = None
) -> tuple[int, int]:
    """(uid, gid) the image's USER resolves to, read from the engine: its config's User, and /etc/passwd and
    /etc/group copied out of a container created (never started) from the image when the User is not numeric.
    UserError when it cannot be resolved or is root."""
    if image_id in _RUN_AS_CACHE:
        return _RUN_AS_CACHE[image_id]
    spec = (client.images.get(image_id).attrs.get("Config") or {}).get("User") or ""
    needs = dict(zip(("/etc/passwd", "/etc/group"), needs_account_files(spec), strict=True))
    files = image_files(client, image_id, [path for path, needed in needs.items() if needed], labels=labels or {})
    for path, data in files.items():
        if data is _UNREADABLE_FILE:
            raise UserError(
                f"the image's USER {shown(spec)} cannot be resolved: {path} in the image is a link or over "
                f"{MAX_ACCOUNT_FILE_BYTES} bytes; use a numeric USER uid:gid"
            )
    uid, gid = resolve_user(spec, passwd=files.get("/etc/passwd"), group=files.get("/etc/group"))
    refuse_root(spec, uid, gid)
    if len(_RUN_AS_CACHE) > 256:
        _RUN_AS_CACHE.clear()
    _RUN_AS_CACHE[image_id] = (uid, gid)
    return uid, gid


def image_files(client: docker.DockerClient, image_id: str, paths: list[str], *, labels: dict[str, str]) -> dict:
    """{path: bytes | None (absent) | _UNREADABLE_FILE (a link, a folder, too large)} from the image's filesystem."""
    if not paths:
        return {}
    probe = client.api.create_container(
        image_id,
        entrypoint=PROBE_ENTRYPOINT,
        command=[],
        network_disabled=True,
        labels={LABEL_MANAGED: "1", LABEL_WORKER: socket.gethostname(), **scope_labels(), **labels},
    )["Id"]
    try:
        return {path: copied_file(client, probe, path) for path in paths}
    finally:
        client.api.remove_container(probe, force=True)


def copied_file(client: docker.DockerClient, container_id: str, path: str):
    try:
        stream, info = client.api.get_archive(container_id, path)
    except docker.errors.NotFound:
        return None
    if info.get("size", 0) > MAX_ACCOUNT_FILE_BYTES:
        return _UNREADABLE_FILE
    data = b""
    for chunk in stream:
        data += chunk
        if len(data) > MAX_ACCOUNT_FILE_BYTES + 64 * 1024:
            return _UNREADABLE_FILE
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        member = archive.next()
        if member is None or not member.isfile():
            return _UNREADABLE_FILE
        handle = archive.extractfile(member)
        return _UNREADABLE_FILE if handle is None else handle.read()


# /output: a host tmpfs with a size cap --------------------------------------------------------------------------


class OutputArea:
    """A fresh directory with a tmpfs of `size_mb` mounted on it (needs CAP_SYS_ADMIN on the worker, as root has);
    unmounted and removed on exit. The kernel refuses writes past the cap with ENOSPC."""

    def __init__(self, *, size_mb: int, max_files: int, parent: Path | None = None):
        self.size_mb, self.max_files = size_mb, max_files
        self.parent = Path(parent or os.environ.get("SPINEBENCH_OUTPUT_AREAS", tempfile.gettempdir()))
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            raise RuntimeError("the output area is used outside its `with` block")
        return self._path

    def __enter__(self) -> OutputArea:
        self.parent.mkdir(parents=True, exist_ok=True)
        self._path = Path(tempfile.mkdtemp(prefix="sb-output-", dir=self.parent))
        options = f"size={self.size_mb}m,nr_inodes={self.max_files + 16},mode=0777,nosuid,nodev,noexec"
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "sb-output", str(self.path)],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        if mounted.returncode != 0:
            self.path.rmdir()
            raise SandboxRefusal(f"cannot mount the size-capped /output tmpfs: {mounted.stderr.strip()}")
        return self

    def __exit__(self, *exc) -> None:
        release_output_area(self.path)

    def is_full(self) -> bool:
        """True when the tmpfs has (almost) no free blocks or inodes left: the algorithm ran into the cap."""
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize < 64 * 1024 or stats.f_favail <= 1


def release_output_area(path: Path | str | None) -> None:
    if not path or not Path(path).exists():
        return
    subprocess.run(["umount", "-l", str(path)], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


# reading /output without following anything -----------------------------------------------------------------------


def collect_outputs(
    source: Path,
    destination: Path,
    *,
    allowed_names: Iterable[str],
    case_ids: Iterable[str] | None,
    max_file_bytes: int,
) -> list[str]:
    """Copy the files the task accepts from `source` to `destination` and return their relative paths.

    Per-case runs read `NAME` for each allowed name; batch runs read `<case_id>/NAME`. Every entry met is checked
    with lstat: a symlink or anything but a regular file or directory is refused (never followed), and so is a file
    over `max_file_bytes`. Files are opened with O_NOFOLLOW, so a link swapped in after the check fails too."""
    allowed = set(allowed_names)
    prefixes = [""] if case_ids is None else [f"{case_id}/" for case_id in case_ids]
    copied = []
    for prefix in prefixes:
        folder = source / prefix if prefix else source
        if prefix:
            if not os.path.lexists(folder):
                continue
            check_entry(folder, prefix.rstrip("/"), expect_dir=True, max_file_bytes=max_file_bytes)
        for entry in sorted(os.scandir(folder), key=lambda item: item.name):
            relative = prefix + entry.name
            check_entry(Path(entry.path), relative, expect_dir=None, max_file_bytes=max_file_bytes)
            if entry.name not in allowed or entry.is_dir(follow_symlinks=False):
                continue
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_no_follow(Path(entry.path), target, max_file_bytes=max_file_bytes, relative=relative)
            copied.append(relative)
    return copied


def check_entry(path: Path, relative: str, *, expect_dir: bool | None, max_file_bytes: int) -> None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise OutputRefusal(f"/output/{relative} is a symbolic link; links are refused, never followed")
    if stat.S_ISDIR(info.st_mode):
        if expect_dir is False:
            raise OutputRefusal(f"/output/{relative} is a directory, a file was expected")
        return
    if not stat.S_ISREG(info.st_mode):
        raise OutputRefusal(f"/output/{relative} is not a regular file")
    if expect_dir:
        raise OutputRefusal(f"/output/{relative} is a file, a directory was expected")
    if info.st_size > max_file_bytes:
        raise OutputRefusal(f"/output/{relative} is {info.st_size} bytes, over the {max_file_bytes}-byte limit")


def copy_no_follow(source: Path, target: Path, *, max_file_bytes: int, relative: str) -> None:
    try:
        descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OutputRefusal(f"/output/{relative} is a symbolic link; links are refused, never followed") from None
        raise
    with os.fdopen(descriptor, "rb") as reader, open(target, "wb") as writer:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise OutputRefusal(f"/output/{relative} is not a regular file")
        copied = 0
        while chunk := reader.read(MEBIBYTE):
            copied += len(chunk)
            if copied > max_file_bytes:
                raise OutputRefusal(f"/output/{relative} is over the {max_file_bytes}-byte limit")
            writer.write(chunk)


# the run --------------------------------------------------------------------------------------------------------


def container_options(
    *,
    image: str,
    user: str,
    input_dir: Path,
    output_dir: Path,
    limits: Limits,
    labels: dict[str, str],
    name: str | None,
    read_only_mounts: dict[str, Path] | None = None,
) -> dict:
    """`read_only_mounts` {container path: host path}: more read-only bind mounts (an evaluation container's ground
    truth at /opt/ml/input/data/ground_truth)."""
    options = dict(
        image=image,
        user=user,
        name=name,
        detach=True,
        labels={
            LABEL_MANAGED: "1",
            LABEL_WORKER: socket.gethostname(),
            LABEL_OUTPUT: str(output_dir),
            **scope_labels(),
            **labels,
        },
        network_mode="none",
        read_only=True,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmp_mb}m,mode=1777"},
        mounts=[
            Mount("/input", str(input_dir), type="bind", read_only=True),
            Mount("/output", str(output_dir), type="bind"),
            *(Mount(target, str(Path(source).resolve()), type="bind", read_only=True)
              for target, source in (read_only_mounts or {}).items()),
        ],
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=limits.pids,
        mem_limit=f"{limits.memory_mb}m",
        memswap_limit=f"{limits.memory_mb}m",
        nano_cpus=int(limits.cpus * 1e9),
        ulimits=[Ulimit(name="nofile", soft=1024, hard=1024), Ulimit(name="core", soft=0, hard=0)],
        shm_size="16m",
        hostname="algorithm",
        environment={"HOME": "/tmp"},
        log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
    )
    if limits.gpu:
        options["device_requests"] = [DeviceRequest(count=1, capabilities=[["gpu"]])]
    return options


def run_algorithm(
    *,
    client: docker.DockerClient,
    image: str,
    input_dir: Path,
    collect_to: Path,
    limits: Limits,
    allowed_names: Iterable[str],
    case_ids: Iterable[str] | None = None,
    labels: dict[str, str] | None = None,
    name: str | None = None,
    should_stop: Callable[[], str | None] | None = None,
    run_as: tuple[int, int] | None = None,
    read_only_mounts: dict[str, Path] | None = None,
) -> RunResult:
    """Run `image` on `input_dir` and copy the accepted outputs to `collect_to`.

    `case_ids` None: one case, outputs `/output/NAME`; otherwise batch mode, outputs `/output/<case_id>/NAME`.
    `should_stop` is polled while the container runs; a non-empty answer (e.g. "the submission was cancelled")
    kills the container and becomes the reason. The container and the /output tmpfs are always removed.
    `run_as` (uid, gid): the image's user as resolved when its archive was validated; None resolves it here.
    `read_only_mounts` {container path: host path}: more read-only inputs (an evaluation run's ground truth)."""
    started = time.monotonic()
    try:
        image_id = resolve_image(client, image)
    except docker.errors.ImageNotFound:
        raise SandboxRefusal(f"image {image} is not loaded in the engine") from None
    except UntrustedImage as error:
        raise SandboxRefusal(str(error)) from None
    try:
        uid, gid = run_as if run_as is not None else image_run_as(client, image_id, labels=labels)
        refuse_root(f"{uid}:{gid}", uid, gid)
    except UserError as error:
        return RunResult(False, reason=str(error), duration_s=time.monotonic() - started)
    case_ids = None if case_ids is None else list(case_ids)
    with OutputArea(size_mb=limits.output_mb, max_files=limits.output_files) as area:
        container = client.containers.create(
            **container_options(
                image=image_id,
                user=f"{uid}:{gid}",
                input_dir=Path(input_dir).resolve(),
                output_dir=area.path,
                limits=limits,
                labels=labels or {},
                name=name,
                read_only_mounts=read_only_mounts,
            )
        )
        try:
            stop_reason = wait_for_exit(container, limits=limits, started=started, should_stop=should_stop)
            try:
                state = client.api.inspect_container(container.id)["State"]
                log_tail = read_log_tail(container, lines=limits.log_lines)
            except docker.errors.NotFound:  # removed meanwhile by a cancel (which also set stop_reason)
                state, log_tail = {}, []
                stop_reason = stop_reason or "the container was removed by the platform while it ran"
        finally:
            remove_container(container)
        result = RunResult(False, exit_code=state.get("ExitCode"), log_tail=log_tail)
        result.reason = stop_reason or exit_reason(state, limits=limits, output_full=area.is_full())
        if not result.reason:
            try:
                result.files = collect_outputs(
                    area.path,
                    Path(collect_to),
                    allowed_names=allowed_names,
                    case_ids=case_ids,
                    max_file_bytes=limits.output_mb * MEBIBYTE,
                )
            except OutputRefusal as refusal:
                result.reason = str(refusal)
        if not result.reason and not result.files:
            names = " or ".join(sorted(allowed_names))
            result.reason = f"the algorithm wrote none of {names} to /output" + ("/<case_id>/" if case_ids else "")
    result.succeeded = not result.reason
    result.duration_s = time.monotonic() - started
    return result


def wait_for_exit(container, *, limits: Limits, started: float, should_stop) -> str:
    """Start the container and wait for it; kill it at the wall-clock limit or when `should_stop` answers. When the
    engine stopped answering meanwhile (restarted) and the container then ended badly, the engine stopped it: that is
    raised as an engine error, not reported as the algorithm's failure."""
    try:
        container.start()
    except docker.errors.APIError as error:
        if not error.is_client_error():
            raise
        # The engine refused to start the image's process (its entrypoint is missing or cannot run): a problem of
        # the image, not of the engine. The engine's words name host paths, so they are not quoted.
        return "the container could not start: the image's entrypoint or command is missing or cannot be executed"
    deadline = started + limits.wall_clock_s
    engine_lost = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kill_container(container)
            return f"the algorithm ran past the wall-clock limit of {limits.wall_clock_s:g} s and was killed"
        try:
            status = container.wait(timeout=min(POLL_SECONDS if should_stop else remaining, remaining))
            if engine_lost and status.get("StatusCode"):
                raise docker.errors.DockerException("the container engine went away while the container ran")
            return ""
        except requests.exceptions.ConnectionError as error:
            # docker-py reports a read timeout on a unix socket as a ConnectionError around urllib3's
            # ReadTimeoutError: the engine answered nothing yet, it did not go away.
            if not isinstance(error.args[0] if error.args else None, urllib3.exceptions.ReadTimeoutError):
                engine_lost = True
        except requests.exceptions.ReadTimeout:
            pass
        except docker.errors.NotFound:
            reason = should_stop() if should_stop else ""
            if engine_lost and not reason:  # gone with the engine's restart, not removed by the platform
                raise docker.errors.DockerException("the container vanished while the engine was away") from None
            return reason or "the container was removed by the platform while it ran"
        if should_stop and (reason := should_stop()):
            kill_container(container)
            return reason


def exit_reason(state: dict, *, limits: Limits, output_full: bool) -> str:
    if state.get("OOMKilled"):
        return f"the algorithm ran out of memory (limit {limits.memory_mb} MiB, swap included) and was killed"
    if output_full:
        return f"the algorithm filled /output past its cap of {limits.output_mb} MiB or {limits.output_files} files"
    code = state.get("ExitCode")
    if code:
        return exit_code_reason(code)
    return ""


def exit_code_reason(code: int) -> str:
    return f"the algorithm exited with code {code}"


def read_log_tail(container, *, lines: int) -> list[str]:
    raw = container.logs(stdout=True, stderr=True, tail=lines)
    return [line[:LOG_LINE_CHARS] for line in raw.decode("utf-8", errors="replace").splitlines()[-lines:]]


def kill_container(container) -> None:
    try:
        container.kill()
    except docker.errors.APIError:
        pass  # it exited on its own in the meantime


def remove_container(container, *, wait_s: float = 30.0) -> None:
    """Force-remove `container`. Gone already is fine; so is a removal another process has under way (the lease
    sweep and a requeued run may both clean the same orphan): then wait, bounded, until the engine has dropped it."""
    try:
        container.remove(force=True, v=True)
        return
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as error:
        if error.status_code != 409 or "already in progress" not in str(error.explanation or ""):
            raise
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            container.reload()
        except docker.errors.NotFound:
            return
        time.sleep(0.2)


def remove_managed_containers(
    client: docker.DockerClient,
    *,
    labels: dict[str, str] | None = None,
    keep: Callable[[dict[str, str]], bool] | None = None,
) -> int:
    """Kill and remove SpineBench containers matching `labels` (all managed ones when None), except those `keep`
    accepts (given the container's labels); release their /output areas. Returns how many were removed."""
    wanted = {**scope_labels(), **(labels or {})}
    filters = [f"{LABEL_MANAGED}=1"] + [f"{key}={value}" for key, value in wanted.items()]
    removed = 0
    for container in client.containers.list(all=True, filters={"label": filters}):
        container_labels = container.labels or {}
        if keep and keep(container_labels):
            continue
        remove_container(container)
        release_output_area(container_labels.get(LABEL_OUTPUT))
        removed += 1
    return removed
