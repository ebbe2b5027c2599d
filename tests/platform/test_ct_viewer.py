"""CT and labelling case viewers: slices of the three planes drawn at the right size with the right outlines, a
slider form that works without JavaScript, 400 for a bad slice request, and the figures' rule on every page and
picture: a hidden test case's viewer and slices are 404 for participants (ground truth never reaches them), shown to
organizers, and never written to disk."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from django.conf import settings
from django.urls import reverse
from PIL import Image

from spinebench.submissions import ct_viewer, labelling_viewer

from .factories import UserFactory
from .viewer_data import DROPPED, MOVED, SHIFT, fracture_probability, viewer_world

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def slice_url(submission, case_id, plane, index, **query):
    url = reverse("submissions:case-slice", args=[submission.pk, case_id, plane, index])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def first_case(submission) -> str:
    return min(submission.evaluation.case_metrics)


def picture(response) -> Image.Image:
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def has_colour(image: Image.Image, colour) -> int:
    return int(np.all(np.asarray(image) == np.asarray(colour, dtype=np.uint8), axis=-1).sum())


# ---- pure drawing helpers -------------------------------------------------------------------------------------------


def test_display_size_keeps_the_physical_aspect_ratio():
    # (z, y, x) = (32, 48, 48) at 1.5 mm: 72 x 72 mm axially, 72 wide x 48 high in the other planes.
    assert ct_viewer.display_size((32, 48, 48), (1.5, 1.5, 1.5), "axial") == (384, 384)
    assert ct_viewer.display_size((32, 48, 48), (1.5, 1.5, 1.5), "coronal") == (384, 256)
    assert ct_viewer.display_size((32, 48, 48), (1.5, 1.5, 1.5), "sagittal") == (384, 256)
    # anisotropic: x 0.5 mm (40 mm), y 1 mm (30 mm), z 4 mm (80 mm): coronal 40 x 80 -> 192 x 384
    assert ct_viewer.display_size((20, 30, 80), (0.5, 1.0, 4.0), "coronal") == (192, 384)
    assert ct_viewer.display_size((20, 30, 80), (0.5, 1.0, 4.0), "sagittal") == (144, 384)
    assert ct_viewer.display_size((20, 30, 80), (0.5, 1.0, 4.0), "axial") == (384, 288)


def test_boundary_is_a_two_pixel_ring():
    mask = np.zeros((12, 12), bool)
    mask[2:10, 2:10] = True
    ring = ct_viewer._boundary(mask)
    expected = mask.copy()
    expected[4:8, 4:8] = False
    assert np.array_equal(ring, expected)


# ---- segmentation tasks ---------------------------------------------------------------------------------------------


@pytest.fixture
def metastatic(eager_tasks, django_capture_on_commit_callbacks):
    return viewer_world("metastatic-body-ct", django_capture_on_commit_callbacks)


@pytest.mark.parametrize("task", ["metastatic-body-ct", "lumbosacral-ct"])
def test_training_case_viewer_draws_three_planes_with_reference_and_prediction(
    client, task, eager_tasks, django_capture_on_commit_callbacks
):
    world = viewer_world(task, django_capture_on_commit_callbacks)
    submission = world["training"]
    case_id = first_case(submission)
    root = submission.phase.dataset.root
    reference = sitk.ReadImage(str(root / "ground_truth" / f"{case_id}.nii.gz"))
    truth = sitk.GetArrayFromImage(reference)
    nz, ny, nx = truth.shape
    sx, sy, sz = reference.GetSpacing()
    client.force_login(world["participant"])

    detail = client.get(submission.get_absolute_url()).content.decode()
    page_url = reverse("submissions:case", args=[submission.pk, case_id])
    assert f'href="{page_url}"' in detail
    page = client.get(page_url).content.decode()
    for plane, count in (("axial", nz), ("coronal", ny), ("sagittal", nx)):
        assert f'name="{plane}" min="0" max="{count - 1}"' in page
    names = {"metastatic-body-ct": {1: "vertebral body"}, "lumbosacral-ct": {1: "bone", 2: "disc", 3: "nerve"}}[task]
    for label in sorted(set(np.unique(truth)) - {0}):
        assert (
            f'<span class="sb-swatch sb-swatch-{int(label) - 1}" aria-hidden="true"></span></td>'
            f'<th scope="row">{names[int(label)]}</th>'
            in page
        )

    # the default axial slice goes through the reference's centre of mass, and carries each label's outline colour
    centre = round(np.argwhere(truth > 0)[:, 0].mean())
    assert f'src="{slice_url(submission, case_id, "axial", centre, window="bone")}"' in page
    axial = picture(client.get(slice_url(submission, case_id, "axial", centre)))
    for label in sorted(set(np.unique(truth[centre])) - {0}):
        assert has_colour(axial, ct_viewer.PALETTE[int(label) - 1]) > 0, label
    # sizes: the physical extent of each plane, the longest side 384 pixels (computed here from the image itself)
    extents = {"axial": (nx * sx, ny * sy), "coronal": (nx * sx, nz * sz), "sagittal": (ny * sy, nz * sz)}
    for plane, (width, height) in extents.items():
        scale = 384 / max(width, height)
        image = picture(client.get(slice_url(submission, case_id, plane, 0)))
        assert image.size == (round(width * scale), round(height * scale)), plane
    response = client.get(slice_url(submission, case_id, "axial", centre))
    assert response["Cache-Control"] == "private, max-age=300"


def test_prediction_outline_is_dashed_and_moved(client, metastatic):
    """Only the reference drawn solid: where reference and prediction are empty, the picture has no outline colour;
    the prediction (the reference moved SHIFT voxels along x) adds dashed pixels of the same colour to the right."""
    submission = metastatic["training"]
    case_id = first_case(submission)
    truth = sitk.GetArrayFromImage(
        sitk.ReadImage(str(submission.phase.dataset.root / "ground_truth" / f"{case_id}.nii.gz"))
    )
    client.force_login(metastatic["participant"])
    colour = ct_viewer.PALETTE[0]
    empty = [k for k in range(truth.shape[0]) if not truth[k].any()]
    if empty:
        assert has_colour(picture(client.get(slice_url(submission, case_id, "axial", empty[0]))), colour) == 0
    centre = round(np.argwhere(truth > 0)[:, 0].mean())
    image = np.asarray(picture(client.get(slice_url(submission, case_id, "axial", centre))))
    painted = np.all(image == colour, axis=-1)
    scale = image.shape[1] / truth.shape[2]
    rightmost_truth = (np.argwhere(truth[centre] > 0)[:, 1].max() + 1) * scale
    assert painted[:, int(rightmost_truth) + 1 :].any()  # only the moved prediction reaches past the reference
    assert not painted[:, int(rightmost_truth + SHIFT * scale) + 3 :].any()  # and no further than SHIFT voxels


def test_page_form_without_javascript_and_windows(client, metastatic):
    submission = metastatic["training"]
    case_id = first_case(submission)
    client.force_login(metastatic["participant"])
    url = reverse("submissions:case", args=[submission.pk, case_id])
    page = client.get(url, {"axial": 3, "coronal": 4, "sagittal": 5, "window": "soft-tissue"}).content.decode()
    assert f'src="{slice_url(submission, case_id, "axial", 3, window="soft-tissue")}"' in page
    assert 'id="index-coronal" name="coronal" min="0"' in page and 'value="4" data-plane="coronal"' in page
    assert '<option value="soft-tissue" selected>' in page and 'method="get" id="ct-viewer"' in page
    bone = np.asarray(picture(client.get(slice_url(submission, case_id, "axial", 3, window="bone"))))
    soft = np.asarray(picture(client.get(slice_url(submission, case_id, "axial", 3, window="soft-tissue"))))
    assert not np.array_equal(bone, soft)


def test_bad_slice_requests_are_400_never_500(client, metastatic):
    submission = metastatic["training"]
    case_id = first_case(submission)
    nz, _, nx = sitk.GetArrayFromImage(
        sitk.ReadImage(str(submission.phase.dataset.root / "inputs" / case_id / "image.nii.gz"))
    ).shape
    client.force_login(metastatic["participant"])
    assert client.get(slice_url(submission, case_id, "axial", nz - 1)).status_code == 200
    for plane, index, query, message in (
        ("axial", nz, {}, f"axial slice {nz} is out of range: this case has slices 0 to {nz - 1}"),
        ("sagittal", nx, {}, "out of range"),
        ("coronal", -1, {}, "out of range"),
        ("axial", "abc", {}, "slice index must be a whole number"),
        ("oblique", 0, {}, "unknown plane 'oblique'"),
        ("axial", 0, {"window": "lung"}, "unknown window 'lung'"),
    ):
        response = client.get(slice_url(submission, case_id, plane, index, **query))
        assert response.status_code == 400 and message in response.content.decode(), (plane, index, query)
    page = client.get(reverse("submissions:case", args=[submission.pk, case_id]), {"axial": 10_000})
    assert page.status_code == 400 and "out of range" in page.content.decode()
    assert client.get(slice_url(submission, "case_zz", "axial", 0)).status_code == 404


def test_hidden_test_case_slices_are_404_for_participants_and_shown_to_organizers(client, metastatic):
    submission = metastatic["test"]
    case_id = first_case(submission)
    page_url = reverse("submissions:case", args=[submission.pk, case_id])
    urls = [
        page_url,
        slice_url(submission, case_id, "axial", 0),
        slice_url(submission, case_id, "axial", 10_000),
        slice_url(submission, case_id, "oblique", 0),
    ]
    client.force_login(metastatic["participant"])  # the submission's own creator
    detail = client.get(submission.get_absolute_url()).content.decode()
    assert page_url not in detail and "/slices/" not in detail
    for url in urls:  # permission first: not even a 400 tells a participant about the hidden volume
        assert client.get(url).status_code == 404, url
    other = UserFactory()
    metastatic["challenge"].registrations.create(user=other, status="approved")
    submission.evaluation.published, submission.evaluation.rank = True, 1  # on the public leaderboard
    submission.evaluation.save()
    for who in (other, None):
        client.logout()
        if who:
            client.force_login(who)
        for url in urls:
            assert client.get(url).status_code == 404, (who, url)
    organizer = UserFactory()
    metastatic["challenge"].organizers.add(organizer)
    client.force_login(organizer)
    roots = (Path(settings.MEDIA_ROOT), Path(settings.SPINEBENCH_CACHE_DIR))
    before = {path for root in roots for path in root.rglob("*")}
    assert client.get(page_url).status_code == 200
    response = client.get(slice_url(submission, case_id, "axial", 0))
    picture(response)
    assert response["Cache-Control"] == "private, no-store"
    after = {path for root in roots for path in root.rglob("*")}
    assert after == before, "a hidden phase's volume or slice was written to disk"


def test_training_viewer_closes_when_its_labels_stop_being_public(client, metastatic):
    submission = metastatic["training"]
    case_id = first_case(submission)
    client.force_login(metastatic["participant"])
    assert client.get(slice_url(submission, case_id, "axial", 0)).status_code == 200
    submission.phase.show_case_results = False
    submission.phase.save()
    assert client.get(slice_url(submission, case_id, "axial", 0)).status_code == 404
    assert client.get(reverse("submissions:case", args=[submission.pk, case_id])).status_code == 404


# ---- fracture-ct ----------------------------------------------------------------------------------------------------


def test_fracture_viewer_outlines_vertebrae_and_tabulates_probability_and_grade(
    client, eager_tasks, django_capture_on_commit_callbacks
):
    from evaluators.layout import VERTEBRA_LABELS

    world = viewer_world("fracture-ct", django_capture_on_commit_callbacks)
    submission = world["training"]
    case_id = first_case(submission)
    root = submission.phase.dataset.root
    with (root / "ground_truth" / "vertebrae.csv").open(encoding="utf-8", newline="") as handle:
        grades = {r["vertebra"]: int(r["grade"]) for r in csv.DictReader(handle) if r["case_id"] == case_id}
    client.force_login(world["participant"])
    page = client.get(reverse("submissions:case", args=[submission.pk, case_id])).content.decode()
    for name, grade in grades.items():
        row = (
            f'<span class="sb-swatch sb-swatch-{(VERTEBRA_LABELS[name] - 1) % 7}" aria-hidden="true"></span></td>'
            f'<th scope="row">{name}</th><td class="num">{fracture_probability(grade):.3f}</td>'
            f'<td class="num">{grade}</td>'
        )
        assert row in page, name
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "inputs" / case_id / "vertebrae.nii.gz")))
    middle = labels.shape[2] // 2  # a sagittal slice through the spine shows several vertebrae
    image = picture(client.get(slice_url(submission, case_id, "sagittal", middle)))
    for label in sorted(set(np.unique(labels[:, :, middle])) - {0}):
        assert has_colour(image, ct_viewer.PALETTE[(int(label) - 1) % 7]) > 0, label
    client.force_login(world["participant"])
    hidden = world["test"]
    assert client.get(reverse("submissions:case", args=[hidden.pk, first_case(hidden)])).status_code == 404
    assert client.get(slice_url(hidden, first_case(hidden), "sagittal", 0)).status_code == 404


# ---- vertebra-labelling-xr ------------------------------------------------------------------------------------------


def test_labelling_viewer_shows_each_vertebra_verdict(client, eager_tasks, django_capture_on_commit_callbacks):
    world = viewer_world("vertebra-labelling-xr", django_capture_on_commit_callbacks)
    submission = world["training"]
    case_id = first_case(submission)
    root = submission.phase.dataset.root
    truth = json.loads((root / "ground_truth" / f"{case_id}.json").read_text())["centroids"]
    client.force_login(world["participant"])
    detail = client.get(submission.get_absolute_url()).content.decode()
    page_url = reverse("submissions:case", args=[submission.pk, case_id])
    assert f'href="{page_url}"' in detail
    page = client.get(page_url).content.decode()
    assert f"{len(truth) - 2} of {len(truth)} reference vertebrae identified" in page
    assert f'<tr class="verdict-missed"><th scope="row">{MOVED}</th>' in page
    assert f'<tr class="verdict-missed"><th scope="row">{DROPPED}</th>' in page
    assert "(more than 20 mm from its reference)" in page and "(not predicted)" in page
    assert page.count('<tr class="verdict-identified">') == len(truth) - 2
    image = sitk.ReadImage(str(root / "inputs" / case_id / "image.nii.gz"))
    columns, rows = image.GetSize()
    width, height = columns * image.GetSpacing()[0], rows * image.GetSpacing()[1]
    scale = 640 / max(width, height)
    drawn = picture(client.get(reverse("submissions:case-image", args=[submission.pk, case_id])))
    assert drawn.size == (round(width * scale), round(height * scale))
    assert has_colour(drawn, labelling_viewer.VERDICT_COLOURS["missed"]) > 0
    assert has_colour(drawn, labelling_viewer.VERDICT_COLOURS["identified"]) > 0
    assert has_colour(drawn, labelling_viewer.TRUTH_COLOUR) > 0

    hidden = world["test"]
    urls = [
        reverse("submissions:case", args=[hidden.pk, first_case(hidden)]),
        reverse("submissions:case-image", args=[hidden.pk, first_case(hidden)]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404
    organizer = UserFactory()
    world["challenge"].organizers.add(organizer)
    client.force_login(organizer)
    assert [client.get(url).status_code for url in urls] == [200, 200]
    assert client.get(urls[1])["Cache-Control"] == "private, no-store"


def test_a_slice_unpacks_only_its_own_case_from_the_zip(client, metastatic, monkeypatch):
    import zipfile

    submission = metastatic["training"]
    case_id = first_case(submission)
    unpacked = []
    real = zipfile.ZipFile.extractall

    def spy(self, path=None, members=None, pwd=None):
        unpacked.append(list(members) if members is not None else None)
        return real(self, path, members, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extractall", spy)
    client.force_login(metastatic["participant"])
    picture(client.get(slice_url(submission, case_id, "axial", 0)))
    assert unpacked == [[f"{case_id}/segmentation.nii.gz"]]
    volumes = ct_viewer.load_volumes(submission, case_id, cache=False)
    assert np.array_equal(volumes.predicted, np.roll(volumes.truth, SHIFT, axis=2))


def test_hidden_labelling_truth_never_reaches_a_participant(client, eager_tasks, django_capture_on_commit_callbacks):
    """Leak test: the hidden phase's reference centroids, as the viewer's table prints them, appear in no page, picture
    or API answer a participant or visitor can fetch; the organizer's viewer does print them (so the check can fail)."""
    world = viewer_world("vertebra-labelling-xr", django_capture_on_commit_callbacks)
    hidden = world["test"]
    root = hidden.phase.dataset.root
    secrets = set()
    for case_id in hidden.evaluation.case_metrics:
        for x, y in json.loads((root / "ground_truth" / f"{case_id}.json").read_text())["centroids"].values():
            secrets |= {f"{x:.1f}, {y:.1f}", f"{x:.2f}, {y:.2f}"}
    urls = [hidden.get_absolute_url(), f"/api/submissions/{hidden.pk}/"]
    for case_id in hidden.evaluation.case_metrics:
        urls += [
            reverse("submissions:case", args=[hidden.pk, case_id]),
            reverse("submissions:case-image", args=[hidden.pk, case_id]),
        ]
    hidden.evaluation.published, hidden.evaluation.rank = True, 1
    hidden.evaluation.save()
    for who in (world["participant"], None):
        client.logout()
        if who:
            client.force_login(who)
        for url in urls:
            response = client.get(url)
            assert response.status_code in (200, 401, 403, 404), (url, response.status_code)
            if "/cases/" in url:
                assert response.status_code in (403, 404), (who, url)
            leaked = [secret for secret in secrets if secret in response.content.decode(errors="replace")]
            assert not leaked, f"{url} as {who}: shows hidden centroid(s) {leaked[:3]}"
    organizer = UserFactory()
    world["challenge"].organizers.add(organizer)
    client.force_login(organizer)
    page = client.get(reverse("submissions:case", args=[hidden.pk, first_case(hidden)])).content.decode()
    assert any(secret in page for secret in secrets)


