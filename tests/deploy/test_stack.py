"""The production stack (``docker/``), built and run as a user would.

Builds the images from ``docker/Dockerfile`` through ``docker/compose.yaml``, on the official
base images or, where no registry can be reached, on the local ones ``docker/build-offline.sh``
builds from Debian's packages (the same Dockerfile and compose file either way), starts the
stack, then, step by step (one test each, in order, on the same stack):

1. waits for health: the containers' health checks, then ``/health/ready/`` through nginx
   (database, Redis, a worker answering the Celery ping, disk);
2. creates the superuser with the documented command (``exec web python manage.py
   createsuperuser``, non-interactive through ``DJANGO_SUPERUSER_PASSWORD``);
3. signs in through nginx, setting up the superuser's required authenticator (TOTP);
4. runs ``seed_demo`` inside the web container, and sees the worker container healthy;
5. imports two DICOM studies with ``import_dicom`` in the web container, gives the demo trial
   an OpenAI-compatible endpoint (a fake model server on this host, reached from the
   containers through the compose network's gateway), enrols a case through the API and sees
   its draft made by the worker container (the model server saw the call from its address);
6. enrols the second case, whose model call the server holds, kills the worker container's
   process mid-call (SIGKILL: a crash; Docker's restart policy starts it again) and sees the
   draft finished by the restarted worker after the lease ran out (takeover);
7. signs a reader in, opens a case page and its pixels through nginx;
8. checks that nginx serves static files itself and does not serve ``/media/``;
9. stops and removes every container (``down``, volumes kept), starts the stack again, and
   finds every row (per-table count and largest key) and every media file (SHA-256) still
   there, and the sessions still signed in.

Everything the test made is removed at the end (``down -v``, then any container, volume or
network left with the project's label), whether it passed or not; the images are kept (the
next run's build cache).

Runs whenever ``CI=true``. Elsewhere ``SKIP_DEPLOY_TEST=1`` skips it. Needs docker, a compose
(``docker compose`` v2, else ``docker-compose`` v1.29) and a running Docker daemon (started
here when it is not running and this is root). ``DEPLOY_TEST_BASES``: ``auto`` (default: the
official images when present or pullable, else the offline ones), ``official`` or ``offline``.
``DEPLOY_TEST_COMPOSE``: the compose command to use (e.g. ``docker-compose``).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from base64 import b32decode
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.model_server import ModelServer, model_server

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
SCALE_FILE = ROOT / "docker" / "compose.scale.yaml"
PROJECT = "cxrdeploytest"
IMAGE_TAG = "deploytest"
OFFICIAL_BASES = ("python:3.11-slim-bookworm", "nginx:1.27-alpine", "postgres:15", "redis:7")
ADMIN, ADMIN_PASSWORD = "admin", "deploy-" + secrets.token_hex(8)
DEMO_PASSWORD = "cxr-demo"
MARK_A, MARK_B = "DEPLOY-MARK-A", "DEPLOY-MARK-B"
TIMINGS: dict[str, float] = {}  # shown in the session's summary (conftest.py)
STATE: dict[str, Any] = {}
CONFIG: list[pytest.Config] = []


def _log(message: str) -> None:
    """Progress on the terminal, through pytest's output capture (the steps take minutes)."""
    capture = CONFIG[0].pluginmanager.getplugin("capturemanager") if CONFIG else None
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        sys.stderr.write(f"\n[deploy] {message}")
        sys.stderr.flush()


