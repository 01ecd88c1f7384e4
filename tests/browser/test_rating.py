"""The blinded rater workspace in a real Chromium (issue 5).

A rater works through their items with the keyboard only (digits and letters pick levels,
Enter submits, the next item opens), everything the rater's browser receives during a whole
campaign is searched for what would unblind them, and submitted ratings stay as they are unless
the campaign allows revision.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Error as PlaywrightError

from drafting.backends import DEMO_MODEL
from drafting.models import Draft, ModelEndpoint
from rating.models import RaterItem, Rating
from tests.support.browser_world import (
    DISPLAYED,
    expect,
    focused_matches,
    sign_in,
    tab_to,
    wait_displayed,
)
from tests.support.campaign_world import SIGNATURE, CampaignWorld, build_campaign_world
from trial.models import AuditEvent, Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ITEM_URL = re.compile(r"/rate/[\w-]+/\d+/[A-Z0-9]{10}/$")


def _eventually(check, *, timeout: float = 5.0):
    """Poll the database (the live server answers on another thread) until ``check()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _list_path(world: CampaignWorld) -> str:
    return f"/rate/{world.trial.slug}/{world.campaign.pk}/"


def _code(page) -> str:
    return page.url.rstrip("/").rsplit("/", 1)[1]


def _instruments(page) -> list[str]:
    return page.eval_on_selector_all("fieldset.instrument",
                                     "els => els.map(e => e.dataset.instrument)")


# Keys the rater presses for each instrument, and the value they give. Digits for levels,
# letters for Report A/B and acceptability (A/B also 1/2).
KEYS = {
    "likert": ("4", "4"),
    "radpeer": ("2", "2"),
    "acceptability": ("b", "B"),
    "preference": ("b", "B"),
    "source_id": ("1", "A"),
}
ZERO_ERRORS = {t: {"significant": 0, "insignificant": 0}
               for t in ("false_finding", "omitted_finding", "wrong_location", "wrong_severity",
                         "false_comparison", "omitted_comparison")}


def _rate_with_keys(page, codes: list[str]) -> dict:
    """Press the keys of every instrument in page order (no focus: each digit goes to the first
    unanswered instrument); the values expected in the database."""
    expected = {}
    for code in codes:
        if code == "errors":
            expected[code] = ZERO_ERRORS
            continue
        key, value = KEYS[code]
        page.keyboard.press(key)
        expect(page.locator(f"#instrument-{code} input[value='{value}']")).to_be_checked()
        expected[code] = value
    return expected


def _confirmation_is_asking(page) -> None:
    """The page's confirmation of a final rating is open, modal, focus on its Submit button."""
    expect(page.locator("#confirm-dialog")).to_be_visible()
    assert page.evaluate("() => document.getElementById('confirm-dialog').matches(':modal')")
    expect(page.get_by_role("alertdialog", name="Submit this rating?")).to_be_visible()
    expect(page.locator("#confirm-ok")).to_be_focused()


def _submit_and_follow(page, *, last: bool, final: bool = True) -> None:
    """Enter submits; where ratings are final (no revision), Enter again confirms."""
    if final:
        page.keyboard.press("Enter")
        _confirmation_is_asking(page)
    if last:
        page.keyboard.press("Enter")
        expect(page.locator("#all-done")).to_be_visible()
    else:
        before = page.url
        with page.expect_navigation(url=ITEM_URL):
            page.keyboard.press("Enter")
        assert page.url != before


# --- 1. keyboard only ------------------------------------------------------------------------

@pytest.fixture
def keyboard_world(tmp_path) -> CampaignWorld:
    # One case: Report (AI-assisted), Report (SCP), Report (AI draft alone) rated by Likert and
    # RADPEER; the AI-assisted/SCP pair by preference; the AI-alone/SCP pair by preference and
    # source identification. The two pairs share the SCP report, so they go to different
    # raters: each rater has four items.
    return build_campaign_world(tmp_path, cases=1, raters=2,
                                instruments=("likert", "radpeer", "preference", "source_id"),
                                include_ai_alone=True)


