"""Refusals of the rating services (``trial.errors`` family: the API, admin and pages say them)."""

from __future__ import annotations

from trial.errors import Conflict, Invalid


class CampaignError(Conflict):
    """The campaign cannot do that now (409); the message says why."""


class NotOpen(CampaignError):
    """Ratings are taken only while the campaign is open (a conflict with its state: 409)."""

    def __init__(self) -> None:
        super().__init__("This campaign is not open for rating.")


class RatingLocked(CampaignError):
    """A submitted rating of a campaign that does not allow revision."""


class InvalidAnswer(CampaignError):
    """A rating's answers do not fit the item's instruments: the request is wrong (400)."""

    status = Invalid.status
