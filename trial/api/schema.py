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
"""

from __future__ import annotations

import re
from typing import Any

from django.urls.converters import get_converters
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
