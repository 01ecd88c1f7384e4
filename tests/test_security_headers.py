"""Browser security headers (issue 12, "missing headers"): HSTS, the HTTPS redirect, nosniff,
the referrer policy, X-Frame-Options and a Content-Security-Policy with no inline script and no
other host on every kind of page; Swagger UI and ReDoc from the site's own static files; and
``manage.py check --deploy`` clean with the production settings the README documents.

Settings that differ in production are read in a subprocess without pytest's variable (the
settings turn the HTTPS redirect off under pytest: the test client speaks plain HTTP).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

from tests.support.factories import MembershipFactory, UserFactory
from tests.support.read_world import ReadWorld, build_read_world
from trial.models import Arm

ROOT = Path(__file__).resolve().parent.parent
HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}  # as nginx forwards a request that came over TLS
ONE_YEAR = 365 * 24 * 3600
KEYWORD = re.compile(r"^'[a-z-]+'$")  # 'self', 'none', 'unsafe-inline' ...


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


REDOC_WORKER = {"worker-src": ["'self'", "blob:"]}  # ReDoc's search worker, on its page only


def assert_security_headers(response, *, worker: bool = False) -> dict[str, list[str]]:
    """The headers every page has (on HTTPS); the page's CSP directives. ``worker``: the ReDoc
    page, which alone may start a worker from a blob:."""
    assert response["Strict-Transport-Security"] == f"max-age={ONE_YEAR}; includeSubDomains"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy-Report-Only" not in response
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', 'unsafe-eval' or nonce
    assert csp["connect-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp.get("worker-src") == (REDOC_WORKER["worker-src"] if worker else None)
    # No other host, no wildcard, no scheme but data: for images (and blob: for ReDoc's
    # worker); reported nowhere.
    for name, sources in csp.items():
        for source in sources:
            assert (KEYWORD.match(source) or (name == "img-src" and source == "data:")
                    or (worker and name == "worker-src" and source == "blob:")), (
                f"{name} {source}")
    assert "report-uri" not in csp and "report-to" not in csp
    return csp


@pytest.fixture
def world(tmp_path) -> ReadWorld:
    return build_read_world(tmp_path / "dicom", cases=1)


@pytest.mark.django_db
def test_every_kind_of_page_sends_the_security_headers(client, world: ReadWorld) -> None:
    reader = world.readers[Arm.AI_ASSISTED].user
    slug = world.trial.slug
    anonymous = {
        "sign-in page": "/accounts/login/",
        "admin login": "/admin/login/",
    }
    for name, path in anonymous.items():
        response = client.get(path, **HTTPS)
        assert response.status_code == 200, name
        assert_security_headers(response)

    client.force_login(reader)
    signed_in = {
        "home page": "/",
        "worklist": f"/read/{slug}/",
        "reader's case page": f"/read/{slug}/1/",
        "API docs (Swagger UI)": "/api/docs/",
        "API docs (ReDoc)": "/api/redoc/",
    }
    for name, path in signed_in.items():
        response = client.get(path, follow=False, **HTTPS)
        assert response.status_code == 200, (name, response.status_code)
        assert_security_headers(response, worker=path == "/api/redoc/")

    # Redirects, refusals and API answers carry the policy too.
    client.logout()
    assert_security_headers(client.get(f"/read/{slug}/", **HTTPS))  # to the sign-in page
    assert_security_headers(client.get("/api/docs/", **HTTPS))  # 403: not signed in


@pytest.mark.django_db
def test_staff_admin_pages_send_the_security_headers(client) -> None:
    staff = UserFactory(username="coord-sec", is_staff=True, is_superuser=True)
    MembershipFactory(user=staff)
    client.force_login(staff)
    for path in ("/admin/", "/admin/trial/trial/", "/admin/auth/user/add/"):
        response = client.get(path, **HTTPS)
        assert response.status_code == 200, path
        assert_security_headers(response)


@pytest.mark.django_db
def test_hsts_only_over_https_and_the_redirect_when_switched_on(client) -> None:
    # HSTS means nothing on plain HTTP (browsers ignore it there): Django sends it on HTTPS only.
    plain = client.get("/accounts/login/")
    assert "Strict-Transport-Security" not in plain
    assert "Content-Security-Policy" in plain
    with override_settings(SECURE_SSL_REDIRECT=True):
        fresh = Client()  # SecurityMiddleware reads its settings when the handler is built
        redirected = fresh.get("/accounts/login/?next=/x/")
        assert redirected.status_code == 301
        assert redirected["Location"] == "https://testserver/accounts/login/?next=/x/"
        # Behind nginx terminating TLS: X-Forwarded-Proto says HTTPS, no redirect loop.
        assert fresh.get("/accounts/login/", **HTTPS).status_code == 200


class _Resources(HTMLParser):
    """Every address a page loads or links to (src, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        self.urls += [attrs[a] for a in ("src", "href") if attrs.get(a)]
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        self._in_script = tag == "script" and not attrs.get("src")

    def handle_endtag(self, tag) -> None:
        self._in_script = False

    def handle_data(self, data) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "expected"), [
    ("/api/docs/", ["swagger-ui-dist/swagger-ui.css", "swagger-ui-dist/swagger-ui-bundle.js",
                    "swagger-ui-dist/swagger-ui-standalone-preset.js",
                    "swagger-ui-dist/favicon-32x32.png"]),
    ("/api/redoc/", ["redoc/bundles/redoc.standalone.js"]),
])
def test_api_docs_load_only_the_sites_own_static_files(client, path, expected) -> None:
    client.force_login(UserFactory())
    response = client.get(path, **HTTPS)
    html = response.content.decode()
    page = _Resources()
    page.feed(html)
    assert page.inline_scripts == [], "inline script: the CSP would refuse it"
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|cdn|googleapis", html, re.I)
    static = [url for url in page.urls if url.startswith("/static/")]
    for name in expected:
        assert f"/static/drf_spectacular_sidecar/{name}" in static, name
    for url in page.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"


