"""Schema-driven fuzzing of the whole API (schemathesis): no 500, every response as published.

The schema is the one the site serves (``/api/schema/?format=json``). Every operation is called
by every role (token in the ``Authorization`` header; anonymous without) with requests
schemathesis generates from the schema, in-process through Django's WSGI handler. Path
parameters are mostly real ones of ``tests.support.fuzz_world`` (trial A's objects, the rater's
item codes, worklist positions), else generated (mostly 404s). Each response must be no server
error, have a documented status code and content type, and match its documented schema.

Three passes: valid requests by every role; invalid bodies and query strings (schemathesis's
negative mode) by the role the operation is for; and, with trial A locked, valid requests by
coordinators, statisticians and superusers. Each request runs in a savepoint that is rolled
back: every call meets the same realistic world, and nothing leaks between calls or out of the
test (the ``db`` fixture's transaction). The run is bounded (``EXAMPLES`` per operation and
role, derandomized); ``FUZZ_EXAMPLES`` in the environment asks for more.

What random requests rarely get right (uploads of real files, the next step of a flow, a
rating with every instrument answered) is done as a person would in
``test_realistic_requests_answer_as_published``, each response checked the same way.

Until ``SPECTACULAR_SETTINGS`` names the error hook (``trial.api.schema.document_errors``),
these tests add it themselves; ``test_the_schema_settings_name_the_error_hook`` fails until
then.
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
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from drafting.models import Draft
from tests.support.access_world import POSITIONS
from tests.support.factories import PASSWORD, UserFactory
from tests.support.fuzz_world import ROLES, FuzzWorld, build_fuzz_world
from trial.api.schema import document_errors
from trial.dicom.synthetic import make_cxr
from trial.models import Case, Trial

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))  # per operation and role
ERROR_HOOK = "trial.api.schema.document_errors"

# The roles that may do an operation are fuzzed more (their requests get past the permission
# checks); the others mostly check the 403/404 answers.
PRIVILEGED = ("coordinator", "superuser")
LOCKED_ROLES = ("coordinator", "statistician", "superuser")
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
    successes: dict[str, int] = field(default_factory=dict)  # by operation: 2xx/3xx answers
    failures: dict[tuple, str] = field(default_factory=dict)

    def add(self, key: tuple, text: str) -> None:
        self.failures.setdefault(key, text)

    def report(self) -> str:
        return "\n\n".join(f"{' / '.join(map(str, key))}\n{text}"
                           for key, text in sorted(self.failures.items()))


def short_traceback(text: str) -> str:
    """The project's own frames of a traceback, and the exception."""
    lines = text.rstrip().splitlines()
    keep = [f"{line.strip()}: {lines[i + 1].strip()}" for i, line in enumerate(lines[:-1])
            if line.strip().startswith('File "') and ".venv" not in line
            and "site-packages" not in line]
    return "\n".join([*keep, lines[-1] if lines else ""])


def served_schema(world: FuzzWorld) -> dict:
    client = Client()
    client.force_login(world.access.users["superuser"])
    with errors_documented():
        response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def strategy_for(operation, world: FuzzWorld):
    """Requests with real path parameters (trial A's objects, and one of trial B) or
    generated ones (mostly 404s)."""
    names = [p.name for p in operation.path_parameters]
    choices = [world.path_values(operation.path, name) for name in names]
    combos = list(itertools.product(*choices)) if all(choices) else []
    slugs = [names.index(n) for n in ("trial_slug", "slug") if n in names]
    if slugs:  # every combination in trial A, the first in trial B
        mine = [c for c in combos if c[slugs[0]] == world.trial.slug]
        combos = mine + [c for c in combos if c not in mine][:1]
    real = [operation.as_strategy(path_parameters=dict(zip(names, combo, strict=True)))
            for combo in combos]
    return st.one_of(*real, operation.as_strategy())


