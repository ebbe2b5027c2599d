"""The status state machine and the platform-level upload checks."""

import io

import pytest

from spinebench.submissions.status import ALLOWED, COUNTED, TERMINAL, Status, TransitionError, can_transition, transition
from spinebench.submissions.uploads import UploadError, check_size, check_utf8_text


class Job:
    def __init__(self, status):
        self.pk, self.status, self.error_message = 1, status, ""


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("pending", "validating", True),
        ("validating", "queued", True),
        ("queued", "running", True),
        ("queued", "scoring", True),
        ("running", "scoring", True),
        ("scoring", "succeeded", True),
        ("scoring", "queued", True),
        ("pending", "succeeded", False),
        ("queued", "succeeded", False),
        ("succeeded", "failed", False),
        ("failed", "queued", False),
        ("cancelled", "running", False),
    ],
)
def test_transitions(current, target, allowed):
    assert can_transition(current, target) is allowed
    job = Job(current)
    if allowed:
        transition(job, target, error="why", save=False)
        assert job.status == target and job.error_message == "why"
    else:
        with pytest.raises(TransitionError, match=f"{current} -> {target}"):
            transition(job, target, save=False)


def test_terminal_and_counted_sets():
    assert TERMINAL == {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}
    assert Status.FAILED not in COUNTED and Status.CANCELLED not in COUNTED and Status.SUCCEEDED in COUNTED
    assert set(ALLOWED) == set(Status.values)


def test_size_limits():
    with pytest.raises(UploadError, match="empty"):
        check_size(0, limit=10, name="p.csv")
    with pytest.raises(UploadError, match=r"p.csv: the file is 2.0 KiB, over this phase's limit of 1.0 KiB"):
        check_size(2048, limit=1024, name="p.csv")
    check_size(1024, limit=1024, name="p.csv")


def chunks(data: bytes, size: int = 4):
    stream = io.BytesIO(data)
    return iter(lambda: stream.read(size), b"")


def test_not_utf8_names_line_and_byte():
    with pytest.raises(UploadError, match=r"byte 0xff at line 3 \(byte offset 17\)"):
        check_utf8_text(chunks(b"case_id,pt\na,1.0\n\xff"), name="p.csv")


def test_multibyte_character_split_across_chunks_is_fine():
    check_utf8_text(chunks("case_id,pt\nä,1\n".encode(), size=12), name="p.csv")


def test_truncated_multibyte_and_blank_files():
    with pytest.raises(UploadError, match="inside a multi-byte character"):
        check_utf8_text(chunks("a,ä".encode()[:-1]), name="p.csv")
    with pytest.raises(UploadError, match="only whitespace"):
        check_utf8_text(chunks(b" \n\n "), name="p.csv")
