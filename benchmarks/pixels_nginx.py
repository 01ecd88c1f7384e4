"""The viewer's pixels through the compose stack's nginx: after Django's access check
(``X-Accel-Redirect``), against the same file served by the same nginx as a static file.

    .venv/bin/python benchmarks/pixels_nginx.py --up          # build, start, seed, measure, remove
    .venv/bin/python benchmarks/pixels_nginx.py --project NAME --host http://127.0.0.1:8080

Both paths send the same gzip bytes (the client does not decode them), over one kept-alive
connection per client, in alternating rounds so that the machine's other load falls on both
alike. The baseline is the image's own pixel file copied into the proxy container's static
folder (``/srv/static/``), fetched as ``/static/...``: nginx with nothing before it. The app
path is ``/api/images/<id>/pixels/`` with a signed-in session (created in the web
container), so it includes the session, the access check and the
X-Accel-Redirect answer from gunicorn. Prints the median and p95 of each path and their
ratio (goal: median app / static <= 1.1), for 1 client and for ``--clients`` at once.

``--up`` makes a throw-away stack (project ``cxrbenchpixels``) with the deployment test's
machinery (``tests/deploy/test_stack.py``: offline base images where no registry answers),
runs ``seed_demo`` in it, imports a 3,000 x 2,500 synthetic radiograph (``--image``), and
removes it at the end (images kept; ``--keep`` leaves it running). The largest image of the
stack is measured, with a coordinator's session (a TOTP device marked as used, as after a
code), once the worker has no draft left to make (it would share the CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SESSION = """
import json
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from trial.dicom.viewer_pixels import viewer_pixels
from trial.models import Image, Membership, Role
image = Image.objects.order_by("-rows", "-columns", "pk").first()
member = Membership.objects.filter(trial=image.case.trial, role=Role.COORDINATOR).first()
device = (TOTPDevice.objects.filter(user=member.user, confirmed=True).first()
          or TOTPDevice.objects.create(user=member.user, name="benchmark", confirmed=True))
c = Client()
c.force_login(member.user)
session = c.session
session["otp_device_id"] = device.persistent_id  # as after a TOTP code (django_otp.login)
session.save()
print("BENCH" + json.dumps({"image": image.pk, "session": session.session_key,
                            "path": str(viewer_pixels(image)),
                            "size": f"{image.rows} x {image.columns}"}))