def negative_strategy_for(operation, world: FuzzWorld):
    """Invalid data where the operation takes some (body, query), in trial A; else None."""
    if not operation.body and not list(operation.query):
        return None
    names = [p.name for p in operation.path_parameters]
    params = {name: world.path_values(operation.path, name)[:1] for name in names}
    if not all(params.values()):
        return None
    return operation.as_strategy(GenerationMode.NEGATIVE,
                                 path_parameters={k: v[0] for k, v in params.items()})


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
        found.successes[operation.label] = (found.successes.get(operation.label, 0)
                                            + (response.status_code < 400))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                detail = str(failure)[:1500]
                if response.status_code >= 500 and tracebacks:
                    detail += "\n" + short_traceback(tracebacks[-1])
                body = response.content[:300].decode(errors="replace")
                request = f"{case.method} {case.formatted_path} query={case.query} " \
                          f"body={str(case.body)[:200]}"
                found.add((operation.label, failure.title, response.status_code),
                          f"role {role}: {request}\n-> {body}\n{detail}")

    run()


def loaded_schema(world: FuzzWorld):
    raw = served_schema(world)
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = WSGIHandler()
    return raw, schema


def test_every_operation_answers_as_published_for_every_role(tmp_path) -> None:
    world = build_fuzz_world(tmp_path / "dicom")
    raw, schema = loaded_schema(world)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in raw["paths"].values())

    found = Findings()
    started = time.monotonic()
    with in_process_requests() as tracebacks:
        for operation in operations:
            strategy = strategy_for(operation, world)
            for role in roles_for(operation.path):
                fuzz(operation, role, strategy, world, found, tracebacks,
                     examples_for(operation.path, role))
        # Invalid bodies and query strings (real path parameters: a URL that does not resolve
        # is Django's HTML 404, outside the API).
        for operation in operations:
            strategy = negative_strategy_for(operation, world)
            if strategy is None:
                continue
            special = next((r for part, r in ROLE_OF_PATH.items() if part in operation.path),
                           ())
            for role in dict.fromkeys((*special[:1], "coordinator")):
                fuzz(operation, role, strategy, world, found, tracebacks, EXAMPLES)
        # Once the trial is locked (the unblinded key is shown, every change is refused).
        Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
        for operation in operations:
            strategy = strategy_for(operation, world)
            for role in LOCKED_ROLES:
                fuzz(operation, role, strategy, world, found, tracebacks, EXAMPLES)
    elapsed = time.monotonic() - started
    never = sorted(label for label, n in found.successes.items() if not n)
    print(f"\nfuzzed {len(operations)} operations: {found.calls} calls in {elapsed:.0f} s; "
          f"statuses {dict(sorted(found.by_status.items()))}; never a success "
          f"(see test_realistic_requests_answer_as_published): {len(never)}\n  "
          + "\n  ".join(never))
    assert not found.failures, f"{len(found.failures)} problems:\n\n{found.report()}"
    assert found.by_status.get(200, 0) > 0 and found.by_status.get(201, 0) > 0


@dataclass
class Caller:
    """One realistic request through schemathesis (same transport and checks as the fuzzer),
    which must get ``expected``."""

    schema: object
    world: FuzzWorld
    tracebacks: list[str]

    def __call__(self, role: str, method: str, path: str, expected: int, *,
                 params: dict | None = None, body=NOT_SET, media_type: str | None = None,
                 query: dict | None = None, headers: dict | None = None):
        operation = self.schema[path][method]
        if "{trial_slug}" in path:
            params = {"trial_slug": self.world.trial.slug, **(params or {})}
        if media_type is None and body is not NOT_SET:
            media_type = "application/json"
        case = operation.Case(path_parameters=params or {}, body=body, media_type=media_type,
                              query=query)
        sent = {**self.world.headers(role), **(headers or {})}
        self.tracebacks.clear()
        with transaction.atomic():
            response = case.call(headers=sent)
        trace = short_traceback(self.tracebacks[-1]) if self.tracebacks else ""
        assert response.status_code == expected, (
            f"{role}: {method} {case.formatted_path} -> {response.status_code} "
            f"{response.content[:600]!r}\n{trace}")
        case.validate_response(response, checks=CHECKS, headers=sent)
        return response


