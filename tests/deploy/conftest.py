"""The deployment test (``test_stack.py``) runs last in a session: it builds Docker images and
runs the compose stack, which would otherwise compete for the CPU with timing-sensitive tests.
``-m "not deploy"`` leaves it out; so does ``SKIP_DEPLOY_TEST=1`` (never under ``CI=true``)."""

from __future__ import annotations

import sys

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deploy: the Docker deployment test (tests/deploy/): builds and runs the stack")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the deployment test to the end (after any reordering by pytest-django)."""
    deploy = [item for item in items if item.get_closest_marker("deploy")]
    if deploy and items[-len(deploy):] != deploy:
        others = [item for item in items if not item.get_closest_marker("deploy")]
        items[:] = others + deploy


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Steps of the deployment test are run in order on one stack: remember a failed step,
    so the next ones say so instead of failing for that reason (see ``_earlier_step``)."""
    report = yield
    if item.get_closest_marker("deploy") and report.when == "call" and report.failed:
        item.session.stash.setdefault(FAILED_STEP, item.name)
    return report


FAILED_STEP = pytest.StashKey[str]()


@pytest.fixture(autouse=True)
def _earlier_step(request: pytest.FixtureRequest) -> None:
    failed = request.session.stash.get(FAILED_STEP, None)
    if failed is not None and request.node.get_closest_marker("deploy"):
        pytest.fail(f"not run: the earlier step {failed} failed (the stack is not in the state "
                    "this step needs)", pytrace=False)


def pytest_terminal_summary(terminalreporter) -> None:
    """The deployment test's timings (build, up, each step, clean-up), when it ran."""
    module = sys.modules.get("tests.deploy.test_stack")
    timings = getattr(module, "TIMINGS", None)
    if timings:
        terminalreporter.section("deployment test timings")
        for name, seconds in timings.items():
            terminalreporter.line(f"{seconds:8.1f} s  {name}")
