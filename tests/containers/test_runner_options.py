"""The runner's pure parts: the container options every run gets (checked option by option against the sandbox the
issue asks for) and the reading of /output, which refuses links, special files and over-large files."""

import os
from pathlib import Path

import pytest
from docker.types import DeviceRequest

from spinebench.algorithms import runner
from spinebench.algorithms.users import UserError, refuse_root, resolve_user

LIMITS = runner.Limits(memory_mb=300, cpus=1.5, pids=40, wall_clock_s=10, output_mb=5, tmp_mb=7, gpu=False)


def options(limits=LIMITS):
    return runner.container_options(image="sha256:" + "a" * 64, user="1000:1000", input_dir=Path("/data/in"),
                                    output_dir=Path("/work/out"),
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
    assert got["user"] == "1000:1000" and got["image"] == "sha256:" + "a" * 64
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


PASSWD = b"root:x:0:0:root:/root:/bin/sh\nalgorithm:x:1000:1000::/tmp:/bin/sh\ntoor:x:00:1000::/:/bin/sh\n"
GROUP = b"root:x:0:\nalgorithm:x:1000:\nwheel:x:-0:\n"


@pytest.mark.parametrize("user, expected", [
    ("", (0, 0)), ("root", (0, 0)), ("0", (0, 0)), ("00", (0, 0)), ("+0", (0, 0)), ("-0", (0, 0)), ("0000", (0, 0)),
    ("toor", (0, 1000)), ("root:users", "not a name in its /etc/group"), ("1000:wheel", (1000, 0)),
    ("1000", (1000, 1000)), ("algorithm", (1000, 1000)), ("1000:1000", (1000, 1000)), ("2000", (2000, 0)),
    ("algorithm:root", (1000, 0)), ("0x10", "not a number and not a name"), ("１０００", "not a number and not a name"),
])
def test_users_resolve_as_the_engine_resolves_them(user, expected):
    """Go's Atoi rules (a sign and ASCII digits only: no hex, no full-width digits), passwd then group."""
    if isinstance(expected, str):
        with pytest.raises(UserError, match=expected):
            resolve_user(user, passwd=PASSWD, group=GROUP)
    else:
        assert resolve_user(user, passwd=PASSWD, group=GROUP) == expected


@pytest.mark.parametrize("uid, gid, refused", [(0, 1000, "uid 0"), (1000, 0, "gid 0"), (0, 0, "uid 0"), (1, 1, None)])
def test_root_uid_or_gid_is_refused(uid, gid, refused):
    if refused:
        with pytest.raises(UserError, match=refused):
            refuse_root("x", uid, gid)
    else:
        refuse_root("x", uid, gid)


@pytest.mark.parametrize("exit_code, hidden, shown", [
    (3, True, "the algorithm exited with a non-zero code (withheld: this phase's test data are hidden)"),
    (3, False, "the algorithm exited with code 3"),
])
def test_exit_codes_are_withheld_on_hidden_phases(exit_code, hidden, shown):
    result = runner.RunResult(False, reason=runner.exit_code_reason(exit_code), exit_code=exit_code)
    assert result.shown_reason(hide_exit_code=hidden) == shown
    oom = runner.RunResult(False, reason="the algorithm ran out of memory", exit_code=137)
    assert oom.shown_reason(hide_exit_code=hidden) == "the algorithm ran out of memory"


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
