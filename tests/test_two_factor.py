"""Two-factor sign-in (security issue: "TOTP required for coordinators, statisticians and
superusers, optional for others, with recovery codes; the demo keeps working without it").

Who needs it, the gate in front of the admin, the site, the analysis pages and session calls of
the API, set-up with a real TOTP code computed here from the key the page shows, recovery codes
used once, the lock after wrong codes, a superuser's reset, the demo's exemption in demo mode
only. The suite's other tests run with the gate off (``TWO_FACTOR_ENFORCED``, see settings);
these turn it on, and check that it is on outside pytest.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from accounts import devices, policy
from tests.support.factories import PASSWORD, MembershipFactory, TrialFactory, UserFactory
from trial.models import AuditEvent, Membership, Role

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
SETUP, VERIFY = "/accounts/two-factor/setup/", "/accounts/two-factor/verify/"
SECRET = re.compile(r'id="totp-secret" data-secret="([A-Z2-7]+)"')


@pytest.fixture(autouse=True)
def _enforced(settings) -> None:
    """The gate on, and django-otp's seconds-long back-off off (tests type codes quickly)."""
    settings.TWO_FACTOR_ENFORCED = True
    settings.DEMO_MODE = False
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_at(key: bytes, *, drift: int = 0, last_t: int = -1, step: int = 30) -> str:
    """The code an authenticator app shows now, or the next one if this one was used."""
    totp = TOTP(key, step=step, drift=drift)
    totp.time = time.time()
    while totp.t() <= last_t:  # a used code is refused (replay): take the next time step
        totp.time += step
    return f"{totp.token():06d}"


def device_code(user) -> str:
    device = TOTPDevice.objects.get(user=user)
    return code_at(device.bin_key, drift=device.drift, last_t=device.last_t)


def enrolled(user) -> list[str]:
    """``user`` with a confirmed authenticator and recovery codes (the codes)."""
    TOTPDevice.objects.create(user=user, name=devices.AUTHENTICATOR, confirmed=True)
    return devices._new_recovery_codes(user)