def test_rater_rates_every_instrument_with_the_keyboard(
    live_server, keyboard_world: CampaignWorld, page
) -> None:
    world = keyboard_world
    rater = next(r for r in world.raters if RaterItem.objects.filter(
        rater=r, item__instruments__contains=["source_id"]).exists())
    total = RaterItem.objects.filter(rater=rater).count()
    assert total == 4
    sign_in(page, live_server, rater.user, _list_path(world))
    expect(page.locator("#progress")).to_have_attribute("value", "0")
    expect(page.locator("#progress")).to_have_attribute("max", str(total))
    expect(page.locator("table.rating-list tbody tr")).to_have_count(total)
    expect(page.locator("table.rating-list")).to_contain_text("Item 1")

    with page.expect_navigation(url=ITEM_URL):
        page.keyboard.press("n")

    expected: dict[str, dict] = {}
    seen: set[str] = set()
    for n in range(1, total + 1):
        code = _code(page)
        expect(page.locator("#item-position")).to_have_text(f"Item {n}")
        codes = _instruments(page)
        seen.update(codes)
        if n == 1:
            wait_displayed(page)
            # Enter with nothing answered: nothing is sent, the page says what is missing.
            page.keyboard.press("Enter")
            expect(page.locator("#rating-status")).to_contain_text("Not submitted: answer")
            expect(page.locator("#rating-status")).to_have_attribute("aria-live", "polite")
            first = page.locator(f"#instrument-{codes[0]} .instrument-name").inner_text()
            expect(page.locator("#rating-status")).to_contain_text(first)
            expect(page.locator("#confirm-dialog")).to_be_hidden()  # nothing to confirm yet
            assert not Rating.objects.filter(rater_item__code=code).exists()
            wl = page.locator(DISPLAYED).get_attribute("data-wl")
        if "radpeer" in codes:
            expect(page.locator("#reference")).to_contain_text("Reference report")
            expect(page.locator("#reference")).to_contain_text("Reference opacity")
            # the scale's level definitions are on screen
            expect(page.locator("#instrument-radpeer")).to_contain_text(
                "Understandable miss, clinically significant.")
        else:
            expect(page.locator("#reference")).to_have_count(0)
        if "preference" in codes:
            expect(page.locator("#report-a h2")).to_have_text("Report A")
            expect(page.locator("#report-b h2")).to_have_text("Report B")
        else:
            expect(page.locator("#report h2")).to_have_text("Report")
        values = _rate_with_keys(page, codes)
        if n == 1:
            # the digits rated; the viewer did not take them as window presets
            assert page.locator(DISPLAYED).get_attribute("data-wl") == wl
            # Tab reaches an instrument; a digit then changes *that* instrument
            if "likert" in codes:
                tab_to(page, "#instrument-likert input")
                page.keyboard.press("5")
                expect(page.locator("#likert-5")).to_be_checked()
                assert focused_matches(page, "#likert-5")
                values["likert"] = "5"
                page.keyboard.press("Tab")  # the next instrument, naturally
                assert focused_matches(page, "#instrument-radpeer input")
                page.keyboard.press("3")
                expect(page.locator("#radpeer-3")).to_be_checked()
                values["radpeer"] = "3"
        expected[code] = values
        _submit_and_follow(page, last=n == total)

    assert seen == {"likert", "radpeer", "preference", "source_id"}
    ratings = {r.rater_item.code: r for r in
               Rating.objects.filter(rater_item__rater=rater).select_related("rater_item")}
    assert set(ratings) == set(expected)
    for code, values in expected.items():
        assert ratings[code].values == values, code
        assert ratings[code].rater_item.seconds > 0
        assert ratings[code].seconds > 0

    # The list shows everything rated; nothing left for N.
    page.goto(f"{live_server.url}{_list_path(world)}")
    expect(page.locator("#progress")).to_have_attribute("value", str(total))
    expect(page.locator("#all-done")).to_be_visible()


# --- 2. blinding -----------------------------------------------------------------------------

TEXTUAL = ("text/", "json", "javascript", "xml")