class Timed:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> Timed:
        _log(f"{self.name}...")
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        TIMINGS[self.name] = round(time.monotonic() - self.start, 1)
        _log(f"{self.name}: {TIMINGS[self.name]} s" + (" (failed)" if exc[0] else ""))


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timed out after {timeout} s: {shlex.join(argv)}\n"
                             f"{_text(exc.stdout)[-3000:]}\n{_text(exc.stderr)[-3000:]}") from None
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}: {shlex.join(argv)}\n--- stdout\n"
                             f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")
    return done


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def wait_until(what: str, probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """``probe()``'s first truthy value within ``timeout`` seconds (its exceptions: not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as exc:  # not ready yet; shown if it never is
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!s:.2000})")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Docker ------------------------------------------------------------------------------


def _skip_or_fail_early() -> None:
    ci = os.environ.get("CI", "").lower() == "true"
    if os.environ.get("SKIP_DEPLOY_TEST") == "1" and not ci:
        pytest.skip("SKIP_DEPLOY_TEST=1: the deployment test (Docker images and the compose "
                    "stack) is skipped; it always runs under CI=true")
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: apt-get install docker.io docker-compose "
                    "(./scripts/test.sh does as root), or SKIP_DEPLOY_TEST=1 to skip this test "
                    "outside CI", pytrace=False)


def _docker_answers() -> bool:
    return run(["docker", "info"], check=False, timeout=30).returncode == 0


def ensure_dockerd() -> None:
    """A Docker daemon that answers; started here (as root) when none runs."""
    if _docker_answers():
        return
    dockerd = shutil.which("dockerd")
    if os.geteuid() != 0 or dockerd is None:
        pytest.fail("the Docker daemon does not answer (start dockerd, or run as root with "
                    "docker.io installed)", pytrace=False)
    log = Path("/tmp/cxr-dockerd.log")
    _log(f"starting {dockerd} (log {log})")
    with log.open("ab") as out:
        subprocess.Popen([dockerd], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    wait_until("the Docker daemon", _docker_answers, timeout=60)


def compose_command() -> list[str]:
    wanted = os.environ.get("DEPLOY_TEST_COMPOSE")
    if wanted:
        return shlex.split(wanted)
    if run(["docker", "compose", "version"], check=False, timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("no compose: install docker-compose (Debian) or the docker compose plugin",
                pytrace=False)


def _image_present(name: str) -> bool:
    return run(["docker", "image", "inspect", name], check=False, timeout=60).returncode == 0


def choose_bases() -> dict[str, str]:
    """The base-image variables for compose: none (the official images) or the offline ones."""
    mode = os.environ.get("DEPLOY_TEST_BASES", "auto")
    if mode not in ("auto", "official", "offline"):
        pytest.fail(f"DEPLOY_TEST_BASES={mode}: auto, official or offline", pytrace=False)
    if mode in ("auto", "official"):
        missing = [name for name in OFFICIAL_BASES if not _image_present(name)]
        pulled = all(run(["docker", "pull", "-q", name], check=False, timeout=900).returncode
                     == 0 for name in missing)
        if pulled:
            _log("bases: the official images")
            _copy_pip_ca()
            return {}
        if mode == "official":
            pytest.fail(f"cannot pull the official base images {missing}", pytrace=False)
        _log("bases: no registry, building the offline ones (docker/build-offline.sh)")
    with Timed("offline bases (docker/build-offline.sh)"):
        done = run(["bash", str(ROOT / "docker" / "build-offline.sh"), "--env"], timeout=1800)
    _log(done.stderr.strip())
    bases = dict(re.findall(r"^export (\w+)=(\S+)$", done.stdout, re.M))
    assert set(bases) == {"PYTHON_BASE", "NGINX_BASE", "POSTGRES_IMAGE", "REDIS_IMAGE"}, done
    return bases


def _copy_pip_ca() -> None:
    """As docker/build-offline.sh does: pip's CA bundle of this machine, for the build stage."""
    ca = os.environ.get("PIP_CERT", "")
    if not ca and Path("/etc/pip.conf").is_file():
        found = re.search(r"^\s*cert\s*=\s*(\S+)", Path("/etc/pip.conf").read_text(), re.M)
        ca = found.group(1) if found else ""
    target = ROOT / "docker" / "build-ca" / "pip-ca.crt"
    if ca and Path(ca).is_file() and (not target.exists()
                                      or target.read_bytes() != Path(ca).read_bytes()):
        shutil.copyfile(ca, target)


class Stack:
    """The compose project under test, with the commands a user types."""

    def __init__(self, compose: list[str], variables: dict[str, str], env_file: Path) -> None:
        self.variables = variables
        self.http_port = int(variables["HTTP_PORT"])
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.argv = [*compose, "-p", PROJECT, "-f", str(COMPOSE_FILE),
                     "--env-file", str(env_file)]
        # Only what docker needs from this process, then the stack's variables: nothing of the
        # test session (DATABASE_URL, SECRET_KEY...) leaks into the compose file.
        keep = ("PATH", "HOME", "LANG", "TMPDIR", "XDG_RUNTIME_DIR")
        self.env = {k: v for k, v in os.environ.items()
                    if k in keep or k.startswith(("DOCKER_", "COMPOSE_DOCKER_CLI"))}
        self.env.update(variables)

    def compose(self, *args: str, timeout: float = 600,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.argv, *args], env=self.env, timeout=timeout, check=check)

    def exec(self, service: str, *command: str, env: dict[str, str] | None = None,
             timeout: float = 600) -> str:
        """``compose exec -T SERVICE COMMAND`` (as the user types it, without a terminal)."""
        options = [item for key, value in (env or {}).items() for item in ("-e", f"{key}={value}")]
        return self.compose("exec", "-T", *options, service, *command, timeout=timeout).stdout

    def container(self, service: str) -> str:
        found = self.compose("ps", "-q", service).stdout.split()
        assert found, f"no {service} container"
        return found[0]

    def inspect(self, service: str) -> dict:
        return json.loads(run(["docker", "inspect", self.container(service)]).stdout)[0]

    def health(self, service: str) -> str:
        return (self.inspect(service)["State"].get("Health") or {}).get("Status", "none")

    def address(self, service: str) -> str:
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        return next(iter(networks.values()))["IPAddress"]

    def gateway(self) -> str:
        network = json.loads(run(["docker", "network", "inspect", f"{PROJECT}_default"]).stdout)[0]
        return network["IPAM"]["Config"][0]["Gateway"]

    def wait_ready(self, timeout: float) -> dict:
        """The web, worker-inclusive readiness through nginx: 200 and every check ok."""
        def ready() -> dict | None:
            response = httpx.get(f"{self.base_url}/health/ready/", timeout=15)
            body = response.json()
            return body if response.status_code == 200 else None
        return wait_until("/health/ready/ through nginx", ready, timeout=timeout, every=2)

    def clean_up(self) -> None:
        """Everything of the project but its images, whatever state it is in."""
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False,
                     timeout=300)
        label = f"label=com.docker.compose.project={PROJECT}"
        for kind, listing in (("container", ["docker", "ps", "-aq", "--filter", label]),
                              ("volume", ["docker", "volume", "ls", "-q", "--filter", label]),
                              ("network", ["docker", "network", "ls", "-q", "--filter", label])):
            names = run(listing, check=False).stdout.split()
            if names:
                remove = ["docker", kind, "rm", *(["-f"] if kind != "network" else []), *names]
                run(remove, check=False, timeout=120)

    def logs(self) -> str:
        done = self.compose("logs", "--no-color", "--tail", "60", check=False, timeout=120)
        ps = self.compose("ps", check=False, timeout=60)
        return f"{ps.stdout}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _skip_or_fail_early()
    CONFIG[:] = [request.config]
    started = time.monotonic()
    ensure_dockerd()
    compose = compose_command()
    _log(f"compose: {shlex.join(compose)}")
    bases = choose_bases()
    variables = {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "IMAGE_TAG": IMAGE_TAG,
        "SECRET_KEY": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "DICOM_PUBLISH_PORT": str(free_port()),
        # A plain-HTTP trial of the stack on this machine (env.example says how).
        "SECURE_COOKIES": "0",
        "SECURE_SSL_REDIRECT": "0",
        # A dead worker's draft is taken over soon: lease = model timeout + 5 s, checked
        # every 5 s; no sweep of its own during the test (it would queue the demo's drafts).
        "DRAFT_LEASE_MARGIN_S": "5",
        "DRAFT_TAKEOVER_SECONDS": "5",
        "DRAFT_SWEEP_SECONDS": "3600",
        "HEALTH_MIN_FREE_DISK_MB": "100",
        **bases,
    }
    env_file = tmp_path_factory.mktemp("deploy") / "stack.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in variables.items()))
    stack = Stack(compose, variables, env_file)
    failed_before = request.session.testsfailed
    failed = True
    stack.clean_up()  # what an interrupted earlier run may have left
    try:
        with Timed("build (compose build)"):
            stack.compose("build", timeout=3600)
        with Timed("up (compose up -d)"):
            stack.compose("up", "-d", timeout=900)
        yield stack
        failed = request.session.testsfailed > failed_before
    finally:
        if failed:
            logs = stack.logs()
            saved = env_file.parent / "stack.log"
            saved.write_text(logs)
            _log(f"a step failed: the stack's state and logs are in {saved}; their end:\n"
                 + logs[-8000:])
        with Timed("clean-up (down -v)"):
            stack.clean_up()
        TIMINGS["total"] = round(time.monotonic() - started, 1)
        _log("timings: " + ", ".join(f"{name} {secs} s" for name, secs in TIMINGS.items())
             + "\n")


