"""MkDocs hooks: the tables the guides must never copy by hand, made from the code at build time.

A line holding only ``<!-- generated: NAME -->`` in a page is replaced by the table ``NAME``
(``GENERATORS``); an unknown name stops the build. ``reference/api.md`` is written from the
OpenAPI schema drf-spectacular makes of the running code. Django is set up with the demo's
settings (no database is opened).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- generated: ([a-z0-9-]+) -->$", re.M)


def _django() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEMO_MODE", "1")
    import django

    django.setup()


def _cell(text: str) -> str:
    """One table cell: one line, its pipes escaped, and ``<`` as text (``campaign-<id>`` is a
    placeholder, not an HTML tag)."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def settings_table() -> str:
    """Every environment variable, by section, from ``config.env.VARIABLES``."""
    from config import env

    out = []
    groups: dict[str, list] = {}
    for variable in env.VARIABLES:
        groups.setdefault(variable.group, []).append(variable)
    for group, variables in groups.items():
        out += [f"## {group}", "", _table(["variable", "default", "meaning"], [
            [f"`{v.name}`", v.documented_default, v.meaning] for v in variables]), ""]
    return "\n".join(out)


def _dictionary(dictionary: dict[str, dict[str, tuple[str, str]]]) -> str:
    out = []
    for table, columns in dictionary.items():
        out += [f"### `{table}`", "", _table(["column", "type", "meaning"], [
            [f"`{name}`", kind, meaning] for name, (kind, meaning) in columns.items()]), ""]
    return "\n".join(out)


def exports_table() -> str:
    from analysis.datasets import DATA_DICTIONARY

    return _dictionary(DATA_DICTIONARY)


def metric_exports_table() -> str:
    from analysis.datasets import METRIC_DICTIONARY

    return _dictionary(METRIC_DICTIONARY)


def commands_table() -> str:
    """The project's own management commands (not Django's or other libraries')."""
    from django.core.management import get_commands, load_command_class

    rows = []
    for name, app in sorted(get_commands().items()):
        if app.startswith(("django.", "rest_framework", "axes", "django_otp", "csp")):
            continue
        if not (ROOT / app.replace(".", "/")).is_dir():
            continue
        command = load_command_class(app, name)
        rows.append([f"`{name}`", f"`{app}`", command.help or ""])
    return _table(["command", "app", "what it does"], rows)


def instruments_text() -> str:
    """Every rating instrument as raters see it: its question and each level's wording."""
    from rating import instruments as inst

    out = []
    variants = [(code, inst.RADPEER_REFERENCE) for code in inst.ALL]
    variants.insert(2, (inst.RADPEER, inst.RADPEER_ACR2016))
    for code, variant in variants:
        instrument = inst.instrument(code, radpeer_variant=variant)
        title = instrument.name + (" (ACR RADPEER 2016 variant)" if (
            code == inst.RADPEER and variant == inst.RADPEER_ACR2016) else "")
        kind = "two reports, A and B" if instrument.pair else "one report" + (
            ", against the reference report" if instrument.needs_reference else "")
        out += [f"### {title}", "", f"*{kind}.* **{instrument.question}**", ""]
        if instrument.levels and not instrument.pair:
            out += [_table(["answer", "wording"], [
                [f"**{level.label}**", level.text] for level in instrument.levels]), ""]
        if code == inst.ERRORS:
            out += [_table(["error type"], [[label] for _, label in inst.ERROR_TYPES]), "",
                    "Each counted as clinically significant or insignificant.", ""]
    return "\n".join(out)


def api_reference() -> str:
    """The API from drf-spectacular's OpenAPI schema of the code: each operation, who may call
    it (its description), its parameters, body and answers."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    out = ["# API reference", "",
           f"{schema['info'].get('description', '').strip()}", "",
           "Generated from the OpenAPI schema of the code this site was built from "
           f"({schema['info']['title']} {schema['info']['version']}); the running site serves "
           "the same schema at `/api/schema/` and browsable documentation at `/api/docs/`.", ""]
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((path, method, operation))
    for tag in sorted(by_tag):
        out += [f"## {tag}", ""]
        for path, method, operation in by_tag[tag]:
            out += [f"### `{method.upper()} {path}`", ""]
            if operation.get("description"):
                out += [operation["description"].strip(), ""]
            parameters = operation.get("parameters") or []
            if parameters:
                out += [_table(["parameter", "in", "required", "meaning"], [
                    [f"`{p['name']}`", p["in"], "yes" if p.get("required") else "no",
                     p.get("description", "")] for p in parameters]), ""]
            body = (operation.get("requestBody") or {}).get("content", {})
            if body:
                refs = sorted({_ref(c.get("schema", {})) for c in body.values()} - {""})
                out += [f"Body: {', '.join(refs) or ', '.join(body)}.", ""]
            answers = operation.get("responses") or {}
            out += [_table(["answer", "meaning"], [
                [f"`{code}`", answer.get("description", "") or _ref(
                    next(iter(answer.get("content", {}).values()), {}).get("schema", {}))]
                for code, answer in answers.items()]), ""]
    schemas = schema.get("components", {}).get("schemas", {})
    out += ["## Schemas", ""]
    for name, body in sorted(schemas.items()):
        out += [f"### {name}", ""]
        if body.get("description"):
            out += [body["description"].strip(), ""]
        properties = body.get("properties") or {}
        if properties:
            required = set(body.get("required") or [])
            out += [_table(["field", "type", "required", "meaning"], [
                [f"`{field}`", _type(spec), "yes" if field in required else "no",
                 spec.get("description", "")] for field, spec in properties.items()]), ""]
        elif body.get("enum"):
            out += ["One of: " + ", ".join(f"`{v}`" for v in body["enum"] if v) + ".", ""]
    return "\n".join(out)


def _ref(spec: dict) -> str:
    ref = spec.get("$ref") or (spec.get("items") or {}).get("$ref") or ""
    return f"[{ref.rsplit('/', 1)[-1]}](#{ref.rsplit('/', 1)[-1].lower()})" if ref else ""


def _type(spec: dict) -> str:
    if "$ref" in spec or "allOf" in spec:
        return _ref(spec if "$ref" in spec else spec["allOf"][0]) or "object"
    kind = spec.get("type", "object")
    if kind == "array":
        return f"array of {_type(spec.get('items') or {})}"
    return kind + (f" ({spec['format']})" if spec.get("format") else "")


GENERATORS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "exports": exports_table,
    "metric-exports": metric_exports_table,
    "commands": commands_table,
    "instruments": instruments_text,
}


def on_config(config, **kwargs):
    _django()
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "reference/api.md", content=api_reference()))
    return files


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated table {name!r} "
                             f"(known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)
