"""Datasets from the site in Chromium: an organizer uploads a small dataset zip on the console's datasets page (it
goes through the chunk API, the page's chunk size set below the file's size), follows the check, reads the report,
attaches the dataset to a phase as its test set, and the phase page says what it is scored against."""

from __future__ import annotations

import random

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from spinebench.datasets.models import Dataset
from spinebench.organizers.models import AuditEvent, DatasetUpload
from spinebench.uploads.models import UploadSession
from tests.platform.aasce_data import write_aasce_dataset
from tests.platform.factories import PhaseFactory, UserFactory
from tests.platform.test_dataset_uploads import UPLOADED_ANGLES, folder_zip

from .conftest import assert_accessible
from .test_ct_viewer import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CHUNK = 64 * 1024


def test_an_organizer_uploads_checks_and_attaches_a_dataset(page, live_server, settings, eager_tasks, tmp_path):
    settings.SPINEBENCH_PAGE_CHUNK_BYTES = CHUNK
    phase = PhaseFactory(title="Final test", slug="final")
    organizer = UserFactory(username="org")
    phase.challenge.organizers.add(organizer)
    folder = write_aasce_dataset(tmp_path / "upload", UPLOADED_ANGLES, split="test")
    # incompressible padding, so the zip is larger than one chunk and travels through the chunk API
    (folder / "inputs" / "up_1" / "scanner-notes.bin").write_bytes(random.Random(3).randbytes(3 * CHUNK))
    archive = tmp_path / "holdout.zip"
    archive.write_bytes(folder_zip(folder, top="holdout").read())

    log_in(page, organizer)
    page.goto(reverse("organizers:datasets", args=[phase.challenge.slug]))
    expect(page.get_by_role("heading", name="Datasets", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Dataset zip").set_input_files(str(archive))
    page.get_by_label("Slug").fill("holdout")
    page.get_by_label("Title").fill("Holdout radiographs")
    page.get_by_role("button", name="Upload and check").click()

    expect(page.locator("#upload-status")).to_have_text("Checked", timeout=30_000)
    expect(page.locator("#report-cases")).to_have_text("2")
    expect(page.locator("#report-missing")).to_have_text("none")
    assert_accessible(page)
    job = DatasetUpload.objects.get()
    assert UploadSession.objects.filter(kind="dataset", consumed_at__isnull=False, stored__storage_name=job.archive,
                                        size=archive.stat().st_size).exists()
    assert not Dataset.objects.filter(slug="holdout").exists()  # not a dataset before it is attached

    page.get_by_label("Phase").select_option(label=str(phase))
    page.get_by_label("Role").select_option("test")
    page.get_by_role("button", name="Attach").click()
    expect(page.locator("#dataset-table")).to_contain_text("Holdout radiographs")
    expect(page.locator("#dataset-table")).to_contain_text("Final test")
    assert AuditEvent.objects.filter(action="dataset.attach", actor=organizer).exists()

    page.goto(phase.get_absolute_url())
    expect(page.locator("#phase-datasets")).to_contain_text("Scored against Holdout radiographs (2 cases")
