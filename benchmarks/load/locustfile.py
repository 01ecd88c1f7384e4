"""Locust scenario of a trial's working day: readers, raters, seniors and coordinators using
the site as their browsers do. Run by ``benchmarks/load.py``, which builds the trial
(``manage.py seed_load``), starts the servers and checks the saved texts afterwards; by hand:

    LOAD_ACCOUNTS=accounts.json LOAD_OUT=out/ .venv/bin/locust -f benchmarks/load/locustfile.py \\
        --headless -u 65 -r 0.5 -t 10m --host http://127.0.0.1:8080 --csv out/locust

``LOAD_ACCOUNTS`` is the JSON ``seed_load`` prints: each simulated person signs in as an account
of their role (one account each: ``-u`` must be the number of accounts, the classes'
``fixed_count``). Every request is what the page's own script sends (``static/reader/editor.js``,
``rating.js``, ``viewer.js``, ``static/monitor/dashboard.js``): same URLs, bodies and headers
(``X-CSRFToken`` from the page's ``csrf-token`` meta, ``X-Background: 1`` on heartbeats and the
dashboard's polls, ``Accept``).

* **Reader**: signs in through the login form (CSRF token from the form), opens the worklist,
  follows "next case": the case page (rendering it opens the reading, as in the browser), the
  viewer's pixels (and the reduced-resolution preview when the page offers one, both at once),
  then ``image_displayed``; a heartbeat every 10 s from page load to submission; reads for
  60-180 s: looks at the image, then types in bursts (the text grows a few characters a
  second), the editor's autosave every 1.5 s while typing and 0.7 s after a burst; submits,
  and goes on to the next case (one time in five through the worklist).
* **Rater**: the campaign's list, then item after item: the item page (rendering it opens the
  item), its pixels, 20-60 s of thought, a plausible answer to every instrument on the page
  (Likert, RADPEER, acceptability, error counts, preference, source identification), submit,
  the next item.
* **Senior**: the review list, then case after case: the review page (opens the review), its
  pixels, 10-30 s reading the two reports, "start from" one of them (saved at once with
  ``started_from``), 30-90 s of edits with autosaves, then the signature with the password
  typed again, as the sign endpoint requires.
* **Coordinator**: password, then the 6-digit code computed from the authenticator key
  (django_otp's TOTP), the dashboard page, and ``data.json`` at the page's own interval
  (``monitor-config``), the page reloaded every 3-6 minutes.

Each simulated reader or senior appends what it sends to the server in ``LOAD_OUT/saves/
<user>.jsonl`` ("opened" with the text the page came with, "pending" before a save or
submission, "acked" when it was answered 200), so the driver can check afterwards that every
stored text is the last one saved. Every request is also logged to
``LOAD_OUT/requests-<pid>.csv`` (time, name, milliseconds, bytes, status, failure) for
per-minute figures. Request names start with their kind: ``page``, ``api``, ``pixels``, ``auth``;
the two that check a password (sign-in and the senior's signature) say ``(password)``. As a
browser does, a request is sent again, once, when the kept-alive connection it went out on had
been closed by the server before any answer; nothing else is retried, and a heartbeat refused
(409) because it reached the server after its reading's submission is not a failure (the page
ignores that answer too).
"""

from __future__ import annotations

import csv
import html
import json
import os
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from django_otp.oath import TOTP
from locust import FastHttpUser, constant, events, task

# --- configuration ---------------------------------------------------------------------------


def _accounts() -> dict[str, Any]:
    path = os.environ.get("LOAD_ACCOUNTS")
    if not path:  # imported without a trial (locust --help, a syntax check): no users
        return {"trial": "", "campaign": None, "password": "", "readers": [], "seniors": [],
                "raters": [], "coordinators": []}
    return json.loads(Path(path).read_text())


ACCOUNTS = _accounts()
OUT = Path(os.environ.get("LOAD_OUT", "load-out"))
SLUG = ACCOUNTS["trial"]
PASSWORD = ACCOUNTS["password"]
# Pacing, in seconds (environment variables, so a smoke test can shorten nothing but these).
READ_S = (float(os.environ.get("LOAD_READ_MIN_S", 60)), float(os.environ.get("LOAD_READ_MAX_S",
                                                                             180)))
