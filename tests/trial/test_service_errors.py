"""One family of service errors, translated once each: by the API (status and ``detail``), by
the pages (status and the message on a page), by the admin (a message), by the commands."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.test import RequestFactory

from rating.errors import CampaignError, InvalidAnswer, NotOpen, RatingLocked
from rating.report_import import ReportImportError
from reader.reading import Locked, NotReady, ReadingError, StaleVersion
from trial.admin.base import error_text
from trial.api.errors import error_response
from trial.assignment import AssignmentError
from trial.enrolment import EnrolmentError
from trial.errors import ServiceError
from trial.management.base import ServiceCommand
from trial.middleware import ServiceErrorMiddleware
from trial.randomization import InvalidList, ListExhausted, NotAReader

STATUSES = [
    (InvalidList("randomisation list refused", ["line 2: bad arm", "line 3: bad arm"]), 400),
    (NotAReader("not a reader"), 400),
    (ListExhausted("exhausted"), 409),
    (EnrolmentError("not screened"), 409),
    (AssignmentError("no reader"), 409),
    (ReadingError("empty report"), 400),
    (NotReady("draft not ready"), 409),
    (Locked("submitted"), 409),
    (StaleVersion(7), 409),
    (CampaignError("closed"), 409),
    (NotOpen(), 409),
    (RatingLocked("final"), 409),
    (InvalidAnswer("choose one of 1-5"), 400),
    (ReportImportError(["line 2: unknown case"]), 400),
]


@pytest.mark.parametrize(("exc", "status"), STATUSES, ids=lambda v: type(v).__name__)
def test_the_api_answers_each_refusal_with_its_status_and_message(exc, status) -> None:
    response = error_response(exc)
    assert response.status_code == status
    assert response.data["detail"] == str(exc)


def test_the_api_adds_what_the_page_needs() -> None:
    assert error_response(StaleVersion(7)).data["version"] == 7
    assert error_response(ReportImportError(["a", "b"])).data["problems"] == ["a", "b"]


@pytest.mark.parametrize(("exc", "status"), STATUSES, ids=lambda v: type(v).__name__)
def test_pages_answer_each_refusal_with_its_status_and_message(rf: RequestFactory, exc,
                                                               status) -> None:
    request = rf.get("/read/x/1/")
    request.user = None
    response = ServiceErrorMiddleware(lambda r: None).process_exception(request, exc)
    assert response.status_code == status
    assert str(exc).replace("'", "&#x27;") in response.content.decode()


def test_pages_leave_other_exceptions_alone(rf: RequestFactory) -> None:
    assert ServiceErrorMiddleware(lambda r: None).process_exception(rf.get("/"), KeyError()) \
        is None


def test_the_admin_lists_the_problems_of_a_refused_file() -> None:
    listed = error_text(ReportImportError(["line 2: unknown case"]))
    assert listed.startswith("Nothing imported:<ul><li>line 2: unknown case")
    refused = InvalidList("refused", ["x", "line 3: bad arm"])
    assert "<li>line 3: bad arm</li>" in error_text(refused)
    assert error_text(EnrolmentError("not screened")) == "not screened"


def test_commands_end_with_the_refusal_message() -> None:
    class Refusing(ServiceCommand):
        def handle(self, *args, **options) -> None:
            raise AssignmentError("no reader of the SCP arm at site H2")

    with pytest.raises(CommandError, match="no reader of the SCP arm at site H2"):
        Refusing().execute(force_color=False, no_color=True, skip_checks=True)


def test_every_refusal_is_a_service_error() -> None:
    assert all(isinstance(exc, ServiceError) for exc, _ in STATUSES)


def test_an_admin_message_lists_at_most_50_problems() -> None:
    """A refused file's message lives in the session: its list is cut, the rest counted."""
    from trial.admin.base import error_text
    from trial.errors import Invalid

    text = str(error_text(Invalid("refused", problems=[f"line {n}: bad" for n in range(60)])))
    assert text.count("<li>") == 51 and "<li>and 10 more</li>" in text
    assert "line 49: bad" in text and "line 50: bad" not in text
