"""Raters over the REST API: ``/api/trials/{slug}/rating/{campaign}/items/`` (my items, in my
order, with progress) and ``.../items/{code}/`` (GET, ``open/``, ``submit/``).

A rater reaches only their own items, by opaque code; anything else is 404. Every response
is built by ``rating.payloads``: no source, arm, reader, model or case id.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trial.api.base import TrialScopedMixin
from trial.models import Membership, Role

from .. import ratings
from ..models import Campaign, RaterItem
from ..payloads import rating_payload, worklist_payload
from ..queries import rater_campaign, rater_item_of

ITEM = inline_serializer("RatingItem", {
    "code": serializers.CharField(), "position": serializers.IntegerField(),
    "status": serializers.CharField(),
    "reports": serializers.ListField(child=serializers.DictField()),
    "instruments": serializers.ListField(child=serializers.DictField()),
})


class RatingSubmitSerializer(serializers.Serializer):
    values = serializers.DictField(help_text="By instrument code: a level code, 'A'/'B' for "
                                   "pairs, counts by error type for errors.")


class RaterView(TrialScopedMixin, APIView):
    roles = (Role.RATER,)

    def rater(self) -> Membership:
        return self.member(Role.RATER)

    def campaign(self) -> Campaign:
        return rater_campaign(self.rater(), self.get_trial(), self.kwargs["campaign"])

    def rater_item(self) -> RaterItem:
        return rater_item_of(self.rater(), self.campaign(), self.kwargs["code"])


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
        return Response(rating_payload(ratings.open_item(self.rater_item())))


class SubmitRatingView(RaterView):
    """Submit my answers for every instrument of the item (final unless revision is allowed)."""

    @extend_schema(request=RatingSubmitSerializer, responses=ITEM)
    def post(self, request: Request, trial_slug: str, campaign: int, code: str) -> Response:
        payload = RatingSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rater_item = self.rater_item()
        rater_item.rating = ratings.submit(rater_item, payload.validated_data["values"],
                                       by=request.user)
        return Response(rating_payload(rater_item), status=status.HTTP_200_OK)