RATE_S = (20.0, 60.0)
REVIEW_S = (30.0, 90.0)
HEARTBEAT_S = 10.0  # editor.js HEARTBEAT_MS
SAVE_MAX_WAIT_S = 1.5  # editor.js MAX_WAIT_MS: a save at most 1.5 s after the first keystroke
SAVE_DEBOUNCE_S = 0.7  # editor.js DEBOUNCE_MS: and 0.7 s after the last one
TYPING_CHARS_S = (3.0, 7.0)

PHRASES = [
    "The lungs are clear. ", "No focal consolidation. ", "No pleural effusion. ",
    "No pneumothorax. ", "Heart size is normal. ", "Mediastinal contours are unremarkable. ",
    "Patchy opacity in the right lower zone. ", "Blunting of the left costophrenic angle. ",
    "Mild cardiomegaly. ", "Bony structures intact. ", "Linear atelectasis at the left base. ",
    "Endotracheal tube tip 4 cm above the carina. ", "Increased interstitial markings. ",
    "Hilar structures are within normal limits. ", "Small nodule in the right mid zone. ",
]
IMPRESSIONS = [
    "No acute cardiopulmonary abnormality. ", "Right lower lobe pneumonia. ",
    "Small left pleural effusion. ", "Findings suggest early pulmonary oedema. ",
    "Follow-up chest radiograph recommended. ",
]


def _queue(names: list) -> list:
    names = list(names)
    random.shuffle(names)
    return names


READERS, SENIORS = _queue(ACCOUNTS["readers"]), _queue(ACCOUNTS["seniors"])
RATERS, COORDINATORS = _queue(ACCOUNTS["raters"]), _queue(ACCOUNTS["coordinators"])


# --- the per-request log -----------------------------------------------------------------------

_log: dict[str, Any] = {}


@events.request.add_listener
def _log_request(request_type: str, name: str, response_time: float, response_length: int,
                 exception: Exception | None = None, start_time: float | None = None,
                 response: Any = None, **_: Any) -> None:
    if "writer" not in _log:
        OUT.mkdir(parents=True, exist_ok=True)
        handle = (OUT / f"requests-{os.getpid()}.csv").open("a", newline="")
        _log["handle"], _log["writer"] = handle, csv.writer(handle)
    status = getattr(response, "status_code", "") if response is not None else ""
    _log["writer"].writerow([f"{start_time or time.time():.3f}", name, f"{response_time:.1f}",
                             response_length or 0, status, 1 if exception else 0])


@events.quitting.add_listener
def _close_log(**_: Any) -> None:
    if "handle" in _log:
        _log["handle"].close()


# --- reading the pages ----------------------------------------------------------------------------

def json_block(text: str, element_id: str) -> Any:
    """The JSON of ``<script id=... type="application/json">`` (``json_script``)."""
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>',
                      text, re.S)
    return json.loads(match.group(1)) if match else None


def element_attr(text: str, element_id: str, attr: str) -> str | None:
    """An attribute of the element with ``id="element_id"`` (HTML-unescaped)."""
    match = re.search(rf'<[a-z]+\b[^>]*\bid="{element_id}"[^>]*>', text)
    if not match:
        return None
    found = re.search(rf'\b{attr}="([^"]*)"', match.group(0))
    return html.unescape(found.group(1)) if found else None


def textarea(text: str, element_id: str) -> str:
    match = re.search(rf'<textarea id="{element_id}"[^>]*>(.*?)</textarea>', text, re.S)
    return html.unescape(match.group(1)) if match else ""


def csrf_meta(text: str) -> str | None:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', text)
    return match.group(1) if match else None