@pytest.fixture(scope="module")
def model(stack: Stack) -> Iterator[ModelServer]:
    """The fake model server, on this host's side of the compose network."""
    with model_server(stack.gateway()) as server:
        yield server


# --- The site, through nginx ---------------------------------------------------------------


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=60)


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, f"no CSRF token in {page.url}: {page.text[:500]}"
    return found.group(1)


def sign_in(browser: httpx.Client, username: str, password: str) -> httpx.Response:
    form = browser.get("/accounts/login/")
    assert form.status_code == 200, form.text[:500]
    assert form.headers.get("server", "").startswith("nginx"), form.headers
    answer = browser.post("/accounts/login/", data={
        "username": username, "password": password, "csrfmiddlewaretoken": _csrf(form),
        "next": "/"})
    assert answer.status_code == 302, f"sign-in of {username} refused: {answer.text[:1000]}"
    return answer


def totp_now(key: bytes) -> str:
    from django_otp.oath import TOTP

    totp = TOTP(key, step=30, digits=6)
    totp.time = time.time()
    return f"{totp.token():06d}"


def api(browser: httpx.Client, method: str, path: str, payload: dict | None = None,
        expect: int = 200) -> Any:
    headers = {"Accept": "application/json", "X-CSRFToken": browser.cookies.get("csrftoken", "")}
    response = browser.request(method, path, json=payload, headers=headers)
    assert response.status_code == expect, (
        f"{method} {path}: {response.status_code} {response.text[:2000]}")
    return response.json() if response.content else None


