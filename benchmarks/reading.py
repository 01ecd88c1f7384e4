"""Benchmark of the reading workspace's image path on real servers: the viewer's pixel data
(uncached and cached) and the case page plus its image under concurrent readers.

    .venv/bin/python benchmarks/reading.py [--readers 50] [--requests 5] [--think 5]

Starts its own PostgreSQL (``tests/servers.py``), migrates a fresh database under a temporary
MEDIA_ROOT, and creates a trial (demo model endpoint, so AI-arm cases have drafts) with
``--readers`` allocated readers, each assigned one case with a 2,500 x 3,000 16-bit synthetic
radiograph. Then measures, all in this run:

(a) uncached: ``prepare`` (what an import does) with the viewer files deleted before each
    run, against the same work done directly (pydicom.dcmread + pixel_array +
    apply_modality_lut + subtract the minimum -> uint16 + the same gzip encode, nothing
    written), median of ``--uncached-runs``
    (goal: ratio <= 1.3);
    cached: the pixels over HTTP from the app (gunicorn, signed-in reader, access checked)
    against the same bytes with the same headers from a bare WSGI file server under the same
    gunicorn settings, the same httpx client, sequential, median (goal: as fast);
(b) ``--readers`` concurrent simulated readers (threads, each with its own session cookie and
    kept-alive connection) each GET their case page and then its image pixels, ``--requests``
    times: closed loop with no pause (the stress case: every reader downloads the full image
    every time), closed loop with the browser's copy revalidated (If-None-Match -> 304, as a
    browser re-opening a case does), and paced (random pauses, mean ``--think`` s, between
    cases); p50/p95/p99, errors and throughput (goal: p95 <= 150 ms, 0 errors). A real reader
    spends minutes on a case, so even the paced phase asks far more of the server than a
    reading session does; the closed loops show where 2 cores saturate.

The app runs under gunicorn (``config.wsgi``) with DEBUG off, against the PostgreSQL above.
Client and servers share this machine's cores: the client's own time is in every number.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port, postgres_server  # noqa: E402

# The case page: the reader's case at its worklist position.
CASE_PAGE = "/read/{trial}/{position}/"
ROWS, COLUMNS = 3000, 2500
GOAL_UNCACHED = 1.3
GOAL_P95_MS = 150.0
SERVER_START_TIMEOUT = 60.0
WARM_UP = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=50, help="Concurrent readers (50).")
    parser.add_argument("--requests", type=int, default=5,
                        help="Case page + image fetches per reader in each load phase (5).")
    parser.add_argument("--think", type=float, default=5.0,
                        help="Mean pause (s) between cases in the paced phase (5).")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (4).")
    parser.add_argument("--threads", type=int, default=8,
                        help="gunicorn threads per worker, gthread (8).")
    parser.add_argument("--uncached-runs", type=int, default=7, help="(a) uncached runs (7).")
    parser.add_argument("--cached-runs", type=int, default=30, help="(a) cached fetches (30).")
    return parser.parse_args()


# --- servers and Django --------------------------------------------------------------------

def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    for name in ("httpx", "celery", "trial", "reader"):
        logging.getLogger(name).setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)


def create_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def static_app(environ: dict, start_response: Callable) -> object:
    """A bare file server (WSGI): the file in BENCH_STATIC_FILE with the app's headers."""
    path = os.environ["BENCH_STATIC_FILE"]
    start_response("200 OK", [
        ("Content-Type", "application/octet-stream"), ("Content-Encoding", "gzip"),
        ("Content-Length", str(os.path.getsize(path))),
        ("Cache-Control", "private, max-age=86400"), ("ETag", '"static"'),
    ])
    return environ["wsgi.file_wrapper"](open(path, "rb"), 65536)  # noqa: SIM115 - server closes