def form_token(text: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
    if not match:
        raise RuntimeError("no CSRF token in the form")
    return match.group(1)


def client_now() -> str:
    """``new Date().toISOString()``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def why(response: Any) -> str:
    """A failed response in a few words: the status and the body, or the client's error."""
    if response.status_code:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return f"no answer: {getattr(response, 'error', None)!r}"[:300]


class Stop(Exception):
    """A request failed in a way the page could not go on from (recorded as a failure)."""


# --- what the simulated people write --------------------------------------------------------------

class Typist:
    """Text that grows as someone types: FINDINGS first, then IMPRESSION."""

    def __init__(self, findings: str, impression: str, rng: random.Random) -> None:
        self.findings, self.impression, self.rng = findings, impression, rng
        self.speed = rng.uniform(*TYPING_CHARS_S)
        self.plan = rng.randint(250, 700)  # characters this report gets typed into it
        self.typed = 0
        self.buffer = ""

    def type(self, seconds: float) -> None:
        count = max(1, round(self.speed * seconds))
        while len(self.buffer) < count:
            pool = PHRASES if self.typed < 0.75 * self.plan else IMPRESSIONS
            self.buffer += self.rng.choice(pool)
        chunk, self.buffer = self.buffer[:count], self.buffer[count:]
        if self.typed < 0.75 * self.plan:
            self.findings += chunk
        else:
            self.impression += chunk
        self.typed += count


class SaveLog:
    """What one simulated person sent: JSON lines, flushed as written."""

    def __init__(self, user: str) -> None:
        folder = OUT / "saves"
        folder.mkdir(parents=True, exist_ok=True)
        self.handle = (folder / f"{user}.jsonl").open("a")
        self.user = user

    def write(self, event: str, kind: str, key: int, findings: str, impression: str) -> None:
        self.handle.write(json.dumps({"event": event, "kind": kind, "user": self.user,
                                      "key": key, "findings": findings,
                                      "impression": impression, "t": time.time()}) + "\n")
        self.handle.flush()


# --- the browser --------------------------------------------------------------------------------

class Browser(FastHttpUser):
    """One person's browser: a session (cookies), the page's CSRF token, the page's scripts'
    requests. The flows pace themselves (``wait_time`` only between whole sessions).

    locust's FastHttpUser (geventhttpclient), not HttpUser (requests): the client shares the
    servers' two cores, and requests' own time per request, above all reading 5 MB of pixels
    in Python, was in every response time measured (locust's documentation recommends it for
    this reason)."""

    abstract = True
    wait_time = constant(1)
    pool: list = []
    role = ""
    # A browser sends a request again, once, when a kept-alive connection it reused turns out
    # to have been closed by the server before any answer (nginx closes connections idle for
    # 75 s while a reader reads): so does this.
    max_retries = 1

    def on_start(self) -> None:
        self.origin = self.host.rstrip("/")
        self.csrf: str | None = None
        account = self.pool.pop()
        self.username = account if isinstance(account, str) else account["username"]
        self.account = account
        self.rng = random.Random(self.username)
        self.sign_in()

    # requests ------------------------------------------------------------------------------

    def page(self, path: str, name: str, *, expect: int = 200) -> str:
        with self.client.get(path, name=name, catch_response=True,
                             headers={"Accept": "text/html,application/xhtml+xml"}) as response:
            if response.status_code != expect:
                response.failure(why(response))
                raise Stop(f"{name}: {response.status_code}")
            text = response.text
        self.csrf = csrf_meta(text) or self.csrf
        self.referer = self.origin + path
        return text

    def post_json(self, url: str, data: dict, name: str, *, background: bool = False,
                  expect: tuple[int, ...] = (200,)) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "X-CSRFToken": self.csrf or "", "Origin": self.origin,
                   "Referer": getattr(self, "referer", self.origin + "/")}
        if background:
            headers["X-Background"] = "1"
        with self.client.post(url, data=json.dumps(data), headers=headers, name=name,
                              catch_response=True) as response:
            if response.status_code not in expect:
                response.failure(why(response))
                raise Stop(f"{name}: {response.status_code}")
            response.success()
            if response.status_code == 204 or not response.content:
                return None
            return response.json()

    def form_post(self, path: str, fields: dict, name: str) -> str:
        """A form's POST, not following the redirect (its target is requested on its own)."""
        with self.client.post(path, data=fields, name=name, allow_redirects=False,
                              catch_response=True,
                              headers={"Origin": self.origin, "Referer": self.origin + path},
                              ) as response:
            if response.status_code != 302:
                response.failure(f"no redirect: {why(response)}")
                raise Stop(f"{name}: {response.status_code}")
            return response.headers["Location"]

    def sign_in(self) -> None:
        form = self.page("/accounts/login/", "page sign-in form")
        where = self.form_post("/accounts/login/", {
            "csrfmiddlewaretoken": form_token(form), "username": self.username,
            "password": PASSWORD, "next": ""}, "auth sign-in POST (password)")
        self.page(where, "page home")

    def show_image(self, text: str) -> None:
        """What viewer.js fetches for the first image: its pixels and, when the page offers a
        reduced-resolution preview, that too, at the same time."""
        images = json_block(text, "viewer-images") or []
        if not images:
            return
        meta = images[0]
        jobs = []
        preview = meta.get("preview")
        if preview and preview.get("url"):
            jobs.append(gevent.spawn(self.fetch_pixels, preview["url"], "pixels preview"))
        self.fetch_pixels(meta["pixels_url"], "pixels full")
        gevent.joinall(jobs)

    def fetch_pixels(self, url: str, name: str) -> None:
        with self.client.get(url, name=name, catch_response=True,
                             headers={"Accept": "application/octet-stream"}) as response:
            if response.status_code != 200:
                response.failure(why(response))
            elif not response.content:
                response.failure("no pixel data")

    def idle(self) -> None:
        """Nothing left to do: stay signed in, doing nothing, until the test ends."""
        while True:
            gevent.sleep(60)

    def edit(self, typist: Typist, seconds: float, save: Any) -> None:
        """Bursts of typing and pauses for ``seconds``; ``save()`` as editor.js schedules it:
        every 1.5 s while typing, and 0.7 s after the last keystroke of a burst."""
        end = time.monotonic() + seconds
        while time.monotonic() < end - 2:
            burst_end = min(time.monotonic() + self.rng.uniform(4, 15), end - 1)
            while time.monotonic() < burst_end:
                step = min(SAVE_MAX_WAIT_S, burst_end - time.monotonic())
                if step <= 0:
                    break
                gevent.sleep(step)
                typist.type(step)
                if step >= SAVE_MAX_WAIT_S:
                    save()
            gevent.sleep(SAVE_DEBOUNCE_S)
            save()
            gevent.sleep(max(0.0, min(self.rng.uniform(3, 20), end - time.monotonic())))