def results(body: Any) -> list[dict]:
    return body["results"] if isinstance(body, dict) and "results" in body else body


# --- The steps -----------------------------------------------------------------------------


def test_stack_becomes_healthy(stack: Stack) -> None:
    with Timed("healthy"):
        for service in ("db", "redis", "web"):
            wait_until(f"{service} healthy", lambda s=service: stack.health(s) == "healthy",
                       timeout=180, every=2)
        live = wait_until("/health/live/ through nginx", lambda: httpx.get(
            f"{stack.base_url}/health/live/", timeout=10).status_code == 200, timeout=60)
        assert live
        body = stack.wait_ready(timeout=180)
    checks = {check["name"]: check for check in body["checks"]}
    assert {name: check["ok"] for name, check in checks.items()} == {
        "database": True, "redis": True, "workers": True, "disk": True}, body
    assert checks["workers"]["reason"] == "ok", body  # a worker answered the Celery ping
    migrate = stack.inspect("migrate")["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0), migrate


def test_createsuperuser_with_the_documented_command(stack: Stack) -> None:
    out = stack.exec("web", "python", "manage.py", "createsuperuser", "--no-input",
                     "--username", ADMIN, "--email", "admin@example.org",
                     env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})
    assert "Superuser created successfully" in out, out


def test_superuser_signs_in_through_nginx(stack: Stack) -> None:
    admin = client(stack)
    sign_in(admin, ADMIN, ADMIN_PASSWORD)
    # A superuser must set up an authenticator before anything else.
    home = admin.get("/")
    assert home.status_code == 302 and "/accounts/two-factor/setup/" in home.headers["location"]
    setup = admin.get(home.headers["location"])
    assert setup.status_code == 200, setup.text[:500]
    secret = re.search(r'id="totp-secret" data-secret="([A-Z2-7]+)"', setup.text)
    assert secret, setup.text[:2000]
    key = b32decode(secret.group(1))
    confirmed = admin.post("/accounts/two-factor/setup/", data={
        "code": totp_now(key), "csrfmiddlewaretoken": _csrf(setup), "next": "/admin/"})
    assert confirmed.status_code == 200 and "recovery" in confirmed.text.lower(), (
        confirmed.text[:2000])
    site_admin = admin.get("/admin/")
    assert site_admin.status_code == 200 and "Site administration" in site_admin.text
    STATE["admin"] = admin


def test_seed_demo_in_the_web_container(stack: Stack) -> None:
    with Timed("seed_demo"):
        out = stack.exec("web", "python", "manage.py", "seed_demo", "--throwaway",
                         timeout=900)
    assert "Demo trial created." in out, out
    assert re.search(r"^\s+reader1\s+Reader\s+H1", out, re.M), out
    # The demo's drafts (the demo backend) were made by the worker container, not in-process.
    admin = STATE["admin"]

    def drafts_done() -> bool:
        drafts = results(api(admin, "GET", "/api/trials/demo/drafts/?limit=1000"))
        return bool(drafts) and all(d["status"] == "done" for d in drafts)

    wait_until("the demo's drafts done by the worker", drafts_done, timeout=180, every=2)
    logs = stack.compose("logs", "--no-color", "worker").stdout
    assert "generate_draft" in logs and "succeeded" in logs, logs[-3000:]
    # The worker container's own health check (a Celery ping of its node) passes.
    wait_until("worker healthy", lambda: stack.health("worker") == "healthy", timeout=120,
               every=2)


