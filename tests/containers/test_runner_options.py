"""The runner's pure parts: the container options every run gets (checked option by option against the sandbox the
issue asks for) and the reading of /output, which refuses links, special files and over-large files."""

import os
from pathlib import Path

import pytest
from docker.types import DeviceRequest

from spinebench.algorithms import runner

LIMITS = runner.Limits(memory_mb=300, cpus=1.5, pids=40, wall_clock_s=10, output_mb=5, tmp_mb=7, gpu=False)


def options(limits=LIMITS):
    return runner.container_options(image="img", user="1000", input_dir=Path("/data/in"), output_dir=Path("/work/out"),
                                    limits=limits, labels={runner.LABEL_JOB: "7"}, name="job-7")


def test_sandbox_options():
    got = options()
    assert got["network_mode"] == "none"
    assert got["read_only"] is True
    assert got["cap_drop"] == ["ALL"]
    assert got["security_opt"] == ["no-new-privileges"]
    assert got["pids_limit"] == 40
    assert got["mem_limit"] == got["memswap_limit"] == "300m"
    assert got["nano_cpus"] == 1_500_000_000
    assert got["user"] == "1000"
    assert got["tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=7m,mode=1777"}
    mounts = {mount["Target"]: mount for mount in got["mounts"]}
    assert mounts["/input"]["Source"] == "/data/in" and mounts["/input"]["ReadOnly"] is True
    assert mounts["/output"]["Source"] == "/work/out" and not mounts["/output"].get("ReadOnly")
    assert got["labels"][runner.LABEL_MANAGED] == "1" and got["labels"][runner.LABEL_JOB] == "7"
    assert got["log_config"]["Config"] == {"max-size": "1m", "max-file": "1"}
    assert "device_requests" not in got


def test_gpu_phase_asks_for_exactly_one_gpu():
    requests = options(runner.Limits(gpu=True))["device_requests"]
    assert len(requests) == 1 and isinstance(requests[0], DeviceRequest)
    assert requests[0]["Count"] == 1 and requests[0]["Capabilities"] == [["gpu"]]


@pytest.mark.parametrize("user, root", [("", True), ("root", True), ("0", True), ("0:0", True), ("root:users", True),
                                        ("1000", False), ("algorithm", False), ("1000:1000", False)])
def test_root_user_detection(user, root):
    assert runner.is_root_user(user) is root


def collect(source, tmp_path, **kwargs):
    return runner.collect_outputs(source, tmp_path / "dest", allowed_names=["angles.json"],
                                  max_file_bytes=kwargs.pop("max_file_bytes", 100), **{"case_ids": None, **kwargs})


def test_collect_copies_only_accepted_files(tmp_path):
    source = tmp_path / "out"
    source.mkdir()
    (source / "angles.json").write_text('{"angles": [1, 2, 3]}')
    (source / "scratch.bin").write_bytes(b"ignored")
    assert collect(source, tmp_path) == ["angles.json"]
    assert (tmp_path / "dest" / "angles.json").read_text() == '{"angles": [1, 2, 3]}'
    assert not (tmp_path / "dest" / "scratch.bin").exists()


def test_collect_refuses_symlinks_without_following(tmp_path):
    source = tmp_path / "out"
    source.mkdir()
    secret = tmp_path / "host-secret"
    secret.write_text("host data")
    os.symlink(secret, source / "angles.json")
    with pytest.raises(runner.OutputRefusal, match="angles.json is a symbolic link"):
        collect(source, tmp_path)
    assert not (tmp_path / "dest" / "angles.json").exists()


def test_collect_refuses_links_even_under_other_names_and_fifos(tmp_path):
    source = tmp_path / "out"
    source.mkdir()
    os.symlink("/", source / "root")
    with pytest.raises(runner.OutputRefusal, match="/output/root is a symbolic link"):
        collect(source, tmp_path)
    os.unlink(source / "root")
    os.mkfifo(source / "angles.json")
    with pytest.raises(runner.OutputRefusal, match="is not a regular file"):
        collect(source, tmp_path)


def test_collect_refuses_over_large_files(tmp_path):
    source = tmp_path / "out"
    source.mkdir()
    (source / "angles.json").write_bytes(b"x" * 101)
    with pytest.raises(runner.OutputRefusal, match="101 bytes, over the 100-byte limit"):
        collect(source, tmp_path)


def test_collect_batch_layout(tmp_path):
    source = tmp_path / "out"
    (source / "case_1").mkdir(parents=True)
    (source / "case_1" / "angles.json").write_text("{}")
    (source / "case_2").write_text("a file where a case folder belongs")
    assert collect(source, tmp_path, case_ids=["case_1", "case_3"]) == ["case_1/angles.json"]
    with pytest.raises(runner.OutputRefusal, match="/output/case_2 is a file, a directory was expected"):
        collect(source, tmp_path, case_ids=["case_2"])
