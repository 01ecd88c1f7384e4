"""The Content-Security-Policy in a real Chromium: every page works under it, with no violation.

The policy (config/settings.py) allows scripts from the site's own files only. Each test loads
pages with a watcher that records every ``securitypolicyviolation`` event (an init script,
installed before any script of the page runs, logs each to the console) and every console
message Chromium itself writes when it refuses something; then asserts there were none while
the page did its work: the viewer drew the image, the editor took typing and autosaved, the
rater's keys rated, the senior started from a report, the admin's import page polled and
reloaded (its script is a static file now), Swagger UI and ReDoc rendered from static files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.urls import reverse

from rating.models import RaterItem, Rating
from reader import reading as rd
from tests.support import factories
from tests.support.browser_world import (
    DISPLAYED,
    canvas_pixels,
    edit_key,
    expect,
    sign_in,
    wait_displayed,
)
from tests.support.campaign_world import build_campaign_world
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, ImportJob, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARK = "csp-violation:"
WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("MARK " + JSON.stringify({
    directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile,
    line: e.lineNumber, sample: e.sample, page: document.location.pathname}));
}, true);
""".replace("MARK", MARK)
REFUSED = re.compile(r"Content Security Policy|Refused to", re.I)


@dataclass
class CspWatch:
    """Violations (DOM events) and Chromium's refusals seen by a page, across navigations."""

    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page) -> CspWatch:
        page.context.add_init_script(WATCH)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        return self

    def _console(self, message) -> None:
        text = message.text
        if text.startswith(MARK):
            self.violations.append(text.removeprefix(MARK).strip())
        elif REFUSED.search(text):
            self.violations.append(f"console: {text}")
        elif message.type == "error" and not message.location.get("url", "").endswith(
                "/favicon.ico"):  # the admin has no favicon: Chromium's own request, a 404
            self.errors.append(f"{text} ({message.location.get('url')})")

    def assert_clean(self, page) -> None:
        page.wait_for_timeout(200)  # violation events are dispatched as tasks: let them arrive
        assert self.violations == [], "\n".join(self.violations)
        assert self.errors == [], "\n".join(self.errors)


def _csp(response) -> str:
    """The page came with the policy: scripts from the site's own files only."""
    header = response.headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}
    assert directives.get("script-src") == ["'self'"], header
    return header


# --- the watcher itself ----------------------------------------------------------------------