def _enrol(admin: httpx.Client, case: dict, answers: dict[str, bool]) -> None:
    base = f"/api/trials/demo/cases/{case['id']}"
    api(admin, "POST", f"{base}/screen/", {"answers": answers})
    api(admin, "POST", f"{base}/consent/")
    enrolled = api(admin, "POST", f"{base}/enrol/")
    assert enrolled["status"] == "enrolled", enrolled


def _draft(admin: httpx.Client, case: dict, endpoint: int) -> dict | None:
    drafts = results(api(admin, "GET", "/api/trials/demo/drafts/?limit=1000"))
    return next((d for d in drafts if d["case"] == case["case_id"] and d["endpoint"] == endpoint),
                None)


def import_studies(stack: Stack, tmp_path: Path, marks: tuple[str, ...], seed: int) -> None:
    """One synthetic study per mark, with a history naming it, imported with ``import_dicom``
    in a web container (``docker cp``, then ``exec``), as a coordinator would."""
    from trial.dicom.synthetic import make_cxr

    name = f"deploy-import-{seed}"
    folder = tmp_path / name
    (folder / "dicom").mkdir(parents=True)
    with (folder / "history.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["accession_number", "chief_complaint", "history", "lab_results",
                         "prior_imaging"])
        for n, mark in enumerate(marks, 1):
            make_cxr(folder / "dicom" / f"study{n}.dcm", seed=seed + n, rows=384, columns=320,
                     patient_id=f"DEPLOY-PAT-{seed + n}", accession=f"DEPLOYACC{seed + n}")
            writer.writerow([f"DEPLOYACC{seed + n}", "Cough and fever",
                             f"Three days of cough ({mark})", "CRP 40 mg/L", ""])
    run(["docker", "cp", str(folder), f"{stack.container('web')}:/tmp/"])
    out = stack.exec("web", "python", "manage.py", "import_dicom", f"/tmp/{name}/dicom",
                     "--trial", "demo", "--site", "H1", "--history", f"/tmp/{name}/history.csv")
    assert f"{len(marks)} imported, 0 duplicate, 0 rejected" in out, out


def test_import_dicom_then_draft_made_by_the_worker(
        stack: Stack, model: ModelServer, tmp_path: Path) -> None:
    admin = STATE["admin"]
    # The demo trial's endpoint becomes an OpenAI-compatible server (the fake one, on this
    # host), as a coordinator would set it up through the API.
    endpoints = results(api(admin, "GET", "/api/trials/demo/model-endpoints/"))
    for endpoint in endpoints:
        if endpoint["active"]:
            api(admin, "PATCH", f"/api/trials/demo/model-endpoints/{endpoint['id']}/",
                {"active": False})
    endpoint = api(admin, "POST", "/api/trials/demo/model-endpoints/", {
        "name": "Deployment test model", "backend": "openai", "base_url": model.url,
        "model_name": "fake-cxr-model", "active": True, "timeout_s": 20, "max_attempts": 3,
        "retry_backoff_s": 1, "concurrency": 4}, expect=201)
    STATE["endpoint"] = endpoint["id"]

    # Two studies and their clinical history, imported in the web container.
    import_studies(stack, tmp_path, (MARK_A, MARK_B), seed=900)

    cases = results(api(admin, "GET", "/api/trials/demo/cases/?limit=1000"))
    mine = {mark: next(c for c in cases if mark in c["history"]) for mark in (MARK_A, MARK_B)}
    assert all(c["status"] == "screened" and c["image_count"] == 1 for c in mine.values()), mine
    criteria = results(api(admin, "GET", "/api/trials/demo/criteria/"))
    STATE["answers"] = {c["code"]: c["kind"] == "inclusion" for c in criteria}
    STATE["cases"] = mine

    with Timed("draft by the worker"):
        _enrol(admin, mine[MARK_A], STATE["answers"])
        draft = wait_until("case A's draft", lambda: (
            d if (d := _draft(admin, mine[MARK_A], endpoint["id"])) and d["status"] in (
                "done", "failed") else None), timeout=120, every=1)
    assert draft["status"] == "done", draft
    assert (draft["backend"], draft["is_demo"]) == ("openai", False), draft
    assert "lungs are clear" in draft["findings"].lower(), draft
    calls = model.with_marker(MARK_A)
    assert [call.client for call in calls] == [stack.address("worker")], calls


