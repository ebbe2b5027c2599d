"""Every hostile image of containers/hostile/ through the real engine: each is contained and ends failed with a clear
reason, leaves no container, volume or /output mount behind, and a well-behaved run started beside it succeeds.
Where the containment is the point, a positive control shows the same image misbehaving without the sandbox."""

import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from spinebench.algorithms import runner

from .conftest import AASCE_OUTPUTS, EXAMPLE_IMAGE, managed_containers, output_mounts, sinusoid_spine

pytestmark = pytest.mark.docker

LIMITS = replace(runner.PRESETS["tiny"], wall_clock_s=6, memory_mb=96, pids=24, output_mb=4, log_lines=10)


def run_beside_well_behaved(client, tmp_path: Path, *, image: str, input_dir: Path, limits=LIMITS):
    """Runs the hostile image and the example algorithm at the same time; returns the hostile result after checking
    that the example succeeded and that nothing of either run is left in the engine or the mount table."""
    volumes_before = {volume.name for volume in client.volumes.list()}
    sinusoid_spine(tmp_path / "good-input" / "image.png")
    with ThreadPoolExecutor(max_workers=2) as pool:
        hostile = pool.submit(runner.run_algorithm, client=client, image=image, input_dir=input_dir,
                              collect_to=tmp_path / "hostile-pred", limits=limits, allowed_names=AASCE_OUTPUTS,
                              labels={runner.LABEL_JOB: "hostile"})
        good = pool.submit(runner.run_algorithm, client=client, image=EXAMPLE_IMAGE, input_dir=tmp_path / "good-input",
                           collect_to=tmp_path / "good-pred", limits=replace(LIMITS, wall_clock_s=60),
                           allowed_names=AASCE_OUTPUTS, labels={runner.LABEL_JOB: "good"})
        hostile_result, good_result = hostile.result(), good.result()
    assert good_result.succeeded, (good_result.reason, good_result.log_tail)
    assert json.loads((tmp_path / "good-pred" / "angles.json").read_text())["angles"][1] > 10
    assert managed_containers(client) == []
    assert output_mounts() == []
    assert {volume.name for volume in client.volumes.list()} == volumes_before
    assert not hostile_result.succeeded
    return hostile_result


@pytest.fixture
def empty_input(tmp_path) -> Path:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "image.png").write_bytes(b"not used")
    return tmp_path / "input"


def test_network_egress_is_cut(built_images, tmp_path, empty_input):
    for stale in built_images.networks.list(names=["spinebench-egress-test"]):  # left by an interrupted run
        stale.remove()
    network = built_images.networks.create("spinebench-egress-test", driver="bridge")
    gateway = built_images.networks.get(network.id).attrs["IPAM"]["Config"][0]["Gateway"]
    received: list[bytes] = []
    listener = socket.create_server((gateway, 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                received.append(connection.recv(64))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    (empty_input / "target.json").write_text(json.dumps({"host": gateway, "port": port}))
    try:
        # Positive control: on the test's own network, without the sandbox, the same image reaches the listener.
        control = built_images.containers.run("spinebench/hostile-egress:latest", remove=True, network=network.name,
                                              volumes={str(empty_input): {"bind": "/input", "mode": "ro"}})
        assert b"egress succeeded" in control and received == [b"exfiltrated"]
        received.clear()
        result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-egress:latest",
                                         input_dir=empty_input)
    finally:
        stop.set()
        thread.join()
        listener.close()
        network.remove()
    assert received == []
    assert result.reason == "the algorithm exited with code 3"
    assert any("egress refused" in line for line in result.log_tail)


def test_writes_outside_output_are_refused(built_images, tmp_path, empty_input):
    control = built_images.containers.run("spinebench/hostile-write-outside:latest", remove=True, user="root",
                                          network_mode="none")
    assert b"wrote /pwned" in control  # without a read-only root the write lands
    before = sorted(os.listdir(empty_input))
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-write-outside:latest",
                                     input_dir=empty_input)
    assert result.reason == "the algorithm exited with code 4"  # the image's code for "every write refused"
    for target in ("/pwned", "/input/pwned", "/home/algorithm/pwned", "/var/tmp/pwned", "/etc/pwned"):
        assert any(line.startswith(f"refused {target}:") for line in result.log_tail), result.log_tail
    assert sorted(os.listdir(empty_input)) == before


def test_fork_bomb_hits_the_pids_limit(built_images, tmp_path, empty_input):
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-fork-bomb:latest",
                                     input_dir=empty_input, limits=replace(LIMITS, wall_clock_s=4))
    assert result.reason == "the algorithm ran past the wall-clock limit of 4 s and was killed"
    refusals = [line for line in result.log_tail if line.startswith("fork refused after")]
    assert refusals and all(int(line.split()[3]) < LIMITS.pids for line in refusals)


def test_memory_hog_is_oom_killed(built_images, tmp_path, empty_input):
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-memory-hog:latest",
                                     input_dir=empty_input)
    assert result.reason == "the algorithm ran out of memory (limit 96 MiB, swap included) and was killed"
    assert result.duration_s < LIMITS.wall_clock_s


def test_sleeper_is_killed_at_the_wall_clock_limit(built_images, tmp_path, empty_input):
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-sleep:latest",
                                     input_dir=empty_input, limits=replace(LIMITS, wall_clock_s=3))
    assert result.reason == "the algorithm ran past the wall-clock limit of 3 s and was killed"
    assert 3 <= result.duration_s < 8


def test_huge_output_stops_at_the_cap(built_images, tmp_path, empty_input):
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-huge-output:latest",
                                     input_dir=empty_input)
    assert result.reason == "the algorithm filled /output past its cap of 4 MiB or 32 files"
    assert not (tmp_path / "hostile-pred").exists()


def test_symlink_to_host_path_is_refused_not_followed(built_images, tmp_path, empty_input):
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-symlink-output:latest",
                                     input_dir=empty_input)
    assert result.reason == "/output/angles.json is a symbolic link; links are refused, never followed"
    assert not (tmp_path / "hostile-pred" / "angles.json").exists()


def test_root_image_is_refused_before_running(built_images, tmp_path, empty_input):
    containers_before = len(built_images.containers.list(all=True))
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-root-user:latest",
                                     input_dir=empty_input)
    assert result.reason.startswith("the image runs as root")
    assert len(built_images.containers.list(all=True)) == containers_before


def test_huge_stdout_keeps_only_a_short_tail(built_images, tmp_path, empty_input):
    result = run_beside_well_behaved(built_images, tmp_path, image="spinebench/hostile-huge-stdout:latest",
                                     input_dir=empty_input, limits=replace(LIMITS, wall_clock_s=3))
    assert result.reason == "the algorithm ran past the wall-clock limit of 3 s and was killed"
    assert 0 < len(result.log_tail) <= LIMITS.log_lines
    assert all(len(line) <= runner.LOG_LINE_CHARS for line in result.log_tail)
    assert all(line.startswith("noise noise") for line in result.log_tail)
