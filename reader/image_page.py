"""A full-page viewer of one image, and the access rule every image URL shares.

Coordinators check an import with it; readers and seniors may open the images of their cases.
Someone with no role in the image's trial gets 404 (its existence is not revealed); a member
who may not see this image gets 403.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from trial.dicom.viewer_pixels import viewer_meta
from trial.models import Image
from trial.permissions import is_superuser, roles_of

from .access import can_view_image


def viewable_image(user, pk: int) -> Image:
    """The image ``pk`` if ``user`` may see it; Http404 for strangers, PermissionDenied else."""
    image = Image.objects.select_related("case").filter(pk=pk).first()
    if image is not None and can_view_image(user, image):
        return image
    # Refused: say so only to members of the image's trial.
    if image is None or not (is_superuser(user) or roles_of(user, image.case.trial_id)):
        raise Http404("No such image.")
    raise PermissionDenied("You may not see this image.")


@login_required
def image_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The viewer, full page, on one image."""
    image = viewable_image(request.user, pk)
    return render(request, "reader/image.html",
                  {"image_id": image.pk, "viewer_images": [viewer_meta(image)]})