def test_worker_killed_mid_draft_and_the_draft_finished_by_a_restarted_one(
        stack: Stack, model: ModelServer) -> None:
    admin, case = STATE["admin"], STATE["cases"][MARK_B]
    model.hold_first(MARK_B)
    _enrol(admin, case, STATE["answers"])
    held = model.wait_for(MARK_B, 1, timeout=60)[0]
    before = stack.inspect("worker")
    assert held.held and held.client == stack.address("worker"), held
    draft = _draft(admin, case, STATE["endpoint"])
    assert draft and draft["status"] == "running", draft

    with Timed("kill the worker mid-draft, until the draft is done"):
        pid, killed_at = before["State"]["Pid"], time.time()
        if os.geteuid() == 0:
            # A crash: the worker's main process dies (SIGKILL); the restart policy
            # (unless-stopped) starts the container again.
            os.kill(pid, signal.SIGKILL)
        else:
            # Not allowed to signal root's processes: kill the container and start it again.
            run(["docker", "kill", stack.container("worker")])
            stack.compose("start", "worker")

        def restarted() -> bool:
            state = stack.inspect("worker")["State"]
            return state["Running"] and state["StartedAt"] != before["State"]["StartedAt"]

        wait_until("the worker container restarted", restarted, timeout=60, every=0.5)
        # Only now, with every process of the old container gone, the held call may end (its
        # answer goes nowhere): until the takeover sends it again, the draft stays running.
        model.release()
        if len(model.with_marker(MARK_B)) == 1:
            assert _draft(admin, case, STATE["endpoint"])["status"] in ("running", "queued")
        done = wait_until("case B's draft taken over and done", lambda: (
            d if (d := _draft(admin, case, STATE["endpoint"])) and d["status"] in (
                "done", "failed") else None), timeout=180, every=1)
    assert done["status"] == "done", done
    assert "lungs are clear" in done["findings"].lower(), done
    calls = model.with_marker(MARK_B)
    assert len(calls) >= 2 and calls[-1].at > killed_at, calls  # sent again after the kill
    assert calls[-1].client == stack.address("worker"), calls  # by the restarted container
    after = stack.inspect("worker")
    assert after["Id"] == before["Id"], "the same container, restarted"


def test_reader_opens_a_case_page_and_its_pixels_through_nginx(stack: Stack) -> None:
    reader = client(stack)
    sign_in(reader, "reader1", DEMO_PASSWORD)
    worklist = reader.get("/read/demo/")
    assert worklist.status_code == 200, worklist.text[:1000]
    positions = sorted({int(p) for p in re.findall(r'href="/read/demo/(\d+)/"', worklist.text)})
    assert positions, worklist.text[:3000]
    page = None
    for position in positions:
        page = reader.get(f"/read/demo/{position}/")
        if page.status_code == 200:
            break
    assert page is not None and page.status_code == 200, page and page.text[:2000]
    viewer = re.search(r'<script id="viewer-images" type="application/json">(.*?)</script>',
                       page.text, re.S)
    assert viewer, page.text[:3000]
    meta = json.loads(viewer.group(1))[0]
    pixels = reader.get(meta["pixels_url"])
    assert pixels.status_code == 200, pixels.text[:500]
    assert pixels.headers["content-type"] == "application/octet-stream"
    assert pixels.headers.get("content-encoding") == "gzip"
    assert len(pixels.content) == meta["rows"] * meta["columns"] * 2  # uint16, decoded
    # Sent by nginx itself after Django's check (X-Accel-Redirect): nginx's static-file headers
    # (Last-Modified, byte ranges), Django's ETag and cache headers, no internal path leaked.
    assert "x-accel-redirect" not in pixels.headers
    assert pixels.headers.get("accept-ranges") == "bytes" and "last-modified" in pixels.headers
    assert pixels.headers["etag"].startswith('"'), pixels.headers
    assert pixels.headers["cache-control"].startswith("private, max-age="), pixels.headers
    again = reader.get(meta["pixels_url"], headers={"If-None-Match": pixels.headers["etag"]})
    assert again.status_code == 304
    web_log = stack.compose("logs", "--no-color", "web").stdout
    sent = [line for line in web_log.splitlines() if f'GET {meta["pixels_url"]} ' in line]
    assert sent and ' 200 0 ' in sent[0], sent  # gunicorn sent no byte of the file
    # The internal location answers nobody directly, signed in or not.
    found = stack.exec("web", "sh", "-c", "find /data/media -name pixels-u16.gz | head -1").strip()
    direct = "/_protected_media/" + found.removeprefix("/data/media/")
    assert reader.get(direct).status_code == 404
    assert client(stack).get(direct).status_code == 404
    STATE["reader"], STATE["pixels"] = reader, (meta["pixels_url"], pixels.content)