@dataclass
class Gunicorn:
    """A gunicorn process (gthread workers) on a free loopback port."""

    app: str
    env: dict[str, str]
    log: Path
    workers: int
    threads: int
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", self.app, "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers), "--worker-class", "gthread",
                "--threads", str(self.threads), "--keep-alive", "30", "--backlog", "2048",
                "--pythonpath", str(ROOT)]

    def start(self, probe: str) -> None:
        import httpx

        self.proc = subprocess.Popen(self.argv(), cwd=ROOT, env=self.env,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"gunicorn {self.app} did not start:\n"
                         + self.log.read_text(errors="replace")[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + probe, timeout=5, trust_env=False).status_code < 500:
                    return
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the trial -----------------------------------------------------------------------------

@dataclass
class Reader:
    username: str
    cookie: str
    case_url: str
    pixels_url: str


def radiographs(folder: Path, count: int) -> None:
    """``count`` distinct studies of one 2500 x 3000 16-bit synthetic radiograph (new UIDs)."""
    import pydicom
    from pydicom.uid import generate_uid

    from trial.dicom.synthetic import make_cxr

    first = make_cxr(folder / "0000.dcm", seed=1, rows=ROWS, columns=COLUMNS, bits=16,
                     patient_id="BENCH0000", accession="BACC0000")
    ds = pydicom.dcmread(first)
    for n in range(1, count):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID, ds.AccessionNumber = f"BENCH{n:04d}", f"BACC{n:04d}"
        ds.save_as(folder / f"{n:04d}.dcm", enforce_file_format=True)


def make_trial(folder: Path, readers: int) -> tuple[object, list]:
    """A trial with ``readers`` allocated readers, each assigned one case (AI drafts made)."""
    from django.contrib.auth import get_user_model

    from drafting.models import ModelEndpoint
    from drafting.tasks import queue_draft
    from trial.assignment import assign_cases
    from trial.dicom.importer import import_path
    from trial.models import Case, Membership, Role, Site, Trial
    from trial.randomization import allocate_all, generate_list

    users = get_user_model().objects
    trial = Trial.objects.create(name="Reading benchmark", slug="bench", registry_id="BENCH",
                                 block_sizes=[2])
    site = Site.objects.create(trial=trial, code="B1", name="Bench hospital")
    coordinator = users.create_user("bench-coordinator", password=None)
    Membership.objects.create(trial=trial, user=coordinator, role=Role.COORDINATOR, site=site)
    for n in range(readers):
        Membership.objects.create(trial=trial, role=Role.READER, site=site, years_experience=5,
                                  user=users.create_user(f"bench-reader-{n:03d}", password=None))
    generate_list(trial, by=coordinator, seed_source=lambda: 7)
    allocate_all(trial, by=coordinator)
    ModelEndpoint.objects.create(trial=trial, name="demo", backend=ModelEndpoint.Backend.DEMO)
    per_arm = max(Membership.objects.filter(trial=trial, role=Role.READER,
                                            allocation_slot__arm=arm).count()
                  for arm in ("ai_assisted", "scp"))
    radiographs(folder, per_arm)
    job = import_path(folder, trial=trial, site=site, by=coordinator)
    if job.imported != per_arm:
        sys.exit(f"import failed: {job.report}")
    for case in Case.objects.filter(trial=trial):
        case.status = Case.Status.ENROLLED
        case.chief_complaint, case.history = "cough, fever", "3 days"
        case.save()
        queue_draft(case)  # demo backend, in-process
    assign_cases(trial, by=coordinator, seed=3)
    return trial, list(Membership.objects.filter(trial=trial, role=Role.READER)
                       .select_related("user"))


def signed_in(trial, memberships: list) -> list[Reader]:
    """Each reader's own session (made directly: the sign-in form is not what is measured)."""
    from django.conf import settings
    from django.test import Client

    from trial.models import Assignment

    readers = []
    for member in memberships:
        assignment = (Assignment.objects.filter(reader=member).select_related("case")
                      .order_by("position").first())
        image = assignment.case.images.get()
        client = Client()
        client.force_login(member.user)
        readers.append(Reader(
            username=member.user.username,
            cookie=client.cookies[settings.SESSION_COOKIE_NAME].value,
            case_url=CASE_PAGE.format(trial=trial.slug, position=assignment.position),
            pixels_url=f"/api/images/{image.pk}/pixels/",
        ))
    return readers


# --- measurements --------------------------------------------------------------------------

def uncached(image, runs: int) -> tuple[list[float], list[float], int]:
    """(prepare seconds, direct seconds, gzip bytes), runs interleaved."""
    import numpy as np
    import pydicom
    from pydicom.pixels import apply_modality_lut

    from trial.dicom.viewer_pixels import derived_dir, gzip_bytes, prepare

    def direct() -> bytes:
        ds = pydicom.dcmread(image.file.path)
        values = apply_modality_lut(ds.pixel_array, ds)
        return gzip_bytes((values - values.min()).astype(np.uint16))

    ours, base = [], []
    size = len(direct())
    for _ in range(runs):
        shutil.rmtree(derived_dir(image), ignore_errors=True)
        started = time.perf_counter()
        prepare(image)  # what an import (or prepare_images) does, within the import's limits
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        direct()
        base.append(time.perf_counter() - started)
    return ours, base, size


def fetch_raw(client, url: str, headers: dict | None = None,
              ttfb: list[float] | None = None) -> tuple[int, int]:
    """(status, body bytes as sent: gzip is not decoded, as a browser's network layer sees)."""
    started = time.perf_counter()
    with client.stream("GET", url, headers=headers) as response:
        if ttfb is not None:
            ttfb.append(time.perf_counter() - started)
        received = sum(len(chunk) for chunk in response.iter_raw())
        expected = response.headers.get("Content-Length")
        if expected is not None and int(expected) != received:
            return 599, received
        return response.status_code, received


def sequential(base_url: str, path: str, cookie: str | None, runs: int,
               ttfb: list[float]) -> list[float]:
    """Seconds per fetch, one at a time on one kept-alive connection (after a warm-up)."""
    import httpx

    cookies = {"sessionid": cookie} if cookie else None
    times: list[float] = []
    with httpx.Client(base_url=base_url, cookies=cookies, timeout=60, trust_env=False) as client:
        for n in range(runs + WARM_UP):
            started = time.perf_counter()
            status, _ = fetch_raw(client, path, ttfb=ttfb if n >= WARM_UP else None)
            if status != 200:
                sys.exit(f"{base_url}{path} answered {status}")
            if n >= WARM_UP:  # the first ones open connections and warm the workers
                times.append(time.perf_counter() - started)
    return times


@dataclass
class Load:
    name: str
    samples: dict[str, list[float]] = field(default_factory=lambda: {"page": [], "pixels": []})
    errors: dict[str, int] = field(default_factory=lambda: {"page": 0, "pixels": 0})
    statuses: dict[str, set] = field(default_factory=lambda: {"page": set(), "pixels": set()})
    bytes: int = 0
    wall: float = 0.0


def etag_of(base_url: str, reader: Reader) -> str:
    import httpx

    cookies = {"sessionid": reader.cookie}
    with httpx.stream("GET", base_url + reader.pixels_url, cookies=cookies, timeout=60,
                      trust_env=False) as response:  # the headers are enough
        return response.headers["ETag"]


def load(base_url: str, readers: list[Reader], *, name: str, requests: int, think: float,
         revalidate: bool) -> Load:
    """Every reader in its own thread: case page, then its pixels, ``requests`` times."""
    import httpx

    result = Load(name)
    lock = threading.Lock()
    start = threading.Barrier(len(readers) + 1)

    etags = {r.username: etag_of(base_url, r) for r in readers} if revalidate else {}

    def one(reader: Reader) -> None:
        rng = random.Random(reader.username)
        etag = etags.get(reader.username)  # the browser already has the image
        with httpx.Client(base_url=base_url, cookies={"sessionid": reader.cookie}, timeout=120,
                          trust_env=False) as client:
            start.wait()
            for n in range(requests):
                if think:
                    time.sleep(rng.uniform(0, think) if n == 0 else rng.expovariate(1 / think))
                record = []
                for kind, url, headers in (
                    ("page", reader.case_url, None),
                    ("pixels", reader.pixels_url, {"If-None-Match": etag} if etag else None),
                ):
                    started = time.perf_counter()
                    try:
                        status, size = fetch_raw(client, url, headers)
                    except httpx.HTTPError:
                        status, size = 0, 0
                    record.append((kind, time.perf_counter() - started, status, size))
                with lock:
                    for kind, seconds, status, size in record:
                        ok = status == (304 if kind == "pixels" and etag else 200)
                        result.samples[kind].append(seconds)
                        result.statuses[kind].add(status)
                        result.errors[kind] += not ok
                        result.bytes += size

    threads = [threading.Thread(target=one, args=(r,), daemon=True) for r in readers]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall = time.perf_counter() - started
    return result


# --- report --------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_load(result: Load) -> None:
    pairs = len(result.samples["page"])
    print(f"    {result.name}: {pairs} case page + image pairs in {result.wall:.1f} s "
          f"({pairs / result.wall:.1f} pairs/s, {result.bytes / result.wall / 1e6:.0f} MB/s)")
    print("      request   count       p50          p95          p99          max    errors  "
          "statuses")
    for kind in ("page", "pixels"):
        values = result.samples[kind]
        print(f"      {kind:<8}{len(values):>6}  {ms(pct(values, 50))}  {ms(pct(values, 95))}  "
              f"{ms(pct(values, 99))}  {ms(max(values))}  {result.errors[kind]:>6}  "
              f"{sorted(result.statuses[kind])}")
    worst = max(pct(result.samples[k], 95) for k in result.samples) * 1000
    errors = sum(result.errors.values())
    print(f"      goal p95 <= {GOAL_P95_MS:.0f} ms and 0 errors: "
          f"{verdict(worst <= GOAL_P95_MS and errors == 0)} (worst p95 {worst:.1f} ms)")


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cxr-bench-read-")))
        print("Starting PostgreSQL...", flush=True)
        pg = stack.enter_context(postgres_server())
        create_database(pg.url, "cxr_bench")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgresql://{pg.user}@{pg.host}:{pg.port}/cxr_bench",
            "MEDIA_ROOT": str(tmp / "media"),
            "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": "benchmark-only-secret-key",
            "DEMO_MODE": "", "DEBUG": "", "REDIS_URL": "",
            "SECURE_COOKIES": "0",  # plain HTTP on loopback
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        setup_django(env)
        (tmp / "dicom").mkdir()
        print(f"Creating a trial with {args.readers} readers, a {COLUMNS}x{ROWS} 16-bit "
              "radiograph per case, demo AI drafts...", flush=True)
        trial, members = make_trial(tmp / "dicom", args.readers)
        from trial.dicom.viewer_pixels import viewer_meta, viewer_pixels
        from trial.models import Image

        images = list(Image.objects.filter(case__trial=trial).order_by("pk"))
        print(f"(a) uncached: {args.uncached_runs} runs of prepare and of the direct "
              "path...", flush=True)
        ours, base, packed = uncached(images[0], args.uncached_runs)
        print(f"Warming the cache ({len(images)} images)...", flush=True)
        for image in images:
            viewer_pixels(image), viewer_meta(image)
        readers = signed_in(trial, members)

        static_file = tmp / "static.gz"
        shutil.copyfile(viewer_pixels(images[0]), static_file)
        app = Gunicorn("config.wsgi:application", env=env, log=tmp / "app.log",
                       workers=args.workers, threads=args.threads)
        static = Gunicorn("benchmarks.reading:static_app",
                          env={**env, "BENCH_STATIC_FILE": str(static_file)},
                          log=tmp / "static.log", workers=args.workers, threads=args.threads)
        stack.callback(app.stop)
        stack.callback(static.stop)
        print(f"Starting gunicorn ({' '.join(app.argv()[3:])})...", flush=True)
        app.start("/accounts/login/")
        static.start("/")
        owner = next(r for r in readers if r.pixels_url.endswith(f"/{images[0].pk}/pixels/"))
        print(f"(a) cached: {args.cached_runs} sequential fetches from the app and from the "
              "static server...", flush=True)
        app_times, static_times, app_ttfb, static_ttfb = [], [], [], []
        for _ in range(2):  # alternate, so drift on the machine hits both
            app_times += sequential(app.url, owner.pixels_url, owner.cookie,
                                    args.cached_runs // 2, app_ttfb)
            static_times += sequential(static.url, "/", None, args.cached_runs // 2,
                                       static_ttfb)

        phases = []
        for name, think, revalidate in (
            ("closed loop, full image every time", 0.0, False),
            ("closed loop, image revalidated (304)", 0.0, True),
            (f"paced, mean {args.think:g} s between cases", args.think, False),
        ):
            print(f"(b) {args.readers} readers, {name}...", flush=True)
            phases.append(load(app.url, readers, name=name, requests=args.requests,
                               think=think, revalidate=revalidate))
        errors_logged = app.log.read_text(errors="replace").count("Traceback")

    u_ours, u_base = statistics.median(ours), statistics.median(base)
    c_app, c_static = statistics.median(app_times), statistics.median(static_times)
    print()
    print(f"Reading benchmark: {COLUMNS}x{ROWS} 16-bit synthetic radiograph, pixels "
          f"{ROWS * COLUMNS * 2 / 1e6:.1f} MB raw, {packed / 1e6:.1f} MB gzip; "
          f"{os.cpu_count()} CPUs, load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"gunicorn config.wsgi, DEBUG off, PostgreSQL: {' '.join(app.argv()[3:-2])}")
    print()
    print(f"(a) uncached, median of {len(ours)}")
    print(f"    direct: dcmread + pixel_array + modality LUT + min -> uint16 + gzip {ms(u_base)}")
    print(f"    prepare (the same + metadata + files written)                {ms(u_ours)}")
    print(f"    ratio {u_ours / u_base:.3f}   goal <= {GOAL_UNCACHED}: "
          f"{verdict(u_ours / u_base <= GOAL_UNCACHED)}")
    print(f"    cached, over HTTP, median of {len(app_times)} sequential fetches "
          f"({packed / 1e6:.1f} MB each, gzip not decoded)")
    print(f"    static file, bare WSGI file server, same gunicorn settings     {ms(c_static)}"
          f"   (headers after {ms(statistics.median(static_ttfb)).strip()})")
    print(f"    app: session, access check, ETag, FileResponse                 {ms(c_app)}"
          f"   (headers after {ms(statistics.median(app_ttfb)).strip()})")
    print(f"    ratio {c_app / c_static:.3f}   goal: as fast "
          f"(difference {(c_app - c_static) * 1000:+.1f} ms per request)")
    print()
    print(f"(b) {args.readers} concurrent readers, each GET case page ({CASE_PAGE}) then its "
          f"image pixels, {args.requests} times")
    for result in phases:
        print_load(result)
    print(f"    server tracebacks logged: {errors_logged}")


if __name__ == "__main__":
    main()