def verified_client(user) -> Client:
    """Signed in, code given (as the verify page leaves a session)."""
    if not policy.has_device(user):
        enrolled(user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client


def password_client(username: str, url: str = "/accounts/login/") -> Client:
    client = Client()
    response = client.post(url, {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def member(role: str, **kwargs) -> Membership:
    return MembershipFactory(role=role, user__is_staff=role == Role.COORDINATOR, **kwargs)


# --- who needs it -------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "needed"), [
    (Role.COORDINATOR, True), (Role.STATISTICIAN, True),
    (Role.READER, False), (Role.SENIOR, False), (Role.RATER, False),
])
def test_coordinators_and_statisticians_need_it_other_roles_may_use_it(role, needed) -> None:
    assert policy.requires_two_factor(member(role).user) is needed


def test_superusers_need_it_people_without_a_role_do_not() -> None:
    assert policy.requires_two_factor(UserFactory(is_superuser=True, is_staff=True))
    assert not policy.requires_two_factor(UserFactory())


def test_a_trial_can_require_it_of_everyone_in_it() -> None:
    strict = TrialFactory(require_two_factor=True)
    reader = member(Role.READER, trial=strict).user
    rater = member(Role.RATER).user
    assert policy.requires_two_factor(reader)
    assert not policy.requires_two_factor(rater)
    assert policy.reasons(reader) == [f"{strict.name} requires it of everyone"]


def test_the_trial_setting_is_in_the_admin_form_and_the_api(settings) -> None:
    settings.TWO_FACTOR_ENFORCED = False  # about the field, not the gate
    coordinator = member(Role.COORDINATOR)
    client = Client()
    client.force_login(coordinator.user)
    page = client.get(f"/admin/trial/trial/{coordinator.trial.pk}/change/")
    assert b'name="require_two_factor"' in page.content
    url = f"/api/trials/{coordinator.trial.slug}/"
    assert client.get(url).json()["require_two_factor"] is False
    changed = client.patch(url, {"require_two_factor": True}, content_type="application/json")
    assert changed.status_code == 200, changed.content
    coordinator.trial.refresh_from_db()
    assert coordinator.trial.require_two_factor is True


# --- the gate -----------------------------------------------------------------------------------

def test_a_coordinator_without_a_device_is_sent_to_set_up_from_the_admin_and_the_site() -> None:
    client = password_client(member(Role.COORDINATOR).user.username, "/admin/login/")
    for page in ("/admin/", "/admin/trial/trial/", "/"):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(SETUP + "?next=")


def test_a_statistician_is_stopped_before_the_analysis_pages_and_session_api_calls() -> None:
    statistician = member(Role.STATISTICIAN)
    enrolled(statistician.user)
    client = password_client(statistician.user.username)
    page = client.get(f"/analysis/{statistician.trial.slug}/")
    assert page.status_code == 302
    assert page["Location"] == f"{VERIFY}?next=%2Fanalysis%2F{statistician.trial.slug}%2F"
    api = client.get("/api/trials/")
    assert api.status_code == 403 and api.json()["two_factor_required"] is True
    assert VERIFY in api.json()["detail"]


def test_a_token_is_a_separate_credential_and_is_not_asked_for_a_code() -> None:
    statistician = member(Role.STATISTICIAN).user
    token = Token.objects.create(user=statistician)
    response = Client().get("/api/trials/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_readers_are_let_through_unless_they_set_it_up() -> None:
    reader = member(Role.READER).user
    client = password_client(reader.username)
    assert client.get("/").status_code == 200
    enrolled(reader)  # optional, but once set up it is asked for
    assert client.get("/")["Location"].startswith(VERIFY)


def test_signing_out_and_in_stay_reachable_before_the_code() -> None:
    client = password_client(member(Role.COORDINATOR).user.username)
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/admin/login/").status_code in {200, 302}
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


# --- setting up ---------------------------------------------------------------------------------

def test_set_up_with_a_real_code_shows_ten_recovery_codes_once_and_lets_in() -> None:
    coordinator = member(Role.COORDINATOR)
    client = password_client(coordinator.user.username, "/admin/login/")
    page = client.get(f"{SETUP}?next=/admin/")
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "no-store" in page["Cache-Control"]
    secret = SECRET.search(html).group(1)
    device = TOTPDevice.objects.get(user=coordinator.user, confirmed=False)
    assert "otpauth://totp/" in device.config_url and secret in device.config_url

    from base64 import b32decode
    code = code_at(b32decode(secret))
    done = client.post(SETUP, {"code": code, "next": "/admin/"})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    assert len(codes) == devices.RECOVERY_CODES == len(set(codes))
    assert client.get("/admin/").status_code == 200
    event = AuditEvent.objects.get(action="two_factor.enrolled")
    assert event.trial == coordinator.trial and event.actor == coordinator.user
    # set up once: the page now asks for a code instead of showing the key again
    again = password_client(coordinator.user.username).get(SETUP)
    assert again.status_code == 302 and again["Location"].startswith(VERIFY)


def test_a_wrong_first_code_sets_nothing_up() -> None:
    user = member(Role.STATISTICIAN).user
    client = password_client(user.username)
    client.get(SETUP)
    response = client.post(SETUP, {"code": "000000"})
    if b"not right" not in response.content:  # 000000 was, by chance, the right code
        pytest.skip("the random key's code was 000000")
    assert not policy.has_device(user) and not StaticDevice.objects.filter(user=user).exists()
    assert client.get("/admin/")["Location"].startswith(SETUP)


def test_set_up_needs_a_recent_password() -> None:
    user = member(Role.COORDINATOR).user
    client = password_client(user.username)
    session = client.session
    session[policy.PASSWORD_AT_KEY] = time.time() - policy.ENROL_WINDOW_S - 60
    session.save()
    response = client.get(SETUP)
    assert b"Sign in again" in response.content
    assert not TOTPDevice.objects.filter(user=user).exists()


# --- signing in with a code ---------------------------------------------------------------------

def test_after_the_password_the_code_lets_into_the_page_asked_for() -> None:
    user = member(Role.COORDINATOR).user
    enrolled(user)
    client = password_client(user.username, "/admin/login/")
    assert client.get("/admin/")["Location"] == f"{VERIFY}?next=%2Fadmin%2F"
    done = client.post(VERIFY, {"code": device_code(user), "next": "/admin/"})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_next_never_leaves_the_site() -> None:
    user = member(Role.COORDINATOR).user
    enrolled(user)
    client = password_client(user.username)
    done = client.post(VERIFY, {"code": device_code(user), "next": "https://evil.example/"})
    assert done["Location"] == "/"


def test_a_recovery_code_works_once_and_is_audited() -> None:
    coordinator = member(Role.COORDINATOR)
    codes = enrolled(coordinator.user)
    first = password_client(coordinator.user.username)
    used = first.post(VERIFY, {"code": codes[0].upper(), "next": "/admin/"})
    assert used.status_code == 200 and b"9 recovery codes left" in used.content
    assert first.get("/admin/").status_code == 200
    event = AuditEvent.objects.get(action="two_factor.recovery_code_used")
    assert event.after["codes_left"] == 9 and event.trial == coordinator.trial

    second = password_client(coordinator.user.username)
    again = second.post(VERIFY, {"code": codes[0]})
    assert again.status_code == 200 and b"not right" in again.content
    assert second.get("/admin/").status_code == 302
    assert StaticToken.objects.filter(device__user=coordinator.user).count() == 9


def test_wrong_codes_lock_for_a_while_and_the_lock_is_audited(settings) -> None:
    settings.TWO_FACTOR_FAILURE_LIMIT = 5
    user = member(Role.STATISTICIAN).user
    enrolled(user)
    client = password_client(user.username)
    right = device_code(user)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert b"not right" in client.post(VERIFY, {"code": wrong}).content
    locked = client.post(VERIFY, {"code": "notacode"})
    assert b"Too many wrong codes" in locked.content
    refused = client.post(VERIFY, {"code": right})  # even the right code, while locked
    assert b"Too many wrong codes" in refused.content
    assert client.get("/admin/").status_code == 302
    assert AuditEvent.objects.filter(action="two_factor.locked").count() == 1

    past = timezone.now() - timedelta(minutes=settings.TWO_FACTOR_LOCK_MINUTES + 1)
    TOTPDevice.objects.filter(user=user).update(throttling_failure_timestamp=past)
    StaticDevice.objects.filter(user=user).update(throttling_failure_timestamp=past)
    assert client.post(VERIFY, {"code": right})["Location"] == "/"


def test_django_otp_back_off_refuses_a_code_typed_right_after_a_wrong_one(settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    user = member(Role.COORDINATOR).user
    enrolled(user)
    client = password_client(user.username)
    right = device_code(user)
    client.post(VERIFY, {"code": f"{(int(right) + 1) % 1_000_000:06d}"})
    soon = client.post(VERIFY, {"code": right})
    assert b"Wait a moment" in soon.content
    assert TOTPDevice.objects.get(user=user).throttling_failure_count == 1  # not counted


# --- a person's own page, a superuser's reset ----------------------------------------------------

def test_optional_users_renew_codes_and_turn_it_off_required_ones_cannot() -> None:
    reader = member(Role.READER).user
    old = enrolled(reader)
    client = verified_client(reader)
    assert b"Optional for you" in client.get("/accounts/two-factor/").content
    renewed = client.post("/accounts/two-factor/recovery-codes/")
    assert renewed.status_code == 200 and old[0] not in renewed.content.decode()
    assert not StaticToken.objects.filter(device__user=reader, token=old[0]).exists()
    assert client.post("/accounts/two-factor/turn-off/").status_code == 302
    assert not policy.has_device(reader)
    assert AuditEvent.objects.filter(action="two_factor.turned_off").exists()

    coordinator = member(Role.COORDINATOR).user
    refused = verified_client(coordinator).post("/accounts/two-factor/turn-off/")
    assert refused.status_code == 403 and policy.has_device(coordinator)


def test_a_superuser_resets_a_persons_two_factor_in_the_admin_audited() -> None:
    superuser = UserFactory(username="root", is_superuser=True, is_staff=True)
    coordinator = member(Role.COORDINATOR)
    enrolled(coordinator.user)
    admin = verified_client(superuser)
    listing = admin.get("/admin/auth/user/")
    assert listing.status_code == 200 and b"reset_two_factor" in listing.content
    done = admin.post("/admin/auth/user/", {
        "action": "reset_two_factor", "_selected_action": [coordinator.user.pk]}, follow=True)
    assert b"Two-factor sign-in reset: 1." in done.content
    assert not TOTPDevice.objects.filter(user=coordinator.user).exists()
    assert not StaticDevice.objects.filter(user=coordinator.user).exists()
    event = AuditEvent.objects.get(action="two_factor.reset")
    assert event.actor == superuser and event.trial == coordinator.trial
    # at the next sign-in: set up again
    client = password_client(coordinator.user.username)
    assert client.get("/admin/")["Location"].startswith(SETUP)


def test_only_a_superuser_may_reset() -> None:
    coordinator = member(Role.COORDINATOR).user
    reader = member(Role.READER).user
    enrolled(reader)
    with pytest.raises(devices.Refused):
        devices.reset(reader, by=coordinator)
    assert policy.has_device(reader)


def test_django_otps_own_device_pages_are_not_in_the_admin() -> None:
    admin = verified_client(UserFactory(is_superuser=True, is_staff=True))
    assert admin.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert admin.get("/admin/otp_static/staticdevice/").status_code == 404


# --- the demo -----------------------------------------------------------------------------------

def test_demo_accounts_are_exempt_only_in_demo_mode(settings) -> None:
    coordinator = member(Role.COORDINATOR).user
    policy.flag_demo_account(coordinator)
    settings.DEMO_MODE = True
    assert not policy.requires_two_factor(coordinator)
    assert password_client(coordinator.username).get("/admin/").status_code == 200
    settings.DEMO_MODE = False
    assert policy.requires_two_factor(coordinator)
    assert password_client(coordinator.username).get("/admin/").status_code == 302


def test_seed_demo_flags_its_accounts() -> None:
    call_command("seed_demo", cases=1, excluded=0, simulate=False, throwaway=True,
                 stdout=io.StringIO())
    group = Group.objects.get(name=policy.DEMO_GROUP)
    people = Membership.objects.filter(trial__slug="demo").values_list("user", flat=True)
    assert set(people) == set(group.user_set.values_list("pk", flat=True))


# --- production ---------------------------------------------------------------------------------

def test_enforced_outside_pytest_even_in_debug_and_demo_mode(tmp_path) -> None:
    script = ("import django, json; django.setup(); from django.conf import settings as s; "
              "print(json.dumps([s.TWO_FACTOR_ENFORCED, s.TWO_FACTOR_FAILURE_LIMIT]))")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "DATABASE_URL"}}
    for extra in ({"SECRET_KEY": "x" * 50}, {"DEMO_MODE": "1", "DEBUG": "1"}):
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**env, **extra, "DJANGO_SETTINGS_MODULE": "config.settings",
                 "DATA_DIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1]) == [True, 5]
