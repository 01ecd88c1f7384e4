"""What a report's reader must not learn from its text: signature lines, model markers and the
names of the people and models of the trial are taken out of what seniors and raters see.

Used for the senior's Report 1 / Report 2 and for every text a rating campaign shows; the
removed lines are kept so the coordinator can review them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib.auth import get_user_model

from drafting.models import Draft
from trial.models import Trial

# Lines that sign a report or say who or what wrote it: removed whole from what raters see.
SIGNATURE_LINE = re.compile(
    r"^\s*(?:electronically\s+)?(?:signed|dictated|reported|read|verified|approved|"
    r"transcribed|finali[sz]ed|authored|prepared)(?:\s+\w+)?\s+by\b"
    r"|^\s*(?:radiologist|reporter|author|attending|resident|signature|signed)\s*:"
    r"|^\s*(?:dr\.?|prof\.?)\s+[A-Z][\w.-]+(?:\s+[A-Z][\w.-]+)*,?\s*(?:md|mbbs|frcr)?\.?\s*$"
    r"|^\s*(?:generated|drafted|written|produced)\s+(?:by|with)\b"
    r"|^\s*(?:model|engine|model version|version)\s*:",
    re.IGNORECASE,
)
# Markers inside a line: only the marker goes, the finding on the same line stays.
INLINE_MARKER = re.compile(
    r"\[[^\]]*\b(?:ai|draft|auto(?:mated)?|model|generated)\b[^\]]*\]"
    r"|\(\s*(?:ai|model)[- ](?:generated|draft(?:ed)?|written)\s*\)"
    r"|\bai[- ](?:generated|draft(?:ed)?|assisted|written)\b:?"
    r"|\b(?:large\s+)?(?:language|vision|ai)\s+model\b"
    r"|\b(?:gpt|llm|chatgpt|openai|demo[- ]backend)\b[\w.-]*",
    re.IGNORECASE,
)
LEFTOVER = re.compile(r"^[\s\W_]*$")  # nothing but spaces and punctuation


def blind_text(text: str, *, names: Iterable[str] = ()) -> tuple[str, list[str]]:
    """``text`` without signature lines, model markers and the given names (model, source,
    reader names); returns (shown text, removed lines) so the coordinator can review them."""
    named = [n for n in {n.strip() for n in names} if len(n) >= 3]
    name_re = (re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in sorted(
        named, key=len, reverse=True)) + r")(?!\w)", re.IGNORECASE) if named else None)
    kept, removed = [], []
    for line in text.splitlines():
        # A line naming a model, source or person is about authorship: it goes whole.
        if SIGNATURE_LINE.search(line) or (name_re is not None and name_re.search(line)):
            if line.strip():
                removed.append(line.strip())
            continue
        cleaned = INLINE_MARKER.sub("", line)
        if cleaned != line:
            removed.append(line.strip())
            if LEFTOVER.match(cleaned):
                continue
            cleaned = re.sub(r"\s{2,}", " ", cleaned).strip()
        kept.append(cleaned.rstrip())
    return "\n".join(kept).strip(), removed


def authorship_names(trial: Trial, extra: Iterable[str] = ()) -> set[str]:
    """Names that tell who or what wrote a report: the trial's people (usernames and full
    names), its model endpoints and the models the drafts reported, plus ``extra`` (e.g. the
    source names of a campaign)."""
    names = set(extra)
    for name, model_name in trial.model_endpoints.values_list("name", "model_name"):
        names.update({name, model_name})
    # Without the models' ordering, which put its columns in the DISTINCT (a row per draft).
    names.update(Draft.objects.filter(case__trial=trial).exclude(model_reported="").order_by()
                 .values_list("model_reported", flat=True).distinct())
    user = get_user_model()
    people = trial.memberships.order_by().values_list(
        f"user__{user.USERNAME_FIELD}", "user__first_name", "user__last_name").distinct()
    for username, first_name, last_name in people:
        # What User.get_username() and get_full_name() give, without a model per member.
        names.update({username, f"{first_name} {last_name}".strip()})
    return {n for n in names if n}
