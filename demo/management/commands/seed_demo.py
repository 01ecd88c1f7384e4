"""``manage.py seed_demo``: build the demo trial (synthetic images), simulate part of its
readings, reviews and ratings (``--no-simulate`` to skip), and print the logins."""

from __future__ import annotations

import argparse
import os

from django.core.management.base import CommandError, CommandParser

from demo.build import DEMO_PASSWORD, DEMO_SLUG, build_demo, demo_exists, demo_logins
from demo.console import bars, quiet_task_logs
from demo.guard import add_throwaway, refuse_outside_demo
from trial.management.base import ServiceCommand

LEFT_PER_RATER = 3  # rating items each demo rater still has to rate (the rater's guide)


class Command(ServiceCommand):
    help = ("Create the demo trial: 3 sites, 6 randomised readers, 30 synthetic cases, assigned, "
            "two thirds of them read by simulation, about 90% of those signed and rated.")

    def add_arguments(self, parser: CommandParser) -> None:
        add_throwaway(parser)
        parser.add_argument("--cases", type=int, default=30, help="Enrolled cases (default 30).")
        parser.add_argument(
            "--excluded", type=int, default=2, help="Extra screened cases excluded (default 2)."
        )
        parser.add_argument("--seed", type=int, default=2025, help="Randomisation seed.")
        parser.add_argument(
            "--simulate", action=argparse.BooleanOptionalAction, default=True,
            help="Simulate readings, senior reviews and ratings of part of the cases, so the "
                 "demo has results to analyse and reports to rate (default on).",
        )
        parser.add_argument(
            "--simulate-fraction", type=float, default=2 / 3,
            help="Share of the cases simulated (default 2/3: the rest is left to read).",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing (but print the logins) when the demo trial exists already.",
        )

    def handle(self, *args: object, **options: object) -> None:
        refuse_outside_demo("seed_demo", options,
                            what="makes accounts with a known password, a coordinator among them")
        # Progress bars and a summary: no log line per AI draft made in-process.
        with quiet_task_logs():
            self._handle(options)

    def _handle(self, options: dict) -> None:
        if demo_exists():
            if not options["if_missing"]:
                raise CommandError(
                    f"The demo trial '{DEMO_SLUG}' exists already. Use --if-missing to keep it, "
                    "or start from an empty database (delete data/db.sqlite3)."
                )
            self.stdout.write(f"The demo trial '{DEMO_SLUG}' exists already; keeping it.")
        else:
            if options["cases"] < 1:
                raise CommandError("--cases must be at least 1.")
            self.stdout.write("Building the demo trial (synthetic images)...")
            progress, done = bars(self.stderr)
            try:
                build_demo(cases=options["cases"], excluded=options["excluded"],
                           seed=options["seed"], progress=progress)
            finally:
                done()
            self.stdout.write(self.style.SUCCESS("Demo trial created."))
            if options["simulate"]:
                self._simulate(options["seed"], options["simulate_fraction"])
        self._print_logins()

    def _simulate(self, seed: int, fraction: float) -> None:
        """Simulated readings, reviews and ratings (``demo.simulate``) of some cases."""
        from demo.simulate import simulate_trial
        from trial.models import Trial

        self.stdout.write("Simulating readings, reviews and ratings (synthetic)...")
        progress, done = bars(self.stderr)
        try:
            summary = simulate_trial(Trial.objects.get(slug=DEMO_SLUG), seed=seed,
                                     fraction=fraction, sign_fraction=0.9, progress=progress,
                                     leave_unrated=LEFT_PER_RATER)
        finally:
            done()
        for line in summary.lines():
            self.stdout.write(f"  {line}")
        from demo.metrics import demo_metrics

        run = demo_metrics(Trial.objects.get(slug=DEMO_SLUG), seed=seed)
        if run is not None:
            self.stdout.write(f"  Report metrics computed (rule-based labeller, gold labels "
                              f"from the synthetic truth) in {run.seconds:.1f} s.")

    def _print_logins(self) -> None:
        self.stdout.write("")
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD})")
        self.stdout.write(f"  {'username':<14} {'role':<20} site")
        for login in demo_logins():
            self.stdout.write(f"  {login.username:<14} {login.role:<20} {login.site}")
        self.stdout.write("")
        site = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"  # as scripts/demo.sh serves
        self.stdout.write(f"Coordinator: {site}/admin/   Everyone: {site}/")
