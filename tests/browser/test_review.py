"""The senior's sign-off in a real Chromium: blind Report 1 / Report 2, start from one, sign."""

from __future__ import annotations

import pytest

from reader import reading as rd
from reader import review as review_svc
from reader.models import Reading, Review
from tests.support.browser_world import (
    Traffic,
    expect,
    sign_in,
    wait_displayed,
    without_csrf_tokens,
)
from tests.support.factories import PASSWORD
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm, AuditEvent, Signature

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXTS = {
    Arm.AI_ASSISTED: ("Patchy opacity in the right lower zone, Report-alpha.", "Pneumonia."),
    Arm.SCP: ("Clear lungs; no effusion, Report-beta.", "No acute disease."),
}


def _is_sign(request) -> bool:
    return request.url.endswith("/sign/") and request.method == "POST"


def _sign_dialog_is_asking(page) -> None:
    """The page's confirmation of the signature is open, modal, focus on its Sign button."""
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    assert page.evaluate("() => document.getElementById('confirm-dialog').matches(':modal')")
    expect(page.get_by_role("alertdialog", name="Sign this final report?")).to_be_visible()
    expect(page.locator("#confirm-ok")).to_have_text("Sign")
    expect(page.locator("#confirm-ok")).to_be_focused()


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    world = build_read_world(tmp_path, cases=1)
    for arm, membership in world.readers.items():  # names no other text could contain
        membership.user.username = f"junior-{'alpha' if arm == Arm.AI_ASSISTED else 'beta'}-x7q"
        membership.user.save(update_fields=["username"])
    for arm, (findings, impression) in TEXTS.items():
        reading = rd.open_reading(world.assignment(arm), user=world.readers[arm].user)
        rd.record_event(reading, "image_displayed")
        rd.submit(reading, findings=findings, impression=impression, version=0)
    return world


def test_senior_finalises_a_case_blind_to_the_arms(live_server, world: ReadWorld, page) -> None:
    slug, case = world.trial.slug, world.cases[0]
    traffic = Traffic().attach(page)
    sign_in(page, live_server, world.senior.user, f"/review/{slug}/")

    link = page.get_by_role("link", name=case.case_id).first
    expect(link).to_be_visible()
    expect(page.locator(".progress-line")).to_contain_text("0 of 1 signed")
    with page.expect_navigation():
        link.click()
    assert page.url == f"{live_server.url}/review/{slug}/{case.pk}/"
    wait_displayed(page)

    expect(page.locator("#report1 h2")).to_have_text("Report 1")
    expect(page.locator("#report2 h2")).to_have_text("Report 2")
    review = Review.objects.get(case=case)
    shown = review_svc.readings_shown(review)
    for key, reading in zip(("report1", "report2"), shown, strict=True):
        expect(page.locator(f"#{key} [data-part=findings]")).to_have_text(reading.findings)
        expect(page.locator(f"#{key} [data-part=impression]")).to_have_text(reading.impression)

    # Nothing on the page says which report came from which arm or reader.
    html = without_csrf_tokens(page.content())
    text = page.locator("body").inner_text()
    trial = world.trial
    forbidden = ["ai_assisted", "AI-assisted", "SCP", trial.ai_assisted_label, trial.scp_label,
                 *(m.user.username for m in world.readers.values())]
    for word in forbidden:
        assert word not in html, word
        assert word.lower() not in text.lower(), word

    findings = page.locator("#findings")
    expect(findings).to_have_value("")
    page.get_by_role("button", name="Start from Report 2").click()
    report2 = shown[1]
    expect(findings).to_have_value(report2.findings)
    expect(findings).to_be_focused()
    page.keyboard.press("Control+End")
    addendum = " Senior: small right effusion."
    page.keyboard.type(addendum)
    # Signing is an electronic signature: Ctrl+Enter asks for the password first (no request,
    # no confirmation yet), then for a confirmation; a wrong password is refused and recorded,
    # the right one signs.
    page.keyboard.press("Control+Enter")
    status = page.locator("#sign-password-status")
    expect(status).to_contain_text("Enter your password to sign")
    password = page.locator("#sign-password")
    expect(password).to_be_focused()
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert not [url for url, _ in traffic.posts if url.endswith("/sign/")]
    page.keyboard.type("not-my-password")
    page.keyboard.press("Enter")
    _sign_dialog_is_asking(page)
    with page.expect_response(lambda r: r.url.endswith("/sign/")) as refused:
        page.keyboard.press("Enter")
    assert refused.value.status == 400
    expect(status).to_contain_text("password is wrong")
    expect(page.locator("#save-status")).to_have_text("Not signed: see the password field.")
    expect(password).to_have_value("")
    expect(password).to_be_focused()
    assert Review.objects.get(pk=review.pk).status == Review.Status.OPEN
    assert AuditEvent.objects.filter(action="signature.refused").count() == 1
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Control+Enter")
    _sign_dialog_is_asking(page)
    with page.expect_response(lambda r: r.url.endswith("/sign/")) as signed:
        page.keyboard.press("Enter")
    assert signed.value.status == 200

    expect(page.locator("#submitted-note")).to_contain_text("Signed")
    signature = Signature.objects.get()
    assert signature.meaning == "final_report" and signature.signer == world.senior.user
    expect(page.locator("#signature")).to_contain_text(signature.printed_name)
    expect(page.locator("#signature")).to_contain_text("Final report approved")
    expect(page.locator("#sign-password-box")).to_be_hidden()
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage))")
    assert PASSWORD not in stored and "not-my-password" not in stored
    expect(findings).not_to_be_editable()
    expect(page.locator("#impression")).not_to_be_editable()
    # editor.js hides these in the same step as it adds the note; asserted at the end.
    buttons = page.locator("button.start-from, #submit")
    still_shown = [b.inner_text() for b in buttons.all() if b.is_visible()]

    review.refresh_from_db()
    assert review.status == Review.Status.SIGNED
    assert review.started_from == "report2"
    assert review.findings == report2.findings + addendum
    assert review.impression == report2.impression
    assert review.review_time_s > 0
    final = review_svc.report_text(review.findings, review.impression)
    by_arm = {r.assignment.arm: r for r in Reading.objects.filter(assignment__case=case)}
    expected = {arm: review_svc.edit_distance(review_svc.report_text(r.findings, r.impression),
                                              final) for arm, r in by_arm.items()}
    assert review.edit_distance_ai == expected[Arm.AI_ASSISTED]
    assert review.edit_distance_scp == expected[Arm.SCP]
    assert expected[report2.assignment.arm] == len(addendum)

    # Reloaded, the page shows the signed report, read-only.
    page.reload()
    expect(page.locator("#submitted-note")).to_contain_text("Signed")
    expect(page.locator("#signature")).to_contain_text("Final report approved")
    expect(page.locator("#sign-password")).to_have_count(0)
    expect(findings).to_have_value(report2.findings + addendum)
    expect(findings).not_to_be_editable()

    # The recorder saw the pages and the API calls (else "no leak" would prove nothing).
    seen = traffic.urls()
    image = case.images.get()
    assert f"{live_server.url}/review/{slug}/" in seen
    assert f"{live_server.url}/review/{slug}/{case.pk}/" in seen
    assert any(url.endswith("/static/reader/editor.js") for url in seen)
    assert any(url.endswith("/static/reader/viewer.js") for url in seen)
    assert f"{live_server.url}/api/images/{image.pk}/pixels/" in seen
    assert any(url.endswith(f"/reviews/{case.pk}/sign/") for url in seen)
    assert any(url.endswith(f"/reviews/{case.pk}/sign/") for url, _ in traffic.posts)
    assert not [u for u in traffic.unread if "/review/" in u or "/api/" in u], traffic.unread

    # No response the senior received names an arm or a reader, or echoes a password.
    for word in [*forbidden, PASSWORD, "not-my-password"]:
        leaks = [u for u, body in traffic.bodies
                 if word in without_csrf_tokens(body.decode("utf-8", "replace"))]
        assert leaks == [], (word, leaks)

    # Once signed, no button offers to change the final report (checked last, see above).
    assert still_shown == [], f"still visible after signing: {still_shown}"


