"""OpenAPI post-processing (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``): what every
operation may answer besides its success, and what its path parameters really accept.

Every operation can be refused the same ways (``trial.api.errors``): 400 (a validation error
``{field: [messages]}`` or a service's ``{"detail": ..., "problems": [...]}``), 403 (not signed
in, or the role does not allow it), 404 (no such object, or no role in its trial) and 409 (the
state refuses it: a locked trial, a campaign not open, a stale ``version``). Each is documented
here once, with a shared component, rather than view by view.

Path parameters are typed from their Django converter with its pattern (``<slug:...>`` is
``^[-a-zA-Z0-9_]+$``, ``<int:...>`` a non-negative integer, ``<str:...>`` no slash): a value
outside it never reaches a view (the URL does not resolve), so the schema does not offer it.

``partial_response`` documents a response some people get with fewer fields.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls.converters import get_converters
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

ERROR = {
    "type": "object",
    "description": "A refusal: ``detail`` says why for the person who asked.",
    "properties": {
        "detail": {"type": "string"},
        "problems": {
            "type": "array", "items": {"type": "string"},
            "description": "A refused file's problems, one per line.",
        },
        "version": {
            "type": "integer",
            "description": "A stale save: the stored version (the report was saved elsewhere).",
        },
    },
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": "Invalid input: by field name, that field's messages "
                   "(``non_field_errors``: the request's as a whole); or, for a service's "
                   "refusal, ``detail`` (and ``problems``: a refused file's, one per line).",
    "properties": {
        "detail": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": {},
}
ERRORS = {
    "400": ("ValidationError", "Invalid request: the messages say what to change."),
    "403": ("Error", "Not signed in, or your role in this trial does not allow this."),
    "404": ("Error", "Not found, or you have no role in its trial."),
    "409": ("Error", "Refused by the current state (for example a locked trial, a campaign "
                     "that is not open, or a stale ``version``)."),
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


def document_errors(result: dict, generator: Any = None, request: Any = None,
                    public: bool = False, **kwargs: Any) -> dict:
    """The post-processing hook: the error responses of every operation (their description
    and content, where a view documented only a description), and typed path parameters."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationError", VALIDATION_ERROR)
    components["schemas"] = dict(sorted(schemas.items()))
    converters = _path_converters(generator)
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            _type_path_parameters(operation, converters.get(path, {}))
            responses = operation.setdefault("responses", {})
            for code, (component, description) in ERRORS.items():
                response = responses.setdefault(code, {})
                if not response.get("description"):
                    response["description"] = description
                response.setdefault("content", {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{component}"}}})
            operation["responses"] = dict(sorted(responses.items()))
    return result


def _path_converters(generator: Any) -> dict[str, dict[str, str]]:
    """By schema path: each path parameter's Django converter (from the URL pattern)."""
    out: dict[str, dict[str, str]] = {}
    for endpoint in getattr(generator, "endpoints", None) or ():
        path, path_regex = endpoint[0], endpoint[1]
        found = {m["name"]: m["converter"] or "str" for m in PARAMETER.finditer(path_regex)}
        if "pk" in found and api_settings.SCHEMA_COERCE_PATH_PK:  # as drf-spectacular names it
            found["id"] = found.pop("pk")
            path = path.replace("{pk}", "{id}")
        out[path] = found
    return out


def _type_path_parameters(operation: dict, converters: dict[str, str]) -> None:
    registered = get_converters()
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "path" or parameter["name"] not in converters:
            continue
        converter = registered.get(converters[parameter["name"]])
        schema = parameter.setdefault("schema", {})
        if converter is None or "$ref" in schema or "enum" in schema:
            continue
        if schema.get("type") == "integer":
            if converter.regex == "[0-9]+":
                schema.setdefault("minimum", 0)
        elif schema.get("type") == "string":
            schema.setdefault("pattern", f"^{converter.regex}$")


def partial_response(serializer_class: type, *, always: tuple[str, ...], name: str,
                     doc: str) -> type:
    """A documentation-only copy of ``serializer_class`` for a response that leaves fields out
    for some people: only ``always`` are required (drf-spectacular requires every read-only
    field). The view still serializes with ``serializer_class``."""

    def get_fields(self) -> dict:
        fields = super(documented, self).get_fields()
        for field_name, field in fields.items():
            if field_name in always:
                continue
            field.required = False
            field.read_only = False  # a read-only field is published as required
            if isinstance(field, serializers.ChoiceField):
                # The same values as an enum of this component's own: a second component with
                # the very same choice set makes the enum hook name it with a hash (a warning).
                values = [value for value in field.choices if value not in ("", None)]
                typed = {"type": "string"} if all(isinstance(v, str) for v in values) else {}
                extend_schema_field({**typed, "enum": values})(field)
        return fields

    documented = type(f"{name}Serializer", (serializer_class,), {
        "get_fields": get_fields, "__doc__": doc, "__module__": serializer_class.__module__,
    })
    return documented
