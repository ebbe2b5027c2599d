"""The submission page's chunked uploader (static/spinebench/chunked_upload.js) in Chromium: a large algorithm
archive goes up in chunks with a progress bar; one chunk's connection is cut (a route abort) and the page resumes
from the server's offset and completes; the stored file is byte for byte the one chosen. The page's SHA-256 is
compared with hashlib's. Runs under the strict CSP (no inline code)."""

from __future__ import annotations

import hashlib
import random
import re

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from playwright.sync_api import expect

from spinebench.challenges.models import Phase
from spinebench.submissions.models import Submission
from spinebench.uploads.models import StoredUpload, UploadSession
from tests.platform.factories import PhaseFactory, RegistrationFactory

from .conftest import assert_accessible
from .test_flows import STRICT_CSP

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CHUNK = 64 * 1024


@pytest.fixture
def algorithm_page(settings, page, live_server):
    from spinebench.workers.services import record_heartbeat

    settings.SPINEBENCH_PAGE_CHUNK_BYTES = CHUNK
    phase = PhaseFactory(submission_kind=Phase.SubmissionKind.ALGORITHM, max_upload_bytes=4 * 1024**2)
    record_heartbeat(hostname="containers@test", queues=["containers-cpu"])
    RegistrationFactory(challenge=phase.challenge, user__username="uploader")
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("uploader")
    page.locator("#id_password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    return phase, reverse("submissions:create", kwargs={"challenge": phase.challenge.slug, "phase": phase.slug})


def test_an_interrupted_chunk_is_resumed_and_the_upload_completes(algorithm_page, page, tmp_path):
    phase, url = algorithm_page
    data = random.Random(1).randbytes(5 * CHUNK + 1234)
    archive = tmp_path / "algorithm.tar"
    archive.write_bytes(data)
    puts, cut, refused = [], [], []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)

    def with_csp(route):  # the page itself under the strict policy; the form's POST goes through untouched
        if route.request.method != "GET":
            route.continue_()
            return
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    def chunks(route):
        request = route.request
        if request.method != "PUT":
            route.continue_()
            return
        offset = int(re.search(r"offset=(\d+)", request.url)[1])
        puts.append(offset)
        if offset == 2 * CHUNK and not cut:
            cut.append(offset)
            route.abort("connectionreset")  # the connection drops while this chunk is on its way
            return
        route.continue_()

    page.route(re.compile(r"/submissions/new/"), with_csp)
    page.route(re.compile(r"/api/uploads/"), chunks)
    page.goto(url)
    assert_accessible(page)
    page.locator("input[type=file]").set_input_files(str(archive))
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"), timeout=30_000)
    assert cut == [2 * CHUNK] and puts.count(2 * CHUNK) == 2  # sent again from the server's offset
    assert puts == sorted(puts) and puts[-1] == 5 * CHUNK
    submission = Submission.objects.get(phase=phase)
    record = StoredUpload.objects.get()
    assert submission.algorithm_archive.name == record.storage_name
    assert record.sha256 == hashlib.sha256(data).hexdigest() and record.original_name == "algorithm.tar"
    with default_storage.open(record.storage_name) as handle:
        assert handle.read() == data
    assert UploadSession.objects.get().consumed_at is not None
    assert refused == []


def test_a_small_file_still_travels_in_the_form(algorithm_page, page, tmp_path):
    phase, url = algorithm_page
    archive = tmp_path / "small.tar"
    archive.write_bytes(b"\0" * 2048)
    page.goto(url)
    page.locator("input[type=file]").set_input_files(str(archive))
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"))
    assert not UploadSession.objects.exists() and Submission.objects.filter(phase=phase).count() == 1


@pytest.mark.parametrize("length", [0, 3, 55, 56, 63, 64, 65, 119, 120, 1000, 70_000])
def test_the_pages_sha256_matches_hashlib(algorithm_page, page, length):
    _, url = algorithm_page
    page.goto(url)
    data = random.Random(length).randbytes(length)
    pieces = [0, length // 3, length // 3 + 1, length] if length > 3 else [0, length]
    digest = page.evaluate(
        """([bytes, cuts]) => { const hasher = new window.SpineBenchSha256(); const all = new Uint8Array(bytes);
             for (let i = 0; i + 1 < cuts.length; i++) { hasher.update(all.subarray(cuts[i], cuts[i + 1])); }
             return hasher.hex(); }""",
        [list(data), pieces],
    )
    assert digest == hashlib.sha256(data).hexdigest()
