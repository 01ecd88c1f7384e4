"""``/api/images/<pk>/``: the viewer's pixels, preview and metadata, for whoever may see the
image.

Access is ``reader.access.can_view_image`` (403), and 404 for someone with no role in the
image's trial, checked before anything else (a 304 too). The pixels and the reduced-resolution
preview are content-addressed files made at import and served as-is (already gzip), with an
ETag so a browser that has them gets a 304 and no body; no request decodes a DICOM file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trial.dicom.viewer_pixels import (
    FORMAT_VERSION,
    viewer_meta,
    viewer_pixels,
    viewer_preview,
)

from ..access import viewable_image

MAX_AGE = 86400  # content-addressed: an image's pixels never change
DENIED = {403: OpenApiResponse(description="Not signed in, or may not see this image."),
          404: OpenApiResponse(description="No such image (or no role in its trial).")}


def pixels_etag(sha256: str, kind: str = "u16") -> str:
    """Quoted ETag from the content hash, what is sent and the format version (not the hash
    itself)."""
    return '"' + hashlib.sha256(f"{sha256}:{kind}:{FORMAT_VERSION}".encode()).hexdigest()[:32] + '"'


def preview_etag(sha256: str, preview: dict) -> str:
    """The preview's ETag: its size, factor and method are part of it (a preview made another
    way is another file)."""
    kind = (f"preview:{preview['rows']}x{preview['columns']}:{preview['factor']}:"
            f"{preview.get('method', '')}")
    return pixels_etag(sha256, kind)


class ForcedNegotiationMixin:
    """Never 406: a client asking for application/octet-stream still gets the file (and
    errors as JSON)."""

    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        return super().perform_content_negotiation(request, force=True)


class ImagePixelsView(ForcedNegotiationMixin, APIView):
    """The image's first frame as little-endian uint16, gzip (see ``viewer_meta``)."""

    @extend_schema(
        operation_id="image_pixels",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="rows x columns little-endian uint16 (Content-Encoding: gzip); "
                "modality value = uint16 * scale + offset (from the viewer metadata)."),
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            **DENIED,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        image = viewable_image(request.user, pk)
        return _serve(request, pixels_etag(image.sha256), lambda: viewer_pixels(image))


class ImagePreviewView(ForcedNegotiationMixin, APIView):
    """A reduced-resolution copy of the pixels, for the viewer to draw first (same access)."""

    @extend_schema(
        operation_id="image_preview",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="preview.rows x preview.columns little-endian uint16 "
                "(Content-Encoding: gzip), each the rounded mean of a factor x factor block of "
                "the full pixels; modality value = uint16 * scale + offset, as the pixels."),
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            **DENIED,
            404: OpenApiResponse(description="No such image (or no role in its trial), or it "
                                 "has no preview (a small image, or one prepared before "
                                 "previews): use the pixels."),
            409: OpenApiResponse(description="The image was not prepared for the viewer."),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        image = viewable_image(request.user, pk)  # the pixels' own access check, first
        found = viewer_preview(image)
        if found is None:  # small image, or prepared before previews: the full pixels only
            raise Http404("This image has no reduced-resolution preview.")
        path, preview = found
        return _serve(request, preview_etag(image.sha256, preview), lambda: path)


def _serve(request: Request, etag: str, path: Callable[[], Path]) -> HttpResponse:
    """The gzip file at ``path()`` (asked for only without a matching If-None-Match), with
    the ETag and cache headers; a 304 without a body when the browser has it."""
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={MAX_AGE}",
               "Vary": "Cookie, Authorization"}
    if _matches(request.headers.get("If-None-Match", ""), etag):
        response = HttpResponseNotModified()
    elif settings.X_ACCEL_MEDIA_PREFIX:
        response = _accel_redirect(path())
    else:
        response = FileResponse(path().open("rb"), content_type="application/octet-stream")
        response.headers.pop("Content-Disposition", None)  # no file name to the client
        response["Content-Encoding"] = "gzip"
    for name, value in headers.items():
        response[name] = value
    return response


def _accel_redirect(path: Path) -> HttpResponse:
    """An empty answer telling nginx to send the file itself (its internal location for
    MEDIA_ROOT, docker/nginx.conf): the file's bytes never pass through a gunicorn thread.
    nginx adds Content-Encoding and keeps this answer's ETag and Cache-Control."""
    relative = path.resolve().relative_to(Path(settings.MEDIA_ROOT).resolve())
    response = HttpResponse(content_type="application/octet-stream")
    response["X-Accel-Redirect"] = settings.X_ACCEL_MEDIA_PREFIX + quote(relative.as_posix())
    return response


def _matches(header: str, etag: str) -> bool:
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or etag in tags or etag in (t.removeprefix("W/") for t in tags)


class PreviewSerializer(serializers.Serializer):
    url = serializers.CharField()
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    factor = serializers.IntegerField(help_text="Full pixels per preview pixel, each way.")


class PresetSerializer(serializers.Serializer):
    name = serializers.CharField()
    center = serializers.FloatField()
    width = serializers.FloatField()
    key = serializers.CharField(help_text="Keyboard shortcut.")
    title = serializers.CharField()


class WindowSerializer(serializers.Serializer):
    center = serializers.FloatField()
    width = serializers.FloatField()


class ViewerMetaSerializer(serializers.Serializer):
    """Documentation of ``trial.dicom.viewer_pixels.viewer_meta`` (nothing identifying)."""

    id = serializers.IntegerField()
    version = serializers.IntegerField()
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    format = serializers.CharField(help_text="uint16le: little-endian unsigned 16-bit.")
    levels = serializers.IntegerField(help_text="Largest stored uint16 value + 1.")
    scale = serializers.FloatField(help_text="modality value = uint16 * scale + offset")
    offset = serializers.FloatField()
    min = serializers.FloatField(help_text="Smallest modality value in the image.")
    max = serializers.FloatField(help_text="Largest modality value in the image.")
    window = WindowSerializer(help_text="Default window, modality units.")
    window_source = serializers.CharField()
    window_note = serializers.CharField(allow_blank=True)
    invert = serializers.BooleanField(help_text="MONOCHROME1 xor Presentation LUT INVERSE.")
    hu = serializers.BooleanField(help_text="Values are Hounsfield units.")
    presets = PresetSerializer(many=True)
    pixels_url = serializers.CharField()
    preview = PreviewSerializer(allow_null=True, help_text=(
        "The reduced-resolution preview to draw first (same scale and offset), or null: "
        "the full pixels only."))


class ImageViewerView(ForcedNegotiationMixin, APIView):
    """What the viewer needs to draw the image: size, value map, windows, presets."""

    @extend_schema(operation_id="image_viewer",
                   responses={200: ViewerMetaSerializer, **DENIED})
    def get(self, request: Request, pk: int) -> Response:
        image = viewable_image(request.user, pk)
        return Response(viewer_meta(image), headers={"Cache-Control": "private, no-cache"})
