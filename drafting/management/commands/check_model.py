"""``manage.py check_model --trial SLUG [--endpoint NAME]``: one real request to the model.

Run it before a trial's drafts are generated, from a machine with the worker's environment (the
API key is read from the variable the endpoint names there): it sends a synthetic radiograph,
preprocessed exactly as drafts are, with a prompt built from the endpoint's template and a
sample history, and prints what came back, or the error and whether a draft would retry it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from drafting.checks import check_endpoint, sample_case
from drafting.models import EndpointCheck, ModelEndpoint
from drafting.queries import active_endpoint
from trial.management.base import ServiceCommand, find_trial
from trial.models import Trial

__all__ = ["Command", "find_endpoint", "sample_case"]


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
        result = check_endpoint(endpoint)
        for line in result.lines:
            self.stdout.write(line)
        if result.status == EndpointCheck.Status.FAILED:
            raise CommandError(result.summary)
        if result.status == EndpointCheck.Status.WARNING:
            self.stdout.write(self.style.WARNING(f"WARNING: {result.summary}"))
        elif endpoint.backend == ModelEndpoint.Backend.DEMO:
            self.stdout.write("Note: the demo backend answered; no model was asked.")
        else:
            self.stdout.write(self.style.SUCCESS("OK: the endpoint answers with a report."))