def test_public_phase_volumes_are_memory_mapped_after_the_first_slice(client, metastatic, monkeypatch):
    submission = metastatic["training"]
    case_id = first_case(submission)
    client.force_login(metastatic["participant"])
    first = client.get(slice_url(submission, case_id, "coronal", 7)).content
    shared, own = ct_viewer.case_cache_dir(submission, case_id), ct_viewer.prediction_cache_dir(submission, case_id)
    assert sorted(p.name for p in shared.iterdir()) == ["complete", "image.npy", "spacing.npy", "truth.npy"]
    assert sorted(p.name for p in own.iterdir()) == ["complete", "predicted.npy"]
    assert np.load(own / "predicted.npy").dtype == np.uint8  # label maps stored compactly

    def no_reading(*args, **kwargs):
        raise AssertionError("the sources were read again")

    monkeypatch.setattr(ct_viewer, "_read_case", no_reading)
    monkeypatch.setattr(ct_viewer, "_read_prediction", no_reading)
    assert client.get(slice_url(submission, case_id, "coronal", 7)).content == first
    monkeypatch.undo()
    fresh = ct_viewer.read_volumes(submission, case_id)
    assert ct_viewer.render_slice(submission, fresh, "coronal", 7, "bone") == first


def test_a_case_whose_files_are_gone_is_404_not_500(client, metastatic):
    submission = metastatic["test"]  # hidden: read from the sources on every request
    case_id = first_case(submission)
    organizer = UserFactory()
    metastatic["challenge"].organizers.add(organizer)
    client.force_login(organizer)
    assert client.get(slice_url(submission, case_id, "axial", 0)).status_code == 200
    (submission.phase.dataset.root / "inputs" / case_id / "image.nii.gz").write_bytes(b"damaged")
    assert client.get(slice_url(submission, case_id, "axial", 0)).status_code == 404
    (submission.phase.dataset.root / "inputs" / case_id / "image.nii.gz").unlink()
    assert client.get(reverse("submissions:case", args=[submission.pk, case_id])).status_code == 404
