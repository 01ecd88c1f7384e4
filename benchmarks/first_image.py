"""Benchmark of the time to first image on the case page, in Chromium: first pixels on screen
(the reduced-resolution preview) against the time to fetch the full pixel file.

    .venv/bin/python benchmarks/first_image.py [--runs 7] [--mbit 100] [--latency-ms 2]

Starts its own PostgreSQL (``tests/support/servers.py``), migrates a fresh database under a
temporary MEDIA_ROOT, creates a trial (``benchmarks/reading.py``'s) whose one case holds a
2,500 x 3,000 16-bit synthetic radiograph, assigned to a reader, and serves the app under
gunicorn (DEBUG off, PostgreSQL; static files through Django's static handler, as pytest's live
server does, since nginx serves them in production). Then, in Debian's Chromium (Playwright,
headless, a fresh browser context and so an empty cache for every run), in the same run and
against the same server:

- **first pixels**: the reader's case page opened, from navigation start (the document's
  ``performance.now()`` origin) to the viewer's ``viewer:first-pixels`` event (the preview
  windowed and drawn on the canvas); also to ``viewer:displayed`` (the full data drawn). Two
  ways: *first case*, nothing in the browser's cache; *next case*, the site's static files
  cached (as after a first case: nginx lets browsers keep them 7 days, which the benchmark's
  server imitates) but not the image, as when a reader moves on to the next case;
- **baseline**: the full pixel file fetched by the page's own ``fetch`` (gzip decoded by the
  browser, as the viewer does) from a same-origin page, from the request to the last byte;
  the preview fetched the same way is printed too (what the first pixels cannot beat).

Ratio = median first pixels / median baseline (goal < 0.25). Measured twice: on loopback, where
the full file arrives in tens of milliseconds and the page's own loading dominates (so the
comparison says little), and with the network of a hospital workstation emulated by Chromium
(CDP ``Network.emulateNetworkConditions``: ``--mbit`` down and up, ``--latency-ms`` added to
every request), which is the condition the goal is about. Runs alternate baseline and page so
drift on the machine hits both. Client and server share this machine's cores: the header
prints their count and the load averages.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reading import (  # noqa: E402
    COLUMNS,
    ROWS,
    Gunicorn,
    create_database,
    make_trial,
    setup_django,
    signed_in,
)
from tests.support.servers import postgres_server  # noqa: E402

GOAL = 0.25
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 180_000
# Recorded in every page before its own scripts run: when the viewer's events fire.
TIMINGS = """
window.__timings = {};
document.addEventListener('viewer:first-pixels', (e) => {
  window.__timings.first = performance.now();
  window.__timings.resolution = e.detail.resolution;
}, true);
document.addEventListener('viewer:displayed', () => {
  window.__timings.full = performance.now();
}, true);
"""
FETCH = """async (url) => {
  const started = performance.now();
  const response = await fetch(url, {credentials: 'same-origin',
                                     headers: {Accept: 'application/octet-stream'}});
  const bytes = (await response.arrayBuffer()).byteLength;
  return {ms: performance.now() - started, bytes: bytes, status: response.status};
}"""
RESOURCES = """() => ({
  document: performance.getEntriesByType('navigation')[0].responseEnd,
  scripts: performance.getEntriesByType('navigation')[0].domContentLoadedEventStart,
  images: performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/api/images/'))
    .map(e => ({name: e.name, start: e.startTime, end: e.responseEnd}))})"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7,
                        help="Measured runs of each, per condition (7).")
    parser.add_argument("--mbit", type=float, default=100.0,
                        help="Emulated bandwidth, Mbit/s each way (100).")
    parser.add_argument("--latency-ms", type=float, default=2.0,
                        help="Emulated latency added to each request, ms (2).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2).")
    parser.add_argument("--threads", type=int, default=4,
                        help="gunicorn threads per worker, gthread (4).")
    return parser.parse_args()


_handler = None
STATIC_CACHE = ("Cache-Control", "max-age=604800")  # docker/nginx.conf: expires 7d


def application(environ: dict, start_response):
    """The app with Django's static files handler in front (what pytest's live server does),
    the static files with nginx's cache header, for gunicorn:
    ``benchmarks.first_image:application``."""
    global _handler
    if _handler is None:
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.core.wsgi import get_wsgi_application

        _handler = StaticFilesHandler(get_wsgi_application())
    if not environ.get("PATH_INFO", "").startswith("/static/"):
        return _handler(environ, start_response)

    def cached(status: str, headers: list, exc_info=None):
        return start_response(status, [*headers, STATIC_CACHE], exc_info)

    return _handler(environ, cached)