def test_the_watcher_sees_an_inline_script_refused(page, live_server) -> None:
    """Control: the policy is enforced in this Chromium and a violation is caught."""
    watch = CspWatch().attach(page)
    response = page.goto(f"{live_server.url}/accounts/login/")
    _csp(response)
    page.evaluate("""() => {
      const s = document.createElement("script");
      s.textContent = "window.__inlineRan = true;";
      document.body.appendChild(s);
    }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__inlineRan === true") is False
    assert any('"directive":"script-src-elem"' in v for v in watch.violations), watch.violations


# --- the reader, the senior and the rater -----------------------------------------------------

@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path, cases=1)


def test_reader_case_page_viewer_and_editor_work_under_the_policy(
        page, live_server, world: ReadWorld) -> None:
    slug = world.trial.slug
    watch = CspWatch().attach(page)
    sign_in(page, live_server, world.readers[Arm.AI_ASSISTED].user, f"/read/{slug}/")
    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.url == f"{live_server.url}/read/{slug}/1/"
    wait_displayed(page)  # viewer.js drew real pixels on the canvas
    assert canvas_pixels(page)["lit"] > 0

    # The JSON data blocks are read (not run): editor.js found its configuration.
    config = page.evaluate(
        "() => JSON.parse(document.getElementById('reading-config').textContent)")
    assert config["mode"] == "reading"
    page.keyboard.press("i")  # a viewer key: invert
    expect(page.locator(DISPLAYED)).to_have_attribute("data-invert", "1")

    findings = page.locator("#findings")
    page.keyboard.press(edit_key(page))
    expect(findings).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Typed under the policy.")
    expect(page.locator("#save-status")).to_have_text(re.compile(r"Saved \d"))
    watch.assert_clean(page)


def test_senior_review_page_works_under_the_policy(page, live_server, world: ReadWorld) -> None:
    for arm, text in ((Arm.AI_ASSISTED, "Report-alpha."), (Arm.SCP, "Report-beta.")):
        reading = rd.open_reading(world.assignment(arm), user=world.readers[arm].user)
        rd.record_event(reading, "image_displayed")
        rd.submit(reading, findings=text, impression="Fine.", version=0)
    slug, case = world.trial.slug, world.cases[0]
    watch = CspWatch().attach(page)
    sign_in(page, live_server, world.senior.user, f"/review/{slug}/")
    with page.expect_navigation():
        page.get_by_role("link", name=case.case_id).first.click()
    wait_displayed(page)
    assert page.evaluate(
        "() => JSON.parse(document.getElementById('reading-config').textContent).mode"
    ) == "review"
    page.get_by_role("button", name="Start from Report 2").click()
    findings = page.locator("#findings")
    expect(findings).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Senior addendum.")
    expect(page.locator("#save-status")).to_have_text(re.compile(r"Saved \d"))
    watch.assert_clean(page)


def test_rater_keyboard_rating_works_under_the_policy(page, live_server, tmp_path) -> None:
    world = build_campaign_world(tmp_path, cases=1, raters=1, instruments=("likert",))
    rater = world.raters[0]
    watch = CspWatch().attach(page)
    sign_in(page, live_server, rater.user, f"/rate/{world.trial.slug}/{world.campaign.pk}/")
    with page.expect_navigation():
        page.keyboard.press("n")
    wait_displayed(page)
    page.keyboard.press("4")
    expect(page.locator("#instrument-likert input[value='4']")).to_be_checked()
    page.keyboard.press("Enter")  # the campaign allows no revision: a confirmation first
    if RaterItem.objects.filter(rater=rater).count() > 1:  # the next item opens
        with page.expect_navigation(url=re.compile(r"/rate/[\w-]+/\d+/[A-Z0-9]{10}/$")):
            page.keyboard.press("Enter")
        wait_displayed(page)
    else:  # or the page says everything is done
        page.keyboard.press("Enter")
        expect(page.locator("#all-done")).to_be_visible()
    assert Rating.objects.filter(rater_item__rater=rater).exists()
    watch.assert_clean(page)


# --- the admin -------------------------------------------------------------------------------

def _admin_sign_in(page, live_server, user) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")
    assert page.url == f"{live_server.url}/admin/", page.url


def test_admin_import_job_page_polls_and_reloads_under_the_policy(page, live_server) -> None:
    site = factories.SiteFactory(code="H1")
    coordinator = factories.UserFactory(username="coord-csp", is_staff=True)
    factories.MembershipFactory(trial=site.trial, user=coordinator, role=Role.COORDINATOR,
                                site=site)
    job = ImportJob.objects.create(trial=site.trial, site=site, source="upload", total=2,
                                   processed=0, status=ImportJob.Status.RUNNING)
    progress_url = reverse("admin:trial_import_job_progress", args=[job.pk])
    watch = CspWatch().attach(page)
    _admin_sign_in(page, live_server, coordinator)

    with page.expect_response(lambda r: r.url.endswith(progress_url)) as polled:
        response = page.goto(f"{live_server.url}{reverse('admin:trial_import_job', args=[job.pk])}")
        _csp(response)
    assert polled.value.status == 200
    ImportJob.objects.filter(pk=job.pk).update(processed=1, imported=1)
    expect(page.locator("#import-count")).to_have_text("1/2")  # import_job.js updated it
    expect(page.locator("#import-imported")).to_have_text("1")

    ImportJob.objects.filter(pk=job.pk).update(
        processed=2, imported=2, status=ImportJob.Status.DONE,
        report=[{"file": "a.dcm", "status": "imported", "case": "C1", "reason": ""}])
    expect(page.locator("#import-report")).to_be_visible()  # finished: the page reloaded
    expect(page.locator("#import-report")).to_contain_text("a.dcm")
    watch.assert_clean(page)


def test_admin_pages_work_under_the_policy(page, live_server, world: ReadWorld) -> None:
    admin = factories.UserFactory(username="root-csp", is_staff=True, is_superuser=True)
    watch = CspWatch().attach(page)
    _admin_sign_in(page, live_server, admin)
    trial = world.trial
    for path in ("/admin/", "/admin/trial/trial/", f"/admin/trial/trial/{trial.pk}/change/",
                 "/admin/auth/user/add/", "/admin/auth/user/?q=root"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        _csp(response)
        page.wait_for_load_state("load")
    # admin JavaScript runs: the navigation sidebar's filter (nav_sidebar.js) narrows the list
    page.goto(f"{live_server.url}/admin/trial/trial/")
    sidebar_filter = page.locator("#nav-filter")
    if sidebar_filter.count():
        sidebar_filter.fill("zzz-no-such-model")
        expect(page.locator("#nav-sidebar tr.model-trial")).to_be_hidden()
    watch.assert_clean(page)


# --- the API docs ----------------------------------------------------------------------------

def _sign_in_to(page, live_server, user, path: str) -> None:
    """The API refuses (403) rather than redirects: sign in on the form, then go on to path."""
    page.goto(f"{live_server.url}/accounts/login/?next={path}")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")
    assert page.url == f"{live_server.url}{path}", page.url

def test_swagger_ui_renders_from_static_files_under_the_policy(page, live_server) -> None:
    user = factories.UserFactory(username="api-reader")
    watch = CspWatch().attach(page)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    _sign_in_to(page, live_server, user, "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "CXR reader-study trial platform API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert [u for u in requested if not u.startswith(live_server.url)] == []
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in u for u in requested)
    watch.assert_clean(page)


REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_redoc_renders_from_static_files_under_the_policy(page, live_server) -> None:
    """ReDoc renders, and its search worker (a blob:, allowed on this page only) starts. The
    one thing refused is the Redocly logo that ReDoc always puts under its menu, from Redocly's
    CDN: the policy keeps that request from leaving the browser (it never reaches the CDN)."""
    user = factories.UserFactory(username="api-reader-2")
    watch = CspWatch().attach(page)
    requested: list[str] = []
    failed: list[tuple[str, str | None]] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    _sign_in_to(page, live_server, user, "/api/redoc/")
    # ReDoc parses the whole schema (every operation with its error responses) before it
    # draws anything: on a loaded 2-core machine that takes longer than the usual wait.
    expect(page.locator("h1").first).to_contain_text("CXR reader-study trial platform API",
                                                     timeout=60_000)
    expect(page.locator("[role=menuitem]").first).to_be_attached()
    page.locator("input[placeholder='Search...']").fill("trial")  # the worker's search
    expect(page.locator("[data-role='search:results'] li, [role=search] li").first
           ).to_be_attached(timeout=30_000)
    assert any("/static/drf_spectacular_sidecar/redoc/" in u for u in requested)
    own = (live_server.url, f"blob:{live_server.url}/")  # the worker: a blob of this page
    assert [u for u in requested if not u.startswith(own)] == [REDOCLY_LOGO]
    assert any(u.startswith(f"blob:{live_server.url}/") for u in requested)
    assert (REDOCLY_LOGO, "csp") in failed  # refused by the policy, never sent

    page.wait_for_timeout(200)
    logo = [v for v in watch.violations if REDOCLY_LOGO in v]
    assert logo and all("img-src" in v for v in logo), logo
    watch.violations = [v for v in watch.violations if REDOCLY_LOGO not in v]
    watch.assert_clean(page)
