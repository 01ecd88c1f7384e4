"""Serializers of trial set-up: trials, sites, members, criteria.

Sites and people are named by code and username, scoped to the trial of the URL (passed in the
serializer context as ``trial``). Secrets (the de-identification salt) are never serialized.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trial import lifecycle
from trial.models import EligibilityCriterion, Membership, Role, Site, Trial
from trial.people import people_seen_by
from trial.permissions import has_role, is_superuser, roles_of

from .schema import partial_response

DESIGN_FIELDS = (
    "ai_assisted_label", "scp_label", "ratio_ai_assisted", "ratio_scp", "block_sizes",
    "stratify_by_site", "same_site_assignment", "report_template", "allowed_modalities",
    "require_two_factor",
)


class TrialSerializer(serializers.ModelSerializer):
    """Everyone with a role sees the trial's name and status; design only the coordinators
    and statisticians."""

    my_roles = serializers.SerializerMethodField()
    password = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False, style={"input_type": "password"},
        help_text="Your password, entered now: locking the trial is an electronic signature.")

    class Meta:
        model = Trial
        fields = ("slug", "name", "registry_id", "status", *DESIGN_FIELDS,
                  "offer_without_draft", "findings_checklist", "assign_on_enrolment",
                  "created_at", "my_roles",
                  "password")
        read_only_fields = ("created_at",)

    def get_fields(self) -> dict:
        fields = super().get_fields()
        if self.instance is not None:  # the slug is the trial's address: fixed once created
            fields["slug"].read_only = True
        return fields

    def get_my_roles(self, obj: Trial) -> list[str]:
        return sorted(roles_of(self.context["request"].user, obj))

    def to_representation(self, obj: Trial) -> dict:
        data = super().to_representation(obj)
        user = self.context["request"].user
        if not is_superuser(user) and set(data["my_roles"]) <= {Role.RATER}:
            # Blinded raters get what their pages show: the trial's address, no name, registry
            # id or design (a name may tell a source; hole 9 of the security audit).
            return {"slug": data["slug"], "my_roles": data["my_roles"]}
        if not has_role(user, obj, Role.COORDINATOR, Role.STATISTICIAN):
            for name in DESIGN_FIELDS:
                data.pop(name, None)
        return data

    def validate(self, attrs: dict) -> dict:
        if self.instance is not None:  # a frozen design is a conflict (409), before any check
            lifecycle.check_writable(self.instance, "The trial")
            lifecycle.check_design_change(self.instance, attrs)
        design = {k: v for k, v in attrs.items() if k != "password"}
        trial = Trial(**{**self._current(), **design})
        try:
            trial.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in DESIGN_FIELDS}


# What ``GET /api/trials/`` and ``GET /api/trials/{slug}/`` answer: only the fields the
# person's roles let them see (``TrialSerializer.to_representation``).
TrialReadSerializer = partial_response(
    TrialSerializer, always=("slug", "my_roles"), name="TrialRead",
    doc="A trial as the person asking may see it: ``slug`` and ``my_roles`` always; the name, "
        "registry id, status and dates for every role but raters (blinded: nothing else); "
        "the design fields only for coordinators and statisticians.")


class TrialScopedSerializer(serializers.ModelSerializer):
    @property
    def trial(self) -> Trial:
        return self.context["trial"]


class SlugLookupField(serializers.SlugRelatedField):
    """A ``SlugRelatedField`` that refuses a NUL character (400) before looking it up:
    PostgreSQL refuses one in a query, which would be a 500."""

    default_error_messages = {"null_characters": "Null characters are not allowed."}

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("null_characters")
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.STR)
class SiteField(SlugLookupField):
    """A site of the URL's trial, by code."""

    def __init__(self, **kwargs) -> None:
        super().__init__(slug_field="code", **kwargs)

    def get_queryset(self):
        trial = self.context.get("trial")
        return Site.objects.filter(trial=trial) if trial else Site.objects.none()


class SiteSerializer(TrialScopedSerializer):
    class Meta:
        model = Site
        fields = ("id", "code", "name")

    def validate_code(self, code: str) -> str:
        clash = Site.objects.filter(trial=self.trial, code=code)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("This trial already has a site with this code.")
        return code


class CriterionSerializer(TrialScopedSerializer):
    class Meta:
        model = EligibilityCriterion
        fields = ("id", "kind", "code", "text", "order")

    def validate_code(self, code: str) -> str:
        clash = EligibilityCriterion.objects.filter(trial=self.trial, code=code)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("This trial already has a criterion with this code.")
        return code


class MemberSerializer(TrialScopedSerializer):
    """A person's role; ``arm`` is the allocated arm, null before allocation (never planned)."""

    username = SlugLookupField(
        source="user", slug_field="username", queryset=get_user_model().objects.all()
    )
    site = SiteField(required=False, allow_null=True)
    arm = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ("id", "username", "role", "site", "years_experience", "arm", "created_at")
        read_only_fields = ("created_at",)

    def get_arm(self, obj: Membership) -> str | None:
        return obj.arm

    def get_fields(self) -> dict:
        """The user look-up reaches only the people the requester may choose from: the people
        of the trials they coordinate, and accounts with no role anywhere yet (made by a
        superuser for them); everyone for a superuser. Another trial's person "does not
        exist" here (the admin's invitation form is the way to add someone new)."""
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and getattr(request.user, "is_authenticated", False):
            users = get_user_model()._default_manager
            unaffiliated = users.filter(memberships__isnull=True, is_superuser=False,
                                        is_active=True)
            fields["username"].queryset = (people_seen_by(request.user) | unaffiliated).distinct()
        return fields

    def validate(self, attrs: dict) -> dict:
        current = self.instance
        if current is not None and current.arm is not None:
            fixed = {k for k in ("user", "role", "site") if k in attrs
                     and attrs[k] != getattr(current, k)}
            if fixed:
                raise serializers.ValidationError(
                    f"This reader is allocated; {', '.join(sorted(fixed))} can no longer change."
                )
        user = attrs.get("user", getattr(current, "user", None))
        role = attrs.get("role", getattr(current, "role", None))
        clash = Membership.objects.filter(trial=self.trial, user=user, role=role)
        if current is not None:
            clash = clash.exclude(pk=current.pk)
        if clash.exists():
            raise serializers.ValidationError("This person already has this role in the trial.")
        return attrs
