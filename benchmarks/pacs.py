"""Benchmark of DICOM networking (issue 16): the listener's throughput against a bare pynetdicom
SCP writing files, and ``pull_studies`` over DICOMweb against a bare dicomweb-client loop.

    .venv/bin/python benchmarks/pacs.py [--instances 200] [--studies 100] [--quiet 0.5]
                                        [--associations 1] [--quick] [--only listener|pull]

Starts its own PostgreSQL and Redis (``tests/support/servers.py``) and, for (b), a real Orthanc
with its DICOMweb plugin (``tests/support/orthanc.py``), migrates a fresh database and reuses
the Django set-up of ``benchmarks/drafts.py``. The images are realistic synthetic radiographs:
``POOL`` distinct ones drawn by ``trial.dicom.synthetic.make_cxr`` (1024 x 1024, 16-bit,
explicit VR little endian, about 2.0 MiB each; the size is printed), each instance a copy of
one of them with its own UIDs, accession number and identifying values (patient name and id,
institution, ...), so every instance is new to the importer and really de-identified.

(a) listener throughput: ``--instances`` instances in studies of 2, sent with a pynetdicom
    SCU (``--associations`` associations, 1 by default, studies dealt round-robin) from a
    calling AE the site accepts, as files (sent as encoded, not re-encoded), to:
    - baseline: a bare pynetdicom C-STORE SCP in this process whose handler writes
      ``event.encoded_dataset()`` to a file (no fsync), same contexts as the listener; wall
      time from the association request to the last C-STORE response;
    - platform: ``pacs.listener.Listener`` in this process (its settle thread every 0.1 s,
      ``DICOM_STUDY_QUIET_SECONDS`` = ``--quiet``): each instance spooled (fsync, rename),
      each study imported once quiet (validation and pixel decode, de-identification,
      storage, viewer files, audit) by a real Celery worker process (prefork, ``--processes``,
      by default as many as CPUs, as Celery's default) as the compose stack runs it, or with
      ``--import-in listener`` by the listener's own thread (no broker); wall time from the
      association request until the last import job has finished (its ``finished_at``). The
      quiet time is INCLUDED, nothing is subtracted: the last study waits ``--quiet`` s (plus
      up to one settle round) before its import starts.
    Both printed as instances/s; ratio = platform wall / baseline wall (goal <= 1.5). Where
    the platform's time goes, timed by wrapping the functions (same run): receive (to the last
    C-STORE response) of which the spool writes (``intake.receive``) and header reads
    (``listener.study_of``), summed over the association threads; the tail after the last
    response (quiet time, then what import is still to do); the import's busy time (the sum
    of ``intake.import_path`` over the studies; it overlaps receiving), its CPU time (the
    settle thread's; the difference is waiting: the GIL, the other processes), and, per
    instance (``--import-in listener`` only: a worker's are in another process), its parts,
    each less the parts it calls: validation and decode
    (``validate_file``), de-identification (``deidentify``), encoding (``to_bytes``),
    storage (the file storage's ``save``), viewer files (``prepare``), audit (``record``),
    database queries (``CursorWrapper.execute``, within those functions only), and the rest
    (the case, Python, the job's bookkeeping). Wall times: on a busy machine, each part
    includes its share of waiting.
    One warm-up study goes to each SCP first (imported, for the platform), untimed.
(b) pull over DICOMweb: ``--studies`` studies (1 instance each) uploaded to Orthanc (REST)
    with distinct accession numbers; then:
    - baseline: a bare ``DICOMwebClient`` loop: per accession a QIDO-RS search
      (``search_for_studies`` by AccessionNumber) then ``retrieve_study`` of the study it found
      (as stored, ``application/dicom; transfer-syntax=*``, as the platform asks), the
      instances parsed into memory; wall time, QIDO and WADO shares;
    - platform: ``pacs.pull.pull(site, node, accessions)`` on a DICOMweb ``RemoteNode``
      (query, retrieve to a scratch folder, import each, the run's rows); wall time, and the
      shares of QIDO (``Dicomweb.find``), WADO-RS with the scratch writes
      (``Dicomweb.retrieve`` less its imports), the import (``import_file``, with the same
      parts as in (a)) and the rest (the run's and items' rows, duplicate checks).
    Studies/s for both and the ratio (no goal set in the issue). The platform also imports
    (de-identifies, writes files); the baseline only fetches. One warm-up accession each
    first, untimed. The baseline runs first; Orthanc's files are in the page cache for both.
The header gives the command, the CPUs and the load averages before, between (a) and (b) and
after: other work on the machine skews every number.

``--quick`` is a smoke run: 40 instances, 20 studies (unless given).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.drafts import bench_env, setup_django  # noqa: E402
from tests.support.servers import postgres_server, redis_server  # noqa: E402

GOAL = 1.5  # listener wall / bare SCP wall, with de-identification
QUICK = {"instances": 40, "studies": 20}
POOL = 20  # distinct synthetic images; each instance is a copy with its own UIDs
SIZE = 1024  # rows and columns of the images (16-bit)
PER_STUDY = 2  # instances per study sent to the listener
SENDER_AET = "BENCHSCU"
LISTENER_AET = "CXRBENCH"
BASELINE_AET = "BARESCP"
SETTLE_EVERY = 0.1  # s between the listener's looks at the spool (as the tests)
TIMEOUT = 600.0  # s to wait for the imports
POLL = 0.1  # s between this process's checks that the imports are done
IMPORT_PARTS = {  # label: what it is (wrapped functions of trial.dicom.importer)
    "validate": "validation and pixel decode (validate_file)",
    "deid": "de-identification (deidentify)",
    "encode": "encoding the de-identified file (to_bytes)",
    "storage": "writing the stored file (storage.save)",
    "viewer": "viewer files: uint16, gzip, metadata (prepare)",
    "audit": "audit events, less their queries (record)",
    "db": "database queries (SQL and round trips)",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200,
                        help=f"Instances sent to each SCP, in studies of {PER_STUDY} (200).")
    parser.add_argument("--studies", type=int, default=100,
                        help="Studies (1 instance each) pulled over DICOMweb (100).")
    parser.add_argument("--quiet", type=float, default=0.5,
                        help="DICOM_STUDY_QUIET_SECONDS of the listener (0.5); included.")
    parser.add_argument("--associations", type=int, default=1,
                        help="Associations the SCU sends over at once (1).")
    parser.add_argument("--import-in", choices=["worker", "listener"], default="worker",
                        help="Who imports received studies: a Celery worker (prefork, "
                             "--processes), as in production with a broker (default), or the "
                             "listener's own thread (no broker; with the import's breakdown).")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="The worker's pool processes (default: the CPUs, as Celery's).")
    parser.add_argument("--only", choices=["listener", "pull"],
                        help="Run only (a) the listener or (b) the pull.")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke run: 40 instances, 20 studies (unless given).")
    args = parser.parse_args()
    if args.quick:
        given = set(sys.argv[1:])
        for name, value in QUICK.items():
            if f"--{name}" not in given:
                setattr(args, name, value)
    args.instances = max(PER_STUDY, args.instances - args.instances % PER_STUDY)
    return args


# --- small tools ---------------------------------------------------------------------------

class Parts:
    """Seconds of wrapped functions, summed over calls and threads: ``total`` (inclusive),
    ``own`` (less the wrapped functions it called, so that ``own`` parts add up) and ``cpu``
    (this thread's CPU time, inclusive: below ``total`` when the thread waited)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.own: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        self.local = threading.local()

    def reset(self) -> None:
        with self.lock:
            for values in (self.total, self.own, self.cpu, self.calls):
                values.clear()

    @contextlib.contextmanager
    def wrap(self, owner: Any, name: str, label: str, *, nested_only: bool = False
             ) -> Iterator[None]:
        """Time ``owner.name`` as ``label`` while the block runs; ``nested_only``: only
        its calls from within another wrapped function (e.g. queries of the import, not of
        this process's polling)."""
        original = getattr(owner, name)
        had_own = name in getattr(owner, "__dict__", {})

        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self.local.__dict__.setdefault("stack", [])
            if nested_only and not stack:
                return original(*args, **kwargs)
            stack.append(0.0)  # time of the wrapped calls it makes
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - started
                used = time.thread_time() - cpu
                inner = stack.pop()
                if stack:
                    stack[-1] += seconds
                with self.lock:
                    self.total[label] += seconds
                    self.own[label] += seconds - inner
                    self.cpu[label] += used
                    self.calls[label] += 1

        setattr(owner, name, timed)
        try:
            yield
        finally:
            if had_own:
                setattr(owner, name, original)
            else:  # set on an instance: drop ours, the class's method shows again
                delattr(owner, name)


def wrap_import(stack: contextlib.ExitStack, parts: Parts) -> None:
    """Time the importer's steps (module globals, so every caller's calls are timed) and the
    database queries made within any wrapped function."""
    from django.db.backends.utils import CursorWrapper

    from trial.dicom import importer
    from trial.models import Image

    for name, label in (("validate_file", "validate"), ("deidentify", "deid"),
                        ("to_bytes", "encode"), ("prepare", "viewer"), ("record", "audit")):
        stack.enter_context(parts.wrap(importer, name, label))
    storage = Image._meta.get_field("file").storage
    stack.enter_context(parts.wrap(storage, "save", "storage"))
    for name in ("execute", "executemany"):
        stack.enter_context(parts.wrap(CursorWrapper, name, "db", nested_only=True))


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(POLL)


# --- images --------------------------------------------------------------------------------

class Images:
    """Identified instances on disk: copies of ``POOL`` distinct radiographs, each with its
    own UIDs, accession number and patient."""

    def __init__(self, folder: Path) -> None:
        from trial.dicom.synthetic import make_cxr

        self.folder = folder
        self.pool = []
        for seed in range(POOL):
            path = folder / f"pool-{seed:02d}.dcm"
            make_cxr(path, seed=seed + 1, rows=SIZE, columns=SIZE, bits=16,
                     patient_name="Doeberg^Janet", institution="St Elsewhere Teaching Hospital",
                     referring_physician="Housewright^Gregor")
            self.pool.append(path)
        self.count = 0
        self.bytes = self.pool[0].stat().st_size

    def study(self, label: str, instances: int, *, accession: str) -> list[Path]:
        """One study of ``instances`` new instances (distinct UIDs), written to disk."""
        import pydicom
        from pydicom.uid import generate_uid

        study_uid = generate_uid()
        series_uid = generate_uid()
        paths = []
        for n in range(instances):
            ds = pydicom.dcmread(self.pool[self.count % POOL])
            self.count += 1
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.AccessionNumber = accession
            ds.PatientID = f"MRN-{accession}"
            ds.InstanceNumber = n + 1
            path = self.folder / f"{label}-{n}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        return paths


# --- (a) the listener ----------------------------------------------------------------------

def scu_entity():
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE

    from pacs.listener import STORAGE_CLASSES

    ae = AE(ae_title=SENDER_AET)
    for sop_class in STORAGE_CLASSES:
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    return ae


def send(port: int, called: str, studies: list[list[Path]], associations: int
         ) -> tuple[float, float]:
    """C-STORE every study over ``associations`` associations at once (studies dealt
    round-robin); (time.time() at the first association request, seconds to the last
    response)."""
    groups = [[p for study in studies[k::associations] for p in study]
              for k in range(associations)]
    errors: list[str] = []

    def one(paths: list[Path]) -> None:
        assoc = scu_entity().associate("127.0.0.1", port, ae_title=called)
        if not assoc.is_established:
            errors.append(f"no association with {called}")
            return
        try:
            for path in paths:
                status = assoc.send_c_store(path)
                if int(getattr(status, "Status", -1)) != 0:
                    errors.append(f"{path.name}: status {status}")
        finally:
            assoc.release()

    threads = [threading.Thread(target=one, args=(g,), name=f"scu{k}")
               for k, g in enumerate(groups) if g]
    wall_start = time.time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        sys.exit(f"{len(errors)} C-STORE failures to {called}, e.g. {errors[0]}")
    return wall_start, seconds


class FileSCP:
    """The baseline: a bare pynetdicom C-STORE SCP writing each dataset, as encoded, to a
    file (what the listener's handler does at the least)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server = None
        self.port = 0

    def on_store(self, event) -> int:
        name = str(event.request.AffectedSOPInstanceUID)
        with open(self.folder / f"{name}.dcm", "wb") as out:
            out.write(event.encoded_dataset())
        return 0x0000

    def __enter__(self) -> FileSCP:
        from pynetdicom import AE, evt

        from pacs.listener import STORAGE_CLASSES, TRANSFER_SYNTAXES

        self.folder.mkdir(parents=True, exist_ok=True)
        ae = AE(ae_title=BASELINE_AET)
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
        self.server = ae.start_server(("127.0.0.1", 0), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self.on_store)])
        self.port = self.server.server_address[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


WORKER_ENV = ("DATABASE_URL", "MEDIA_ROOT", "DATA_DIR", "SECRET_KEY", "DICOM_SPOOL_DIR",
              "DICOM_STUDY_QUIET_SECONDS", "LOG_LEVEL")


def listener_bench(args: argparse.Namespace, images: Images, tmp: Path) -> dict[str, Any]:
    from django.conf import settings

    from pacs import intake, listener
    from pacs.models import CallingAE
    from trial.models import Image, ImportJob, Site, Trial

    out: dict[str, Any] = {"quiet": float(settings.DICOM_STUDY_QUIET_SECONDS),
                           "import_in": args.import_in}
    n = args.instances
    print(f"(a) writing {n} + {PER_STUDY} warm-up instances...", flush=True)
    warm = [images.study("warm-l", PER_STUDY, accession="WARML")]
    studies = [images.study(f"l{s:04d}", PER_STUDY, accession=f"LACC{s:05d}")
               for s in range(n // PER_STUDY)]

    print(f"(a) baseline: {n} instances to a bare pynetdicom SCP...", flush=True)
    with FileSCP(tmp / "bare") as bare:
        send(bare.port, BASELINE_AET, warm, 1)
        _, out["base_s"] = send(bare.port, BASELINE_AET, studies, args.associations)
    written = len(list((tmp / "bare").glob("*.dcm")))
    if written != n + PER_STUDY:
        sys.exit(f"the bare SCP wrote {written} files, not {n + PER_STUDY}")

    trial = Trial.objects.create(name="PACS benchmark", slug="pacs-bench",
                                 registry_id="BENCH-PACS")
    site = Site.objects.create(trial=trial, code="L1", name="Listener hospital")
    CallingAE.objects.create(site=site, ae_title=SENDER_AET)
    parts = Parts()
    running = listener.Listener(ae_title=LISTENER_AET, port=0, host="127.0.0.1",
                                settle_every=SETTLE_EVERY)
    images_of = Image.objects.filter(case__site=site)

    def all_in(count: int) -> Callable[[], bool]:
        def check() -> bool:
            root = intake.spool_root() / f"site-{site.pk}"
            left = root.exists() and any(root.iterdir())
            return images_of.count() >= count and not left
        return check

    with contextlib.ExitStack() as stack:
        if args.import_in == "worker":  # as the compose stack runs: a broker and a worker
            from tests.support.celery_helpers import celery_worker, wait_ready

            print(f"(a) starting a Celery worker ({args.processes} processes)...", flush=True)
            log = tmp / "worker.log"
            proc = stack.enter_context(celery_worker(
                redis_url=settings.CELERY_BROKER_URL, queue="celery", log=log, name="bench",
                pool="prefork", concurrency=args.processes, include="pacs.tasks",
                env={key: os.environ[key] for key in WORKER_ENV}))
            wait_ready(proc, log)
        else:  # no broker: the listener's thread imports (and the import's parts are timed)
            from config.celery import app

            stack.callback(app.conf.update, task_always_eager=app.conf.task_always_eager)
            app.conf.task_always_eager = True
        for owner, name, label in ((intake, "receive", "spool"),
                                   (listener, "study_of", "header"),
                                   (intake, "import_path", "import")):
            stack.enter_context(parts.wrap(owner, name, label))
        wrap_import(stack, parts)
        running.start()
        stack.callback(running.stop)
        print(f"(a) platform: {n} instances to the listener (quiet {out['quiet']:g} s)...",
              flush=True)
        send(running.port, LISTENER_AET, warm, 1)
        wait_for(all_in(PER_STUDY), "the warm-up study's import")
        parts.reset()
        first_job = ImportJob.objects.order_by("-pk").values_list("pk", flat=True).first()
        wall_start, out["received_s"] = send(running.port, LISTENER_AET, studies,
                                             args.associations)
        wait_for(all_in(n + PER_STUDY), "the imports")
        out["total"], out["own"], out["cpu"] = (dict(parts.total), dict(parts.own),
                                                dict(parts.cpu))
    jobs = list(ImportJob.objects.filter(site=site, pk__gt=first_job))
    counts = Counter()
    for job in jobs:
        counts.update(imported=job.imported, duplicates=job.duplicates, rejected=job.rejected)
    if counts["imported"] != n:
        reasons = {e["reason"] for job in jobs for e in job.report if e["reason"]}
        sys.exit(f"{counts['imported']} of {n} instances imported: {sorted(reasons)[:3]}")
    out["jobs"] = len(jobs)
    out["platform_s"] = max(job.finished_at.timestamp() for job in jobs) - wall_start
    out["job_s"] = sum((job.finished_at - job.created_at).total_seconds() for job in jobs)
    out["leaks"] = identifying_left(Path(settings.MEDIA_ROOT))
    out["stored_mib"] = sum(p.stat().st_size for p in Path(settings.MEDIA_ROOT).rglob("*")
                            if p.is_file()) / 2**20
    return out


def identifying_left(media: Path) -> int:
    """Stored files still holding an identifying value of the sent ones (expected: 0)."""
    values = [b"Doeberg^Janet", b"MRN-LACC", b"St Elsewhere Teaching", b"Housewright^Gregor"]
    return sum(1 for p in media.rglob("*") if p.is_file()
               and any(v in p.read_bytes() for v in values))


# --- (b) the pull --------------------------------------------------------------------------

def pull_bench(args: argparse.Namespace, images: Images, orthanc) -> dict[str, Any]:
    from dicomweb_client.api import DICOMwebClient

    from pacs import pull
    from pacs.models import PullItem, RemoteNode
    from trial.models import Site, Trial

    out: dict[str, Any] = {}
    count = args.studies
    accessions = [f"PACC{s:05d}" for s in range(count)]
    print(f"(b) uploading {count} + 1 warm-up studies to Orthanc...", flush=True)
    for accession in ["PWARM", *accessions]:
        for path in images.study(accession.lower(), 1, accession=accession):
            orthanc.upload(path)
            path.unlink()

    print(f"(b) baseline: dicomweb-client QIDO + retrieve_study of {count} studies...",
          flush=True)
    client = DICOMwebClient(url=orthanc.dicomweb_url, timeout=60)
    client.set_http_retry_params(retry=False)
    media = (("application/dicom", "*"),)

    def fetch(accession: str) -> tuple[float, float]:
        started = time.perf_counter()
        [answer] = client.search_for_studies(search_filters={"AccessionNumber": accession},
                                             get_remaining=True)
        found = time.perf_counter()
        uid = answer["0020000D"]["Value"][0]
        instances = client.retrieve_study(uid, media_types=media)
        if len(instances) != 1:
            sys.exit(f"{len(instances)} instances retrieved for one study")
        return found - started, time.perf_counter() - found

    fetch("PWARM")
    started = time.perf_counter()
    split = [fetch(a) for a in accessions]
    out["base_s"] = time.perf_counter() - started
    out["base_qido_s"] = sum(q for q, _ in split)
    out["base_wado_s"] = sum(w for _, w in split)

    trial = Trial.objects.create(name="Pull benchmark", slug="pull-bench",
                                 registry_id="BENCH-PULL")
    site = Site.objects.create(trial=trial, code="P1", name="Pull hospital")
    node = RemoteNode.objects.create(site=site, name="orthanc", base_url=orthanc.dicomweb_url,
                                     protocol=RemoteNode.Protocol.DICOMWEB, timeout_s=60)
    print(f"(b) platform: pull of {count} accession numbers over DICOMweb...", flush=True)
    warm = pull.pull(site, node, ["PWARM"])
    if warm.items.get().status != PullItem.Status.IMPORTED:
        sys.exit(f"the warm-up pull failed: {warm.items.get().reason}")
    parts = Parts()
    with contextlib.ExitStack() as stack:
        for owner, name, label in ((pull.Dicomweb, "find", "qido"),
                                   (pull.Dicomweb, "retrieve", "retrieve"),
                                   (pull, "import_file", "import")):
            stack.enter_context(parts.wrap(owner, name, label))
        wrap_import(stack, parts)
        started = time.perf_counter()
        run = pull.pull(site, node, accessions)
        out["platform_s"] = time.perf_counter() - started
    out["total"], out["own"], out["cpu"] = dict(parts.total), dict(parts.own), dict(parts.cpu)
    statuses = Counter(run.items.values_list("status", flat=True))
    if statuses[PullItem.Status.IMPORTED] != count:
        reasons = set(run.items.exclude(status=PullItem.Status.IMPORTED)
                      .values_list("reason", flat=True))
        sys.exit(f"pull: {dict(statuses)}: {sorted(reasons)[:3]}")
    return out


# --- output --------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "   - "


def print_import_parts(out: dict[str, Any], instances: int, indent: str) -> None:
    """The importer's parts (own times), per instance and as shares of the import's time."""
    whole = out["total"].get("import", 0.0)
    for label, what in {**IMPORT_PARTS, "import": "the rest: the case, rows, the job's "
                        "bookkeeping, Python"}.items():
        seconds = out["own"].get(label, 0.0)
        print(f"{indent}{ms(seconds / instances)}/instance  {share(seconds, whole)}  {what}")


def print_listener(a: dict[str, Any], args: argparse.Namespace, image_mib: float) -> None:
    n = args.instances
    base, platform, received = a["base_s"], a["platform_s"], a["received_s"]
    total = a["total"]
    ratio = platform / base
    print(f"(a) listener: {n} instances ({image_mib:.2f} MiB each, {SIZE}x{SIZE} 16-bit, "
          f"{n // PER_STUDY} studies of {PER_STUDY}), {args.associations} association(s), "
          f"quiet time {a['quiet']:g} s, settle every {SETTLE_EVERY:g} s, imported by "
          f"{'a Celery worker' if a['import_in'] == 'worker' else 'the listener thread'}")
    print(f"    baseline, bare SCP writing files   {base:7.2f} s  {n / base:7.1f} instances/s")
    print(f"    platform, send -> last imported    {platform:7.2f} s  {n / platform:7.1f} "
          f"instances/s   (quiet time included)")
    verdict = f"goal <= {GOAL:.2f}: {'met' if ratio <= GOAL else 'NOT met'}"
    print(f"    ratio platform / baseline          {ratio:7.2f}   {verdict}")
    print(f"    where the platform's {platform:.2f} s go:")
    print(f"      receive, to the last response    {received:7.2f} s  {n / received:7.1f} "
          f"instances/s   ({received / base:.2f} x the baseline; imports run meanwhile)")
    print(f"        in the association thread: spool write (fsync, rename) "
          f"{ms(total.get('spool', 0) / n).strip()}/instance, header read "
          f"{ms(total.get('header', 0) / n).strip()}/instance")
    print(f"      tail after the last response     {platform - received:7.2f} s  (the quiet "
          f"time {a['quiet']:g} s, up to a settle round, the import left to do)")
    if a["import_in"] == "worker":
        print(f"    import: {a['jobs']} import jobs on a Celery worker ({args.processes} "
              f"processes), busy {a['job_s']:.2f} s in all by their own timestamps, "
              f"{ms(a['job_s'] / n).strip()}/instance (its parts: --import-in listener)")
        print(f"    stored: {a['stored_mib']:.0f} MiB (files and viewer files); stored files "
              f"with an identifying value of the sent ones: {a['leaks']}")
        return
    whole = total.get("import", 0.0)
    print(f"    import alone: {a['jobs']} import jobs (import_path), busy {whole:.2f} s in all "
          f"(their own timestamps: {a['job_s']:.2f} s), CPU {a['cpu'].get('import', 0):.2f} s;"
          f" {ms(whole / n).strip()}/instance = {n / whole:.1f} instances/s on its own:")
    print_import_parts(a, n, "      ")
    print(f"    stored: {a['stored_mib']:.0f} MiB (files and viewer files); stored files with "
          f"an identifying value of the sent ones: {a['leaks']}")


def print_pull(b: dict[str, Any], args: argparse.Namespace, image_mib: float) -> None:
    count = args.studies
    base, platform, total, own = b["base_s"], b["platform_s"], b["total"], b["own"]
    print(f"(b) pull over DICOMweb from Orthanc: {count} studies of 1 instance "
          f"({image_mib:.2f} MiB, {SIZE}x{SIZE} 16-bit)")
    print(f"    baseline, dicomweb-client loop     {base:7.2f} s  {count / base:7.1f} "
          f"studies/s   QIDO {share(b['base_qido_s'], base).strip()}, WADO "
          f"{share(b['base_wado_s'], base).strip()}")
    print(f"    platform, pacs.pull.pull           {platform:7.2f} s  {count / platform:7.1f} "
          f"studies/s   (retrieves and imports)")
    print(f"    ratio platform / baseline          {platform / base:7.2f}   (no goal set)")
    imported, qido, wado = total.get("import", 0.0), total.get("qido", 0.0), \
        own.get("retrieve", 0.0)
    rest = platform - qido - total.get("retrieve", 0.0)
    print(f"    where the platform's {platform:.2f} s go:")
    print(f"      QIDO-RS (Dicomweb.find)          {share(qido, platform)}  "
          f"{ms(qido / count)}/study")
    print(f"      WADO-RS, parse, scratch writes   {share(wado, platform)}  "
          f"{ms(wado / count)}/study")
    print(f"      import (import_file)             {share(imported, platform)}  "
          f"{ms(imported / count)}/study, of which (shares of the import):")
    print_import_parts(b, count, "        ")
    print(f"      the rest                         {share(rest, platform)}  "
          f"{ms(rest / count)}/study   the run's and items' rows, duplicate checks")
    print(f"    without the import, the platform would take about {platform - imported:.2f} s "
          f"= {(platform - imported) / base:.2f} x the baseline (computed)")


def main() -> None:
    args = parse_args()
    command = " ".join([".venv/bin/python", "benchmarks/pacs.py",
                        *map(shlex.quote, sys.argv[1:])])
    load_before = os.getloadavg()
    load_mid = None
    a = b = None
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cxr-bench-pacs-")))
        print("Starting PostgreSQL and Redis...", flush=True)
        pg = stack.enter_context(postgres_server())
        redis_url = stack.enter_context(redis_server())
        env = bench_env(pg, redis_url, tmp, "cxr_bench_pacs")
        env.update({"DICOM_SPOOL_DIR": str(tmp / "spool"),
                    "DICOM_STUDY_QUIET_SECONDS": str(args.quiet),
                    "DICOM_LISTENER_AE_TITLE": LISTENER_AET, "LOG_LEVEL": "WARNING"})
        setup_django(env)
        logging.getLogger("pynetdicom").setLevel(logging.ERROR)
        from django.db import connections

        stack.callback(connections.close_all)  # before PostgreSQL stops
        (tmp / "images").mkdir()
        print(f"Drawing {POOL} distinct {SIZE}x{SIZE} radiographs...", flush=True)
        images = Images(tmp / "images")
        if args.only != "pull":
            a = listener_bench(args, images, tmp)
        load_mid = os.getloadavg()
        if args.only != "listener":
            from tests.support.orthanc import orthanc_server

            print("Starting Orthanc...", flush=True)
            orthanc = stack.enter_context(orthanc_server())
            b = pull_bench(args, images, orthanc)
    load_after = os.getloadavg()

    image_mib = images.bytes / 2**20
    print()
    print(f"PACS benchmark: {command}")
    print(f"{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.2f} before, "
          f"{load_mid[0]:.2f} between (a) and (b), {load_after[0]:.2f} after "
          f"(5 min: {load_before[1]:.2f} before, {load_after[1]:.2f} after)")
    if a is not None:
        print()
        print_listener(a, args, image_mib)
    if b is not None:
        print()
        print_pull(b, args, image_mib)


if __name__ == "__main__":
    main()