def new_page(browser, base_url: str, cookie: str, throttle: dict | None):
    from django.conf import settings

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie,
                          "url": base_url}])
    page = context.new_page()
    if throttle:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", throttle)
    return context, page


def case_page(browser, base_url: str, cookie: str, url: str, throttle: dict | None,
              warm: bool) -> dict:
    """Open the case page; ms from navigation start to first pixels and to the full image.

    ``warm``: the page is opened once before, its image requests refused, so the browser has
    the static files but not the image."""
    context, page = new_page(browser, base_url, cookie, throttle)
    try:
        page.add_init_script(TIMINGS)
        if warm:
            page.route("**/api/images/**", refuse)
            page.goto(base_url + url, wait_until="load")
            page.unroute("**/api/images/**", refuse)
        page.goto(base_url + url, wait_until="commit")
        page.wait_for_selector('#viewer[data-displayed="1"]', state="attached")
        timings = page.evaluate("() => window.__timings")
        resources = page.evaluate(RESOURCES)
    finally:
        context.close()
    images = {r["name"].rstrip("/").rsplit("/", 1)[-1]: r for r in resources["images"]}
    return {"first": timings["first"], "full": timings["full"],
            "resolution": timings["resolution"],
            "document": resources["document"], "scripts": resources["scripts"],
            "preview_start": images["preview"]["start"],
            "preview_end": images["preview"]["end"], "pixels_end": images["pixels"]["end"]}


def refuse(route) -> None:
    route.abort()


def fetch_alone(browser, base_url: str, cookie: str, url: str, size: int,
                throttle: dict | None) -> float:
    """Fetch ``url`` (the full pixel file, or the preview) from a same-origin page: ms from
    the request to the last byte, decoded (as the viewer receives it)."""
    context, page = new_page(browser, base_url, cookie, throttle)
    try:
        page.goto(base_url + "/static/reader/viewer.css")  # any same-origin document
        result = page.evaluate(FETCH, url)
    finally:
        context.close()
    if result["status"] != 200 or result["bytes"] != size:
        sys.exit(f"{url} was not fetched: {result}")
    return result["ms"]


def measure(browser, base_url: str, reader, preview: dict, throttle: dict | None,
            runs: int) -> dict:
    """Baseline, first-case and next-case runs and the preview alone in turn (the order
    rotating), after one of each not counted."""
    out: dict[str, list] = {"fetch": [], "first case": [], "next case": [], "preview": []}
    kinds = list(out)
    for n in range(runs + 1):
        for kind in kinds[n % 4:] + kinds[:n % 4]:
            if kind == "fetch":
                result = fetch_alone(browser, base_url, reader.cookie, reader.pixels_url,
                                     ROWS * COLUMNS * 2, throttle)
            elif kind == "preview":
                result = fetch_alone(browser, base_url, reader.cookie, preview["url"],
                                     preview["rows"] * preview["columns"] * 2, throttle)
            else:
                result = case_page(browser, base_url, reader.cookie, reader.case_url, throttle,
                                   warm=kind == "next case")
            if n:
                out[kind].append(result)
    return out


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):8.1f} ms   (min {min(values):7.1f}, "
            f"max {max(values):7.1f})")


def report(name: str, result: dict) -> dict[str, float]:
    baseline = statistics.median(result["fetch"])
    print(f"  {name}")
    print(f"    {'baseline: the full pixel file fetched alone':<58}{summary(result['fetch'])}")
    print(f"    {'(the preview fetched alone)':<58}{summary(result['preview'])}")
    return {scenario: report_pages(scenario, result[scenario], baseline)
            for scenario in ("first case", "next case")}


