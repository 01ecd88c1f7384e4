"""Screening, consent and enrolment: eligibility rules, what blocks enrolment, the audit trail."""

import pytest
from django.core.files.base import ContentFile

from tests.support.factories import CaseFactory, CriterionFactory, TrialFactory, UserFactory
from trial import enrolment
from trial.enrolment import EnrolmentError
from trial.models import AuditEvent, Case, EligibilityCriterion, Image, Trial

ELIGIBLE = {"suspected": True, "consent": True, "poor_image": False, "pregnant": False}



@pytest.fixture
def trial(db) -> Trial:
    trial = TrialFactory()
    for code, text in [("suspected", "Suspected thoracic disease"), ("consent", "Consent")]:
        CriterionFactory(trial=trial, code=code, text=text)
    for code, text in [("poor_image", "Substandard image"), ("pregnant", "Pregnant")]:
        CriterionFactory(trial=trial, code=code, text=text,
                         kind=EligibilityCriterion.Kind.EXCLUSION)
    return trial


@pytest.fixture
def user(db):
    return UserFactory()


def add_image(case: Case) -> Image:
    n = Image.objects.count()
    return Image.objects.create(
        case=case, file=ContentFile(b"DICM", name=f"i{n}.dcm"), source_key=f"key-{case.pk}-{n}",
        sop_uid="1.2.3", series_uid="1.2", modality="DX", rows=2, columns=2, bits_stored=8,
        photometric="MONOCHROME2", transfer_syntax="1.2.840.10008.1.2.1", file_size=4,
        sha256="0" * 64,
    )


def ready(trial: Trial, user, **fields) -> Case:
    """A screened, eligible, consented case with an image."""
    case = CaseFactory(trial=trial, **fields)
    enrolment.screen(case, answers=ELIGIBLE, by=user)
    enrolment.record_consent(case, by=user)
    add_image(case)
    return case


def test_eligible_when_inclusions_true_and_exclusions_false(trial) -> None:
    assert enrolment.evaluate_eligibility(CaseFactory(trial=trial), ELIGIBLE) == (True, [])


def test_each_failing_or_missing_criterion_is_a_reason(trial) -> None:
    answers = {"suspected": False, "poor_image": True, "pregnant": False}
    eligible, reasons = enrolment.evaluate_eligibility(CaseFactory(trial=trial), answers)
    assert not eligible
    assert reasons == ["not answered: Consent", "inclusion not met: Suspected thoracic disease",
                       "exclusion applies: Substandard image"]  # inclusions first, by code


def test_an_ineligible_case_is_excluded_with_its_reasons(trial, user) -> None:
    case = CaseFactory(trial=trial)
    enrolment.screen(case, answers={**ELIGIBLE, "pregnant": True}, by=user)
    case.refresh_from_db()
    assert case.status == Case.Status.EXCLUDED
    assert case.exclusion_reason == "exclusion applies: Pregnant"
    assert case.eligibility_answers["pregnant"] is True
    actions = list(AuditEvent.objects.filter(object_id=str(case.pk)).values_list("action",
                                                                                 flat=True))
    assert sorted(actions) == ["case.excluded", "case.screened"]


def test_screening_refuses_unknown_criterion_codes(trial, user) -> None:
    with pytest.raises(EnrolmentError, match=r"unknown criterion code\(s\) \['typo'\]"):
        enrolment.screen(CaseFactory(trial=trial), answers={**ELIGIBLE, "typo": True}, by=user)


def test_screening_refuses_answers_that_are_not_booleans(trial, user) -> None:
    case = CaseFactory(trial=trial)
    with pytest.raises(EnrolmentError, match="must be true or false; got {'pregnant': 'no'}"):
        enrolment.screen(case, answers={**ELIGIBLE, "pregnant": "no"}, by=user)
    case.refresh_from_db()
    assert case.status == Case.Status.SCREENED and case.eligibility_answers == {}


def test_a_ready_case_is_enrolled_and_audited(trial, user) -> None:
    case = enrolment.enrol(ready(trial, user), by=user)
    assert case.status == Case.Status.ENROLLED and case.enrolled_at is not None
    event = AuditEvent.objects.get(action="case.enrolled")
    assert event.before == {"status": "screened"} and event.after["status"] == "enrolled"


