"""The reading workspace in a real Chromium: readers of both arms read cases end to end.

Each test is a reader's flow through the pages (``/read/<slug>/`` and ``/read/<slug>/<pos>/``)
with the page's own JavaScript (editor.js, viewer.js) talking to the live server, and then
checks what the server stored.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from drafting.models import Draft
from drafting.parsing import UnparseableReply, parse_report
from drafting.queries import current_draft
from reader import reading as svc
from reader.models import Amendment, Reading, ReadingEvent
from tests.support.browser_world import (
    DISPLAYED,
    Traffic,
    canvas_pixels,
    edit_key,
    expect,
    focused_matches,
    is_event,
    reopen,
    sign_in,
    tab_to,
    wait_displayed,
)
from tests.support.factories import PASSWORD
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, Signature

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAVED = re.compile(r"Saved \d")


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path, cases=2)


def _reading(world: ReadWorld, arm: str, index: int = 0) -> Reading:
    return Reading.objects.get(assignment=world.assignment(arm, index))


def _is_submit(response) -> bool:
    return response.url.endswith("/submit/") and response.request.method == "POST"


def _is_submit_request(request) -> bool:
    return request.url.endswith("/submit/") and request.method == "POST"


def _confirm_dialog_is_asking(page, title: str = "Submit this report?") -> None:
    """The page's confirmation is open, modal, and its confirm button has the focus."""
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("open", "")
    assert page.evaluate("() => document.getElementById('confirm-dialog').matches(':modal')")
    expect(dialog.locator("h2")).to_have_text(title)
    expect(page.locator("#confirm-ok")).to_be_focused()


def _submit_with_the_keyboard(page):
    """Ctrl+Enter, then Enter on the confirmation; the submit response."""
    page.keyboard.press("Control+Enter")
    _confirm_dialog_is_asking(page)
    with page.expect_response(_is_submit) as submitted:
        page.keyboard.press("Enter")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    return submitted.value