def report_pages(scenario: str, pages: list[dict], baseline: float) -> float:
    first = [r["first"] for r in pages]
    ratio = statistics.median(first) / baseline
    previews = sum(r["resolution"] == "reduced" for r in pages)
    print(f"    {scenario + ': first pixels, from navigation start':<58}{summary(first)}")
    print(f"      ratio first pixels / baseline {ratio:.3f}   goal < {GOAL}: "
          f"{'met' if ratio < GOAL else 'NOT met'}")
    print(f"      the preview first in {previews} of {len(pages)} runs (else the full image, "
          "arrived before the preview was drawn)")
    for key, what in (("document", "the page's HTML received"),
                      ("preview_start", "the preview requested (preload)"),
                      ("preview_end", "the preview's last byte"),
                      ("scripts", "the page's scripts run (DOMContentLoaded)"),
                      ("pixels_end", "the full pixel file's last byte"),
                      ("full", "the full image drawn (viewer:displayed)")):
        print(f"      {what:<56}{summary([r[key] for r in pages])}")
    return ratio


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cxr-bench-first-")))
        print("Starting PostgreSQL...", flush=True)
        pg = stack.enter_context(postgres_server())
        create_database(pg.url, "cxr_bench_first")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgresql://{pg.user}@{pg.host}:{pg.port}/cxr_bench_first",
            "MEDIA_ROOT": str(tmp / "media"),
            "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": "benchmark-only-secret-key",
            "DEMO_MODE": "", "DEBUG": "", "REDIS_URL": "",
            "SECURE_COOKIES": "0", "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        setup_django(env)
        (tmp / "dicom").mkdir()
        print(f"Creating a trial with a {COLUMNS}x{ROWS} 16-bit radiograph...", flush=True)
        trial, members = make_trial(tmp / "dicom", 2)
        reader = signed_in(trial, members)[0]
        from trial.dicom.viewer_pixels import viewer_meta, viewer_pixels, viewer_preview
        from trial.models import Image

        image = Image.objects.get(case__trial=trial)
        meta = viewer_meta(image)
        if not meta["preview"]:
            sys.exit("the image has no preview")
        full_size = viewer_pixels(image).stat().st_size
        preview_size = viewer_preview(image)[0].stat().st_size

        app = Gunicorn("benchmarks.first_image:application", env=env, log=tmp / "app.log",
                       workers=args.workers, threads=args.threads)
        stack.callback(app.stop)
        print(f"Starting gunicorn ({' '.join(app.argv()[3:-2])})...", flush=True)
        app.start("/accounts/login/")

        from playwright.sync_api import sync_playwright

        from tests.browser.conftest import CHROMIUM_ARGS

        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        throttle = {"offline": False, "latency": args.latency_ms,
                    "downloadThroughput": args.mbit * 1e6 / 8,
                    "uploadThroughput": args.mbit * 1e6 / 8}
        results = {}
        for name, conditions in (("loopback", None),
                                 (f"{args.mbit:g} Mbit/s, +{args.latency_ms:g} ms", throttle)):
            print(f"Measuring: {name}, {args.runs} runs of each (and one not counted)...",
                  flush=True)
            results[name] = measure(browser, app.url, reader, meta["preview"], conditions,
                                    args.runs)
        version = browser.version
        errors_logged = app.log.read_text(errors="replace").count("Traceback")

    load_after = os.getloadavg()
    preview = meta["preview"]
    print()
    print(f"Time to first image: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{os.cpu_count()} CPUs; load average (1, 5, 15 min) "
          f"{' '.join(f'{v:.2f}' for v in load_before)} before, "
          f"{' '.join(f'{v:.2f}' for v in load_after)} after")
    print(f"Chromium {version} headless (Playwright), fresh context per run; gunicorn "
          f"config.wsgi, DEBUG off, PostgreSQL, {args.workers} workers x {args.threads} "
          "threads, static files with nginx's 7-day cache header")
    print(f"Image {COLUMNS}x{ROWS} 16-bit synthetic radiograph: full pixels "
          f"{ROWS * COLUMNS * 2 / 1e6:.1f} MB, {full_size / 1e6:.2f} MB as sent (gzip); "
          f"preview {preview['columns']}x{preview['rows']} (factor {preview['factor']}), "
          f"{preview_size / 1e6:.2f} MB as sent")
    print(f"Median of {args.runs} runs each; times in ms from navigation start (page) or "
          "from the request (baseline)")
    ratios = {name: report(name, result) for name, result in results.items()}
    print(f"  server tracebacks logged: {errors_logged}")
    throttled = ratios[list(ratios)[-1]]
    print(f"Goal (first pixels < {GOAL} of the full fetch, on the emulated network): "
          + "; ".join(f"{k} {'met' if v < GOAL else 'NOT met'} ({v:.3f})"
                      for k, v in throttled.items())
          + ". On loopback: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios["loopback"].items())
          + " (the page's own loading dominates there).")


if __name__ == "__main__":
    main()
