"""factory_boy factories for the platform models."""

from __future__ import annotations

import factory
from django.conf import settings
from django.contrib.auth import get_user_model

from spinebench.challenges.models import Challenge, Phase, Registration
from spinebench.datasets.models import PhaseDatasets
from spinebench.datasets.services import register_dataset

from .aasce_data import HIDDEN_ANGLES, TRAIN_ANGLES, write_aasce_dataset


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ChallengeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Challenge
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"challenge-{n}")
    title = factory.Sequence(lambda n: f"Challenge {n}")
    description = "# Welcome\nPredict **Cobb angles**."

    @factory.post_generation
    def organizers(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.organizers.set(extracted)


class RegistrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Registration

    challenge = factory.SubFactory(ChallengeFactory)
    user = factory.SubFactory(UserFactory)
    status = Registration.Status.APPROVED


def aasce_dataset(challenge, *, split: str, slug: str | None = None, angles=None):
    slug = slug or split
    angles = angles or (HIDDEN_ANGLES if split == "test" else TRAIN_ANGLES)
    folder = write_aasce_dataset(settings.DATASETS_ROOT / challenge.slug / slug, angles, split=split)
    return register_dataset(challenge=challenge, slug=slug, folder=folder)


class PhaseDatasetsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhaseDatasets


class PhaseFactory(factory.django.DjangoModelFactory):
    """An AASCE CSV test phase scored against HIDDEN_ANGLES, with a downloadable training split. `dataset=` and
    `training_dataset=` (a Dataset or None) go to the phase's datasets.PhaseDatasets link."""

    class Meta:
        model = Phase
        skip_postgeneration_save = True

    class Params:
        dataset = factory.LazyAttribute(
            lambda phase: aasce_dataset(phase.challenge, split="test", slug=f"{phase.slug}-test")
        )
        training_dataset = factory.LazyAttribute(
            lambda phase: aasce_dataset(phase.challenge, split="train", slug=f"{phase.slug}-train")
        )

    challenge = factory.SubFactory(ChallengeFactory)
    slug = factory.Sequence(lambda n: f"phase-{n}")
    title = factory.Sequence(lambda n: f"Phase {n}")
    task = "aasce-cobb"
    submission_limit = 10
    extra_metrics = ["mae_pt", "mae_mt", "mae_tl"]
    dataset_link = factory.RelatedFactory(
        PhaseDatasetsFactory,
        factory_related_name="phase",
        dataset=factory.SelfAttribute("..dataset"),
        training_dataset=factory.SelfAttribute("..training_dataset"),
    )
