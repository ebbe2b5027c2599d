"""`docker save` archives written member by member, for the archive validator's tests, the fuzzer and the engine
tests: with real layer tars (so the engine can load them: the config's rootfs.diff_ids are the layers' sha256), an
/etc/passwd and /etc/group where a test wants them, and any hostile extra member."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

MIB = 1 << 20


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes, *, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def link(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def layer_tar(files: dict[str, bytes | tuple[tarfile.TarInfo, None]] | None = None) -> bytes:
    """A layer: a tar of `files` ({path: bytes} or {path: link(...)}), with the `etc/` folder when a file is in it."""
    files = {"hello.txt": b"hello\n"} if files is None else files
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        folders = sorted({name.rsplit("/", 1)[0] for name in files if "/" in name})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for name, content in files.items():
            if isinstance(content, tuple):
                archive.addfile(content[0])
            else:
                add_bytes(archive, name, content)
    return buffer.getvalue()


def image_config(*, user: str | None = "1000:1000", architecture: str = "amd64", os_name: str = "linux",
                 layers: list[bytes]) -> bytes:
    return json.dumps({
        "architecture": architecture, "os": os_name, "config": {"User": user, "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]},
    }).encode()


def write_archive(path: Path, *, user: str | None = "1000:1000", architecture: str = "amd64", os_name: str = "linux",
                  images: int = 1, layers: list[bytes] | None = None, repo_tags: list[str] | None = None,
                  extra=None, layer_bytes: int | None = None, compress: bool = False, repositories: bool = False,
                  config: bytes | None = None, manifest: bytes | None = None) -> str:
    """Writes the archive; returns the config's sha256 (the image id without `sha256:`). `layer_bytes` adds a layer
    of that many zero bytes (not a tar: only for size checks); `config`/`manifest` replace the generated JSON."""
    layers = [layer_tar()] if layers is None else layers
    config = config if config is not None else image_config(user=user, architecture=architecture, os_name=os_name,
                                                              layers=layers)
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_names = [f"layer{index}/layer.tar" for index in range(len(layers))]
    if layer_bytes is not None:
        layers, layer_names = layers + [b"\0" * layer_bytes], layer_names + ["zeros/layer.tar"]
    tags = [f"algo:{i}" for i in range(images)] if repo_tags is None else repo_tags
    entries = [{"Config": config_name, "RepoTags": tags if i == 0 else [f"algo:{i}"], "Layers": layer_names}
               for i in range(images)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        add_bytes(archive, "manifest.json", manifest if manifest is not None else json.dumps(entries).encode())
        add_bytes(archive, config_name, config)
        for name, layer in zip(layer_names, layers, strict=True):
            add_bytes(archive, name, layer)
        if repositories and tags:
            repository, tag = tags[0].rsplit(":", 1)
            add_bytes(archive, "repositories", json.dumps({repository: {tag: "layer0"}}).encode())
        for member, data in (extra or []):
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member, io.BytesIO(data) if data else None)
            else:
                add_bytes(archive, member, data)
    data = buffer.getvalue()
    Path(path).write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return hashlib.sha256(config).hexdigest()


def passwd_layer(passwd: str | None = None, group: str | None = None) -> bytes:
    files = {}
    if passwd is not None:
        files["etc/passwd"] = passwd.encode()
    if group is not None:
        files["etc/group"] = group.encode()
    return layer_tar(files)


BASE_PASSWD = "root:x:0:0:root:/root:/bin/sh\nalgorithm:x:1000:1000::/home/algorithm:/bin/sh\n"
BASE_GROUP = "root:x:0:\nalgorithm:x:1000:\n"
