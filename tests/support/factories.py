"""factory-boy factories shared by every test folder."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from trial.models import Case, EligibilityCriterion, Membership, Role, Site, Trial

PASSWORD = "test-password-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory-boy hook
        if create:
            obj.save()


class TrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trial

    name = factory.Sequence(lambda n: f"Trial {n}")
    slug = factory.Sequence(lambda n: f"trial-{n}")
    registry_id = "NCT06874647"


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    trial = factory.SubFactory(TrialFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.Sequence(lambda n: f"Hospital {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    trial = factory.SubFactory(TrialFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.READER
    site = factory.LazyAttribute(lambda m: SiteFactory(trial=m.trial))
    years_experience = 5


class CriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EligibilityCriterion

    trial = factory.SubFactory(TrialFactory)
    kind = EligibilityCriterion.Kind.INCLUSION
    code = factory.Sequence(lambda n: f"crit-{n}")
    text = factory.Sequence(lambda n: f"Criterion {n}")


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    trial = factory.SubFactory(TrialFactory)
    site = factory.LazyAttribute(lambda c: SiteFactory(trial=c.trial))
    case_id = factory.Sequence(lambda n: f"C{n:04d}")
    age = 54
    sex = Case.Sex.FEMALE
    chief_complaint = "Cough and fever for 5 days"
    history = "Smoker, 30 pack-years. No known lung disease."
    lab_results = "WBC 13.2 x10^9/L, CRP 86 mg/L"
    prior_imaging = "None"