@dataclass
class Received:
    """Every response (status, headers, body) the rater's browser got, and every request URL
    and body it sent, during the whole session."""

    responses: list[tuple[str, str, str]] = field(default_factory=list)  # url, type, text
    binary: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)

    def attach(self, page) -> Received:
        page.on("request", self._request)
        page.on("response", self._response)
        # API answers pass through here, so their bodies are kept even when the page
        # navigates away at once (after a submission the next item opens).
        page.route(re.compile(r"/api/"), self._api)
        return self

    def _api(self, route) -> None:
        response = route.fetch()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        textual = any(t in response.headers.get("content-type", "") for t in TEXTUAL)
        if not textual:
            self.binary.append(route.request.url)
        body = response.body().decode("utf-8") if textual else ""
        self.responses.append((route.request.url, "api", f"{route.request.url}\n{headers}\n{body}"))
        route.fulfill(response=response)

    def _request(self, request) -> None:
        self.requests.append(f"{request.method} {request.url}\n{request.post_data or ''}")

    def _response(self, response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        kind = response.request.resource_type
        ctype = response.headers.get("content-type", "")
        body = ""
        if "/api/" in response.url:
            pass  # recorded by _api
        elif not (300 <= response.status < 400 or response.status in (204, 304)):
            try:
                raw = response.body()
            except PlaywrightError as exc:
                self.unread.append(f"{response.url}: {exc}")
                raw = b""
            if any(t in ctype for t in TEXTUAL):
                body = raw.decode("utf-8")
            else:
                self.binary.append(response.url)
        self.responses.append((response.url, kind, f"{response.url}\n{headers}\n{body}"))

    def texts(self) -> list[tuple[str, str]]:
        return ([(url, text) for url, _, text in self.responses]
                + [(f"request {r.splitlines()[0]}", r) for r in self.requests])

    def find(self, pattern: re.Pattern) -> list[str]:
        return [f"{where}: ...{text[max(0, m.start() - 60):m.end() + 60]!r}..."
                for where, text in self.texts() for m in [pattern.search(text)] if m]


def _word(text: str, *, case: bool = False) -> re.Pattern:
    """``text`` as a whole word (not inside a longer word, an opaque code or a slug)."""
    return re.compile(r"(?<![\w-])" + re.escape(text) + r"(?![\w-])",
                      0 if case else re.IGNORECASE)


@pytest.fixture
def blind_world(tmp_path) -> CampaignWorld:
    world = build_campaign_world(tmp_path, cases=2, raters=2, include_ai_alone=True)
    trial = world.trial
    # Distinctive names for everything a rater must not learn.
    trial.name = "AI-assisted Zanzibarian reporting trial"
    trial.ai_assisted_label = "Armlabel-Alpha"
    trial.scp_label = "Armlabel-Beta"
    trial.save()
    for i, member in enumerate(Membership.objects.filter(trial=trial).exclude(
            role=Role.RATER).select_related("user")):
        member.user.first_name, member.user.last_name = f"Personfirst{i}", f"Surnamov{i}"
        member.user.save()
    ModelEndpoint.objects.filter(trial=trial).update(name="Endpoint-Ospreyname",
                                                      model_name="ospreymodel-vl-7b")
    world.campaign.name = "Armlabel-Alpha versus Armlabel-Beta"
    world.campaign.save()
    return world


def test_nothing_a_rater_receives_reveals_the_source(
    live_server, blind_world: CampaignWorld, page
) -> None:
    world = blind_world
    trial = world.trial
    rater = world.raters[0]
    received = Received().attach(page)
    total = RaterItem.objects.filter(rater=rater).count()
    assert total == 8  # per case: 3 single items and one of its 2 pairs (the other rater's)

    sign_in(page, live_server, rater.user, "/")
    expect(page.locator("a.rating-campaign")).to_have_text(f"Campaign {world.campaign.pk}")
    with page.expect_navigation():
        page.locator("a.rating-campaign").click()
    with page.expect_navigation(url=ITEM_URL):
        page.keyboard.press("n")
    urls = {"items": f"/api/trials/{trial.slug}/rating/{world.campaign.pk}/items/"}
    for n in range(1, total + 1):
        wait_displayed(page)
        codes = _instruments(page)
        # the API reads of this item, as a client of the rater could make them
        page.evaluate("async (u) => { await (await fetch(u)).text(); }",
                      f"{urls['items']}{_code(page)}/")
        if "errors" in codes:
            page.locator("#errors-omitted_finding-significant").fill("1")
            page.evaluate("() => document.activeElement.blur()")
        _rate_with_keys(page, codes)
        _submit_and_follow(page, last=n == total)
    page.evaluate("async (u) => { await (await fetch(u)).text(); }", urls["items"])
    page.goto(f"{live_server.url}{_list_path(world)}")
    expect(page.locator("#all-done")).to_be_visible()
    page.goto(f"{live_server.url}/")
    # a submitted item seen again, read-only
    first = RaterItem.objects.get(rater=rater, position=1)
    page.goto(f"{live_server.url}{_list_path(world)}{first.code}/")
    wait_displayed(page)
    ratings = Rating.objects.filter(rater_item__rater=rater)
    assert ratings.count() == total
    typed = [r.values["errors"] for r in ratings if "errors" in r.values]
    assert len(typed) == 6 and all(
        e["omitted_finding"] == {"significant": 1, "insignificant": 0} for e in typed)

    # The collector worked: pages, scripts, JSON, the submissions; and content is kept.
    kinds = {kind for _, kind, _ in received.responses}
    assert {"document", "script", "fetch"} <= kinds, kinds
    assert sum(url.endswith("/submit/") for url, kind, _ in received.responses
               if kind == "api") == total
    assert any("rating.js" in url for url, _, _ in received.responses)
    assert received.binary, "the image pixels were fetched"
    assert not received.unread, received.unread
    assert received.find(_word("Kestrel", case=True)), "the AI-assisted report was shown"
    assert received.find(_word("Plover", case=True)), "the SCP report was shown"
    assert received.find(re.compile("Patchy airspace opacity")), "the AI draft alone was shown"
    assert received.find(re.compile("Reference opacity")), "the reference was shown"
    assert received.find(_word(rater.user.username)), "own username in the top bar"

    # Nothing that names the arm, the reader, the model or the source.
    others = Membership.objects.filter(trial=trial).exclude(role=Role.RATER).select_related(
        "user")
    forbidden: list[re.Pattern] = [
        _word("ai_assisted"), _word("ai-assisted"), _word("AI assisted"), _word("ai_alone"),
        _word("SCP", case=True), _word("scp"), _word("Standard clinical practice"),
        _word("published"), re.compile("Armlabel"), re.compile("Zanzibar"),
        re.compile("Quillfeather"), re.compile(re.escape(SIGNATURE)), re.compile("signed by", re.I),
        re.compile("Ospreyname"), re.compile("ospreymodel", re.I), _word("demo"),
        re.compile(re.escape(DEMO_MODEL), re.I), re.compile("not a model", re.I),
        re.compile("Personfirst"), re.compile("Surnamov"), re.compile(re.escape(trial.name)),
        _word(world.campaign.name), re.compile("Prospective quality"),
        re.compile(r'"(?:arm|arm_label|source|reader|model|case_id)"'), re.compile(r"data-arm"),
    ]
    for model in Draft.objects.filter(case__trial=trial).values_list("model_reported", flat=True):
        if model:
            forbidden.append(re.compile(re.escape(model), re.I))
    for member in others:
        forbidden.append(_word(member.user.username))
    for i in range(len(world.read.cases)):  # the DICOM files' accession and patient id
        forbidden += [_word(f"ACC{i}", case=True), _word(f"P{i}", case=True)]
    for case in world.read.cases:
        # The world's report texts quote the case id "(S1-0001)" as content; anywhere else
        # (a heading, an id, a URL, a JSON field) it would identify the case.
        forbidden.append(re.compile(r"(?<![\w(-])" + re.escape(case.case_id) + r"(?![\w-])"))
    leaks = {pattern.pattern: received.find(pattern) for pattern in forbidden}
    leaks = {k: v for k, v in leaks.items() if v}
    assert not leaks, "\n".join(leaks) + "\n" + json.dumps(leaks, indent=1)[:6000]


# --- 3. immutability and revision ----------------------------------------------------------

POST_AGAIN = """async ([url, value]) => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const r = await fetch(url, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
    body: JSON.stringify({values: {likert: value}})});
  return {status: r.status, body: await r.json()};
}"""


def _rate_first_item(page, live_server, world: CampaignWorld, key: str) -> RaterItem:
    rater = world.raters[0]
    sign_in(page, live_server, rater.user, _list_path(world))
    with page.expect_navigation(url=ITEM_URL):
        page.keyboard.press("n")
    code = _code(page)
    page.keyboard.press(key)
    if not world.campaign.allow_revision:  # final: Enter asks, Enter again confirms
        page.keyboard.press("Enter")
        _confirmation_is_asking(page)
    with page.expect_navigation(url=ITEM_URL):
        page.keyboard.press("Enter")
    item = RaterItem.objects.get(code=code)
    assert _eventually(lambda: Rating.objects.filter(rater_item=item).exists())
    return item


def test_a_submitted_rating_cannot_be_changed(live_server, tmp_path, page) -> None:
    world = build_campaign_world(tmp_path, cases=1, raters=1, instruments=("likert",))
    item = _rate_first_item(page, live_server, world, "4")
    assert item.rating.values == {"likert": "4"}

    page.goto(f"{live_server.url}{_list_path(world)}{item.code}/")
    expect(page.locator("#submitted-note")).to_be_visible()
    expect(page.locator("#submitted-note")).to_contain_text("final")
    expect(page.locator("#submit-rating")).to_be_hidden()
    expect(page.locator("#revise")).to_be_hidden()
    expect(page.locator("#likert-4")).to_be_checked()
    expect(page.locator("#likert-4")).to_be_disabled()
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#likert-2")).not_to_be_checked()

    answer = page.evaluate(POST_AGAIN, [f"/api/trials/{world.trial.slug}/rating/"
                                        f"{world.campaign.pk}/items/{item.code}/submit/", "1"])
    assert answer["status"] == 409, answer
    assert "revision" in answer["body"]["detail"]
    rating = Rating.objects.get(rater_item=item)
    assert rating.values == {"likert": "4"} and rating.revisions == 0
    assert not AuditEvent.objects.filter(action="rating.revised").exists()


def test_revision_where_the_campaign_allows_it(live_server, tmp_path, page) -> None:
    world = build_campaign_world(tmp_path, cases=1, raters=1, instruments=("likert",),
                                 allow_revision=True)
    item = _rate_first_item(page, live_server, world, "4")

    page.goto(f"{live_server.url}{_list_path(world)}{item.code}/")
    expect(page.locator("#submitted-note")).to_contain_text("revise")
    expect(page.locator("#likert-4")).to_be_disabled()
    tab_to(page, "#revise")
    with page.expect_response(lambda r: r.url.endswith("/open/")):
        page.keyboard.press("Enter")
    expect(page.locator("#likert-4")).to_be_enabled()
    expect(page.locator("#submit-rating")).to_be_visible()
    page.keyboard.press("2")
    expect(page.locator("#likert-2")).to_be_checked()
    # Revisable: no confirmation, Enter submits at once.
    with page.expect_navigation(url=ITEM_URL):  # the other item, not yet rated
        page.keyboard.press("Enter")
    rating = Rating.objects.get(rater_item=item)
    assert rating.values == {"likert": "2"} and rating.revisions == 1
    event = AuditEvent.objects.get(action="rating.revised")
    assert event.before == {"values": {"likert": "4"}}
    assert event.after["values"] == {"likert": "2"}



def _is_rating_submit(request) -> bool:
    return request.method == "POST" and request.url.endswith("/submit/")


def test_a_final_rating_is_confirmed_and_escape_or_cancel_sends_nothing(
    live_server, tmp_path, page
) -> None:
    world = build_campaign_world(tmp_path, cases=1, raters=1, instruments=("likert",))
    assert not world.campaign.allow_revision
    sign_in(page, live_server, world.raters[0].user, _list_path(world))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if _is_rating_submit(r) else None)
    native: list[str] = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    with page.expect_navigation(url=ITEM_URL):
        page.keyboard.press("n")
    wait_displayed(page)
    code = _code(page)
    dialog = page.locator("#confirm-dialog")
    wl = page.locator(DISPLAYED).get_attribute("data-wl")

    # digit, Enter: the confirmation asks (ratings are final here).
    page.keyboard.press("4")
    expect(page.locator("#likert-4")).to_be_checked()
    expect(dialog).to_be_hidden()
    page.keyboard.press("Enter")
    _confirmation_is_asking(page)
    expect(dialog).to_contain_text("Submit this rating? Ratings are final")
    # Behind it, digits neither rate nor reach the viewer.
    page.keyboard.press("2")
    expect(page.locator("#likert-4")).to_be_checked()
    assert page.locator(DISPLAYED).get_attribute("data-wl") == wl
    _confirmation_is_asking(page)

    # Escape cancels: nothing sent, the answer can still change.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#rating-status")).to_contain_text("Not submitted")
    page.keyboard.press("3")
    expect(page.locator("#likert-3")).to_be_checked()
    # The button asks too; Cancel cancels.
    page.locator("#submit-rating").click()
    _confirmation_is_asking(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert sent == []
    assert not Rating.objects.filter(rater_item__code=code).exists()

    # digit, Enter, Enter: submitted once, and the next item opens.
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    _confirmation_is_asking(page)
    with page.expect_navigation(url=ITEM_URL):
        page.keyboard.press("Enter")
    wait_displayed(page)
    assert len(sent) == 1 and native == []
    assert Rating.objects.get(rater_item__code=code).values == {"likert": "5"}