def test_nginx_serves_static_files_and_not_media(stack: Stack) -> None:
    # Static files: served by nginx itself (its 7-day expiry, not Django's headers), the
    # files collected into the image.
    static = httpx.get(f"{stack.base_url}/static/reader/viewer.js", timeout=30)
    assert static.status_code == 200, static.text[:300]
    assert static.headers["server"].startswith("nginx")
    assert static.headers["cache-control"] == "max-age=604800", static.headers
    assert "content-security-policy" not in static.headers  # Django's would carry one
    in_image = stack.exec("web", "sha256sum", "/app/staticfiles/reader/viewer.js").split()[0]
    assert hashlib.sha256(static.content).hexdigest() == in_image
    # Media: every stored file exists in the volume, none is served at /media/ (to anyone).
    files = stack.exec("web", "find", "/data/media", "-type", "f").split()
    assert any(f.endswith("pixels-u16.gz") for f in files), files[:20]
    samples = [next(f for f in files if f.endswith(suffix))
               for suffix in ("pixels-u16.gz", "viewer-meta.json", ".dcm")
               if any(f.endswith(suffix) for f in files)]
    assert len(samples) >= 2, files[:20]
    for path in samples:
        url = "/media/" + path.removeprefix("/data/media/")
        for who, browser in (("anonymous", client(stack)), ("reader", STATE["reader"])):
            response = browser.get(url)
            assert response.status_code == 404, (who, url, response.status_code)
            assert b"DICM" not in response.content[:200], (who, url)


SNAPSHOT = """
import json
from django.apps import apps
from django.db.models import Max
rows = {m._meta.label: [m._base_manager.count(), m._base_manager.aggregate(x=Max("pk"))["x"]]
        for m in apps.get_models() if m._meta.managed and not m._meta.proxy}
print("SNAPSHOT" + json.dumps(rows, sort_keys=True, default=str))
"""


def snapshot(stack: Stack) -> tuple[dict, list[str]]:
    out = stack.exec("web", "python", "manage.py", "shell", "-c", SNAPSHOT)
    rows = json.loads(out.split("SNAPSHOT", 1)[1])
    files = stack.exec("web", "sh", "-c",
                       "cd /data/media && find . -type f -exec sha256sum {} + | sort")
    return rows, files.splitlines()


def assert_unchanged(stack: Stack, rows: dict, files: list[str]) -> None:
    """Every table's row count and largest key and every media file as ``snapshot`` found
    them, and the reader still signed in, getting the same pixels."""
    rows_after, files_after = snapshot(stack)
    assert rows_after == rows
    assert files_after == files
    url, content = STATE["pixels"]
    again = STATE["reader"].get(url)
    assert again.status_code == 200 and again.content == content


def test_restart_keeps_every_row_and_file(stack: Stack) -> None:
    rows, files = snapshot(stack)
    assert rows["trial.Case"][0] >= 34 and rows["drafting.Draft"][0] >= 32, rows
    assert len(files) > 60, files[:10]
    with Timed("restart (down, up -d, ready)"):
        stack.compose("down", "--timeout", "30", timeout=300)
        assert not stack.compose("ps", "-q").stdout.split()  # no container left
        stack.compose("up", "-d", timeout=900)
        stack.wait_ready(timeout=240)
    # The sessions (database rows) survived: the reader and the superuser are still signed in.
    assert_unchanged(stack, rows, files)
    drafts = results(api(STATE["admin"], "GET", "/api/trials/demo/drafts/?limit=1000"))
    assert sum(d["endpoint"] == STATE["endpoint"] and d["status"] == "done" for d in drafts) == 2


