"""Randomisation list and reader allocation (``trial.randomization``), under concealment.

GET answers show how the list was made, its commitment and slot counts, its extensions with
their commitments, and the allocated readers with their arms; never a seed (even one given
here) or an unallocated slot's arm.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from trial import randomization
from trial.models import RandomizationList, Role

from .base import TrialScopedMixin
from .serializers_records import (
    AllocateSerializer,
    AllocationSerializer,
    ExtendSerializer,
    ExtensionSerializer,
    GenerateSerializer,
    ImportExtensionSerializer,
    ImportListSerializer,
    RandomizationSerializer,
)

READERS_OF_RESULTS = (Role.STATISTICIAN,)


def multipart_data(request: Request):
    """The body of an upload; any other kind of body is a 400 that says how to send it."""
    try:
        return request.data
    except UnsupportedMediaType as exc:
        raise serializers.ValidationError(
            {"file": ["Send the CSV file as multipart/form-data."]}) from exc


class RandomizationView(TrialScopedMixin, GenericAPIView):
    """The trial's list, summarised: coordinators and statisticians."""

    serializer_class = RandomizationSerializer
    read_roles = READERS_OF_RESULTS

    @extend_schema(responses=RandomizationSerializer)
    def get(self, request: Request, trial_slug: str) -> Response:
        rlist = RandomizationList.objects.filter(trial=self.get_trial()).first()
        if rlist is None:
            raise Http404("This trial has no randomisation list yet.")
        return Response(RandomizationSerializer(rlist).data)


class GenerateListView(TrialScopedMixin, GenericAPIView):
    """Generate the list by permuted blocks (coordinators) from a seed the platform draws."""

    serializer_class = GenerateSerializer

    @extend_schema(request=GenerateSerializer,
                   responses={201: RandomizationSerializer})
    def post(self, request: Request, trial_slug: str) -> Response:
        payload = self.get_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rlist = randomization.generate_list(
            self.get_trial(), by=request.user,
            slots_per_stratum=payload.validated_data.get("slots_per_stratum"),
        )
        return Response(RandomizationSerializer(rlist).data, status=status.HTTP_201_CREATED)


class ImportListView(TrialScopedMixin, GenericAPIView):
    """Import the statistician's CSV list (coordinators); an invalid list is refused whole."""

    serializer_class = ImportListSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportListSerializer},
                   responses={201: RandomizationSerializer})
    def post(self, request: Request, trial_slug: str) -> Response:
        payload = self.get_serializer(data=multipart_data(request))
        payload.is_valid(raise_exception=True)
        upload = payload.validated_data["file"]
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise randomization.InvalidList(
                "The file is not UTF-8 text; export the list as UTF-8 CSV."
            ) from exc
        rlist = randomization.import_list(
            self.get_trial(), text.splitlines(keepends=True), by=request.user,
            source_name=upload.name,
            expected_count=payload.validated_data.get("expected_count"),
        )
        return Response(RandomizationSerializer(rlist).data, status=status.HTTP_201_CREATED)


class ExtendListView(TrialScopedMixin, GenericAPIView):
    """Append whole blocks to one stratum of the list (coordinators): a site added after the
    list was made, or more readers than slots. Drawn like the list from a fresh seed the
    platform draws (a ``seed`` is refused); the existing slots never change. The answer is the
    extension with its commitment, never its seed or arms."""

    serializer_class = ExtendSerializer

    @extend_schema(request=ExtendSerializer, responses={201: ExtensionSerializer})
    def post(self, request: Request, trial_slug: str) -> Response:
        payload = self.get_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        extension = randomization.extend_list(
            self.get_trial(), stratum=payload.validated_data["stratum"],
            blocks=payload.validated_data["blocks"], by=request.user,
        )
        return Response(ExtensionSerializer(extension).data, status=status.HTTP_201_CREATED)


class ImportExtensionView(TrialScopedMixin, GenericAPIView):
    """Append the statistician's CSV extension to one stratum (coordinators); an invalid file
    is refused whole, and the file's SHA-256 is recorded."""

    serializer_class = ImportExtensionSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportExtensionSerializer},
                   responses={201: ExtensionSerializer})
    def post(self, request: Request, trial_slug: str) -> Response:
        payload = self.get_serializer(data=multipart_data(request))
        payload.is_valid(raise_exception=True)
        upload = payload.validated_data["file"]
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise randomization.InvalidList(
                "The file is not UTF-8 text; export the list as UTF-8 CSV."
            ) from exc
        extension = randomization.import_extension(
            self.get_trial(), text.splitlines(keepends=True),
            stratum=payload.validated_data["stratum"], by=request.user, source_name=upload.name,
            expected_count=payload.validated_data.get("expected_count"),
        )
        return Response(ExtensionSerializer(extension).data, status=status.HTTP_201_CREATED)


def table_rows(trial, readers: set[str] | None = None) -> list[dict]:
    rows = randomization.allocation_table(trial)
    return rows if readers is None else [r for r in rows if r["reader"] in readers]


class AllocationListView(TrialScopedMixin, ListAPIView):
    """GET: the allocation table (allocated readers only; coordinators and statisticians).
    POST ``{"membership": id}``: allocate that reader (coordinators)."""

    serializer_class = AllocationSerializer
    read_roles = READERS_OF_RESULTS

    def get_queryset(self) -> list[dict]:
        if getattr(self, "swagger_fake_view", False):
            return []
        return table_rows(self.get_trial())

    @extend_schema(request=AllocateSerializer, responses={201: AllocationSerializer})
    def post(self, request: Request, trial_slug: str) -> Response:
        payload = AllocateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        reader = payload.validated_data["membership"]
        randomization.allocate(reader, by=request.user)
        rows = table_rows(self.get_trial(), {reader.user.get_username()})
        return Response(AllocationSerializer(rows[0]).data, status=status.HTTP_201_CREATED)


class AllocateAllView(TrialScopedMixin, GenericAPIView):
    """Allocate every unallocated reader of the trial, in a stable order (coordinators)."""

    serializer_class = AllocationSerializer
    pagination_class = None  # the rows allocated now, all of them: a bare array

    @extend_schema(request=None, responses={201: AllocationSerializer(many=True)})
    def post(self, request: Request, trial_slug: str) -> Response:
        slots = randomization.allocate_all(self.get_trial(), by=request.user)
        names = {slot.membership.user.get_username() for slot in slots}
        rows = table_rows(self.get_trial(), names)
        return Response(AllocationSerializer(rows, many=True).data,
                        status=status.HTTP_201_CREATED)
