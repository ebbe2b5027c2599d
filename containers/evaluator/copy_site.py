"""Copy installed distributions (every file their RECORD lists inside site-packages) from the interpreter running
this script into DEST; hard links where the filesystem allows. Usage: python copy_site.py DEST DISTRIBUTIONS_TXT"""

import os
import shutil
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path


def copy_distribution(name: str, destination: Path) -> int:
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        raise SystemExit(f"copy_site: distribution {name!r} is not installed in {sys.prefix}") from None
    copied = 0
    for entry in dist.files or []:
        if entry.parts[0] == ".." or "__pycache__" in entry.parts:
            continue  # console scripts live outside site-packages; bytecode is rebuilt
        source = Path(dist.locate_file(entry))
        if not source.is_file():
            continue
        target = destination / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        copied += 1
    return copied


def main() -> None:
    destination, listing = Path(sys.argv[1]), Path(sys.argv[2])
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")]
    total = sum(copy_distribution(name, destination) for name in names)
    print(f"copy_site: {total} files of {len(names)} distributions -> {destination}")


if __name__ == "__main__":
    main()
