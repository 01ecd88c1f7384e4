"""The README's demo path on its embedded default: SQLite, in-process tasks, a real web server;
and ``seed_demo``'s simulation of part of the trial."""

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from demo.console import quiet_task_logs
from demo.simulate import CAMPAIGN_NAME
from metrics.models import MetricsRun
from rating.models import Campaign, Rating
from reader.models import Reading, Review
from tests.support.servers import _wait_for_port, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_on_sqlite_and_serves_the_login_page(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "DEMO_MODE": "1",
        "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input"], env=env, check=True, capture_output=True)
    seeded = subprocess.run(
        [*manage, "seed_demo", "--if-missing", "--cases", "6", "--excluded", "0"],
        env=env, check=True, capture_output=True, text=True,
    )
    assert "coordinator" in seeded.stdout and "cxr-demo" in seeded.stdout
    assert (tmp_path / "db.sqlite3").exists()
    # The console shows progress bars and a summary, not a log line per AI draft made
    # in-process ("Task drafting... succeeded in 0.08s").
    assert "succeeded" not in seeded.stderr and "Task " not in seeded.stderr
    assert "No hostname was supplied" not in seeded.stderr
    assert "[" + "#" * 30 + "] 6/6 images" in seeded.stderr.replace("\r", "\n")

    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, timeout=30, proc=server)
        deadline = time.monotonic() + 10
        while True:
            response = httpx.get(f"http://127.0.0.1:{port}/accounts/login/")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200
        admin = httpx.get(f"http://127.0.0.1:{port}/admin/login/")
        assert admin.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


# Committed for real: enrolment queues each AI draft on commit (made at once, in-process), and
# the simulation reads only cases whose draft is ready.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("options", "simulated"), [
    ([], 4),  # default: two thirds of the 6 cases
    (["--simulate-fraction", "0.5"], 3),
    (["--no-simulate"], 0),
])
def test_seed_demo_simulates_part_of_the_trial_unless_told_not_to(options: list[str],
                                                                  simulated: int) -> None:
    out = io.StringIO()
    call_command("seed_demo", "--cases", "6", "--excluded", "0", "--throwaway", *options,
                 stdout=out)
    readings = Reading.objects.filter(assignment__case__trial__slug="demo")
    assert readings.filter(status=Reading.Status.SUBMITTED).count() == 2 * simulated
    assert readings.count() == 2 * simulated  # nothing left open
    signed = Review.objects.filter(case__trial__slug="demo", status=Review.Status.SIGNED).count()
    ratings = Rating.objects.filter(rater_item__campaign__trial__slug="demo",
                                    rater_item__campaign__name=CAMPAIGN_NAME).count()
    runs = MetricsRun.objects.filter(trial__slug="demo")
    if simulated:
        assert 0 < signed <= simulated  # about 90% of the simulated cases are signed
        assert ratings > 0
        assert "Simulating readings, reviews and ratings" in out.getvalue()
        # the report metrics are computed, with the synthetic truth as the gold standard
        (run,) = runs
        assert run.results["gold"]["name"] == "Demo truth (synthetic)"
        assert run.results["labeller"]["kind"] == "rules"
        assert {c["key"] for c in run.results["comparisons"]} == {"prospective-final",
                                                                  "prospective-draft"}
        assert run.results["kappa"] and run.results["labeller_validation"]
        assert "Report metrics computed" in out.getvalue()
    else:
        assert (signed, ratings) == (0, 0)
        assert not Campaign.objects.filter(trial__slug="demo").exists()
        assert "Simulating" not in out.getvalue()
        assert not runs.exists()


def test_quiet_task_logs_hide_each_task_but_not_an_error(caplog) -> None:
    trace = logging.getLogger("celery.app.trace")
    before = trace.level
    with caplog.at_level(logging.INFO, logger="celery.app.trace"):
        with quiet_task_logs():
            trace.info("Task drafting.generate_draft[1] succeeded in 0.1s")
            trace.error("Task drafting.generate_draft[2] raised unexpected: ValueError()")
        trace.info("after the command: as configured again")
    messages = [r.getMessage() for r in caplog.records if r.name == "celery.app.trace"]
    assert messages == ["Task drafting.generate_draft[2] raised unexpected: ValueError()",
                        "after the command: as configured again"]
    assert trace.level == before
