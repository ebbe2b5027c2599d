"""The per-request memo of role lookups (spinebench.challenges.roles): inside a request each role question reaches
the database once; a registration or an organizer change inside the same request is seen at once; outside a
request (tasks, shells) nothing is remembered."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from spinebench.challenges.models import Registration
from spinebench.challenges.roles import remembered_roles

from .factories import ChallengeFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db


def role_queries(ask) -> int:
    with CaptureQueriesContext(connection) as queries:
        ask()
    return len(queries.captured_queries)


def test_inside_a_request_each_question_is_asked_once_outside_every_time():
    challenge, user = ChallengeFactory(), UserFactory()
    with remembered_roles():
        assert role_queries(lambda: [challenge.is_participant(user) for _ in range(5)]) == 2  # organizer? registered?
        assert role_queries(lambda: challenge.is_organizer(user)) == 0
    assert role_queries(lambda: [challenge.is_organizer(user) for _ in range(3)]) == 3


def test_a_role_given_or_taken_inside_the_request_is_seen_at_once():
    challenge, user = ChallengeFactory(), UserFactory()
    with remembered_roles():
        assert not challenge.is_participant(user)
        registration = RegistrationFactory(challenge=challenge, user=user, status=Registration.Status.APPROVED)
        assert challenge.is_participant(user)
        registration.status = Registration.Status.REJECTED
        registration.save()
        assert not challenge.is_participant(user)
        registration.delete()
        assert not challenge.is_organizer(user)
        challenge.organizers.add(user)
        assert challenge.is_organizer(user) and challenge.is_participant(user)
        challenge.organizers.remove(user)
        assert not challenge.is_organizer(user)


def test_answers_are_per_challenge_and_per_user():
    first, second = ChallengeFactory(), ChallengeFactory()
    organizer, outsider = UserFactory(), UserFactory()
    first.organizers.add(organizer)
    with remembered_roles():
        assert first.is_organizer(organizer) and not second.is_organizer(organizer)
        assert not first.is_organizer(outsider)
        assert not first.is_participant(None)


def test_a_request_does_not_inherit_another_requests_answers(client):
    """Two requests of the same user: the second sees a registration approved between them."""
    challenge, user = ChallengeFactory(), UserFactory()
    registration = RegistrationFactory(challenge=challenge, user=user, status=Registration.Status.PENDING)
    client.force_login(user)
    before = client.get(challenge.get_absolute_url() + "?tab=data").content.decode()
    Registration.objects.filter(pk=registration.pk).update(status=Registration.Status.APPROVED)  # no signal
    after = client.get(challenge.get_absolute_url() + "?tab=data").content.decode()
    assert "You are a participant" not in before
    assert "You are a participant" in after