# --- readers -----------------------------------------------------------------------------------

class Reader(Browser):
    fixed_count = len(READERS)
    pool = READERS
    role = "reader"

    def on_start(self) -> None:
        super().on_start()
        self.log = SaveLog(self.username)
        self.worklist = f"/read/{SLUG}/"

    @task
    def work(self) -> None:
        text = self.page(self.worklist, "page reader worklist")
        link = element_attr(text, "next-case", "href")
        while link:
            if link.rstrip("/") == self.worklist.rstrip("/"):
                text = self.page(self.worklist, "page reader worklist")
                link = element_attr(text, "next-case", "href")
                continue
            link = self.read_case(link)
            if link and self.rng.random() < 0.2:  # back to the worklist now and then
                text = self.page(self.worklist, "page reader worklist")
                link = element_attr(text, "next-case", "href")
        self.idle()

    def read_case(self, path: str) -> str | None:
        text = self.page(path, "page reader case")
        nxt = element_attr(text, "next-case", "href")
        urls, config = json_block(text, "reading-urls"), json_block(text, "reading-config")
        if config["status"] != "open":
            return nxt
        position = int(path.rstrip("/").rsplit("/", 1)[1])
        state = {"version": config["version"], "saved": None, "submitting": False}
        typist = Typist(textarea(text, "findings"), textarea(text, "impression"), self.rng)
        state["saved"] = (typist.findings, typist.impression)
        self.log.write("opened", "reading", position, *state["saved"])  # stored now
        labels = 'name="labels"' in text

        def body() -> dict:
            data = {"findings": typist.findings, "impression": typist.impression,
                    "version": state["version"]}
            if labels:
                data["labels"] = ["No Finding"]
            return data

        def save() -> None:
            current = (typist.findings, typist.impression)
            if current == state["saved"]:
                return
            self.log.write("pending", "reading", position, *current)
            answer = self.post_json(urls["save"], body(), "api reader save")
            state["version"], state["saved"] = answer["version"], current
            self.log.write("acked", "reading", position, *current)

        beats = gevent.spawn(self.heartbeats, urls["events"], state)
        try:
            self.show_image(text)
            self.post_json(urls["events"], {"kind": "image_displayed", "client_at": client_now()},
                           "api reader event", expect=(204,))
            seconds = self.rng.uniform(*READ_S)
            look = self.rng.uniform(5, min(25, seconds / 3))
            gevent.sleep(look)
            self.edit(typist, seconds - look - 2, save)
            gevent.sleep(2)  # reads it over, Ctrl+Enter, Enter
            current = (typist.findings, typist.impression)
            self.log.write("pending", "reading", position, *current)
            state["submitting"] = True
            self.post_json(urls["submit"], body(), "api reader submit")
            self.log.write("acked", "reading", position, *current)
        finally:
            beats.kill()
        return nxt

    def heartbeats(self, url: str, state: dict) -> None:
        while True:
            gevent.sleep(HEARTBEAT_S)
            headers = {"Content-Type": "application/json", "Accept": "application/json",
                       "X-CSRFToken": self.csrf or "", "Origin": self.origin,
                       "Referer": self.referer, "X-Background": "1"}
            body = json.dumps({"kind": "heartbeat", "client_at": client_now()})
            with self.client.post(url, data=body, headers=headers, name="api reader heartbeat",
                                  catch_response=True) as response:
                # The page beats until the submission's answer is in (editor.js: "locked"),
                # so a beat can reach the server after the submission and be refused (409
                # "submitted"): the page ignores that answer, and so does this. Anything else
                # is a failure (a lost beat only shortens active time).
                late = response.status_code == 409 and state["submitting"]
                if response.status_code == 204 or late:
                    response.success()
                else:
                    response.failure(why(response))