"""
QUIET = """
from drafting.models import Draft
print("BUSY", Draft.objects.filter(status__in=["queued", "running"]).count())
"""


def container(project: str, service: str) -> str:
    found = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True).stdout.split()
    if not found:
        sys.exit(f"no running {service} container in compose project {project}")
    return found[0]


def docker_exec(target: str, *argv: str) -> str:
    return subprocess.run(["docker", "exec", target, *argv], capture_output=True, text=True,
                          check=True).stdout


def time_gets(url: str, cookies: dict[str, str], rounds: int) -> list[float]:
    """Seconds per GET of ``url`` over one kept-alive connection, the body read in full."""
    times = []
    with httpx.Client(cookies=cookies, timeout=60, headers={"Accept-Encoding": "gzip"}) as c:
        for _ in range(rounds):
            start = time.perf_counter()
            with c.stream("GET", url) as response:
                size = sum(len(chunk) for chunk in response.iter_raw())
                assert response.status_code == 200, (url, response.status_code)
            times.append(time.perf_counter() - start)
            assert size > 0
    return times


def measure(urls: dict[str, str], cookies: dict[str, str], *, clients: int, rounds: int,
            repeats: int) -> dict[str, list[float]]:
    """``repeats`` alternating blocks: each path fetched ``rounds`` times by each of
    ``clients`` threads at once."""
    found: dict[str, list[float]] = {name: [] for name in urls}
    for repeat in range(repeats):
        order = list(urls) if repeat % 2 == 0 else list(reversed(urls))
        for name in order:
            results: list[list[float]] = [[] for _ in range(clients)]

            def one(n: int, url: str = urls[name], into: list = results) -> None:
                into[n] = time_gets(url, cookies, rounds)
            threads = [threading.Thread(target=one, args=(n,)) for n in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for times in results:
                found[name].extend(times)
    return found


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def report(found: dict[str, list[float]], clients: int) -> float:
    app, static = found["app"], found["static"]
    ratio = statistics.median(app) / statistics.median(static)
    print(f"{clients} client(s), {len(app)} requests per path:")
    for name, values in (("static file via nginx", static), ("app, X-Accel-Redirect", app)):
        print(f"  {name:24s} median {statistics.median(values) * 1000:7.2f} ms   "
              f"p95 {p95(values) * 1000:7.2f} ms")
    print(f"  ratio app / static (medians) {ratio:.3f}   (goal <= 1.1)")
    return ratio


def run_benchmark(project: str, host: str, args: argparse.Namespace) -> None:
    web, proxy = container(project, "web"), container(project, "proxy")
    for _ in range(120):  # the worker's drafts (after seed_demo) would share the CPU
        busy = docker_exec(web, "python", "manage.py", "shell", "-c", QUIET).split("BUSY")[1]
        if int(busy) == 0:
            break
        time.sleep(2)
    out = docker_exec(web, "python", "manage.py", "shell", "-c", SESSION)
    info = json.loads(out.split("BENCH", 1)[1])
    name = f"bench-{secrets.token_hex(4)}.u16.gz"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / name
        subprocess.run(["docker", "cp", f"{web}:{info['path']}", str(local)], check=True)
        local.chmod(0o644)
        subprocess.run(["docker", "cp", str(local), f"{proxy}:/srv/static/{name}"], check=True)
        size = local.stat().st_size
    urls = {"app": f"{host}/api/images/{info['image']}/pixels/",
            "static": f"{host}/static/{name}"}
    cookies = {"sessionid": info["session"]}
    with httpx.Client(cookies=cookies) as c:
        probe = c.get(urls["app"])
        assert probe.status_code == 200 and "last-modified" in probe.headers, probe.headers
    print(f"Image {info['image']}: {info['size']} pixels, {size:,} bytes as sent; "
          f"nginx {host}; a coordinator's session (signed in with a TOTP code)")
    with contextlib.suppress(OSError):
        print("load average before:", Path("/proc/loadavg").read_text().split()[:3])
    ratios = []
    for clients in (1, args.clients):
        ratios.append(report(measure(urls, cookies, clients=clients, rounds=args.rounds,
                                     repeats=args.repeats), clients))
    with contextlib.suppress(OSError):
        print("load average after: ", Path("/proc/loadavg").read_text().split()[:3])
    docker_exec(proxy, "rm", "-f", f"/srv/static/{name}")


def import_radiograph(stack, tmp: Path, rows: int, columns: int) -> None:
    """A synthetic 16-bit radiograph imported into the demo trial with ``import_dicom``."""
    from trial.dicom.synthetic import make_cxr

    folder = tmp / "bench-import"
    folder.mkdir()
    make_cxr(folder / "big.dcm", seed=77, rows=rows, columns=columns,
             patient_id="BENCH-PAT", accession="BENCHACC1")
    subprocess.run(["docker", "cp", str(folder), f"{stack.container('web')}:/tmp/"], check=True)
    out = stack.exec("web", "python", "manage.py", "import_dicom", "/tmp/bench-import",
                     "--trial", "demo", "--site", "H1", timeout=600)
    assert "1 imported" in out, out


@contextlib.contextmanager
def throwaway_stack(rows: int, columns: int, keep: bool) -> Iterator[tuple[str, str]]:
    """A stack of our own, as the deployment test makes it, with the demo and one radiograph
    of ``rows`` x ``columns`` imported; removed at the end unless ``keep``."""
    from tests.deploy import test_stack as deploy

    deploy.PROJECT = project = "cxrbenchpixels"
    deploy.ensure_dockerd()
    variables = {
        "COMPOSE_PROJECT_NAME": project, "IMAGE_TAG": deploy.IMAGE_TAG,
        "SECRET_KEY": secrets.token_hex(32), "POSTGRES_PASSWORD": secrets.token_hex(16),
        "ALLOWED_HOSTS": "localhost,127.0.0.1", "HTTP_PORT": str(deploy.free_port()),
        "DICOM_PUBLISH_PORT": str(deploy.free_port()), "SECURE_COOKIES": "0",
        "SECURE_SSL_REDIRECT": "0", "HEALTH_MIN_FREE_DISK_MB": "100",
        **deploy.choose_bases(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        # A kept stack needs its variables for "down -v" later: then not in the temporary dir.
        env_file = Path(tempfile.gettempdir() if keep else tmp) / f"{project}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
        stack = deploy.Stack(deploy.compose_command(), variables, env_file)
        stack.clean_up()
        try:
            print("building and starting the stack ...", flush=True)
            stack.compose("build", timeout=3600)
            stack.compose("up", "-d", timeout=900)
            stack.wait_ready(timeout=300)
            stack.exec("web", "python", "manage.py", "seed_demo", "--throwaway", timeout=900)
            import_radiograph(stack, Path(tmp), rows, columns)
            yield project, stack.base_url
        finally:
            if keep:
                print(f"kept: --project {project} --host {stack.base_url}; remove with: "
                      f"{' '.join(stack.argv)} down -v")
            else:
                stack.clean_up()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--up", action="store_true", help="make, seed and remove a stack")
    parser.add_argument("--project", help="the running stack's compose project")
    parser.add_argument("--host", help="the running stack's URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--rounds", type=int, default=25, help="GETs per client per block")
    parser.add_argument("--repeats", type=int, default=8, help="alternating blocks per path")
    parser.add_argument("--clients", type=int, default=8, help="clients at once, 2nd run")
    parser.add_argument("--image", default="3000x2500",
                        help="--up: the radiograph imported, ROWSxCOLUMNS (3000x2500)")
    parser.add_argument("--keep", action="store_true", help="--up: leave the stack running")
    args = parser.parse_args()
    if args.up:
        rows, columns = (int(n) for n in args.image.lower().split("x"))
        with throwaway_stack(rows, columns, args.keep) as (project, host):
            run_benchmark(project, host, args)
    elif args.project and args.host:
        run_benchmark(args.project, args.host.rstrip("/"), args)
    else:
        parser.error("--up, or --project and --host of a running stack")


if __name__ == "__main__":
    main()
