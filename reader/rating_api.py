"""Raters over the REST API: ``/api/trials/{slug}/rating/{campaign}/items/`` (my items, in my
order, with progress) and ``.../items/{code}/`` (GET, ``open/``, ``submit/``).

A rater reaches only their own items, by opaque code; anything else is 404. Every response
is built by ``reader.state.rating_payload``: no source, arm, reader, model or case id.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trial.api.base import TrialScopedMixin
from trial.models import Membership, Role

from . import campaigns as svc
from .api import handle_reading_error
from .rating_models import Campaign, RaterItem
from .state import rating_payload, require_role

ITEM = inline_serializer("RatingItem", {
    "code": serializers.CharField(), "position": serializers.IntegerField(),
    "status": serializers.CharField(),
    "reports": serializers.ListField(child=serializers.DictField()),
    "instruments": serializers.ListField(child=serializers.DictField()),
})


class RatingSubmitSerializer(serializers.Serializer):
    values = serializers.DictField(help_text="By instrument code: a level code, 'A'/'B' for "
                                   "pairs, counts by error type for errors.")


def rater_campaign(rater: Membership, trial, pk: int) -> Campaign:
    """The rater's campaign ``pk`` of ``trial``; 404 if they are not in it or it is a draft."""
    campaign = Campaign.objects.filter(pk=pk, trial=trial, raters=rater).exclude(
        status=Campaign.Status.DRAFT).first()
    if campaign is None:
        raise Http404
    return campaign


def rater_items(rater: Membership, campaign: Campaign):
    return (RaterItem.objects.filter(rater=rater, campaign=campaign)
            .select_related("rating").order_by("position"))


def rater_item_of(rater: Membership, campaign: Campaign, code: str) -> RaterItem:
    """The rater's own item ``code`` of ``campaign``; 404 for anyone else's code."""
    found = rater_items(rater, campaign).filter(code=code).select_related(
        "item__case", "item__report", "item__other").first()
    if found is None:
        raise Http404
    found.campaign = campaign  # already loaded (and checked) by the caller
    return found


def worklist_payload(rater: Membership, campaign: Campaign) -> dict:
    items = [{"code": ri.code, "position": ri.position,
              "status": "submitted" if hasattr(ri, "rating") else "new"}
             for ri in rater_items(rater, campaign)]
    done = sum(i["status"] == "submitted" for i in items)
    upcoming = next((i["code"] for i in items if i["status"] != "submitted"), None)
    return {"campaign": campaign.pk, "status": campaign.status, "done": done,
            "total": len(items), "next": upcoming, "items": items}


class RaterView(TrialScopedMixin, APIView):
    roles = (Role.RATER,)

    def rater(self) -> Membership:
        if not hasattr(self, "_member"):  # once per request
            self._member = require_role(self.request.user, self.get_trial(), Role.RATER)
        return self._member

    def campaign(self) -> Campaign:
        return rater_campaign(self.rater(), self.get_trial(), self.kwargs["campaign"])

    def rater_item(self) -> RaterItem:
        return rater_item_of(self.rater(), self.campaign(), self.kwargs["code"])

    def handle_exception(self, exc: Exception):
        return handle_reading_error(exc) or super().handle_exception(exc)


class RatingWorklistView(RaterView):
    """My items of the campaign in my random order, with progress and the next item."""

    @extend_schema(operation_id="rating_worklist", responses=inline_serializer(
        "RatingWorklist", {"done": serializers.IntegerField(),
                           "total": serializers.IntegerField(),
                           "next": serializers.CharField(allow_null=True),
                           "items": serializers.ListField(child=serializers.DictField())}))
    def get(self, request: Request, trial_slug: str, campaign: int) -> Response:
        return Response(worklist_payload(self.rater(), self.campaign()))


class RatingItemView(RaterView):
    """One of my items: image, history, reference if needed, report(s), instruments."""

    @extend_schema(operation_id="rating_item", responses=ITEM)
    def get(self, request: Request, trial_slug: str, campaign: int, code: str) -> Response:
        return Response(rating_payload(self.rater_item()))


class OpenRatingItemView(RaterView):
    """Start the clock of this visit to the item (the page calls it when it shows the item)."""

    @extend_schema(request=None, responses=ITEM)
    def post(self, request: Request, trial_slug: str, campaign: int, code: str) -> Response:
        return Response(rating_payload(svc.open_item(self.rater_item())))


class SubmitRatingView(RaterView):
    """Submit my answers for every instrument of the item (final unless revision is allowed)."""

    @extend_schema(request=RatingSubmitSerializer, responses=ITEM)
    def post(self, request: Request, trial_slug: str, campaign: int, code: str) -> Response:
        payload = RatingSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rater_item = self.rater_item()
        rater_item.rating = svc.submit(rater_item, payload.validated_data["values"],
                                       by=request.user)
        return Response(rating_payload(rater_item), status=status.HTTP_200_OK)