def test_signing_asks_first_and_escape_sends_nothing(live_server, world: ReadWorld, page) -> None:
    slug, case = world.trial.slug, world.cases[0]
    sign_in(page, live_server, world.senior.user, f"/review/{slug}/{case.pk}/")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if _is_sign(r) else None)
    native: list[str] = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    wait_displayed(page)
    page.get_by_role("button", name="Start from Report 1").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Senior agrees.")
    password = page.locator("#sign-password")
    password.click()
    page.keyboard.type(PASSWORD)

    # After the password, Ctrl+Enter asks; Escape cancels: nothing sent, the report stays open
    # and the focus is back in the password field (the password still typed).
    page.keyboard.press("Control+Enter")
    _sign_dialog_is_asking(page)
    expect(page.locator("#confirm-dialog")).to_contain_text("Sign this final report?")
    page.keyboard.press("Escape")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(password).to_be_focused()
    expect(password).to_have_value(PASSWORD)
    expect(page.locator("#findings")).to_be_editable()
    expect(page.locator("#submit")).to_be_visible()
    # The Sign button asks too; Cancel cancels.
    page.locator("#submit").click()
    _sign_dialog_is_asking(page)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(page.locator("#save-status")).to_contain_text("Saved")
    assert sent == []
    review = Review.objects.get(case=case)
    assert review.status == Review.Status.OPEN and review.signed_at is None
    assert not Signature.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="signature.").exists()

    # Ctrl+Enter, then Enter: signed once.
    page.keyboard.press("Control+Enter")
    _sign_dialog_is_asking(page)
    with page.expect_response(lambda r: _is_sign(r.request)) as signed:
        page.keyboard.press("Enter")
    assert signed.value.status == 200
    expect(page.locator("#submitted-note")).to_contain_text("Signed")
    expect(page.locator("#next-case")).to_be_focused()
    assert len(sent) == 1 and native == []
    assert Review.objects.get(case=case).status == Review.Status.SIGNED