# --- seniors -----------------------------------------------------------------------------------

class Senior(Browser):
    fixed_count = len(SENIORS)
    pool = SENIORS
    role = "senior"

    def on_start(self) -> None:
        super().on_start()
        self.log = SaveLog(self.username)
        self.reviews = f"/review/{SLUG}/"

    @task
    def work(self) -> None:
        text = self.page(self.reviews, "page senior list")
        link = element_attr(text, "next-case", "href")
        while link and link.rstrip("/") != self.reviews.rstrip("/"):
            link = self.review_case(link)
        if link:  # "back to the list": is anything left?
            text = self.page(self.reviews, "page senior list")
            if element_attr(text, "next-case", "href"):
                return  # the task runs again
        self.idle()

    def review_case(self, path: str) -> str | None:
        text = self.page(path, "page senior review")
        nxt = element_attr(text, "next-case", "href")
        urls, config = json_block(text, "reading-urls"), json_block(text, "reading-config")
        if config["status"] != "open":
            return nxt
        case = int(path.rstrip("/").rsplit("/", 1)[1])
        reports = json_block(text, "junior-reports") or []
        typist = Typist(textarea(text, "findings"), textarea(text, "impression"), self.rng)
        state = {"version": config["version"], "saved": (typist.findings, typist.impression),
                 "started_from": None}
        self.log.write("opened", "review", case, *state["saved"])  # stored now

        def body() -> dict:
            data = {"findings": typist.findings, "impression": typist.impression,
                    "version": state["version"]}
            if state["started_from"]:
                data["started_from"] = state["started_from"]
            return data

        def save() -> None:
            current = (typist.findings, typist.impression)
            if current == state["saved"]:
                return
            self.log.write("pending", "review", case, *current)
            answer = self.post_json(urls["save"], body(), "api senior save")
            state["version"], state["saved"] = answer["version"], current
            self.log.write("acked", "review", case, *current)

        self.show_image(text)
        gevent.sleep(self.rng.uniform(10, 30))  # reads Report 1 and Report 2
        if reports and not typist.findings and not typist.impression:
            chosen = self.rng.choice(reports)  # "Start from Report N": saved at once
            typist.findings, typist.impression = chosen["findings"], chosen["impression"]
            if not config.get("startedFrom"):
                state["started_from"] = chosen["key"]
            save()
        self.edit(typist, self.rng.uniform(*REVIEW_S), save)
        gevent.sleep(3)  # Ctrl+Enter, types the password, Enter
        current = (typist.findings, typist.impression)
        self.log.write("pending", "review", case, *current)
        self.post_json(urls["sign"], {**body(), "password": PASSWORD},
                       "api senior sign (password)")
        self.log.write("acked", "review", case, *current)
        return nxt


