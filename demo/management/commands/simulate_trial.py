"""``manage.py simulate_trial --trial SLUG``: simulated readings, reviews and ratings.

For demos and for checking the analysis against a known truth (``demo.simulate``). Cases
already read are never touched: a second run with the same seed and fraction does nothing.
"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from demo.console import bars, quiet_task_logs
from demo.guard import add_throwaway, refuse_outside_demo
from demo.simulate import simulate_trial
from trial.management.base import ServiceCommand
from trial.models import Trial


class Command(ServiceCommand):
    help = ("Simulate readings, senior reviews and blinded ratings of a trial's assigned cases "
            "from a known generating model (through the real services; times from the model).")

    def add_arguments(self, parser: CommandParser) -> None:
        add_throwaway(parser)
        parser.add_argument("--trial", required=True, help="The trial's slug.")
        parser.add_argument("--seed", type=int, default=2025, help="Seed (default 2025).")
        parser.add_argument("--fraction", type=float, default=1.0,
                            help="Share of the assigned cases to simulate (default 1).")
        parser.add_argument("--sign-fraction", type=float, default=1.0,
                            help="Share of the simulated cases whose review is signed.")

    def handle(self, *args: object, **options: object) -> None:
        refuse_outside_demo("simulate_trial", options,
                            what="writes simulated readings, reviews and ratings into a trial")
        trial = Trial.objects.filter(slug=options["trial"]).first()
        if trial is None:
            raise CommandError(f"No trial with slug {options['trial']!r}.")
        progress, done = bars(self.stderr)
        try:
            with quiet_task_logs():  # no log line per task run in-process
                summary = simulate_trial(trial, seed=options["seed"],
                                         fraction=options["fraction"],
                                         sign_fraction=options["sign_fraction"],
                                         progress=progress)
        finally:
            done()
        if not summary.cases_simulated:
            why = (f"all {summary.cases_already_read} selected cases were already read"
                   if summary.cases_already_read else "no selected case could be read")
            self.stdout.write(self.style.WARNING(
                f"Nothing to simulate: {why} (it never redoes a case; use a larger "
                "--fraction to add the rest)."))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"simulated {summary.cases_simulated} cases of '{trial.slug}'."))
        for line in summary.lines():
            self.stdout.write(line)
