"""Serializers of the trial's model endpoints and AI drafts.

The API key is never stored, so it cannot be serialized: ``api_key_env`` (the *name* of the
environment variable) is the only key-related field, on purpose. Drafts carry their content,
so their views are for coordinators and statisticians only (never readers, seniors, raters).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from trial.api.serializers import TrialScopedSerializer

from ..models import Draft, ModelEndpoint

ENDPOINT_FIELDS = (
    "name", "active", "backend", "base_url", "model_name", "api_key_env", "timeout_s",
    "max_tokens", "temperature", "prompt_template", "image_size", "pad_value", "max_attempts",
    "retry_backoff_s", "concurrency",
)


class ModelEndpointSerializer(TrialScopedSerializer):
    """Where and how drafts are made; ``fingerprint`` changes with prompt, model, preprocessing."""

    fingerprint = serializers.CharField(
        read_only=True,
        help_text="Hash of backend, server, model, max tokens, temperature, prompt and image "
                  "preprocessing: drafts of another fingerprint were made differently.",
    )
    draft_count = serializers.IntegerField(read_only=True, source="drafts.count")

    class Meta:
        model = ModelEndpoint
        fields = ("id", *ENDPOINT_FIELDS, "fingerprint", "draft_count", "created_at")
        read_only_fields = ("created_at",)

    def validate(self, attrs: dict) -> dict:
        endpoint = self._as_saved(attrs)
        try:
            endpoint.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            ) from exc
        if endpoint.active:
            clash = ModelEndpoint.objects.filter(trial=self.trial, active=True)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if (other := clash.first()) is not None:
                raise serializers.ValidationError({"active": [
                    f"The trial's active endpoint is “{other.name}”; deactivate it first "
                    "(one active endpoint per trial)."
                ]})
        return attrs

    def _as_saved(self, attrs: dict) -> ModelEndpoint:
        """An unsaved endpoint as this request would leave it (the instance is not touched)."""
        current = {}
        if self.instance is not None:
            current = {f: getattr(self.instance, f) for f in ENDPOINT_FIELDS}
        return ModelEndpoint(trial=self.trial, **{**current, **attrs})


class DraftSerializer(serializers.ModelSerializer):
    """A draft as stored: content, how it was made (config, fingerprint, backend) and timings."""

    case = serializers.SlugRelatedField(slug_field="case_id", read_only=True)
    is_demo = serializers.BooleanField(
        read_only=True, help_text="Made by the offline demo backend, not by a model."
    )

    class Meta:
        model = Draft
        fields = (
            "id", "case", "endpoint", "status", "attempts", "backend", "is_demo", "fingerprint",
            "config", "model_reported", "findings", "impression", "warning", "raw_response",
            "error", "prompt_tokens", "completion_tokens", "model_latency_ms", "total_latency_ms",
            "queued_at", "sent_at", "started_at", "finished_at",
        )
        read_only_fields = fields
