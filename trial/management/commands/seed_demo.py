"""``manage.py seed_demo``: build the demo trial (synthetic images) and print the logins."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial.demo import DEMO_PASSWORD, DEMO_SLUG, build_demo, demo_exists, demo_logins


class Command(BaseCommand):
    help = "Create the demo trial: 3 sites, 6 randomised readers, 30 synthetic cases, assigned."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=int, default=30, help="Enrolled cases (default 30).")
        parser.add_argument(
            "--excluded", type=int, default=2, help="Extra screened cases excluded (default 2)."
        )
        parser.add_argument("--seed", type=int, default=2025, help="Randomisation seed.")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing (but print the logins) when the demo trial exists already.",
        )

    def handle(self, *args: object, **options: object) -> None:
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
            build_demo(
                cases=options["cases"], excluded=options["excluded"], seed=options["seed"]
            )
            self.stdout.write(self.style.SUCCESS("Demo trial created."))
        self._print_logins()

    def _print_logins(self) -> None:
        self.stdout.write("")
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD})")
        self.stdout.write(f"  {'username':<14} {'role':<20} site")
        for login in demo_logins():
            self.stdout.write(f"  {login.username:<14} {login.role:<20} {login.site}")
        self.stdout.write("")
        self.stdout.write("Coordinator: http://127.0.0.1:8000/admin/   Everyone: http://127.0.0.1:8000/")
