"""The reading workspace over the REST API: what the browser pages call, and what a script with
a token can do, with the same checks.

Readers: ``/api/trials/{slug}/worklist/`` and ``.../worklist/{position}/`` (open, events, save,
submit, amend) — only their own assignments, addressed by worklist position. Seniors:
``/api/trials/{slug}/reviews/`` and ``.../reviews/{case_pk}/`` (open, save, sign). Every
response is built by ``reader.payloads``, where the blinding rules live.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trial.api.base import TrialScopedMixin
from trial.errors import Conflict
from trial.findings import FINDINGS
from trial.models import Case, Membership, Role

from ..models import Reading, Review
from ..payloads import assignment_at, reading_payload, review_payload
from ..reading import (
    CLIENT_EVENTS,
    Seat,
    amend,
    autosave,
    open_reading,
    record_event,
    submit,
)
from ..review import open_review, review_items, reviewable_cases, save_review, sign
from ..worklist import next_item, progress, worklist

SIGNATURE = inline_serializer("SignatureShown", {
    "printed_name": serializers.CharField(), "signed_at": serializers.DateTimeField(),
    "meaning": serializers.CharField(), "simulated": serializers.BooleanField(),
    "text": serializers.CharField(help_text="Printed name, time and meaning, as shown."),
}, allow_null=True, help_text="The electronic signature (null until signed).")
OPENED = "Once the case is opened (absent while ``status`` is \"new\")."
STATE = inline_serializer("ReadingState", {
    "position": serializers.IntegerField(), "arm": serializers.CharField(),
    "arm_label": serializers.CharField(),
    "case": serializers.DictField(help_text="The case as a reader sees it: pseudonymous id, "
                                  "demographics, history, images."),
    "findings_checklist": serializers.ListField(child=serializers.CharField()),
    "status": serializers.CharField(help_text="\"new\" until the case is opened, then the "
                                    "reading's: \"open\" or \"submitted\"."),
    "urls": serializers.DictField(child=serializers.CharField()),
    "page": serializers.CharField(),
    "findings": serializers.CharField(required=False, help_text=OPENED),
    "impression": serializers.CharField(required=False, help_text=OPENED),
    "version": serializers.IntegerField(required=False, help_text=OPENED),
    "labels": serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text=OPENED),
    "started_from": serializers.CharField(required=False, help_text=OPENED),
    "deviation": serializers.CharField(required=False, allow_blank=True, help_text=OPENED),
    "submitted_at": serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="When the report was submitted (null while open). The reading time, active "
                  "time and gaps are kept for the coordinator and never returned to the "
                  "reader; nor are the reading's implausible-reading flags."),
    "ai_draft": inline_serializer("AiDraftShown", {
        "findings": serializers.CharField(allow_blank=True),
        "impression": serializers.CharField(allow_blank=True)}, required=False,
        help_text="AI-assisted arm, opened with its draft only: the draft's text."),
    "amendments": inline_serializer("AmendmentShown", {
        "at": serializers.DateTimeField(), "reason": serializers.CharField(),
        "signature": SIGNATURE}, many=True, required=False,
        help_text="Amendments of the submitted report, oldest first, each with its "
                  "signature (once submitted)."),
})
REVIEW_STATE = inline_serializer("ReviewState", {
    "case_pk": serializers.IntegerField(), "status": serializers.CharField(),
    "findings": serializers.CharField(), "impression": serializers.CharField(),
    "version": serializers.IntegerField(), "signature": SIGNATURE,
})


def _text() -> serializers.CharField:
    return serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=20000)


class TextsSerializer(serializers.Serializer):
    findings = _text()
    impression = _text()


class ReportSerializer(TextsSerializer):
    version = serializers.IntegerField(min_value=0)
    labels = serializers.ListField(child=serializers.ChoiceField(choices=FINDINGS),
                                   required=False, max_length=len(FINDINGS))


def _password() -> serializers.CharField:
    return serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=4096, style={"input_type": "password"},
        help_text="Your password, entered now: this is your electronic signature (21 CFR "
                  "11.200). A wrong one signs nothing and is recorded.")


class AmendSerializer(TextsSerializer):
    reason = serializers.CharField(max_length=2000)
    password = _password()


class EventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(CLIENT_EVENTS))
    client_at = serializers.DateTimeField(required=False, allow_null=True)


class ReviewSaveSerializer(TextsSerializer):
    version = serializers.IntegerField(min_value=0)
    started_from = serializers.ChoiceField(choices=["report1", "report2", "blank"],
                                           required=False)


class SignSerializer(ReviewSaveSerializer):
    password = _password()


def _valid(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ReaderView(TrialScopedMixin, APIView):
    roles = (Role.READER,)

    def reader(self) -> Membership:
        return self.member(Role.READER)


class WorklistView(ReaderView):
    """My assigned cases in my stored random order, with progress and the next case."""

    @extend_schema(operation_id="worklist_list", responses=inline_serializer("Worklist", {
        "done": serializers.IntegerField(), "total": serializers.IntegerField(),
        "next": serializers.IntegerField(allow_null=True),
        "items": serializers.ListField(child=serializers.DictField()),
    }))
    def get(self, request: Request, trial_slug: str) -> Response:
        items = worklist(self.reader())
        done, total = progress(items)
        upcoming = next_item(items)
        return Response({
            "done": done, "total": total,
            "next": upcoming.assignment.position if upcoming else None,
            "items": [{"position": i.assignment.position, "case_id": i.assignment.case.case_id,
                       "state": i.state, "why_waiting": i.why_waiting} for i in items],
        })


class ReadingView(ReaderView):
    """One of my cases: history, images, my report and its state (``status`` "new" until
    opened)."""

    @extend_schema(responses=STATE)
    def get(self, request: Request, trial_slug: str, position: int) -> Response:
        assignment = assignment_at(self.reader(), position)
        reading = Reading.objects.filter(assignment=assignment).first()
        return Response(reading_payload(assignment, reading))


class OpenReadingView(ReaderView):
    """Open (or resume) the reading: creates it with the arm's starting text."""

    @extend_schema(request=None, responses=STATE)
    def post(self, request: Request, trial_slug: str, position: int) -> Response:
        assignment = assignment_at(self.reader(), position)
        reading = open_reading(assignment, user=request.user)
        return Response(reading_payload(assignment, reading))