def _eventually(check, *, timeout: float = 5.0):
    """Poll the database (the server answers on another thread) until ``check()`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_ai_arm_reader_reads_a_case_end_to_end(live_server, world: ReadWorld, page) -> None:
    slug, total = world.trial.slug, len(world.cases)
    sign_in(page, live_server, world.readers[Arm.AI_ASSISTED].user, f"/read/{slug}/")

    expect(page.locator("#progress")).to_have_attribute("value", "0")
    expect(page.locator("#progress")).to_have_attribute("max", str(total))
    expect(page.locator(".progress-line")).to_contain_text(f"0 of {total} submitted")
    expect(page.locator("#next-case")).to_have_attribute("href", f"/read/{slug}/1/")

    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.url == f"{live_server.url}/read/{slug}/1/"

    assignment = world.assignment(Arm.AI_ASSISTED)
    draft = current_draft(assignment.case)
    assert draft is not None and draft.status == Draft.Status.DONE and draft.findings
    findings, impression = page.locator("#findings"), page.locator("#impression")
    expect(page.locator("#ai-banner")).to_be_visible()
    expect(page.locator("#ai-banner")).to_contain_text("AI draft")
    expect(findings).to_have_value(draft.findings)
    expect(impression).to_have_value(draft.impression)
    wait_displayed(page)

    page.keyboard.press(edit_key(page))
    expect(findings).to_be_focused()
    page.keyboard.press("Control+End")
    added = " Reader checked: no pneumothorax."
    page.keyboard.type(added)
    assert _submit_with_the_keyboard(page).status == 200

    # Submitted, locked, and no reading time shown to the reader.
    expect(page.locator("#submitted-note")).to_have_text("Submitted. The report is locked.")
    expect(findings).not_to_be_editable()
    expect(impression).not_to_be_editable()
    expect(page.locator("#next-line")).to_be_visible()
    # editor.js hides the button in the same step as it adds the note; asserted at the end.
    submit_still_shown = page.locator("#submit").is_visible()

    reading = _reading(world, Arm.AI_ASSISTED)
    assert reading.status == Reading.Status.SUBMITTED
    assert reading.findings == draft.findings + added
    assert reading.impression == draft.impression
    assert reading.started_from == Reading.Start.DRAFT
    assert reading.draft_id == draft.pk
    assert reading.first_image_at is not None and reading.reading_time_s > 0

    page.goto(f"{live_server.url}/read/{slug}/")
    expect(page.locator(".progress-line")).to_contain_text(f"1 of {total} submitted")
    assert not submit_still_shown, "the Submit button is still shown on the locked report"


def test_scp_reader_reads_a_case_and_never_receives_the_draft(
    live_server, world: ReadWorld, page
) -> None:
    slug = world.trial.slug
    markers = []
    for case in world.cases:  # distinctive draft text for every case of the trial
        token = uuid.uuid4().hex[:12]
        findings_text = f"Draftfindings{token} right basal consolidation"
        impression_text = f"Draftimpression{token} lobar pneumonia"
        Draft.objects.filter(case=case).update(
            findings=findings_text, impression=impression_text,
            raw_response=f"FINDINGS:\n{findings_text}\n\nIMPRESSION:\n{impression_text}\n")
        markers += [f"Draftfindings{token}", f"Draftimpression{token}"]

    traffic = Traffic().attach(page)
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/")
    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.url == f"{live_server.url}/read/{slug}/1/"

    reading = _reading(world, Arm.SCP)
    assert reading.started_from in (Reading.Start.TEMPLATE, Reading.Start.BLANK)
    assert reading.draft_id is None
    start_findings, start_impression = "", ""
    if reading.started_from == Reading.Start.TEMPLATE:
        try:
            start_findings, start_impression = parse_report(world.trial.report_template)
        except UnparseableReply:
            pytest.fail("started from a template that does not parse")
    expect(page.locator("#ai-banner")).to_have_count(0)
    expect(page.locator("#findings")).to_have_value(start_findings)
    expect(page.locator("#impression")).to_have_value(start_impression)
    wait_displayed(page)

    page.keyboard.press(edit_key(page))
    expect(page.locator("#findings")).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.type("Heart size normal. Lungs clear.")
    page.locator("#impression").press_sequentially("No acute disease.")
    assert _submit_with_the_keyboard(page).status == 200
    expect(page.locator("#submitted-note")).to_contain_text("Submitted")

    # Everything the reader can reach through the API, fetched by the page itself.
    positions = [a.position for a in world.readers[Arm.SCP].assignments.order_by("position")]
    image_ids = [image.pk for image in reading.assignment.case.images.all()]
    urls = [f"/api/trials/{slug}/worklist/"]
    urls += [f"/api/trials/{slug}/worklist/{p}/" for p in positions]
    urls += [f"/api/images/{pk}/viewer/" for pk in image_ids]
    fetched = page.evaluate("""async (urls) => {
        const out = [];
        for (const url of urls) {
          const r = await fetch(url, {credentials: "same-origin",
                                      headers: {Accept: "application/json"}});
          out.push([url, r.status, await r.text()]);
        }
        return out;
    }""", urls)
    assert [(url, status) for url, status, _ in fetched] == [(url, 200) for url in urls]
    typed = start_findings + "Heart size normal. Lungs clear."
    assert Reading.objects.get(pk=reading.pk).findings == typed
    assert f'"findings":"{typed}"' in fetched[1][2].replace(": ", ":")

    # The recorder saw the pages and the API calls (else "no marker" would prove nothing).
    seen = traffic.urls()
    assert f"{live_server.url}/read/{slug}/" in seen
    assert f"{live_server.url}/read/{slug}/1/" in seen
    assert any(url.endswith("/static/reader/editor.js") for url in seen)
    assert any(url.endswith("/submit/") for url in seen)
    assert any(url.endswith("/events/") for url, _ in traffic.posts)
    assert not [u for u in traffic.unread if "/read/" in u or "/api/" in u], traffic.unread

    body_text = page.locator("body").inner_text()
    for marker in markers:
        assert traffic.containing(marker) == [], marker
        assert [url for url, _, text in fetched if marker.lower() in text.lower()] == []
        assert marker not in body_text
    for word in ('"ai_draft"', 'id="ai-banner"'):  # the draft field, the AI banner
        assert traffic.containing(word) == [], word

    # Control: the same case, opened in the AI arm, does start from the marked draft.
    ai_assignment = next(a for a in world.readers[Arm.AI_ASSISTED].assignments.all()
                         if a.case_id == reading.assignment.case_id)
    ai_reading = svc.open_reading(ai_assignment, user=None)
    assert ai_reading.findings.startswith("Draftfindings")


def test_reading_time_is_the_time_the_reader_spent(live_server, world: ReadWorld, page) -> None:
    slug = world.trial.slug
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/")

    page.goto(f"{live_server.url}/read/{slug}/1/", wait_until="commit")
    t0 = wait_displayed(page)
    page.keyboard.press(edit_key(page))
    expect(page.locator("#findings")).to_be_focused()
    page.keyboard.type("Heart size normal.", delay=40)
    time.sleep(2.0)  # the reader looks at the image
    page.keyboard.type(" Lungs clear.", delay=40)
    assert _submit_with_the_keyboard(page).status == 200
    measured = time.monotonic() - t0

    reading = _reading(world, Arm.SCP)
    assert reading.status == Reading.Status.SUBMITTED
    assert measured > 2.5
    assert abs(reading.reading_time_s - measured) <= 0.5, (reading.reading_time_s, measured)
    assert reading.gap_s == 0
    # Stored for the coordinator and the analysis; the reader is not told, now or later.
    expect(page.locator("#submitted-note")).to_have_text("Submitted. The report is locked.")
    page.reload()
    expect(page.locator("#submitted-note")).to_have_text("Submitted. The report is locked.")
    body = page.locator("body").inner_text().lower()
    assert "reading time" not in body and f"{reading.reading_time_s:.1f}" not in body


def test_autosave_survives_reloads_and_the_clock_keeps_running(
    browser, live_server, world: ReadWorld, page
) -> None:
    slug = world.trial.slug
    url = f"{live_server.url}/read/{slug}/1/"
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/")
    findings = page.locator("#findings")

    with page.expect_response(is_event("image_displayed")):
        page.goto(url, wait_until="commit")
        t_first = wait_displayed(page)
    reading = _reading(world, Arm.SCP)
    first_image_at = reading.first_image_at
    assert first_image_at is not None
    key = f"reading:{slug}:1:{reading.pk}"

    # 1. Typed, autosaved, reloaded: the text comes back from the server.
    findings.click()
    page.keyboard.type("Saved text.")
    expect(page.locator("#save-status")).to_have_text(SAVED)
    assert _reading(world, Arm.SCP).findings == "Saved text."
    assert page.evaluate("(k) => localStorage.getItem(k)", key) is None  # saved: copy dropped
    with page.expect_response(is_event("image_displayed")):
        page.reload(wait_until="commit")
        wait_displayed(page)
    expect(findings).to_have_value("Saved text.")
    reading = _reading(world, Arm.SCP)
    assert reading.first_image_at == first_image_at  # the clock continues, not restarted
    assert reading.events.filter(kind=ReadingEvent.Kind.RESUMED).count() == 1

    # 2. Typed and reloaded at once (no time to autosave): nothing is lost.
    findings.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Typed then reloaded.")
    page.reload()
    expect(findings).to_have_value("Saved text. Typed then reloaded.")
    assert _eventually(
        lambda: _reading(world, Arm.SCP).findings == "Saved text. Typed then reloaded.")
    # (What the page says after such a reload is test_typing_just_before_a_reload_...'s
    # subject; reload once more, as its message asks, to start clean.)
    page.reload()
    expect(findings).to_have_value("Saved text. Typed then reloaded.")

    # 3. The network is down and the browser dies before it can save: started again from its
    # profile (cookies and localStorage), the page restores the text typed and saves it.
    page.wait_for_selector(DISPLAYED, state="attached")
    page.context.set_offline(True)
    findings.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Offline words.")
    page.wait_for_function("(k) => (localStorage.getItem(k) || '').includes('Offline words.')",
                           arg=key)
    expect(page.locator("#save-status")).to_contain_text("no connection")
    assert "Offline words." not in _reading(world, Arm.SCP).findings
    # The dead browser stays offline (and open, so it sends nothing on closing) until the end.
    restarted = reopen(browser, page.context)
    again = restarted.new_page()
    expected = "Saved text. Typed then reloaded. Offline words."
    with again.expect_request(lambda r: r.url.endswith("/save/")) as restored_save:
        again.goto(url)
    # A save sent by the new page before any typing: the text came from localStorage.
    assert "Offline words." in (restored_save.value.post_data or "")
    expect(again.locator("#findings")).to_have_value(expected)
    expect(again.locator("#save-status")).to_have_text(SAVED)
    assert _reading(world, Arm.SCP).findings == expected

    # Submit: the reading time runs from the first display, across the reloads.
    wait_displayed(again)
    assert _submit_with_the_keyboard(again).status == 200
    elapsed = time.monotonic() - t_first
    reading = _reading(world, Arm.SCP)
    assert reading.status == Reading.Status.SUBMITTED and reading.findings == expected
    assert reading.first_image_at == first_image_at
    assert reading.events.filter(kind=ReadingEvent.Kind.RESUMED).count() == 4
    assert reading.reading_time_s >= elapsed - 0.5, (reading.reading_time_s, elapsed)
    assert reading.reading_time_s <= elapsed + 0.5, (reading.reading_time_s, elapsed)
    restarted.close()


def test_typing_just_before_a_reload_is_kept_and_autosave_goes_on(
    live_server, world: ReadWorld, page
) -> None:
    """A reload within the autosave delay: the page must neither lose the text nor mistake its
    own last save (sent as the old page went away) for another window's."""
    slug = world.trial.slug
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/1/")
    findings, status = page.locator("#findings"), page.locator("#save-status")
    wait_displayed(page)
    findings.click()
    page.keyboard.type("Typed just before the reload.")
    page.reload()
    expect(findings).to_have_value("Typed just before the reload.")
    assert _eventually(lambda: _reading(world, Arm.SCP).findings == findings.input_value())

    findings.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" And more after it.")
    # Autosave must go on: the status still says "Saved" from before, so wait for the server.
    assert _eventually(lambda: _reading(world, Arm.SCP).findings == (
        "Typed just before the reload. And more after it."))
    expect(status).to_have_text(SAVED)
    expect(status).not_to_contain_text("another window")


