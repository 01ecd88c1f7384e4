"""What the LLM tools are asked, and the JSON schemas their replies must meet.

A reply is read strictly: JSON (a Markdown code fence around it is allowed, nothing else),
validated against the schema with ``jsonschema``. A reply that fails is an error with its
reason, retried like a timeout and failed after the tool's attempts: a label is never guessed
from a malformed answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from rating.instruments import ERROR_TYPES
from trial.findings import FINDINGS, NO_FINDING

UNCERTAIN = "uncertain"

LABEL_PROMPT = (
    "You label chest X-ray reports. Read the report below and answer with a JSON object "
    "only, no other text. It has exactly these 14 keys: "
    + ", ".join(f'"{name}"' for name in FINDINGS) + ". "
    "Each value is 1 if the report says the finding is present, 0 if it says it is absent "
    f'or does not mention it, or "{UNCERTAIN}" if the report says it may be present. '
    f'"{NO_FINDING}" is 1 only when no other finding except Support Devices is present.'
)

JUDGE_PROMPT = (
    "You are an expert radiologist checking a candidate chest X-ray report against a "
    "reference report written for the same image. Count the candidate's errors by type, each "
    "as clinically significant or insignificant: "
    + "; ".join(f'"{key}" ({label.lower()})' for key, label in ERROR_TYPES) + ". "
    "Answer with a JSON object only, no other text: each of these six keys maps to "
    '{"significant": <whole number>, "insignificant": <whole number>}.'
)

LABEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"enum": [0, 1, UNCERTAIN]} for name in FINDINGS},
    "required": list(FINDINGS),
    "additionalProperties": False,
}

_COUNT = {"type": "integer", "minimum": 0, "maximum": 50}
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {key: {
        "type": "object",
        "properties": {"significant": _COUNT, "insignificant": _COUNT},
        "required": ["significant", "insignificant"],
        "additionalProperties": False,
    } for key, _ in ERROR_TYPES},
    "required": [key for key, _ in ERROR_TYPES],
    "additionalProperties": False,
}

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL | re.IGNORECASE)


class InvalidReply(ValueError):
    """The tool's reply is not JSON of the required shape; the message says where."""


def label_messages(prompt: str, text: str) -> list[dict]:
    return [{"role": "system", "content": prompt},
            {"role": "user", "content": f"Report:\n{text}"}]


def judge_messages(prompt: str, reference: str, candidate: str) -> list[dict]:
    return [{"role": "system", "content": prompt},
            {"role": "user",
             "content": f"Reference report:\n{reference}\n\nCandidate report:\n{candidate}"}]


def _json(reply: str, schema: dict) -> Any:
    match = _FENCE.match(reply)
    body = match.group(1) if match else reply
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidReply(f"The reply is not JSON ({exc}): {reply.strip()[:200]!r}") from exc
    # true == 1 in Python: refuse booleans before the schema, so 0/1 means the digits.
    if isinstance(data, dict) and any(isinstance(v, bool) for v in data.values()):
        raise InvalidReply("The reply uses true/false, not 0/1.")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data),
                    key=lambda e: list(e.path))
    if errors:
        shown = "; ".join(_describe(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InvalidReply(f"The reply does not match the schema: {shown}{more}.")
    return data


def _describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.path)
    return f"{where}: {error.message}" if where else error.message


def parse_labels(reply: str, *, uncertain: str) -> tuple[dict[str, int], list[str]]:
    """(labels as 0/1 with the uncertain policy applied, findings called uncertain)."""
    data = _json(reply, LABEL_SCHEMA)
    unsure = [name for name in FINDINGS if data[name] == UNCERTAIN]
    value = 1 if uncertain == "positive" else 0
    labels = {name: (value if data[name] == UNCERTAIN else int(data[name])) for name in FINDINGS}
    return labels, unsure


def parse_judgement(reply: str) -> dict[str, dict[str, int]]:
    """Error counts by type, as the experts' error instrument stores them."""
    data = _json(reply, JUDGE_SCHEMA)
    return {key: {part: int(data[key][part]) for part in ("significant", "insignificant")}
            for key, _ in ERROR_TYPES}
