"""Misbehaving algorithm containers. Each behaviour is something a participant's image might do to escape or exhaust
the sandbox; SpineBench's tests run every one through the real engine and check that it is contained.

The egress behaviour connects only to the address the test writes into /input/target.json (a listener the test
itself started); nothing here targets any other address.
"""

import json
import os
import socket
import sys
import time
from pathlib import Path

MEGABYTE = 1 << 20


def egress() -> int:
    target = json.loads(Path("/input/target.json").read_text())
    try:
        with socket.create_connection((target["host"], target["port"]), timeout=3) as connection:
            connection.sendall(b"exfiltrated")
    except OSError as error:
        print(f"egress refused: {error}")
        return 3
    print("egress succeeded")
    return 0


def write_outside() -> int:
    refused = 0
    targets = ["/pwned", "/input/pwned", "/home/algorithm/pwned", "/var/tmp/pwned", "/etc/pwned"]
    for target in targets:
        try:
            Path(target).write_text("pwned")
            print(f"wrote {target}")
        except OSError as error:
            refused += 1
            print(f"refused {target}: {error.strerror}")
    return 4 if refused == len(targets) else 0


def fork_bomb() -> int:
    children = 0
    while True:
        try:
            if os.fork() == 0:
                while True:
                    time.sleep(1)
            children += 1
        except OSError as error:
            print(f"fork refused after {children} children: {error.strerror}", flush=True)
            time.sleep(0.05)


def memory_hog() -> int:
    hoard = []
    while True:
        block = bytearray(16 * MEGABYTE)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is really resident
        hoard.append(block)


def sleep() -> int:
    time.sleep(3600)
    return 0


def huge_output() -> int:
    chunk = os.urandom(MEGABYTE)
    with open("/output/huge.bin", "wb") as sink:
        for _ in range(64 * 1024):  # 64 GB
            sink.write(chunk)
    return 0


def symlink_output() -> int:
    os.symlink("/etc/shadow", "/output/angles.json")
    os.symlink("/", "/output/root")
    return 0


def root_user() -> int:
    Path("/output/angles.json").write_text(json.dumps({"angles": [1.0, 2.0, 3.0]}))
    return 0


def huge_stdout() -> int:
    line = "noise " * 200
    while True:
        print(line)


BEHAVIOURS = {
    "egress": egress,
    "write-outside": write_outside,
    "fork-bomb": fork_bomb,
    "memory-hog": memory_hog,
    "sleep": sleep,
    "huge-output": huge_output,
    "symlink-output": symlink_output,
    "root-user": root_user,
    "huge-stdout": huge_stdout,
}

if __name__ == "__main__":
    sys.exit(BEHAVIOURS[os.environ["HOSTILE_BEHAVIOUR"]]())
