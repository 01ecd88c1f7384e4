"""Refusals of the rating services (``trial.errors`` family: the API, admin and pages say them)."""

from __future__ import annotations

from reader.reading import Locked
from trial.errors import Invalid, ServiceError


class CampaignError(ServiceError):
    """The campaign cannot do that now (409 unless a subclass says otherwise); the message
    says why."""

    status = 409


class NotOpen(CampaignError, Locked):
    """Ratings are taken only while the campaign is open (a conflict with its state: 409)."""

    def __init__(self) -> None:
        super().__init__("This campaign is not open for rating.")


class RatingLocked(CampaignError, Locked):
    """A submitted rating of a campaign that does not allow revision."""


class InvalidAnswer(CampaignError):
    """A rating's answers do not fit the item's instruments: the request is wrong (400)."""

    status = Invalid.status