def test_realistic_requests_answer_as_published(tmp_path) -> None:
    """What random requests rarely get right (valid uploads, the next step of a flow, a
    rating with every instrument answered), done as a person would, each response checked
    like the fuzzer's: the success answers of every kind of operation match the schema."""
    world = build_fuzz_world(tmp_path / "dicom")
    _, schema = loaded_schema(world)
    access = world.access
    site = access.members["senior"].site.code
    cases = {c.case_id: c.pk for c in Case.objects.filter(trial=world.trial)}
    T = "/api/trials/{trial_slug}"
    with in_process_requests() as tracebacks:
        call = Caller(schema, world, tracebacks)
        # Trials and set-up.
        call("superuser", "POST", "/api/trials/", 201,
             body={"name": "Pilot", "slug": "pilot", "block_sizes": [2, 4]})
        for role in ("rater", "ai_reader", "statistician", "coordinator"):
            call(role, "GET", "/api/trials/", 200)
            call(role, "GET", "/api/trials/{slug}/", 200, params={"slug": world.trial.slug})
        call("other_coordinator", "PATCH", "/api/trials/{slug}/", 200,
             params={"slug": access.other.slug}, body={"name": "Trial B, renamed"})
        made = call("coordinator", "POST", f"{T}/sites/", 201,
                    body={"code": "A9", "name": "Hospital A9"}).json()
        call("coordinator", "DELETE", f"{T}/sites/{{id}}/", 204, params={"id": made["id"]})
        newcomer = UserFactory(username="newcomer")
        member = call("coordinator", "POST", f"{T}/members/", 201,
                      body={"username": newcomer.username, "role": "reader", "site": site})
        call("coordinator", "POST", f"{T}/allocations/", 201,
             body={"membership": member.json()["id"]})
        rows = call("coordinator", "POST", f"{T}/allocations/allocate-all/", 201).json()
        assert [r["reader"] for r in rows] == [access.users["idle_reader"].username]
        call("statistician", "GET", f"{T}/allocations/", 200)
        call("statistician", "GET", f"{T}/randomization/", 200)
        call("other_coordinator", "POST", f"{T}/randomization/generate/", 201,
             params={"trial_slug": access.other.slug}, body={})
        # Cases: the flow of a new case, and the screened one excluded.
        new = call("coordinator", "POST", f"{T}/cases/", 201,
                   body={"case_id": "A-NEW", "site": site, "age": 61, "sex": "M"}).json()
        assert new["consent_recorded_by"] is None
        done = call("coordinator", "POST", f"{T}/cases/{{id}}/screen/", 200,
                    params={"id": new["id"]}, body={"answers": {"suspected_disease": True}})
        done = call("coordinator", "POST", f"{T}/cases/{{id}}/consent/", 200,
                    params={"id": new["id"]})
        assert done.json()["consent_recorded_by"] == access.users["coordinator"].username
        # (Its images are not imported yet: refused, as documented.)
        call("coordinator", "POST", f"{T}/cases/{{id}}/enrol/", 409, params={"id": new["id"]})
        call("coordinator", "PATCH", f"{T}/cases/{{id}}/", 200, params={"id": new["id"]},
             body={"history": "Two weeks of cough."})
        call("coordinator", "POST", f"{T}/cases/{{id}}/exclude/", 200,
             params={"id": cases["A-SCREENED"]}, body={"reason": "Withdrew."})
        call("coordinator", "POST", f"{T}/assign/", 201, body={})
        call("coordinator", "GET", f"{T}/assignments/", 200)
        call("ai_reader", "GET", f"{T}/assignments/", 200)
        audit = call("coordinator", "GET", f"{T}/audit/", 200).json()["results"]
        assert any(event["actor"] is None for event in audit)
        # Images: an upload of a real (synthetic) DICOM file, its job, the viewer's data.
        upload = tmp_path / "upload.dcm"
        make_cxr(upload, seed=99, rows=64, columns=48, accession="ACC99", patient_id="P99")
        job = call("coordinator", "POST", f"{T}/images/", 202, media_type="multipart/form-data",
                   body={"site": site, "files": [upload.read_bytes()]}).json()
        call("coordinator", "GET", f"{T}/import-jobs/{{id}}/", 200, params={"id": job["id"]})
        image = access.images["A"].pk
        call("coordinator", "GET", f"{T}/images/{{id}}/", 200, params={"id": image})
        call("ai_reader", "GET", "/api/images/{id}/viewer/", 200, params={"id": image})
        pixels = call("ai_reader", "GET", "/api/images/{id}/pixels/", 200, params={"id": image})
        call("ai_reader", "GET", "/api/images/{id}/pixels/", 304, params={"id": image},
             headers={"If-None-Match": pixels.headers["etag"][0]})
        # Drafts and model endpoints.
        failed = Draft.objects.get(status=Draft.Status.FAILED).pk
        call("coordinator", "POST", f"{T}/drafts/{{id}}/retry/", 202, params={"id": failed})
        call("statistician", "GET", f"{T}/drafts/", 200, query={"status": "done"})
        call("coordinator", "POST", f"{T}/model-endpoints/", 201,
             body={"name": "Spare", "backend": "demo", "active": False})
        # Reading: an unopened case, then open, save, submit; an amendment; an event.
        position = POSITIONS["scp_reader"]["D"]
        state = call("scp_reader", "GET", f"{T}/worklist/{{position}}/", 200,
                     params={"position": position}).json()
        assert state["status"] == "new" and "findings" not in state
        state = call("scp_reader", "POST", f"{T}/worklist/{{position}}/open/", 200,
                     params={"position": position}).json()
        text = {"findings": "Clear lungs.", "impression": "Normal."}
        saved = call("scp_reader", "POST", f"{T}/worklist/{{position}}/save/", 200,
                     params={"position": position}, body={**text, "version": state["version"]})
        call("scp_reader", "POST", f"{T}/worklist/{{position}}/submit/", 200,
             params={"position": position}, body={**text, "version": saved.json()["version"]})
        call("ai_reader", "POST", f"{T}/worklist/{{position}}/amend/", 200,
             params={"position": POSITIONS["ai_reader"]["C"]},
             body={**text, "reason": "Typo in the impression.", "password": PASSWORD})
        call("ai_reader", "POST", f"{T}/worklist/{{position}}/events/", 204,
             params={"position": POSITIONS["ai_reader"]["D"]}, body={"kind": "heartbeat"})
        call("ai_reader", "GET", f"{T}/worklist/", 200)
        # Review: save and sign the open one, read the signed one.
        case_a, case_b = access.cases["A"].pk, access.cases["B"].pk
        call("senior", "GET", f"{T}/reviews/", 200)
        review = call("senior", "GET", f"{T}/reviews/{{case_pk}}/", 200,
                      params={"case_pk": case_a}).json()
        saved = call("senior", "POST", f"{T}/reviews/{{case_pk}}/save/", 200,
                     params={"case_pk": case_a}, body={**text, "version": review["version"]})
        call("senior", "POST", f"{T}/reviews/{{case_pk}}/sign/", 200,
             params={"case_pk": case_a},
             body={**text, "version": saved.json()["version"], "password": PASSWORD})
        call("senior", "POST", f"{T}/reviews/{{case_pk}}/open/", 200, params={"case_pk": case_b})
        # Campaigns: the draft one built, opened, closed; a retrospective one with reports.
        draft = {"id": world.draft_campaign.pk}
        call("coordinator", "POST", f"{T}/campaigns/{{id}}/build/", 200, params=draft)
        call("coordinator", "POST", f"{T}/campaigns/{{id}}/open/", 200, params=draft)
        call("coordinator", "POST", f"{T}/campaigns/{{id}}/close/", 200, params=draft)
        retro = call("coordinator", "POST", f"{T}/campaigns/", 201,
                     body={"name": "Retrospective", "kind": "retrospective",
                           "instruments": ["likert"], "raters_per_item": 1}).json()
        csv = ("case_id,source,findings,impression\n"
               f"{access.cases['C'].case_id},model-x,Opacity.,Pneumonia.\n").encode()
        call("coordinator", "POST", f"{T}/campaigns/{{id}}/reports/", 201,
             params={"id": retro["id"]}, media_type="multipart/form-data", body={"file": csv})
        reports = call("coordinator", "GET", f"{T}/campaigns/{{id}}/reports/", 200,
                       params={"id": retro["id"]}).json()
        assert isinstance(reports, list) and len(reports) == 1
        call("coordinator", "PATCH", f"{T}/campaigns/{{id}}/", 200, params={"id": retro["id"]},
             body={"raters_per_item": 2})
        call("coordinator", "DELETE", f"{T}/campaigns/{{id}}/", 204, params={"id": retro["id"]})
        call("statistician", "GET", f"{T}/campaigns/", 200)
        # Rating: every instrument of an item answered.
        mine = {"campaign": world.campaign.pk}
        items = call("rater", "GET", f"{T}/rating/{{campaign}}/items/", 200, params=mine).json()
        code = items["items"][0]["code"]
        item = call("rater", "GET", f"{T}/rating/{{campaign}}/items/{{code}}/", 200,
                    params={**mine, "code": code}).json()
        call("rater", "POST", f"{T}/rating/{{campaign}}/items/{{code}}/open/", 200,
             params={**mine, "code": code})
        values = {i["code"]: {} if i["code"] == "errors" else i["levels"][0]["code"]
                  for i in item["instruments"]}
        call("rater", "POST", f"{T}/rating/{{campaign}}/items/{{code}}/submit/", 200,
             params={**mine, "code": code}, body={"values": values})
        # The unblinded key, once the trial is locked; then every change is refused.
        call("statistician", "GET", f"{T}/campaigns/{{id}}/key/", 409,
             params={"id": world.campaign.pk})
        Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.LOCKED)
        key = call("statistician", "GET", f"{T}/campaigns/{{id}}/key/", 200,
                   params={"id": world.campaign.pk}).json()
        assert isinstance(key, list) and key
        call("coordinator", "POST", f"{T}/sites/", 409, body={"code": "A8", "name": "Late"})
        # Refusals: anonymous, no role in the trial, a role that may not, a validation error.
        call("anonymous", "GET", "/api/trials/", 403)
        call("other_coordinator", "GET", f"{T}/cases/", 404)
        call("rater", "GET", f"{T}/cases/", 403)
        call("coordinator", "POST", f"{T}/campaigns/", 400, body={"name": ""})
        # What the fuzzer found as 500s: NUL characters reaching a query (PostgreSQL refuses
        # them), a number past the column's range, and (hole 19) a huge page limit.
        call("coordinator", "POST", f"{T}/members/", 400,
             body={"username": "\x00reader", "role": "reader"})
        call("coordinator", "POST", f"{T}/cases/", 400,
             body={"case_id": "A-NUL", "site": f"{site}\x00", "sex": "F"})
        call("statistician", "GET", f"{T}/drafts/", 400, query={"case": "A\x00"})
        call("rater", "GET", f"{T}/rating/{{campaign}}/items/{{code}}/", 404,
             params={**mine, "code": "\x00"})
        call("superuser", "PATCH", f"{T}/campaigns/{{id}}/", 400,
             params={"id": world.draft_campaign.pk}, body={"raters_per_item": 86400})
        call("statistician", "GET", f"{T}/cases/", 200, query={"limit": 2**64, "offset": 2**70})


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