@pytest.mark.django_db
def test_swagger_ui_start_up_script_is_a_same_origin_script(client) -> None:
    client.force_login(UserFactory())
    page = client.get("/api/docs/", **HTTPS).content.decode()
    script_url = re.search(r'<script src="(/api/docs/\?[^"]*script=[^"]*)"', page).group(1)
    script = client.get(script_url.replace("&amp;", "&"), **HTTPS)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")  # nosniff accepts it
    body = script.content.decode()
    assert "SwaggerUIBundle(" in body and '"/api/schema/"' in body
    assert '"validatorUrl": null' in body  # no badge image from validator.swagger.io


# --- production settings, in a fresh process ------------------------------------------------

def _production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTEST_VERSION", "PYTEST_CURRENT_TEST", "DEBUG", "DEMO_MODE",
                        "DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
           and not k.startswith(("SECURE_", "CSRF_", "SESSION_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "trials.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://trials.example.org",
    })
    env.update(extra)
    return env


def _settings_in_subprocess(tmp_path: Path, **env: str) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({n: getattr(s, n, None) for n in ("
        "'DEBUG', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SECURE_PROXY_SSL_HEADER', 'X_FRAME_OPTIONS', "
        "'SECURE_REFERRER_POLICY', 'SECURE_CONTENT_TYPE_NOSNIFF', 'SILENCED_SYSTEM_CHECKS')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=_production_env(DATA_DIR=str(tmp_path), **env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_defaults_are_https_only(tmp_path) -> None:
    prod = _settings_in_subprocess(tmp_path)
    assert prod["DEBUG"] is False
    assert prod["SECURE_SSL_REDIRECT"] is True
    assert prod["SECURE_HSTS_SECONDS"] == ONE_YEAR
    assert prod["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert prod["SECURE_HSTS_PRELOAD"] is False
    assert prod["SESSION_COOKIE_SECURE"] is True and prod["CSRF_COOKIE_SECURE"] is True
    assert prod["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert prod["X_FRAME_OPTIONS"] == "DENY"
    assert prod["SECURE_REFERRER_POLICY"] == "same-origin"
    assert prod["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert "security.W021" in prod["SILENCED_SYSTEM_CHECKS"]  # preload: the operator's choice

    debug = _settings_in_subprocess(tmp_path, DEBUG="1")
    assert debug["SECURE_SSL_REDIRECT"] is False and debug["SECURE_HSTS_SECONDS"] == 0

    configured = _settings_in_subprocess(
        tmp_path, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0", SECURE_HSTS_PRELOAD="1")
    assert configured["SECURE_SSL_REDIRECT"] is False
    assert configured["SECURE_HSTS_SECONDS"] == 600
    assert configured["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert configured["SECURE_HSTS_PRELOAD"] is True
    assert "security.W021" not in configured["SILENCED_SYSTEM_CHECKS"]


def _check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=_production_env(DATA_DIR=str(tmp_path),
                            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", **env))


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path) -> None:
    result = _check_deploy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout


def test_check_deploy_fails_without_https(tmp_path) -> None:
    """The check does see these settings: switching HTTPS off is reported."""
    result = _check_deploy(tmp_path, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout
    assert "security.W008" in result.stderr + result.stdout
