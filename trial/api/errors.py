"""The API's one translation of refusals into HTTP (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``).

A service's ``trial.errors.ServiceError`` becomes its status with ``{"detail": message}`` plus
its ``extra()`` fields (a refused file's ``problems``, a stale save's ``version``); Django's
``ValidationError`` is 400 and a ``ProtectedError`` (a row other records still refer to) 409.
Never a 500 for a refusal.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from trial.errors import ServiceError

IN_USE = "It is still referred to by other records, so it cannot be deleted."


def error_response(exc: Exception) -> Response | None:
    """The response for a service refusal, or None if ``exc`` is not one."""
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, **exc.extra()}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": "; ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError):
        return Response({"detail": IN_USE}, status=status.HTTP_409_CONFLICT)
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = error_response(exc)
    if response is not None:
        set_rollback()
        return response
    return drf_exception_handler(exc, context)
