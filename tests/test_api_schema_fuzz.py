"""Schema-driven fuzzing of the whole API (schemathesis): no 500, every response as published.

The schema is the one the site serves (``/api/schema/?format=json``). Every operation is called
by every role (token in the ``Authorization`` header; anonymous without) with requests
schemathesis generates from the schema, in-process through Django's WSGI handler. Path
parameters are mostly real ones of ``tests.support.fuzz_world`` (trial A's objects, the rater's
item codes, worklist positions), else generated (mostly 404s). Each response must be no server
error, have a documented status code and content type, and match its documented schema.

Each request runs in a savepoint that is rolled back: every call meets the same realistic
world, and nothing leaks between calls or out of the test (the ``db`` fixture's transaction).
The run is bounded (``EXAMPLES`` per operation and role, derandomized so CI is repeatable);
``FUZZ_EXAMPLES`` in the environment asks for more.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import close_old_connections, transaction
from django.test import Client
from drf_spectacular.settings import patched_settings, spectacular_settings
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.fuzz_world import ROLES, FuzzWorld, build_fuzz_world
from trial.api.schema import document_errors

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))  # per operation and role
ERROR_HOOK = "trial.api.schema.document_errors"

# The roles that may do an operation are fuzzed more (their requests get past the permission
# checks); the others mostly check the 403/404 answers.
PRIVILEGED = ("coordinator", "superuser")
ROLE_OF_PATH = {"/worklist/": ("ai_reader", "scp_reader"), "/reviews/": ("senior",),
                "/rating/": ("rater",)}


@contextmanager
def errors_documented() -> Iterator[None]:
    """The error hook, if ``SPECTACULAR_SETTINGS`` does not name it yet (see
    ``test_the_schema_settings_name_the_error_hook``)."""
    if document_errors in spectacular_settings.POSTPROCESSING_HOOKS:
        yield
        return
    hooks = [f"{hook.__module__}.{hook.__qualname__}"
             for hook in spectacular_settings.POSTPROCESSING_HOOKS]
    with patched_settings({"POSTPROCESSING_HOOKS": [*hooks, ERROR_HOOK]}):
        yield


@contextmanager
def in_process_requests() -> Iterator[list[str]]:
    """Requests through Django's WSGI handler on this thread's connection (the test's
    transaction): as Django's test client does, keep request start/end from closing it.
    Yields the tracebacks of the exceptions that became a 500."""
    tracebacks: list[str] = []

    def record(sender, request=None, **kwargs) -> None:
        tracebacks.append(traceback.format_exc())

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.got_request_exception.connect(record)
    try:
        yield tracebacks
    finally:
        signals.got_request_exception.disconnect(record)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@dataclass
class Findings:
    calls: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: dict[tuple, str] = field(default_factory=dict)

    def add(self, key: tuple, text: str) -> None:
        self.failures.setdefault(key, text)

    def report(self) -> str:
        return "\n\n".join(f"{' / '.join(map(str, key))}\n{text}"
                           for key, text in sorted(self.failures.items()))


def served_schema(world: FuzzWorld) -> dict:
    client = Client()
    client.force_login(world.access.users["superuser"])
    with errors_documented():
        response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def strategy_for(operation, world: FuzzWorld):
    """Requests with real path parameters (several combinations) or generated ones."""
    names = [p.name for p in operation.path_parameters]
    choices = [world.path_values(operation.path, name) for name in names]
    combos = list(itertools.product(*choices)) if all(choices) else []
    if len(combos) > 6:  # the real trial first, then a spread of the rest
        combos = combos[:3] + combos[3::max(1, len(combos) // 3)][:3]
    strategies = [operation.as_strategy(path_parameters=dict(zip(names, combo, strict=True)))
                  for combo in combos]
    return st.one_of(*strategies, operation.as_strategy())


def roles_for(path: str) -> tuple[str, ...]:
    special = next((roles for part, roles in ROLE_OF_PATH.items() if part in path), ())
    return tuple(ROLES) if not special else (*special, *(r for r in ROLES if r not in special))


def examples_for(path: str, role: str) -> int:
    special = next((roles for part, roles in ROLE_OF_PATH.items() if part in path), PRIVILEGED)
    return EXAMPLES * 3 if role in special or role in PRIVILEGED else EXAMPLES


def fuzz(operation, role: str, strategy, world: FuzzWorld, found: Findings,
         tracebacks: list[str], examples: int) -> None:
    headers = world.headers(role)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    @given(case=strategy)
    def run(case) -> None:
        tracebacks.clear()
        with transaction.atomic():
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        found.calls += 1
        found.by_status[response.status_code] = found.by_status.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                detail = str(failure)[:1500]
                if response.status_code >= 500 and tracebacks:
                    detail += "\n" + tracebacks[-1][-3000:]
                body = response.content[:300].decode(errors="replace")
                request = f"{case.method} {case.formatted_path} query={case.query} " \
                          f"body={str(case.body)[:200]}"
                found.add((operation.label, failure.title, response.status_code),
                          f"role {role}: {request}\n-> {body}\n{detail}")

    run()


def test_every_operation_answers_as_published_for_every_role(tmp_path) -> None:
    world = build_fuzz_world(tmp_path / "dicom")
    raw = served_schema(world)
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = WSGIHandler()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(
        len([m for m in item if m != "parameters"]) for item in raw["paths"].values())

    found = Findings()
    started = time.monotonic()
    with in_process_requests() as tracebacks:
        for operation in operations:
            strategy = strategy_for(operation, world)
            for role in roles_for(operation.path):
                fuzz(operation, role, strategy, world, found, tracebacks,
                     examples_for(operation.path, role))
    elapsed = time.monotonic() - started
    print(f"\nfuzzed {len(operations)} operations x {len(ROLES)} roles: {found.calls} calls "
          f"in {elapsed:.0f} s; statuses {dict(sorted(found.by_status.items()))}")
    assert not found.failures, f"{len(found.failures)} problems:\n\n{found.report()}"
    assert found.by_status.get(200, 0) > 0 and found.by_status.get(201, 0) > 0


def test_the_schema_generates_without_warnings_with_the_error_hook(db, tmp_path) -> None:
    out = tmp_path / "schema.json"
    with errors_documented():
        call_command("spectacular", "--fail-on-warn", "--format", "openapi-json",
                     "--file", str(out), stdout=io.StringIO())
    schema = json.loads(out.read_text())
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert {"400", "403", "404", "409"} <= set(operation["responses"]), (method, path)


def test_the_schema_settings_name_the_error_hook() -> None:
    """``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]`` must end with the error hook (after
    drf-spectacular's own enum hook), or the served schema documents no error response."""
    assert document_errors in spectacular_settings.POSTPROCESSING_HOOKS, (
        f'add "{ERROR_HOOK}" to SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] in config/settings.py'
    )
