"""The DICOM listener against real senders: pynetdicom's SCU and Orthanc's own C-STORE.

The listener runs in-process on a free port, writing through its own threads' database
connections (hence ``transactional_db``); studies settle after a short quiet time. What
arrives must come out exactly as ``import_dicom`` would make it: de-identified (no identifying
value of the sent files anywhere in the stored files or the database), one case per study,
duplicates and rejections in the import job's report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from django.db import connection
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from pacs import intake
from pacs.listener import STORAGE_CLASSES, Listener
from pacs.models import CallingAE
from tests.support import servers
from tests.support.dicom_files import identified_cxr
from tests.support.factories import SiteFactory, TrialFactory
from tests.support.orthanc import OrthancServer
from trial.dicom.synthetic import make_cxr
from trial.models import Case, Image, ImportJob

LISTENER_AET = "CXRTEST"
SENDER_AET = "SITEPACS"
QUIET = 0.5  # s a study must be quiet before it is imported
TIMEOUT = 60  # s to wait for anything (a loaded two-core machine)
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("transactional_db")


def wait_until(condition: Callable[[], object], *, timeout: float = TIMEOUT,
               what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def site(transactional_db):
    site = SiteFactory(trial=TrialFactory(), code="H1")
    CallingAE.objects.create(site=site, ae_title=SENDER_AET)
    return site


@pytest.fixture
def listener(transactional_db, settings, tmp_path) -> Iterator[Listener]:
    settings.DICOM_SPOOL_DIR = tmp_path / "spool"
    settings.DICOM_STUDY_QUIET_SECONDS = QUIET
    running = Listener(ae_title=LISTENER_AET, port=0, host="127.0.0.1", settle_every=0.1)
    running.start()
    yield running
    running.stop()


def scu(ae_title: str = SENDER_AET) -> AE:
    """A sender proposing each storage class with each syntax the test files use."""
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(Verification)
    for sop_class in STORAGE_CLASSES:
        for syntax in (ExplicitVRLittleEndian, JPEG2000Lossless, ImplicitVRLittleEndian):
            ae.add_requested_context(sop_class, syntax)
    return ae


def associate(listener: Listener, ae_title: str = SENDER_AET):
    return scu(ae_title).associate("127.0.0.1", listener.port, ae_title=LISTENER_AET)


def send(listener: Listener, paths: list[Path], *, ae_title: str = SENDER_AET) -> list[int]:
    """C-STORE the files (as encoded, not re-encoded) in one association; their statuses."""
    assoc = associate(listener, ae_title)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(path).Status) for path in paths]
    finally:
        assoc.release()


def spooled() -> list[Path]:
    root = intake.spool_root()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def imported(count: int) -> Callable[[], bool]:
    return lambda: Image.objects.count() >= count and not spooled()


def study(tmp_path: Path, n: int, *, seed: int = 1, **extra) -> tuple[list[Path], list[dict]]:
    """``n`` identified radiographs of one study (small images: fast)."""
    uid = pydicom.uid.generate_uid()
    made = [identified_cxr(tmp_path / f"sent-{seed}-{i}.dcm", seed=seed + i, study_uid=uid,
                           age=45, **extra) for i in range(n)]
    return [p for p, _ in made], [s for _, s in made]


def database_text() -> bytes:
    """Every row of the test database, as pg_dump writes it."""
    db = connection.settings_dict
    done = subprocess.run(
        [str(servers.postgres_bindir() / "pg_dump"), "--data-only", "-h", db["HOST"],
         "-p", str(db["PORT"]), "-U", db["USER"], db["NAME"]],
        capture_output=True, check=True,
    )
    return done.stdout


def assert_nothing_identifying(paths: list[Path], secrets: list[dict], media: Path) -> None:
    """No identifying value of the sent files in any stored file or database row."""
    values: dict[str, str] = {}
    for path, found in zip(paths, secrets, strict=True):
        source = pydicom.dcmread(path)
        values.update({f"{k}:{path.name}": v for k, v in found.items()})
        values[f"birth_date:{path.name}"] = source.PatientBirthDate
        values[f"study_date:{path.name}"] = source.StudyDate
        values[f"surname:{path.name}"] = found["patient_name"].split("^")[0]
    stored = [(p, p.read_bytes()) for p in media.rglob("*") if p.is_file()]
    assert stored, "nothing was stored"
    rows = database_text()
    for name, value in values.items():
        assert value.encode() in b"".join(p.read_bytes() for p in paths), name
        for where, data in stored:
            assert value.encode() not in data, f"{name} ({value}) survived in {where}"
        assert value.encode() not in rows, f"{name} ({value}) survived in the database"


def test_c_echo_answers(listener, site) -> None:
    assoc = associate(listener)
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0x0000
    assoc.release()


def test_a_study_sent_by_a_known_caller_becomes_one_deidentified_case(
        listener, site, tmp_path, settings) -> None:
    paths, secrets = study(tmp_path, 1)
    more, more_secrets = study(tmp_path, 1, seed=7, transfer_syntax=JPEG2000Lossless)
    # the second image joins the first one's study; compressed, sent as is
    ds = pydicom.dcmread(more[0])
    ds.StudyInstanceUID = secrets[0]["study_uid"]
    ds.save_as(more[0])
    more_secrets[0]["study_uid"] = secrets[0]["study_uid"]

    assert send(listener, [*paths, *more]) == [0x0000, 0x0000]

    wait_until(imported(2), what="the study to be imported")
    case = Case.objects.get()
    assert case.site == site and case.images.count() == 2
    assert set(case.images.values_list("transfer_syntax", flat=True)) == {
        ExplicitVRLittleEndian, JPEG2000Lossless}
    job = ImportJob.objects.get()
    assert (job.imported, job.duplicates, job.rejected) == (2, 0, 0)
    assert_nothing_identifying([*paths, *more], [*secrets, *more_secrets],
                               Path(settings.MEDIA_ROOT))


def test_a_study_still_arriving_is_not_imported_yet(listener, site, tmp_path,
                                                    settings) -> None:
    settings.DICOM_STUDY_QUIET_SECONDS = 3600
    paths, _ = study(tmp_path, 2)
    assert send(listener, paths[:1]) == [0x0000]
    rounds = listener.rounds
    wait_until(lambda: listener.rounds >= rounds + 3, what="three settle rounds")
    assert not Case.objects.exists() and len(spooled()) == 1
    [(_, folder, quiet)] = intake.waiting()
    assert not quiet

    assert send(listener, paths[1:]) == [0x0000]
    assert intake.settle() == []  # the second image made it arrive just now
    [job] = intake.settle(now=time.time() + 3601)
    assert (job.imported, job.rejected) == (2, 0)
    assert Case.objects.get().images.count() == 2 and not spooled()


def test_an_unknown_calling_ae_is_refused_at_association(listener, site, tmp_path,
                                                         caplog) -> None:
    caplog.set_level("WARNING", logger="pacs.listener")
    assoc = associate(listener, "STRANGER")
    assert assoc.is_rejected and not assoc.is_established
    rejection = assoc.acceptor.primitive
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (1, 1, 3)
    refusal = [r.getMessage() for r in caplog.records if r.name == "pacs.listener"]
    assert any("'STRANGER'" in m and "127.0.0.1:" in m and "refused" in m for m in refusal)
    assert not spooled() and not Image.objects.exists()


def test_a_wrong_called_ae_title_is_refused(listener, site) -> None:
    assoc = scu().associate("127.0.0.1", listener.port, ae_title="SOMEONEELSE")
    assert assoc.is_rejected
    assert assoc.acceptor.primitive.diagnostic == 7  # called AE title not recognised


def test_the_same_instance_twice_gives_one_image_and_a_reported_duplicate(
        listener, site, tmp_path) -> None:
    paths, _ = study(tmp_path, 1)
    assert send(listener, [paths[0], paths[0]]) == [0x0000, 0x0000]  # twice, same spool file
    wait_until(imported(1), what="the first import")
    wait_until(lambda: ImportJob.objects.filter(status=ImportJob.Status.DONE).exists())

    assert send(listener, paths) == [0x0000]  # again, once it is in
    wait_until(lambda: ImportJob.objects.filter(status=ImportJob.Status.DONE).count() == 2,
               what="the second import")
    first, second = ImportJob.objects.order_by("pk")
    assert (first.imported, first.duplicates) == (1, 0)
    assert (second.imported, second.duplicates) == (0, 1)
    assert second.report[0]["status"] == "duplicate"
    assert Image.objects.count() == 1 and Case.objects.count() == 1


def test_an_association_aborted_mid_study_keeps_the_whole_file_and_nothing_partial(
        listener, site, tmp_path, settings, caplog) -> None:
    caplog.set_level("INFO", logger="pacs.listener")
    settings.DICOM_STUDY_QUIET_SECONDS = 3600  # look at the spool before anything settles
    uid = pydicom.uid.generate_uid()
    first, _ = identified_cxr(tmp_path / "first.dcm", seed=1, study_uid=uid)
    second = make_cxr(tmp_path / "second.dcm", seed=2, rows=256, columns=256, study_uid=uid)
    pdus = {"armed": False, "sent": 0}

    def cut_mid_dataset(event) -> None:
        """Once the second store has sent its command and a first piece of its data set, the
        connection dies."""
        if pdus["armed"] and type(event.pdu).__name__ == "P_DATA_TF":
            pdus["sent"] += 1
            if pdus["sent"] == 2:
                event.assoc.dul.socket.socket.shutdown(socket.SHUT_RDWR)

    ae = scu()
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=LISTENER_AET,
                         evt_handlers=[(evt.EVT_PDU_SENT, cut_mid_dataset)])
    assert assoc.is_established
    assert int(assoc.send_c_store(first).Status) == 0x0000
    pdus["armed"] = True
    status = assoc.send_c_store(second)
    assert "Status" not in status  # no answer: the association died
    assert 2 <= pdus["sent"] < 5  # its command and some of its data set's 8+ pieces went
    assoc.abort()
    wait_until(lambda: "aborted after 1 instance(s)" in caplog.text, what="the listener's abort")

    # the first file whole, the second not at all, nothing partial
    files = spooled()
    assert len(files) == 1 and files[0].suffix == ".dcm"
    assert pydicom.dcmread(files[0]) == pydicom.dcmread(first)  # as sent, every element
    # a write killed half-way is never imported
    (files[0].parent / f"crashed{intake.PART}").write_bytes(second.read_bytes()[:5000])
    [job] = intake.settle(now=time.time() + 3601)
    assert (job.total, job.imported, job.rejected) == (1, 1, 0)
    assert Image.objects.count() == 1 and not spooled()


def test_a_study_left_claimed_by_an_interrupted_import_is_queued_again(
        site, tmp_path, settings) -> None:
    """The listener stopped during an import: at its next start the study goes in."""
    settings.DICOM_SPOOL_DIR = tmp_path / "spool"
    paths, secrets = study(tmp_path, 1)
    folder = intake.receive(site, paths[0].read_bytes(), study_uid=secrets[0]["study_uid"],
                            sop_uid=secrets[0]["sop_uid"]).parent
    folder.rename(folder.with_name(f"{intake.CLAIMED}0123abcd-{folder.name}"))
    assert intake.waiting() == []  # invisible to settle while claimed

    assert intake.recover() == 1
    [job] = intake.settle(now=time.time() + 3600)
    assert job.imported == 1 and not spooled()


def test_a_rejected_instance_is_reported_and_does_not_block_the_others(
        listener, site, tmp_path) -> None:
    paths, secrets = study(tmp_path, 2)
    ct, _ = identified_cxr(tmp_path / "ct.dcm", seed=9, study_uid=secrets[0]["study_uid"],
                           modality="CT")  # a Secondary Capture of a CT: not a trial modality
    assert send(listener, [paths[0], ct, paths[1]]) == [0x0000] * 3
    wait_until(imported(2), what="the good images")
    wait_until(lambda: ImportJob.objects.filter(status=ImportJob.Status.DONE).exists())
    job = ImportJob.objects.get()
    assert (job.imported, job.rejected) == (2, 1)
    [rejected] = [e for e in job.report if e["status"] == "rejected"]
    assert "CT" in rejected["reason"]
    assert Case.objects.get().images.count() == 2


def test_orthanc_sends_a_study_it_holds_with_its_own_c_store(
        listener, site, tmp_path, settings, empty_orthanc: OrthancServer) -> None:
    CallingAE.objects.create(site=site, ae_title=empty_orthanc.aet)
    empty_orthanc.add_modality("CXRTRIALS", aet=LISTENER_AET, host="127.0.0.1",
                               port=listener.port)
    paths, secrets = study(tmp_path, 2)
    answers = [empty_orthanc.upload(p) for p in paths]
    [study_id] = {a["ParentStudy"] for a in answers}
    empty_orthanc.echo("CXRTRIALS")  # Orthanc's C-ECHO is answered too

    empty_orthanc.store("CXRTRIALS", [study_id])

    wait_until(imported(2), what="the study Orthanc sent")
    case = Case.objects.get()
    assert case.site == site and case.images.count() == 2
    assert_nothing_identifying(paths, secrets, Path(settings.MEDIA_ROOT))


def test_the_command_listens_until_sigterm(site, tmp_path) -> None:
    """``manage.py dicom_listener`` in its own process: says where it listens, answers an
    echo from a known caller, logs the association, stops cleanly on SIGTERM."""
    port = servers.free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEMO_MODE": "1",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DICOM_SPOOL_DIR": str(tmp_path / "spool"),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = tmp_path / "listener.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "dicom_listener", "--port", str(port),
             "--ae-title", LISTENER_AET, "--host", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is not None or b"DICOM listener" in log.read_bytes(),
                   what="the listener to start")
        assert proc.poll() is None, log.read_text()
        assoc = scu().associate("127.0.0.1", port, ae_title=LISTENER_AET)
        assert assoc.is_established
        assert int(assoc.send_c_echo().Status) == 0x0000
        assoc.release()
        wait_until(lambda: b"released" in log.read_bytes(), what="the association's log line")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=TIMEOUT)
    text = log.read_text()
    assert code == 0, text
    assert f"DICOM listener {LISTENER_AET} on 127.0.0.1:{port}" in text
    assert f"Association from '{SENDER_AET}' at 127.0.0.1:" in text and "accepted" in text
    assert "DICOM listener stopped." in text


def test_a_locked_trial_takes_no_study_and_a_spooled_one_is_discarded(
        listener, site, tmp_path, settings) -> None:
    """Nothing is received for a locked trial; a study spooled before the lock is removed
    (never imported, and not left identified on disk)."""
    from trial.models import Trial

    path, _ = identified_cxr(tmp_path / "late.dcm", seed=31)
    data = path.read_bytes()
    ds = pydicom.dcmread(path)
    folder = intake.receive(site, data, study_uid=str(ds.StudyInstanceUID),
                            sop_uid=str(ds.SOPInstanceUID)).parent
    Trial.objects.filter(pk=site.trial_id).update(status=Trial.Status.LOCKED)
    assoc = associate(listener)
    assert assoc.is_rejected and not assoc.is_established
    assert intake.settle(now=time.time() + 3600) == []
    assert not folder.exists() and not any(folder.parent.glob("*"))
    assert not Image.objects.exists()


def test_an_instance_over_the_size_limit_is_refused_before_the_spool(
        listener, site, tmp_path, settings) -> None:
    settings.DICOM_MAX_FILE_MB = 0  # every instance is over it
    paths, _ = study(tmp_path, 1, seed=41)
    assert send(listener, paths) == [0xA700]
    assert not spooled()


def test_an_ae_title_tied_to_addresses_is_refused_from_elsewhere(listener, site) -> None:
    """Knowing a site's AE title is not enough where the site names its sender's addresses."""
    CallingAE.objects.filter(ae_title=SENDER_AET).update(addresses="10.9.9.9, 192.168.7.0/24")
    refused = associate(listener)
    assert refused.is_rejected and not refused.is_established
    CallingAE.objects.filter(ae_title=SENDER_AET).update(addresses="10.9.9.9, 127.0.0.0/8")
    accepted = associate(listener)
    assert accepted.is_established
    accepted.release()


def test_addresses_must_be_ip_addresses_or_networks(site) -> None:
    from django.core.exceptions import ValidationError

    calling = CallingAE.objects.get(ae_title=SENDER_AET)
    calling.addresses = "10.0.0.1, hospital.example.org"
    with pytest.raises(ValidationError, match="Not an IP address or network"):
        calling.full_clean()
