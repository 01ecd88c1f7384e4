"""Pulling studies by accession number from a real PACS (the suite's Orthanc), over DIMSE
(C-FIND, then C-MOVE to our listener running in-process) and over DICOMweb (QIDO-RS, WADO-RS).

Each accession number ends imported, not found, refused (with the reason) or duplicate; a
second run of the same list retrieves nothing again; an unreachable PACS fails each item
clearly after retries, imports nothing partial, and the same list run again once it is back
imports everything. No accession number is stored anywhere (the whole database is searched).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pydicom
import pytest
from django.core.management import CommandError, call_command

from pacs import intake, pull
from pacs.listener import Listener
from pacs.models import CallingAE, PullItem, PullRun, RemoteNode
from tests.pacs.test_listener import assert_nothing_identifying, database_text, spooled
from tests.support.dicom_files import identified_cxr
from tests.support.factories import SiteFactory, TrialFactory
from tests.support.orthanc import OrthancServer
from tests.support.servers import free_port
from trial.models import AuditEvent, Case, Image, ImportJob

CALLING_AET = "CXRPULL"  # our AE when we query and move
LISTENER_AET = "CXRPULLSCP"  # where C-MOVE sends (not the listener tests' AE: Orthanc finds
# a move destination by its AE title, and theirs is declared with another port)
Status = PullItem.Status

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture(autouse=True)
def quick(settings, tmp_path, monkeypatch) -> None:
    settings.DICOM_SPOOL_DIR = tmp_path / "spool"
    settings.DICOM_CALLING_AE_TITLE = CALLING_AET
    settings.DICOM_LISTENER_AE_TITLE = LISTENER_AET
    settings.DICOM_STUDY_QUIET_SECONDS = 3600  # the listener never imports on its own here
    monkeypatch.setattr(pull, "BACKOFF_S", 0.01)


@pytest.fixture
def site(transactional_db):
    return SiteFactory(trial=TrialFactory(), code="H1")


@pytest.fixture
def listener(transactional_db, site, empty_orthanc: OrthancServer) -> Iterator[Listener]:
    """Our listener, known to Orthanc as a move destination; Orthanc a calling AE of the site;
    our calling AE known to Orthanc (it answers C-FIND and C-MOVE to declared peers)."""
    CallingAE.objects.create(site=site, ae_title=empty_orthanc.aet)
    running = Listener(ae_title=LISTENER_AET, port=0, host="127.0.0.1", settle_every=1.0)
    running.start()
    empty_orthanc.add_modality("cxrpull", aet=CALLING_AET, host="127.0.0.1", port=1)
    empty_orthanc.add_modality("cxrpullscp", aet=LISTENER_AET, host="127.0.0.1",
                               port=running.port)
    yield running
    running.stop()


@pytest.fixture
def received(monkeypatch) -> list[int]:
    """Every instance the listener writes to the spool (one entry each)."""
    seen: list[int] = []
    original = intake.receive

    def counting(*args, **kwargs):
        seen.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(intake, "receive", counting)
    return seen


def dimse_node(site, orthanc: OrthancServer, *, port: int | None = None) -> RemoteNode:
    return RemoteNode.objects.create(site=site, name="pacs", protocol=RemoteNode.Protocol.DIMSE,
                                     ae_title=orthanc.aet, host="127.0.0.1",
                                     port=port or orthanc.dicom_port, timeout_s=10)


def web_node(site, url: str) -> RemoteNode:
    return RemoteNode.objects.create(site=site, name="web", protocol=RemoteNode.Protocol.DICOMWEB,
                                     base_url=url, timeout_s=10)


def put(orthanc: OrthancServer, tmp_path: Path, accession: str, n: int = 1, *,
        seed: int = 1, modalities: tuple[str, ...] = ()) -> tuple[list[Path], list[dict]]:
    """A study of ``n`` identified radiographs (then one image per extra modality) with this
    accession number, uploaded to Orthanc."""
    uid = pydicom.uid.generate_uid()
    made = [identified_cxr(tmp_path / f"{accession}-{seed}-{i}.dcm", seed=seed + i,
                           study_uid=uid, age=45, accession=accession)
            for i in range(n)]
    made += [identified_cxr(tmp_path / f"{accession}-{seed}-{m}.dcm", seed=seed + 50,
                            study_uid=uid, accession=accession, modality=m)
             for m in modalities]
    for path, _ in made:
        orthanc.upload(path)
    return [p for p, _ in made], [s for _, s in made]


def outcome(run: PullRun) -> list[tuple[int, str]]:
    return list(run.items.values_list("line", "status"))


def assert_no_accession_stored(*accessions: str) -> None:
    rows = database_text()
    for accession in accessions:
        assert accession.encode() not in rows, f"{accession} is in the database"


def test_dimse_pull_imports_by_accession_and_a_second_run_retrieves_nothing(
        listener, site, empty_orthanc, tmp_path, settings, received) -> None:
    node = dimse_node(site, empty_orthanc)
    paths_a, secrets_a = put(empty_orthanc, tmp_path, "PULLA001", 2)
    paths_b, secrets_b = put(empty_orthanc, tmp_path, "PULLB002", 1, seed=5)
    worklist = ["PULLA001", "", "NOSUCH999", "PULLB002", "PULLA001 "]
    bar: list[tuple[int, int]] = []

    run = pull.pull(site, node, worklist, progress=lambda d, t: bar.append((d, t)),
                    request_label="worklist.txt")

    assert run.status == PullRun.Status.DONE and run.error == ""
    assert (run.total, run.processed) == (3, 3)
    assert outcome(run) == [(1, Status.IMPORTED), (3, Status.NOT_FOUND), (4, Status.IMPORTED)]
    first, missing, second = run.items.all()
    assert (first.instances, second.instances) == (2, 1)
    assert first.case.images.count() == 2 and second.case.images.count() == 1
    assert first.case != second.case and first.case.site == site
    assert "no study with this accession number" in missing.reason
    assert bar[0] == (0, 3) and bar[-1] == (3, 3)
    assert run.accessions == {1: "PULLA001", 3: "NOSUCH999", 4: "PULLB002"}  # memory only
    assert run.request == "3 accession number(s) from worklist.txt"
    job = ImportJob.objects.get()  # the run's: the listener imported nothing itself
    assert (job.imported, job.rejected, job.status) == (3, 0, ImportJob.Status.DONE)
    assert job.source.startswith("PACS pull from pacs")
    assert len(received) == 3 and not spooled()
    assert_nothing_identifying([*paths_a, *paths_b], [*secrets_a, *secrets_b],
                               Path(settings.MEDIA_ROOT))
    assert_no_accession_stored("PULLA001", "PULLB002", "NOSUCH999")

    again = pull.pull(site, node, worklist)

    assert outcome(again) == [(1, Status.DUPLICATE), (3, Status.NOT_FOUND),
                              (4, Status.DUPLICATE)]
    assert again.items.get(line=1).case == first.case
    assert len(received) == 3  # nothing sent again
    assert Image.objects.count() == 3 and Case.objects.count() == 2


def test_dimse_refusals_and_a_study_in_the_trial_by_another_way(
        listener, site, empty_orthanc, tmp_path, received) -> None:
    node = dimse_node(site, empty_orthanc)
    put(empty_orthanc, tmp_path, "TWICE01", seed=1)
    put(empty_orthanc, tmp_path, "TWICE01", seed=3)
    put(empty_orthanc, tmp_path, "MIXED01", seed=10, modalities=("CT",))
    put(empty_orthanc, tmp_path, "CTONLY1", 0, modalities=("CT",))
    put(empty_orthanc, tmp_path, "WILD*", seed=20)

    run = pull.pull(site, node, ["TWICE01", "MIXED01", "CTONLY1", "WILD*"])

    assert outcome(run) == [(1, Status.REFUSED), (2, Status.IMPORTED), (3, Status.REFUSED),
                            (4, Status.REFUSED)]
    twice, mixed, ct, wild = run.items.all()
    assert "2 studies have this accession number" in twice.reason
    assert mixed.instances == 1 and "1 instance(s) refused" in mixed.reason
    assert "CT" in mixed.reason and "CT" in ct.reason and ct.case is None
    assert "not an accession number" in wild.reason
    assert Case.objects.count() == 1 and Image.objects.count() == 1
    assert ImportJob.objects.get().rejected == 2 and not spooled()

    # a study already in the trial some other way (no earlier pull of it): found by the
    # query, recognised by its study key, not retrieved
    case = mixed.case
    run.delete()
    sent = len(received)
    item = pull.pull(site, node, ["MIXED01"]).items.get()
    assert (item.status, item.case) == (Status.DUPLICATE, case)
    assert item.reason == f"already in the trial (case {case.case_id})"
    assert len(received) == sent


def test_dicomweb_pull_by_accession(site, empty_orthanc, tmp_path, settings) -> None:
    node = web_node(site, empty_orthanc.dicomweb_url)
    paths, secrets = put(empty_orthanc, tmp_path, "WEBA0001", 2)
    put(empty_orthanc, tmp_path, "WEBTWO1", seed=3)
    put(empty_orthanc, tmp_path, "WEBTWO1", seed=4)
    put(empty_orthanc, tmp_path, "WEBCT01", 0, modalities=("CT",))
    worklist = ["WEBA0001", "NOSUCH", "WEBTWO1", "WEBCT01"]

    run = pull.pull(site, node, worklist)

    assert run.status == PullRun.Status.DONE
    assert outcome(run) == [(1, Status.IMPORTED), (2, Status.NOT_FOUND), (3, Status.REFUSED),
                            (4, Status.REFUSED)]
    imported, _, twice, ct = run.items.all()
    assert imported.instances == 2 and imported.case.images.count() == 2
    assert "2 studies" in twice.reason and "CT" in ct.reason
    assert_nothing_identifying(paths, secrets, Path(settings.MEDIA_ROOT))

    again = pull.pull(site, node, worklist)
    assert outcome(again)[0] == (1, Status.DUPLICATE)
    assert Image.objects.count() == 2
    assert_no_accession_stored(*worklist)


def test_dicomweb_pull_by_study_date(site, empty_orthanc, tmp_path) -> None:
    node = web_node(site, empty_orthanc.dicomweb_url)
    put(empty_orthanc, tmp_path, "DATE0001", seed=40)  # 2025-02-10
    put(empty_orthanc, tmp_path, "DATE0002", seed=200)  # 2025-07-20, outside

    run = pull.pull_dates(site, node, "20250201", "20250228")

    assert outcome(run) == [(1, Status.IMPORTED)]
    assert run.accessions == {1: "DATE0001"} and Case.objects.count() == 1
    assert_no_accession_stored("DATE0001")


def test_an_unreachable_pacs_fails_each_item_clearly_and_a_rerun_imports_everything(
        listener, site, empty_orthanc, tmp_path, monkeypatch, received) -> None:
    waits: list[float] = []
    monkeypatch.setattr(pull, "_pause", waits.append)
    node = dimse_node(site, empty_orthanc, port=free_port())  # nothing listens there
    put(empty_orthanc, tmp_path, "DOWN0001")
    put(empty_orthanc, tmp_path, "DOWN0002", seed=3)

    run = pull.pull(site, node, ["DOWN0001", "DOWN0002"])

    assert run.status == PullRun.Status.FAILED
    assert "could not be reached" in run.error and "tried 3 times" in run.error
    for item in run.items.all():
        assert item.status == Status.FAILED
        assert item.reason.startswith("PACS unreachable: no association with ORTHANC at")
    assert waits == [0.01, 0.02] * 2  # two pauses before the second and third tries
    assert not Case.objects.exists() and not spooled() and not received

    node.port = empty_orthanc.dicom_port
    node.save()
    again = pull.pull(site, node, ["DOWN0001", "DOWN0002"])
    assert again.status == PullRun.Status.DONE
    assert outcome(again) == [(1, Status.IMPORTED), (2, Status.IMPORTED)]
    assert Case.objects.count() == 2


def test_a_pacs_lost_mid_run_loses_nothing(listener, site, empty_orthanc, tmp_path) -> None:
    node = dimse_node(site, empty_orthanc)
    put(empty_orthanc, tmp_path, "MID00001")
    put(empty_orthanc, tmp_path, "MID00002", seed=3)
    closed = free_port()

    def down_after_first(done: int, total: int) -> None:
        if done == 1:
            node.port = closed  # from now on, connections are refused

    run = pull.pull(site, node, ["MID00001", "MID00002"], progress=down_after_first)

    assert run.status == PullRun.Status.DONE  # reachable for one
    assert outcome(run) == [(1, Status.IMPORTED), (2, Status.FAILED)]
    assert Case.objects.count() == 1 and not spooled()

    node.refresh_from_db()
    again = pull.pull(site, node, ["MID00001", "MID00002"])
    assert outcome(again) == [(1, Status.DUPLICATE), (2, Status.IMPORTED)]
    assert Case.objects.count() == 2


def test_dicomweb_down_is_a_clear_error(site, tmp_path) -> None:
    node = web_node(site, f"http://127.0.0.1:{free_port()}/dicom-web")
    run = pull.pull(site, node, ["ANY00001"])
    item = run.items.get()
    assert item.status == Status.FAILED and run.status == PullRun.Status.FAILED
    assert item.reason == (f"PACS unreachable: no answer from {node.base_url} to the query "
                           "(ConnectionError) (tried 3 times)")
    assert "ANY00001" not in run.error


def test_the_command_reports_each_accession_and_exits_non_zero_on_failures(
        site, empty_orthanc, tmp_path) -> None:
    node = web_node(site, empty_orthanc.dicomweb_url)
    put(empty_orthanc, tmp_path, "CMD00001")
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("patient,accession_number\nx,CMD00001\ny,NOSUCH01\n")
    out, err = StringIO(), StringIO()

    call_command("pull_studies", "--trial", site.trial.slug, "--site", "H1", "--accession",
                 str(worklist), stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("line 2  CMD00001  imported  case H1-0001  1 instance(s)")
    assert lines[1].startswith("line 3  NOSUCH01  not_found  no study")
    assert "1 imported" in lines[2] and "1 not found" in lines[2] and "0 failed" in lines[2]
    assert "2/2" in err.getvalue()  # the progress bar
    assert_no_accession_stored("CMD00001", "NOSUCH01")

    node.base_url = f"http://127.0.0.1:{free_port()}/dicom-web"
    node.save()
    out = StringIO()
    with pytest.raises(CommandError, match="could not be reached"):
        call_command("pull_studies", "--trial", site.trial.slug, "--site", "H1",
                     "--accession", str(worklist), stdout=out, stderr=StringIO())
    assert "line 2  CMD00001  duplicate" in out.getvalue()  # known from the first run
    assert "line 3  NOSUCH01  failed  PACS unreachable" in out.getvalue()


def test_no_accession_number_in_audit_or_import_rows(site, empty_orthanc, tmp_path) -> None:
    node = web_node(site, empty_orthanc.dicomweb_url)
    put(empty_orthanc, tmp_path, "AUD00001")
    run = pull.pull(site, node, ["AUD00001", "AUD00002"])
    texts = [str(list(PullItem.objects.values())), str(list(PullRun.objects.values())),
             str(list(ImportJob.objects.values())), str(list(AuditEvent.objects.values())),
             str(list(Case.objects.values()))]
    assert run.items.filter(status=Status.IMPORTED).count() == 1
    assert AuditEvent.objects.filter(action="pacs.pull_finished").exists()
    for text in texts:
        assert "AUD0000" not in text


def test_a_move_our_listener_cannot_take_fails_with_the_reason(
        listener, site, empty_orthanc, tmp_path) -> None:
    """The PACS answers, but cannot reach our listener (not running where it is declared)."""
    node = dimse_node(site, empty_orthanc)
    empty_orthanc.add_modality("cxrpullscp", aet=LISTENER_AET, host="127.0.0.1",
                               port=free_port())
    put(empty_orthanc, tmp_path, "NOLSTN01")

    run = pull.pull(site, node, ["NOLSTN01"])

    item = run.items.get()
    assert item.status == Status.FAILED
    assert f"could not send the study to our listener {LISTENER_AET}" in item.reason
    assert "is the DICOM listener running" in item.reason
    assert run.status == PullRun.Status.DONE  # the PACS itself answered
    assert not Case.objects.exists() and not spooled()


def test_no_accession_number_or_original_uid_reaches_the_logs(
        listener, site, empty_orthanc, tmp_path, caplog) -> None:
    """pynetdicom logs C-FIND and C-MOVE identifiers at INFO unless told not to."""
    node = dimse_node(site, empty_orthanc)
    _, sent = put(empty_orthanc, tmp_path, "LOGACC77", 1, seed=9)
    with caplog.at_level(logging.DEBUG):
        run = pull.pull(site, node, ["LOGACC77"])
    assert outcome(run) == [(1, Status.IMPORTED)]
    assert caplog.records  # pynetdicom did log the associations
    assert "LOGACC77" not in caplog.text
    assert sent[0]["study_uid"] not in caplog.text


def test_a_dimse_pull_is_refused_when_the_pacs_ae_title_sends_to_another_site(
        site, empty_orthanc) -> None:
    """The listener files a C-MOVE's studies under the site its calling AE names: a pull
    for another site (another trial, say) would land there, so it is refused up front."""
    from pacs.models import CallingAE
    from tests.support.factories import SiteFactory, TrialFactory
    from trial.errors import Invalid

    elsewhere = SiteFactory(trial=TrialFactory(), code="X9")
    CallingAE.objects.filter(ae_title=empty_orthanc.aet).delete()
    CallingAE.objects.create(site=elsewhere, ae_title=empty_orthanc.aet)
    node = dimse_node(site, empty_orthanc)
    with pytest.raises(Invalid, match="would be filed there"):
        pull.pull(site, node, ["ANY0001"])
    assert not PullRun.objects.exists()
