"""One family of service errors, so the API, the admin, the pages and the commands each
translate refusals in one place.

A service refuses by raising a ``ServiceError`` subclass: its message is written for the person
who asked, ``status`` is the HTTP status it means, ``problems`` lists every problem of a refused
file (with its line), and ``extra`` adds fields to the API's answer (a stale save's version).
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refusal by a service: the request does not apply (400) unless a subclass says more."""

    status: int = 400
    problems_heading: str = ""  # shown above a list of problems (admin)
    list_one_problem: bool = False  # admin: list a single problem too (else the message says it)

    def __init__(self, message: str = "", *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems or [])

    @property
    def message(self) -> str:
        return str(self) or self.__class__.__name__

    def extra(self) -> dict[str, Any]:
        """Fields added to the API's ``{"detail": ...}`` answer."""
        return {"problems": self.problems} if self.problems else {}


class Invalid(ServiceError):
    """Malformed or inapplicable input (400)."""


class Conflict(ServiceError):
    """Refused by the current state of the trial or the object (409)."""

    status = 409
