"""A full-page viewer of one image (the access rule is ``access.viewable_image``).

Coordinators check an import with it; readers and seniors may open the images of their cases.
Someone with no role in the image's trial gets 404 (its existence is not revealed); a member
who may not see this image gets 403.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trial.dicom.viewer_pixels import viewer_meta

from .access import viewable_image


@login_required
def image_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The viewer, full page, on one image."""
    image = viewable_image(request.user, pk)
    return render(request, "reader/image.html",
                  {"image_id": image.pk, "viewer_images": [viewer_meta(image)]})