# --- raters ------------------------------------------------------------------------------------

ERROR_COUNTS = [0] * 12 + [1, 1, 2]


def answers(text: str, rng: random.Random) -> dict[str, Any]:
    """A plausible answer to every instrument on the item page (as rating.js collects it)."""
    values: dict[str, Any] = {}
    for match in re.finditer(r'<fieldset class="instrument"[^>]*data-instrument="([^"]+)"'
                             r'\s+data-kind="([^"]+)">(.*?)</fieldset>', text, re.S):
        code, kind, inner = match.groups()
        if kind == "counts":
            counts: dict[str, dict[str, int]] = {}
            for kind_, part in re.findall(r'data-type="([^"]+)" data-part="([^"]+)"', inner):
                counts.setdefault(kind_, {})[part] = rng.choice(ERROR_COUNTS)
            values[code] = counts
            continue
        levels = re.findall(rf'type="radio" name="{code}" id="[^"]*" value="([^"]+)"', inner)
        if code in ("likert", "radpeer"):  # mostly good reports
            weights = {"5": 4, "4": 5, "3": 2, "2": 1, "1": 0.3}
            values[code] = rng.choices(levels, [weights.get(v, 1) for v in levels])[0]
        elif code == "acceptability":
            values[code] = rng.choices(levels, [{"A": 5, "B": 4, "C": 1}.get(v, 0.3)
                                                for v in levels])[0]
        else:  # preference, source identification: A or B
            values[code] = rng.choice(levels)
    return values


class Rater(Browser):
    fixed_count = len(RATERS)
    pool = RATERS
    role = "rater"

    def on_start(self) -> None:
        super().on_start()
        self.listing = f"/rate/{SLUG}/{ACCOUNTS['campaign']}/"

    @task
    def work(self) -> None:
        text = self.page(self.listing, "page rater list")
        link = element_attr(text, "next-item", "href")
        while link and link.rstrip("/") != self.listing.rstrip("/"):
            link = self.rate_item(link)
        self.idle()

    def rate_item(self, path: str) -> str | None:
        text = self.page(path, "page rater item")
        nxt = element_attr(text, "rating", "data-next") or self.listing
        if element_attr(text, "rating", "data-status") == "submitted":
            return nxt
        urls = json_block(text, "rating-urls")
        self.show_image(text)
        gevent.sleep(self.rng.uniform(*RATE_S))
        self.post_json(urls["submit"], {"values": answers(text, self.rng)}, "api rater submit")
        return nxt


# --- coordinators ------------------------------------------------------------------------------

class Coordinator(Browser):
    fixed_count = len(COORDINATORS)
    pool = COORDINATORS
    role = "coordinator"

    def sign_in(self) -> None:
        """Password, then the code page the home page redirects to, then the code."""
        form = self.page("/accounts/login/", "page sign-in form")
        where = self.form_post("/accounts/login/", {
            "csrfmiddlewaretoken": form_token(form), "username": self.username,
            "password": PASSWORD, "next": ""}, "auth sign-in POST (password)")
        with self.client.get(where, name="page home (to the code page)", allow_redirects=False,
                             catch_response=True) as response:
            if response.status_code != 302:
                response.failure(f"no redirect to the code page: {why(response)}")
                raise Stop("no two-factor redirect")
            verify = response.headers["Location"]
        form = self.page(verify, "page two-factor form")
        code = TOTP(bytes.fromhex(self.account["totp_key"])).token()
        where = self.form_post(verify, {"csrfmiddlewaretoken": form_token(form),
                                        "code": f"{code:06d}", "next": "/"},
                               "auth two-factor POST")
        self.page(where, "page home")

    @task
    def watch(self) -> None:
        text = self.page(f"/monitor/{SLUG}/", "page coordinator dashboard")
        config = json_block(text, "monitor-config")
        interval = max(0.2, float(config.get("interval") or 15))
        leave = time.monotonic() + self.rng.uniform(180, 360)
        while time.monotonic() < leave:
            gevent.sleep(interval)
            with self.client.get(config["url"], name="api coordinator data.json",
                                 headers={"Accept": "application/json", "X-Background": "1"},
                                 catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(why(response))

