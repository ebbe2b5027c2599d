"""Unpack a wheel into DEST (what `pip install --no-deps --target` leaves, without pip or a network): the wheel's
files are the site-packages tree. Usage: python unpack_wheel.py WHEEL DEST"""

import sys
import zipfile
from pathlib import Path


def main() -> None:
    wheel, destination = Path(sys.argv[1]), Path(sys.argv[2])
    if not wheel.is_file():
        raise SystemExit(f"unpack_wheel: {wheel} not found (set SPINEBENCH_TORCH_WHEEL to a CPU torch wheel for cp311)")
    with zipfile.ZipFile(wheel) as archive:
        members = archive.namelist()
        for name in members:
            if name.startswith("/") or ".." in Path(name).parts:
                raise SystemExit(f"unpack_wheel: {wheel}: member {name!r} escapes the target")
        archive.extractall(destination)
        for info in archive.infolist():  # keep executable bits (shared libraries, torch's binaries)
            mode = info.external_attr >> 16
            if mode:
                (destination / info.filename).chmod(mode & 0o777)
    print(f"unpack_wheel: {len(members)} files of {wheel.name} -> {destination}")


if __name__ == "__main__":
    main()
