"""Images (metadata) and DICOM imports: coordinators upload, a background job imports.

An upload goes through the same path as the admin's DICOM page (``trial.dicom.jobs``): only
de-identified bytes are kept.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from trial.dicom.jobs import start_import
from trial.models import Image, ImportJob

from .base import TrialScopedMixin
from .serializers_records import ImageSerializer, ImageUploadSerializer, ImportJobSerializer


class ImageViewSet(TrialScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Images of the trial's cases (metadata only); POST files to import more (coordinators)."""

    serializer_class = ImageSerializer
    lookup_value_converter = "int"
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Image.objects.none()
        return Image.objects.filter(case__trial=self.get_trial()).select_related("case")

    @extend_schema(request={"multipart/form-data": ImageUploadSerializer},
                   responses={202: ImportJobSerializer})
    def create(self, request: Request, trial_slug: str) -> Response:
        payload = ImageUploadSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        job = start_import(payload.validated_data["files"], trial=self.get_trial(),
                           site=payload.validated_data["site"], by=request.user)
        job.refresh_from_db()  # without a broker the import has already run
        url = reverse("trial-import-job-detail", args=[trial_slug, job.pk])
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": url})


class ImportJobViewSet(TrialScopedMixin, viewsets.ReadOnlyModelViewSet):
    """DICOM import jobs with their progress and per-file report (coordinators)."""

    serializer_class = ImportJobSerializer
    lookup_value_converter = "int"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportJob.objects.none()
        return ImportJob.objects.filter(trial=self.get_trial()).select_related(
            "site", "created_by"
        )
