"""The STOW-RS endpoint (``POST /dicomweb/studies``): a site's system sends studies.

Token authentication only (DRF's ``TokenAuthentication``, ``Authorization: Token <key>``): the
token's user must be a ``SiteSender``, and what it sends belongs to that sender's site and the
site's trial. A session is never accepted here (a signed-in browser gets 401), so the
two-factor gate, which guards sessions, has nothing to let through: a token call is anonymous
to the middleware, as the API's token calls are. No CSRF check either: no cookie authenticates
this view. It is a plain Django view, outside the OpenAPI schema (its body is DICOM, not JSON).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from . import stow
from .models import SiteSender

NO_TOKEN = "Send the site's sender token: Authorization: Token <key>."
NOT_A_SENDER = "This account is not a site's DICOM sender: it cannot store studies."


def refuse(status: int, detail: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Token"
    return response


@csrf_exempt
@require_POST
def store_instances(request: HttpRequest, study_uid: str | None = None) -> HttpResponse:
    """PS3.18 Store Instances (``studies``) and Store Study Instances (``studies/{study}``:
    an instance of another study fails with 0xA900)."""
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        return refuse(401, str(exc.detail))
    if found is None:
        return refuse(401, NO_TOKEN)
    user = found[0]
    sender = SiteSender.objects.select_related("site__trial").filter(user=user).first()
    if sender is None:
        return refuse(403, NOT_A_SENDER)
    try:
        answer = stow.store(request, site=sender.site, by=user, study_uid=study_uid)
    except stow.Refused as exc:
        return refuse(exc.status, exc.detail)
    kind = stow.DICOM_JSON if request.accepts(stow.DICOM_JSON) else stow.JSON
    response = HttpResponse(json.dumps(answer.body), status=answer.status, content_type=kind)
    if answer.warnings:
        response["Warning"] = stow.warning_header(answer.warnings)
    return response
