"""Two-factor sign-in in a real Chromium, for the roles that need it.

A coordinator signs in to the admin, is sent to set-up, reads the key from the page, computes
the authenticator's code, confirms, sees the recovery codes and reaches the admin; signs out
and in again and is asked for the code. A statistician without a phone signs in with a
recovery code; a reader, for whom it is optional, is never asked. No page breaks the
Content-Security-Policy (the QR code is inline SVG, no script).
"""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import devices
from tests.support import factories
from trial.models import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFUSED = re.compile(r"Content Security Policy|Refused to", re.I)


@pytest.fixture(autouse=True)
def _enforced(settings) -> None:
    """The gate on (the suite's other tests run without it), as in production."""
    settings.TWO_FACTOR_ENFORCED = True
    settings.DEMO_MODE = False


@pytest.fixture
def console(page) -> list[str]:
    """Chromium's refusals (CSP) written to the console while the test runs."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if REFUSED.search(msg.text) else None)
    return seen


def code_after(key: bytes, last_t: int, step: int = 30) -> str:
    """The app's code now, or the next time step's if this one was used (a code works once)."""
    totp = TOTP(key, step=step)
    totp.time = time.time()
    while totp.t() <= last_t:
        totp.time += step
    return f"{totp.token():06d}"


def sign_in(page, url: str, username: str) -> None:
    page.goto(url)
    page.locator("#id_username").press_sequentially(username)
    page.locator("#id_password").press_sequentially(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#id_password").press("Enter")


def test_coordinator_sets_up_then_is_asked_for_the_code(page, live_server, console) -> None:
    user = factories.UserFactory(username="coord-anna", is_staff=True)
    factories.MembershipFactory(user=user, role=Role.COORDINATOR)

    sign_in(page, f"{live_server.url}/admin/", "coord-anna")
    assert page.url == f"{live_server.url}/accounts/two-factor/setup/?next=%2Fadmin%2F"
    assert page.locator("#totp-qr svg").is_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    key = b32decode(secret)

    page.locator("#id_code").press_sequentially(code_after(key, -1))
    with page.expect_navigation():
        page.locator("#id_code").press("Enter")
    assert "Two-factor sign-in is set up." in page.locator("main").inner_text()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == devices.RECOVERY_CODES
    assert all(re.fullmatch(r"[a-z2-7]{8}", c.strip()) for c in codes)

    with page.expect_navigation():
        page.locator("#continue").click()
    assert page.url == f"{live_server.url}/admin/"
    assert page.locator("#user-tools strong").text_content() == "coord-anna"

    with page.expect_navigation():
        page.locator("#logout-form button").click()
    sign_in(page, f"{live_server.url}/admin/", "coord-anna")
    assert page.url == f"{live_server.url}/accounts/two-factor/verify/?next=%2Fadmin%2F"
    assert page.locator("#totp-secret").count() == 0  # the key is never shown again

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    right = code_after(key, device.last_t)
    page.locator("#id_code").press_sequentially(f"{(int(right) + 1) % 1_000_000:06d}")
    with page.expect_navigation():
        page.locator("#id_code").press("Enter")
    assert "not right" in page.locator("#code-error").inner_text()
    time.sleep(1.5)  # django-otp's back-off after a wrong code: 1 s

    page.locator("#id_code").fill(code_after(key, device.last_t))
    with page.expect_navigation():
        page.locator("#id_code").press("Enter")
    assert page.url == f"{live_server.url}/admin/"
    assert "dashboard" in (page.locator("body").get_attribute("class") or "")
    assert console == []


def test_statistician_signs_in_with_a_recovery_code(page, live_server, console) -> None:
    user = factories.UserFactory(username="stat-sam")
    factories.MembershipFactory(user=user, role=Role.STATISTICIAN)
    TOTPDevice.objects.create(user=user, name=devices.AUTHENTICATOR, confirmed=True)
    recovery = devices._new_recovery_codes(user)

    sign_in(page, f"{live_server.url}/accounts/login/", "stat-sam")
    assert page.url == f"{live_server.url}/accounts/two-factor/verify/?next=%2F"
    page.locator("#id_code").press_sequentially(recovery[3])
    with page.expect_navigation():
        page.locator("#id_code").press("Enter")
    assert "9 recovery codes left" in page.locator("main").inner_text()
    with page.expect_navigation():
        page.locator("#continue").click()
    assert page.url == f"{live_server.url}/"
    assert page.locator(".topbar .who").inner_text() == "stat-sam"
    assert console == []


def test_a_reader_is_not_asked_for_a_code(page, live_server) -> None:
    factories.MembershipFactory(user=factories.UserFactory(username="reader-ben"))
    sign_in(page, f"{live_server.url}/accounts/login/", "reader-ben")
    assert page.url == f"{live_server.url}/"
    assert page.locator(".topbar .who").inner_text() == "reader-ben"