def test_enrolment_sends_the_drafting_hook_on_commit(trial, user,
                                                     django_capture_on_commit_callbacks) -> None:
    seen = []
    enrolment.case_enrolled.connect(lambda **kw: seen.append(kw["case"].pk), weak=False,
                                    dispatch_uid="test-hook")
    try:
        case = ready(trial, user)
        with django_capture_on_commit_callbacks(execute=True):
            enrolment.enrol(case, by=user)
    finally:
        enrolment.case_enrolled.disconnect(dispatch_uid="test-hook")
    assert seen == [case.pk]


def test_enrolment_without_consent_says_so(trial, user) -> None:
    case = CaseFactory(trial=trial)
    enrolment.screen(case, answers=ELIGIBLE, by=user)
    add_image(case)
    with pytest.raises(EnrolmentError, match=r"missing: informed consent \(not recorded\)"):
        enrolment.enrol(case, by=user)


def test_enrolment_without_a_complete_history_says_what_is_empty(trial, user) -> None:
    case = ready(trial, user, history="", lab_results=" ")
    with pytest.raises(EnrolmentError) as caught:
        enrolment.enrol(case, by=user)
    assert "clinical record: history is empty" in str(caught.value)
    assert "clinical record: laboratory results is empty" in str(caught.value)
    assert "chief complaint" not in str(caught.value)


def test_enrolment_without_an_image_says_so(trial, user) -> None:
    case = CaseFactory(trial=trial)
    enrolment.screen(case, answers=ELIGIBLE, by=user)
    enrolment.record_consent(case, by=user)
    with pytest.raises(EnrolmentError, match=r"images \(none imported\)"):
        enrolment.enrol(case, by=user)
    case.refresh_from_db()
    assert case.status == Case.Status.SCREENED


def test_an_unscreened_case_cannot_be_enrolled(trial, user) -> None:
    case = CaseFactory(trial=trial)
    add_image(case)
    with pytest.raises(EnrolmentError, match="screening answers"):
        enrolment.enrol(case, by=user)


def test_an_excluded_case_cannot_be_enrolled_or_rescreened(trial, user) -> None:
    case = ready(trial, user)
    enrolment.exclude(case, reason="Withdrew before reading", by=user)
    with pytest.raises(EnrolmentError, match="case .* is excluded; expected screened"):
        enrolment.enrol(case, by=user)
    with pytest.raises(EnrolmentError, match="is excluded; expected screened"):
        enrolment.screen(case, answers=ELIGIBLE, by=user)


def test_manual_exclusion_needs_a_reason_and_is_audited(trial, user) -> None:
    case = CaseFactory(trial=trial)
    with pytest.raises(EnrolmentError, match="a reason is required"):
        enrolment.exclude(case, reason="  ", by=user)
    enrolment.exclude(case, reason="Duplicate study", by=user)
    assert case.status == Case.Status.EXCLUDED and case.exclusion_reason == "Duplicate study"
    event = AuditEvent.objects.get(action="case.excluded")
    assert event.before["status"] == "screened" and event.after["status"] == "excluded"


def test_consent_is_recorded_once_with_who_and_when(trial, user) -> None:
    case = CaseFactory(trial=trial)
    enrolment.record_consent(case, by=user)
    assert case.consent_recorded_by == user and case.consent_recorded_at is not None
    with pytest.raises(EnrolmentError, match="already recorded"):
        enrolment.record_consent(case, by=user)
    assert AuditEvent.objects.filter(action="case.consent_recorded").count() == 1


def test_a_trial_without_criteria_cannot_screen_and_says_so(db) -> None:
    from tests.support.factories import CaseFactory, SiteFactory, TrialFactory, UserFactory
    from trial.enrolment import EnrolmentError, screen

    site = SiteFactory(trial=TrialFactory())
    case = CaseFactory(trial=site.trial, site=site)
    with pytest.raises(EnrolmentError, match="has no eligibility criteria: add them"):
        screen(case, answers={}, by=UserFactory())