def test_two_web_and_two_worker_replicas(stack: Stack, tmp_path: Path) -> None:
    """``compose.scale.yaml`` on top: nginx spreads requests over both web containers, both
    worker containers make drafts."""
    scaled = [*stack.argv[:-2], "-f", str(SCALE_FILE), *stack.argv[-2:]]
    with Timed("scale out (2 web, 2 worker)"):
        run([*scaled, "up", "-d"], env=stack.env, timeout=900)

        def all_healthy() -> dict | None:
            ids = {name: stack.compose("ps", "-q", name).stdout.split()
                   for name in ("web", "worker")}
            states = {run(["docker", "inspect", "-f", "{{.State.Health.Status}}", c]).stdout
                      .strip() for c in ids["web"] + ids["worker"]}
            return ids if all(len(v) == 2 for v in ids.values()) and states == {"healthy"} \
                else None
        ids = wait_until("2 healthy web and 2 healthy worker containers", all_healthy,
                         timeout=300, every=3)
        stack.wait_ready(timeout=120)

    # Requests through nginx reach both web containers (Docker's DNS gives both addresses).
    marker = f"/accounts/login/?spread={secrets.token_hex(4)}"
    for _ in range(40):
        assert httpx.get(stack.base_url + marker, timeout=30).status_code == 200
    served = [run(["docker", "logs", c], timeout=60).stdout.count(marker) for c in ids["web"]]
    assert sum(served) == 40 and min(served) > 0, served

    # Drafts of six new cases are made by both worker containers (each answer takes 2 s, so
    # one container's two processes cannot take them all).
    admin = STATE["admin"]
    marks = tuple(f"DEPLOY-SCALE-{n}" for n in range(6))
    import_studies(stack, tmp_path, marks, seed=950)
    cases = results(api(admin, "GET", "/api/trials/demo/cases/?limit=1000"))
    mine = [next(c for c in cases if mark in c["history"]) for mark in marks]
    with model_server(stack.gateway()) as server:
        server.delay_s = 2.0
        api(admin, "PATCH", f"/api/trials/demo/model-endpoints/{STATE['endpoint']}/",
            {"base_url": server.url})
        for case in mine:
            _enrol(admin, case, STATE["answers"])

        def finished() -> list[dict] | None:
            found = [_draft(admin, case, STATE["endpoint"]) for case in mine]
            return found if all(d and d["status"] in ("done", "failed") for d in found) else None
        drafts = wait_until("the six drafts", finished, timeout=240, every=2)
        callers = {seen.client for seen in server.requests}
    assert [d["status"] for d in drafts] == ["done"] * 6, drafts
    workers = {json.loads(run(["docker", "inspect", c]).stdout)[0]["NetworkSettings"]["Networks"]
               [f"{PROJECT}_default"]["IPAddress"] for c in ids["worker"]}
    assert callers == workers, (callers, workers)

    # Back to one of each, as compose.yaml alone runs it.
    stack.compose("up", "-d", "--scale", "web=1", "--scale", "worker=1", timeout=600)
    wait_until("one web container", lambda: len(stack.compose("ps", "-q", "web").stdout.split())
               == 1, timeout=120)


def test_backup_then_restore_into_an_empty_stack(stack: Stack, tmp_path: Path) -> None:
    """``docker/backup.sh`` on the running stack; ``down -v`` (nothing left: database, media
    and Redis volumes removed); ``docker/restore.sh`` into the empty stack: every row and
    file is back, and the reader's session and pixels with them."""
    rows, files = snapshot(stack)
    env = {**stack.env, "COMPOSE": shlex.join(stack.argv)}
    backup = tmp_path / "backup"
    with Timed("backup (docker/backup.sh)"):
        run([str(ROOT / "docker" / "backup.sh"), str(backup)], env=env, timeout=600)
    assert sorted(p.name for p in backup.iterdir()) == ["SHA256SUMS", "db.dump", "media.tar"]

    stack.compose("down", "-v", "--timeout", "30", timeout=300)
    volumes = run(["docker", "volume", "ls", "-q", "--filter",
                   f"label=com.docker.compose.project={PROJECT}"]).stdout.split()
    assert not volumes, volumes
    with Timed("restore (docker/restore.sh) into an empty stack, ready"):
        run([str(ROOT / "docker" / "restore.sh"), str(backup)], env=env, timeout=900)
        stack.wait_ready(timeout=300)
    assert_unchanged(stack, rows, files)

    # A second restore over the restored stack is refused without --force.
    refused = run([str(ROOT / "docker" / "restore.sh"), str(backup)], env=env, timeout=600,
                  check=False)
    assert refused.returncode != 0 and "already holds" in refused.stderr, refused.stderr
    assert STATE["reader"].get(STATE["pixels"][0]).status_code == 200  # and left the stack running