class _OpenReadingMixin:
    def reading(self) -> Reading:
        """The reader's own reading at the URL's position, in one query when it exists; 404
        for no such assignment, 409 if not opened yet."""
        reading = Reading.objects.filter(
            assignment__reader=self.reader(), assignment__position=self.kwargs["position"]
        ).select_related("assignment__case__trial").first()
        if reading is None:
            assignment_at(self.reader(), self.kwargs["position"])  # 404 if not mine
            raise Conflict("Open the case first.")
        return reading

    def seat(self) -> Seat:
        """(reader, position): heartbeats and autosaves update the reading in one statement
        without looking it up first (``reading`` only when that changed nothing)."""
        return self.reader(), self.kwargs["position"]


class EventView(_OpenReadingMixin, ReaderView):
    """A page event (image displayed, heartbeat, visibility, focus); the server stamps it."""

    @extend_schema(request=EventSerializer, responses={204: None})
    def post(self, request: Request, trial_slug: str, position: int) -> Response:
        data = _valid(EventSerializer, request)
        record_event(self.seat(), data["kind"], client_at=data.get("client_at"),
                     find=self.reading)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SaveView(_OpenReadingMixin, ReaderView):
    """Autosave: stored only if ``version`` is the stored one (else 409 with the current)."""

    @extend_schema(request=ReportSerializer, responses=inline_serializer(
        "Saved", {"version": serializers.IntegerField()}))
    def post(self, request: Request, trial_slug: str, position: int) -> Response:
        data = _valid(ReportSerializer, request)
        reading = autosave(self.seat(), **data, find=self.reading)
        return Response({"version": reading.version})


class SubmitView(_OpenReadingMixin, ReaderView):
    """Submit: the final text; locks the report; reading time on the server's clock."""

    @extend_schema(request=ReportSerializer, responses=STATE)
    def post(self, request: Request, trial_slug: str, position: int) -> Response:
        data = _valid(ReportSerializer, request)
        reading = submit(self.reading(), user=request.user, **data)
        return Response(reading_payload(reading.assignment, reading))


class AmendView(_OpenReadingMixin, ReaderView):
    """Change a submitted report: a reason is required; the original is kept and audited."""

    @extend_schema(request=AmendSerializer, responses=STATE)
    def post(self, request: Request, trial_slug: str, position: int) -> Response:
        data = _valid(AmendSerializer, request)
        reading = self.reading()
        amend(reading, by=request.user, **data)
        reading.refresh_from_db()
        return Response(reading_payload(reading.assignment, reading))


class SeniorView(TrialScopedMixin, APIView):
    roles = (Role.SENIOR,)

    def senior(self) -> Membership:
        return self.member(Role.SENIOR)

    def case(self) -> Case:
        case = reviewable_cases(self.senior()).filter(pk=self.kwargs["case_pk"])
        found = case.first()
        if found is None:
            raise Http404
        return found

    def review(self) -> Review:
        review = Review.objects.filter(case=self.case(), senior=self.senior()).first()
        if review is None:
            raise Conflict("Open the case first.")
        return review


class ReviewListView(SeniorView):
    """Cases with both readings submitted, for me to finalise (and those I have)."""

    @extend_schema(operation_id="reviews_list", responses=inline_serializer("ReviewList", {
        "done": serializers.IntegerField(), "total": serializers.IntegerField(),
        "items": serializers.ListField(child=serializers.DictField()),
    }))
    def get(self, request: Request, trial_slug: str) -> Response:
        items = review_items(self.senior())
        done = sum(i["status"] == Review.Status.SIGNED for i in items)
        return Response({"done": done, "total": len(items), "items": items})


class ReviewView(SeniorView):
    """My review of a case (409 until opened)."""

    @extend_schema(responses=REVIEW_STATE)
    def get(self, request: Request, trial_slug: str, case_pk: int) -> Response:
        return Response(review_payload(self.review()))


class OpenReviewView(SeniorView):
    """Open the review: Report 1 and Report 2 in a random order fixed at first open."""

    @extend_schema(request=None, responses=REVIEW_STATE)
    def post(self, request: Request, trial_slug: str, case_pk: int) -> Response:
        review = open_review(self.case(), senior=self.senior())
        return Response(review_payload(review))


class SaveReviewView(SeniorView):
    """Autosave of the final report (version-checked like a reading)."""

    @extend_schema(request=ReviewSaveSerializer, responses=inline_serializer(
        "ReviewSaved", {"version": serializers.IntegerField()}))
    def post(self, request: Request, trial_slug: str, case_pk: int) -> Response:
        data = _valid(ReviewSaveSerializer, request)
        review = save_review(self.review(), **data)
        return Response({"version": review.version})


class SignView(SeniorView):
    """Sign the final report: it is locked and becomes the reference for the ratings."""

    @extend_schema(request=SignSerializer, responses=REVIEW_STATE)
    def post(self, request: Request, trial_slug: str, case_pk: int) -> Response:
        data = _valid(SignSerializer, request)
        review = sign(self.review(), by=request.user, **data)
        return Response(review_payload(review))