def test_signing_out_removes_the_report_copies_kept_in_the_browser(
    live_server, world: ReadWorld, page
) -> None:
    """On a shared workstation the next person must not find this reader's text."""
    slug = world.trial.slug
    sign_in(page, live_server, world.readers[Arm.AI_ASSISTED].user, f"/read/{slug}/1/")
    wait_displayed(page)
    page.locator("#findings").click()
    page.keyboard.type(" kept locally")
    copies = "Object.keys(localStorage).filter(k => k.startsWith('reading:')).length"
    assert page.evaluate(copies) == 1
    with page.expect_navigation():
        page.locator("#sign-out button").click()
    assert page.evaluate(copies) == 0


def test_a_stale_tab_cannot_overwrite_a_newer_save(live_server, world: ReadWorld, page) -> None:
    slug = world.trial.slug
    url = f"{live_server.url}/read/{slug}/1/"
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/")
    page.goto(url)
    other = page.context.new_page()
    other.goto(url)
    for tab in (page, other):
        expect(tab.locator("#findings")).to_be_editable()

    page.locator("#findings").press_sequentially("Written in the first window.")
    expect(page.locator("#save-status")).to_have_text(SAVED)

    with other.expect_response(lambda r: r.url.endswith("/save/")) as refused:
        other.locator("#findings").press_sequentially("Written in the second window.")
    assert refused.value.status == 409
    expect(other.locator("#save-status")).to_contain_text("saved in another window")
    other.locator("#findings").blur()  # a blur does not retry the stale save either
    other.close()

    reading = _reading(world, Arm.SCP)
    assert reading.findings == "Written in the first window."
    assert reading.version == 1
    assert reading.status == Reading.Status.OPEN


