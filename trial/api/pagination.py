"""The API's pagination: ``limit``/``offset`` with bounds.

Hole 19 of the security audit: a ``limit`` of 2**63 or more made every paginated list answer
500 (the database refuses such a number). Limits are capped at ``MAX_LIMIT`` and offsets at
``MAX_OFFSET`` (an empty page beyond any real list), so a list never fails on its bounds.
"""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT = 1000
MAX_OFFSET = 10**12


class BoundedPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = MAX_LIMIT

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)
