"""Query budget of the challenge page (issue "The site as a product", check 5), as test_leaderboard_queries.py does
for the leaderboard reads: with 200 leaderboard entries on its phase, each tab of the challenge page runs a small
fixed number of queries for an anonymous visitor, a participant and an organizer, the same as with 10 entries (no
query per entry), and asks the database each role question (organizer of, participant of) at most once per request
(spinebench.challenges.roles). Counts, not times: times are the load benchmark's (benchmarks/load_site.py)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from spinebench.challenges.models import Registration

from .factories import RegistrationFactory, UserFactory
from .test_leaderboard_queries import crowded_phase

pytestmark = pytest.mark.django_db
TABS = ["overview", "phases", "data", "leaderboards", "baselines"]
#: Queries of one challenge page, the most any tab needs. Anonymous: the challenge, its phases, the header's
#: challenge list, the tab's own reads (the leaderboards tab: each phase's snapshot; the baselines tab: the
#: baseline runs and method cards; the data tab: the training datasets). A signed-in visitor adds the session, the
#: user, their registration, one organizer and one participant lookup, the current terms and the unread
#: notifications count. Measured 11 (participant, overview); was 13 before the role lookups were remembered. The
#: overview's newest announcements and the join box's registration questions added one constant query each (15
#: measured: organizer, overview).
ANONYMOUS_QUERIES = 8
SIGNED_IN_QUERIES = 16
#: The role lookups' SQL: `Challenge.is_organizer` and `Challenge.is_participant`.
ORGANIZER_LOOKUP = re.compile(r'SELECT 1 AS "a" FROM "auth_user" INNER JOIN "challenges_challenge_organizers"')
PARTICIPANT_LOOKUP = re.compile(r'SELECT 1 AS "a" FROM "challenges_registration"')


def visitors(phase) -> dict:
    participant = Registration.objects.filter(challenge=phase.challenge).select_related("user").first().user
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    return {"anonymous": None, "participant": participant, "organizer": organizer}


def page_queries(client, user, url: str) -> list[str]:
    client.logout()
    if user is not None:
        client.force_login(user)
    client.get(url)  # warm: the leaderboard snapshot decoded, the description rendered (per process)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return [query["sql"] for query in queries.captured_queries]


def test_each_tab_of_the_challenge_page_runs_a_bounded_number_of_queries_whatever_the_length(client):
    small, _ = crowded_phase(10)
    phase, _ = crowded_phase(200)
    for name, user in visitors(phase).items():
        small_user = {"anonymous": None, **{k: v for k, v in visitors(small).items() if k != "anonymous"}}[name]
        for tab in TABS:
            sql = page_queries(client, user, f"{phase.challenge.get_absolute_url()}?tab={tab}")
            bound = ANONYMOUS_QUERIES if user is None else SIGNED_IN_QUERIES
            assert len(sql) <= bound, (name, tab, sql)
            few = page_queries(client, small_user, f"{small.challenge.get_absolute_url()}?tab={tab}")
            assert len(sql) <= len(few), (name, tab)  # 20 times the entries, not one query more
            # Each role question reaches the database at most once, however many rules and templates ask it.
            assert len([q for q in sql if ORGANIZER_LOOKUP.match(q)]) <= 1, (name, tab, sql)
            assert len([q for q in sql if PARTICIPANT_LOOKUP.match(q)]) <= 1, (name, tab, sql)


def test_the_leaderboard_page_asks_each_role_question_once(client):
    phase, _ = crowded_phase(200)
    for name, user in visitors(phase).items():
        sql = page_queries(client, user, phase.get_absolute_url())
        assert len([q for q in sql if ORGANIZER_LOOKUP.match(q)]) <= 1, (name, sql)
        assert len([q for q in sql if PARTICIPANT_LOOKUP.match(q)]) <= 1, (name, sql)


def test_the_page_shows_each_visitor_what_their_role_allows(client):
    """Remembered roles change no answer: the organizer sees the pending registrations, a participant the
    download link of the training data, an outsider neither."""
    phase, _ = crowded_phase(10)
    challenge = phase.challenge
    challenge.registration_mode = challenge.RegistrationMode.APPROVAL
    challenge.save(update_fields=["registration_mode"])
    waiting = RegistrationFactory(challenge=challenge, status=Registration.Status.PENDING).user
    roles = visitors(phase)
    roles["outsider"] = UserFactory()
    shown = {}
    for name, user in roles.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        shown[name] = client.get(challenge.get_absolute_url() + "?tab=data").content.decode()
    assert str(waiting) in shown["organizer"]
    assert all(str(waiting) not in shown[name] for name in ("anonymous", "participant", "outsider"))
    assert "Download the training data" in shown["participant"]
    assert all("Download the training data" not in shown[name] for name in ("anonymous", "outsider"))