def test_window_level_changes_the_pixels_on_the_canvas(
    live_server, world: ReadWorld, page
) -> None:
    slug = world.trial.slug
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/1/")
    wait_displayed(page)
    viewer, canvas = page.locator("#viewer"), page.locator("#viewer canvas")
    initial_wl = viewer.get_attribute("data-wl")
    assert initial_wl and re.fullmatch(r"-?[\d.]+,[\d.]+", initial_wl), initial_wl
    before = canvas_pixels(page)
    assert before["lit"] > 0, before  # real pixels, not a black canvas

    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 160, y + 120, steps=8)
    page.mouse.up()
    expect(viewer).not_to_have_attribute("data-wl", initial_wl)
    dragged_wl = viewer.get_attribute("data-wl")
    centre, width = (float(v) for v in dragged_wl.split(","))
    initial_centre, initial_width = (float(v) for v in initial_wl.split(","))
    assert centre > initial_centre and width > initial_width  # down = level up, right = wider
    dragged = canvas_pixels(page)
    assert dragged["sum"] != before["sum"], (before, dragged)

    page.keyboard.press("i")  # the canvas has focus after the drag
    expect(viewer).to_have_attribute("data-invert", "1")
    assert canvas_pixels(page)["sum"] != dragged["sum"]

    page.keyboard.press("r")
    expect(viewer).to_have_attribute("data-wl", initial_wl)
    expect(viewer).to_have_attribute("data-invert", "0")
    assert canvas_pixels(page)["sum"] == before["sum"]


