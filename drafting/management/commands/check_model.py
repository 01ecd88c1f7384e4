"""``manage.py check_model --trial SLUG [--endpoint NAME]``: one real request to the model.

Run it before a trial's drafts are generated, from a machine with the worker's environment (the
API key is read from the variable the endpoint names there): it sends a synthetic radiograph,
preprocessed exactly as drafts are, with a prompt built from the endpoint's template and a
sample history, and prints what came back, or the error and whether a draft would retry it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pydicom
from django.core.management.base import CommandError, CommandParser

from drafting.backends import ModelError, call_model
from drafting.models import ModelEndpoint, PromptTemplateError
from drafting.parsing import UnparseableReply, parse_report, report_warning
from drafting.preprocess import dataset_png
from drafting.queries import active_endpoint, build_prompt, describe_endpoint
from trial.dicom.synthetic import make_cxr
from trial.management.base import ServiceCommand, find_trial
from trial.models import Case, Trial


def sample_case() -> Case:
    """An unsaved case with a typical history, to fill the endpoint's prompt template."""
    return Case(
        case_id="CHECK", age=54, sex=Case.Sex.FEMALE,
        chief_complaint="Cough and fever for 5 days",
        history="Smoker, 30 pack-years. No known lung disease.",
        lab_results="WBC 13.2 x10^9/L, CRP 86 mg/L",
        prior_imaging="None",
    )


def find_endpoint(trial: Trial, name: str | None) -> ModelEndpoint:
    if name:
        endpoint = ModelEndpoint.objects.filter(trial=trial, name=name).first()
        if endpoint is None:
            known = ", ".join(trial.model_endpoints.values_list("name", flat=True)) or "none"
            raise CommandError(f"Trial {trial.slug!r} has no endpoint named {name!r} "
                               f"(endpoints: {known}).")
        return endpoint
    endpoint = active_endpoint(trial)
    if endpoint is None:
        raise CommandError(f"Trial {trial.slug!r} has no active model endpoint: add one in the "
                           "admin or the API, or name one with --endpoint.")
    return endpoint


class Command(ServiceCommand):
    help = ("Send one test image (synthetic, preprocessed as drafts are) to a trial's model "
            "endpoint and print the reply, the parsed report and the latency, or the error.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--endpoint", help="Endpoint name (default: the trial's active one).")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        endpoint = find_endpoint(trial, options.get("endpoint"))
        out = self.stdout.write
        for line in describe_endpoint(endpoint):
            out(line)
        with tempfile.TemporaryDirectory(prefix="cxr-check-model-") as tmp:
            path = make_cxr(Path(tmp) / "check.dcm", seed=20250301, rows=1024, columns=880)
            png = dataset_png(pydicom.dcmread(path), size=endpoint.image_size,
                              pad=endpoint.pad_value)
        try:
            prompt = build_prompt(endpoint, sample_case())
        except PromptTemplateError as exc:
            raise CommandError(f"The endpoint's prompt template is invalid: {exc.message}"
                               ) from None
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
            raise CommandError("The model endpoint did not give a report.") from None
        wall_ms = round((time.perf_counter() - started) * 1000)
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
            raise CommandError(f"The reply holds no report: {exc}") from None
        out("Parsed FINDINGS:")
        out(_indent(findings or "(empty)"))
        out("Parsed IMPRESSION:")
        out(_indent(impression or "(empty)"))
        warning = report_warning(reply.text, findings, impression)
        if warning:  # drafts would be stored done with this warning: no OK
            out(self.style.WARNING(f"WARNING: {warning} Drafts made from such replies are "
                                   "stored with this warning; check the model and the prompt "
                                   "template (it should ask for FINDINGS and IMPRESSION)."))
        if endpoint.backend == ModelEndpoint.Backend.DEMO:
            out("Note: the demo backend answered; no model was asked.")
        elif not warning:
            out(self.style.SUCCESS("OK: the endpoint answers with a report."))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines() or [""])


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
