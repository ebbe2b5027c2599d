"""The challenge list (search and filters, with and without htmx) and the tabs of a challenge's page."""

import importlib
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from baselines.registry import METHODS
from spinebench.challenges.models import Phase

from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(db):
    now = timezone.now()
    open_csv = PhaseFactory(
        challenge=ChallengeFactory(slug="spine-open", title="Spine Open", description="Cobb angles on radiographs.")
    )
    closed = PhaseFactory(
        challenge=ChallengeFactory(slug="old-one", title="Old One", description="A past edition."),
        opens_at=now - timedelta(days=30),
        closes_at=now - timedelta(days=1),
    )
    containers = PhaseFactory(
        challenge=ChallengeFactory(slug="boxes", title="Boxes", description="Containers only."),
        submission_kind=Phase.SubmissionKind.ALGORITHM,
        opens_at=now + timedelta(days=2),
    )
    return open_csv, closed, containers


def titles(client, **params):
    page = client.get(reverse("challenges:list"), params).content.decode()
    page = page[page.index('id="challenge-results"') :]  # the header's menu lists every challenge
    return [title for title in ("Spine Open", "Old One", "Boxes") if f">{title}</a>" in page]


def test_list_lives_at_challenges_and_home(client, three):
    assert reverse("challenges:list") == "/challenges/"
    for url in ("/", "/challenges/"):
        page = client.get(url).content.decode()
        assert page.count('<article class="card') == 3 and "3 challenges" in page


def test_filters(client, three):
    assert titles(client) == ["Spine Open", "Old One", "Boxes"]
    assert titles(client, q="radiograph") == ["Spine Open"]  # searches descriptions too
    assert titles(client, q="old") == ["Old One"]
    assert titles(client, open="1") == ["Spine Open"]  # one closed a day ago, one opens in two days
    assert titles(client, containers="1") == ["Boxes"]
    assert titles(client, task="aasce-cobb") == ["Spine Open", "Old One", "Boxes"]
    assert titles(client, task="fracture-ct") == []
    page = client.get(reverse("challenges:list"), {"task": "fracture-ct"}).content.decode()
    assert "No challenge matches these filters." in page


def test_hidden_phases_do_not_match_filters(client, three):
    _, _, containers = three
    containers.is_public = False
    containers.save()
    assert titles(client, containers="1") == []


def test_htmx_request_gets_only_the_results(client, three):
    response = client.get(reverse("challenges:list"), {"q": "boxes"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="challenge-results"') and "<html" not in body
    assert ">Boxes</a>" in body and ">Spine Open</a>" not in body


def test_tabs_each_render_without_javascript(client, three):
    open_csv, _, _ = three
    user = RegistrationFactory(challenge=open_csv.challenge).user
    client.force_login(user)
    url = reverse("challenges:detail", args=[open_csv.challenge.slug])
    overview = client.get(url).content.decode()
    assert 'aria-current="page">Overview' in overview and "Cobb angles on radiographs." in overview
    phases = client.get(url, {"tab": "phases"}).content.decode()
    assert open_csv.title in phases and "open now" in phases and "no closing date" in phases
    data = client.get(url, {"tab": "data"}).content.decode()
    assert reverse("datasets:download", args=[open_csv.training_dataset_id]) in data
    assert reverse("leaderboards:inputs", args=[open_csv.challenge.slug, open_csv.slug]) in data
    boards = client.get(url, {"tab": "leaderboards"}).content.decode()
    assert "No results yet." in boards
    assert client.get(url, {"tab": "nonsense"}).status_code == 200  # unknown tab: the overview


def test_baselines_tab_lists_registered_methods_with_their_paper(client, three):
    open_csv, _, _ = three
    page = client.get(
        reverse("challenges:detail", args=[open_csv.challenge.slug]), {"tab": "baselines"}
    ).content.decode()
    for name in METHODS["aasce-cobb"]:
        assert f"<code>{name}</code>" in page
    assert "No baseline run for this challenge yet." in page and "baselines/aasce/seg4reg.py" in page
    spec = METHODS["aasce-cobb"]["seg4reg"]
    module = importlib.import_module(spec.module)  # the page reads PAPER and PRESETS without importing: compare
    assert module.PAPER.replace("&", "&amp;").replace("'", "&#x27;") in page
    for preset in module.PRESETS:
        assert f"<code>{preset}</code>" in page