def test_the_keyboard_alone_reads_submits_amends_and_moves_on(
    live_server, world: ReadWorld, page
) -> None:
    slug = world.trial.slug
    sign_in(page, live_server, world.readers[Arm.AI_ASSISTED].user, f"/read/{slug}/")
    findings = page.locator("#findings")

    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.url == f"{live_server.url}/read/{slug}/1/"
    wait_displayed(page)
    original = findings.input_value()
    key = edit_key(page)  # "write in FINDINGS", from the page's Keyboard list

    page.keyboard.press(key)
    expect(findings).to_be_focused()
    page.keyboard.press("Control+Home")
    page.keyboard.type("Keyboard only. ")
    page.keyboard.press("Escape")
    expect(findings).not_to_be_focused()
    page.keyboard.press(key)  # works again once out of the text
    expect(findings).to_be_focused()
    assert findings.input_value() == "Keyboard only. " + original  # the key was not typed
    page.keyboard.press("Escape")

    done, total = map(int, page.locator("#done-count").inner_text().split("/"))
    tab_to(page, "#submit")
    assert _submit_with_the_keyboard(page).status == 200
    expect(page.locator("#submitted-note")).to_be_visible()
    expect(page.locator("#next-case")).to_be_focused()
    expect(page.locator("#done-count")).to_have_text(f"{done + 1}/{total}")  # header count
    reading = _reading(world, Arm.AI_ASSISTED)
    submitted_text = "Keyboard only. " + original
    assert reading.status == Reading.Status.SUBMITTED and reading.findings == submitted_text

    # Amend with the keyboard: back to the summary, open it, change the text.
    tab_to(page, "#amend-box > summary", key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#amend-box")).to_have_attribute("open", "")
    tab_to(page, "#amend-findings")
    page.keyboard.press("Control+A")
    page.keyboard.type("Amended findings.")
    tab_to(page, "#amend-reason")
    page.keyboard.press("Enter")  # no reason yet
    expect(page.locator("#amend-status")).to_have_text("Give the reason for the amendment.")
    assert not Amendment.objects.exists()
    page.keyboard.type("Missed a rib fracture.")
    page.keyboard.press("Enter")  # no password yet: the amendment is signed
    expect(page.locator("#amend-status")).to_contain_text("Enter your password")
    expect(page.locator("#amend-password")).to_be_focused()
    page.keyboard.type("not-my-password")
    with page.expect_response(lambda r: r.url.endswith("/amend/")) as refused:
        page.keyboard.press("Enter")
    assert refused.value.status == 400
    expect(page.locator("#amend-status")).to_contain_text("password is wrong")
    assert not Amendment.objects.exists()
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")

    amendment = Amendment.objects.get(reading=reading)
    assert amendment.reason == "Missed a rib fracture."
    assert amendment.before_findings == submitted_text
    assert amendment.after_findings == "Amended findings."
    assert _reading(world, Arm.AI_ASSISTED).findings == "Amended findings."
    expect(page.locator("#findings")).to_have_value("Amended findings.")
    expect(page.locator(".amendments")).to_contain_text("Missed a rib fracture.")
    expect(page.locator(".amendments")).to_contain_text("Amendment of a submitted report")
    assert Signature.objects.get().object_id == str(amendment.pk)

    # n opens the next case (the report is submitted); Tab reaches its submit button. (The
    # new page's first event is awaited: no request of it outlives the test's database.)
    with page.expect_response(is_event("image_displayed")), page.expect_navigation():
        page.keyboard.press("n")
    assert page.url == f"{live_server.url}/read/{slug}/2/"
    expect(page.locator("#findings")).to_be_editable()
    tab_to(page, "#submit")
    assert focused_matches(page, "#submit")


def test_submitting_asks_first_and_escape_or_cancel_sends_nothing(
    live_server, world: ReadWorld, page
) -> None:
    slug = world.trial.slug
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/1/")
    native: list[str] = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if _is_submit_request(r) else None)
    wait_displayed(page)
    findings = page.locator("#findings")
    findings.click()
    page.keyboard.type("Heart size normal.")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_hidden()

    # Ctrl+Enter asks, in the page: an accessible modal dialog with the focus on Submit.
    page.keyboard.press("Control+Enter")
    _confirm_dialog_is_asking(page)
    expect(dialog).to_have_attribute("role", "alertdialog")
    expect(dialog).to_contain_text("Submit this report? It is locked once submitted.")
    expect(page.get_by_role("alertdialog", name="Submit this report?")).to_be_visible()
    expect(dialog.get_by_role("button", name="Submit")).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_visible()
    # Behind the dialog the page's keys wait: no viewer key, no second Ctrl+Enter.
    page.keyboard.press("i")
    page.keyboard.press("Control+Enter")
    expect(page.locator(DISPLAYED)).to_have_attribute("data-invert", "0")
    _confirm_dialog_is_asking(page)

    # Escape cancels: nothing is sent, the report stays open, the focus goes back to the text.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(findings).to_be_focused()
    expect(findings).to_be_editable()
    page.keyboard.type(" Lungs clear.")  # still typing where the reader was

    # The button asks too; Cancel cancels.
    page.locator("#submit").click()
    _confirm_dialog_is_asking(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#save-status")).to_have_text(SAVED)
    assert sent == []
    reading = _reading(world, Arm.SCP)
    assert reading.status == Reading.Status.OPEN and reading.submitted_at is None
    assert reading.findings == "Heart size normal. Lungs clear."
    assert not reading.events.filter(kind=ReadingEvent.Kind.SUBMITTED).exists()

    # Ctrl+Enter, then Enter: submitted once.
    assert _submit_with_the_keyboard(page).status == 200
    expect(page.locator("#submitted-note")).to_have_text("Submitted. The report is locked.")
    expect(page.locator("#next-case")).to_be_focused()
    assert len(sent) == 1
    assert _reading(world, Arm.SCP).status == Reading.Status.SUBMITTED
    assert native == [], "a native confirm() was used"


def test_the_submit_button_and_the_confirm_button_submit_with_the_mouse(
    live_server, world: ReadWorld, page
) -> None:
    slug = world.trial.slug
    sign_in(page, live_server, world.readers[Arm.SCP].user, f"/read/{slug}/1/")
    wait_displayed(page)
    page.locator("#findings").press_sequentially("Clear lungs.")
    page.locator("#submit").click()
    _confirm_dialog_is_asking(page)
    with page.expect_response(_is_submit) as submitted:
        page.locator("#confirm-ok").click()
    assert submitted.value.status == 200
    expect(page.locator("#submitted-note")).to_have_text("Submitted. The report is locked.")
    assert _reading(world, Arm.SCP).status == Reading.Status.SUBMITTED
