"""Reader randomisation: permuted blocks from a seed or an imported list; atomic allocation.

TO BE IMPLEMENTED (signatures fixed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from .models import AllocationSlot, Membership, RandomizationList, Trial


class RandomizationError(Exception):
    """Base class; the message says what was got and what was expected."""


class ListAlreadyExists(RandomizationError):
    pass


class NoList(RandomizationError):
    pass


class InvalidList(RandomizationError):
    pass


class ListExhausted(RandomizationError):
    pass


class AlreadyAllocated(RandomizationError):
    pass


class NotAReader(RandomizationError):
    pass


def generate_list(
    trial: Trial, *, by, seed: int | None = None, slots_per_stratum: int | None = None
) -> RandomizationList:
    raise NotImplementedError


def import_list(trial: Trial, rows: IO[str] | Iterable[str], *, by, source_name: str = "",
                expected_count: int | None = None) -> RandomizationList:
    raise NotImplementedError


def allocate(membership: Membership, *, by) -> AllocationSlot:
    raise NotImplementedError


def allocate_all(trial: Trial, *, by) -> list[AllocationSlot]:
    raise NotImplementedError
