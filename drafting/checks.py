"""One real request to a trial's model endpoint, before its drafts are made.

A synthetic radiograph, preprocessed exactly as drafts are, with a prompt built from the
endpoint's template and a sample history; the answer is what a coordinator needs to know the
endpoint works: the reply, the parsed report, the latency, or the error and whether a draft
would retry it. ``manage.py check_model`` prints it; the admin's "Check the model" button has the
worker run it (the API key is in the worker's environment) and shows it on the endpoint's page.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from django.utils import timezone

from trial.dicom.synthetic import make_cxr
from trial.models import Case

from .backends import ModelError, call_model
from .models import EndpointCheck, ModelEndpoint, PromptTemplateError
from .parsing import UnparseableReply, parse_report, report_warning
from .preprocess import dataset_png
from .queries import build_prompt, describe_endpoint

Status = EndpointCheck.Status


@dataclass
class CheckResult:
    """The lines to show, in order, and the verdict (``Status``) with its one-line summary."""

    status: str = Status.OK
    summary: str = ""
    lines: list[str] = field(default_factory=list)
    latency_ms: int | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def sample_case() -> Case:
    """An unsaved case with a typical history, to fill the endpoint's prompt template."""
    return Case(
        case_id="CHECK", age=54, sex=Case.Sex.FEMALE,
        chief_complaint="Cough and fever for 5 days",
        history="Smoker, 30 pack-years. No known lung disease.",
        lab_results="WBC 13.2 x10^9/L, CRP 86 mg/L",
        prior_imaging="None",
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines() or [""])


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def check_endpoint(endpoint: ModelEndpoint) -> CheckResult:
    """Send the test image to ``endpoint`` and say what came back (never raises for the
    model's or the template's faults: they are the answer)."""
    result = CheckResult(lines=list(describe_endpoint(endpoint)))
    out = result.lines.append

    def fail(summary: str) -> CheckResult:
        result.status, result.summary = Status.FAILED, summary
        return result

    with tempfile.TemporaryDirectory(prefix="cxr-check-model-") as tmp:
        path = make_cxr(Path(tmp) / "check.dcm", seed=20250301, rows=1024, columns=880)
        png = dataset_png(pydicom.dcmread(path), size=endpoint.image_size,
                          pad=endpoint.pad_value)
    try:
        prompt = build_prompt(endpoint, sample_case())
    except PromptTemplateError as exc:
        return fail(f"The endpoint's prompt template is invalid: {exc.message}")
    out(f"Test image: synthetic radiograph 880x1024 -> PNG {endpoint.image_size}x"
        f"{endpoint.image_size}, {len(png) / 1024:.0f} KiB")
    out("Prompt:")
    out(_indent(prompt))
    started = time.perf_counter()
    try:
        reply = call_model(endpoint, prompt=prompt, png=png)
    except ModelError as exc:
        kind = ("retryable: a draft would be tried again, up to max attempts"
                if exc.retryable else "not retryable: a draft would fail at once")
        out(f"Error ({kind}):")
        out(_indent(str(exc)))
        return fail("The model endpoint did not give a report: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    wall_ms = round((time.perf_counter() - started) * 1000)
    result.latency_ms = reply.latency_ms
    out("Reply:")
    out(_indent(reply.text))
    asked = endpoint.model_name if endpoint.backend != ModelEndpoint.Backend.DEMO else ""
    mismatch = f" (the endpoint asks for {asked})" if asked and reply.model != asked else ""
    out(f"Reported model: {reply.model or '(none)'}{mismatch}")
    out(f"Tokens: prompt {_or_dash(reply.prompt_tokens)}, "
        f"completion {_or_dash(reply.completion_tokens)}")
    out(f"Latency: model call {reply.latency_ms} ms, total {wall_ms} ms")
    try:
        findings, impression = parse_report(reply.text)
    except UnparseableReply as exc:
        return fail(f"The reply holds no report: {exc}")
    out("Parsed FINDINGS:")
    out(_indent(findings or "(empty)"))
    out("Parsed IMPRESSION:")
    out(_indent(impression or "(empty)"))
    warning = report_warning(reply.text, findings, impression)
    if warning:  # drafts would be stored done with this warning: no OK
        result.status = Status.WARNING
        result.summary = (f"{warning} Drafts made from such replies are stored with this "
                          "warning; check the model and the prompt template (it should ask "
                          "for FINDINGS and IMPRESSION).")
    elif endpoint.backend == ModelEndpoint.Backend.DEMO:
        result.summary = "The demo backend answered; no model was asked."
    else:
        result.summary = f"The endpoint answers with a report ({reply.latency_ms} ms)."
    return result


def run_check(check_pk: int) -> str:
    """Make the check ``check_pk`` asked for (the worker's side) and store its answer; its
    status. A check already answered is left as it is (a task delivered twice)."""
    check = EndpointCheck.objects.select_related("endpoint__trial").filter(pk=check_pk).first()
    if check is None or check.status != Status.QUEUED:
        return check.status if check else "missing"
    try:
        result = check_endpoint(check.endpoint)
    except Exception as exc:  # noqa: BLE001 - an unexpected fault is the check's answer too
        result = CheckResult(status=Status.FAILED,
                             summary=f"The check itself failed: {type(exc).__name__}: {exc}")
    EndpointCheck.objects.filter(pk=check.pk, status=Status.QUEUED).update(
        status=result.status, summary=result.summary[:2000], output=result.text,
        latency_ms=result.latency_ms, finished_at=timezone.now(),
    )
    return result.status


def request_check(endpoint: ModelEndpoint, *, by: object = None) -> EndpointCheck:
    """Record a check of ``endpoint`` as it is configured now and hand it to a worker; without
    a broker it runs here before this returns. A broker that refuses it fails the check."""
    from .tasks import check_endpoint_task, send_task

    check = EndpointCheck.objects.create(endpoint=endpoint, requested_by=by,
                                         fingerprint=endpoint.fingerprint)
    if not send_task(check_endpoint_task, (check.pk,), what=f"the check of {endpoint.name}"):
        EndpointCheck.objects.filter(pk=check.pk, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=timezone.now(),
            summary="The task queue (Redis) did not take the check: the broker is down or "
                    "unreachable, so no draft can be queued either (see the operations guide).")
    check.refresh_from_db()
    return check
