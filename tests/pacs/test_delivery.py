"""Signed final reports sent back to the site's PACS (a real Orthanc), and as FHIR.

On sign-off every node of the case's site that receives reports gets the SR, by C-STORE or
STOW-RS; it is read back from Orthanc with QIDO-RS and WADO-RS and parsed. With the site's
leave and a key, the import keeps the study's original identifiers encrypted and the SR
references them. Orthanc down: retried, failed with its reason on the dashboard, and sent
once retried (nothing lost). The FHIR DiagnosticReport: its shape and who may read it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from cryptography.fernet import Fernet
from dicomweb_client import DICOMwebClient
from django.db import connection
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.sr.codedict import codes
from pydicom.uid import BasicTextSRStorage
from rest_framework.test import APIClient

from pacs import tasks
from pacs.models import RemoteNode, ReportDelivery, UidLink
from reader.models import Review
from tests.support import read_world
from tests.support.campaign_world import read_and_sign
from tests.support.factories import SiteFactory
from tests.support.orthanc import OrthancServer
from tests.support.servers import free_port
from trial.models import Arm, AuditEvent, Membership, Role
from trial.signatures import printed_name

pytestmark = pytest.mark.django_db

FINDINGS, IMPRESSION = "Reference opacity", "Right lower lobe pneumonia."


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.PACS_DELIVERY_MAX_ATTEMPTS = 3
    settings.PACS_DELIVERY_BACKOFF_S = 0.01


def build(tmp_path: Path, monkeypatch, **node_fields):
    """A read world of one case whose site has the node (made before the import, so the
    import sees it), or none."""
    made: dict = {}

    def site_with_node(**kwargs):
        site = SiteFactory(**kwargs)
        if node_fields:
            made["node"] = RemoteNode.objects.create(site=site, name="PACS", **node_fields)
        return site

    monkeypatch.setattr(read_world, "SiteFactory", site_with_node)
    world = read_world.build_read_world(tmp_path, cases=1)
    return world, made.get("node")


def sign(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        read_and_sign(world, 0)
    return world.assignment(Arm.AI_ASSISTED, 0).case


def dimse(orthanc: OrthancServer, **extra) -> dict:
    return {"protocol": RemoteNode.Protocol.DIMSE, "ae_title": orthanc.aet,
            "host": "127.0.0.1", "port": orthanc.dicom_port, "timeout_s": 10,
            "receives_reports": True, **extra}


def report_in(orthanc: OrthancServer, study_uid: str) -> pydicom.Dataset:
    """The SR of the study, found with QIDO-RS and retrieved with WADO-RS."""
    client = DICOMwebClient(url=orthanc.dicomweb_url)
    found = client.search_for_instances(study_instance_uid=study_uid,
                                        search_filters={"Modality": "SR"})
    assert len(found) == 1, found
    meta = pydicom.Dataset.from_json(found[0])
    return client.retrieve_instance(study_uid, meta.SeriesInstanceUID, meta.SOPInstanceUID)


def texts(ds: pydicom.Dataset, name) -> list[str]:
    return [item.TextValue for item in hd.sr.utils.find_content_items(
        ds, name=name, value_type=hd.sr.ValueTypeValues.TEXT, recursive=True)]


def check_report(ds: pydicom.Dataset, case, *, study_uid: str, accession: str) -> None:
    assert ds.SOPClassUID == BasicTextSRStorage  # as the PACS stored it, read back
    sr = ds
    assert sr.StudyInstanceUID == study_uid and sr.AccessionNumber == accession
    assert sr.PatientID == case.case_id and str(sr.PatientName) == f"{case.case_id}^"
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "COMPLETE", "VERIFIED", "FINAL")
    assert sr.VerifyingObserverSequence[0].VerifyingObserverName
    assert texts(ds, codes.DCM.Finding) == [f"{FINDINGS} ({case.case_id})."]
    assert texts(ds, codes.DCM.Impression) == [IMPRESSION]
    assert sr.ReferencedRequestSequence[0].StudyInstanceUID == study_uid
    dumped = str(ds)
    assert "Kestrel" not in dumped and "Plover" not in dumped  # no reading, no arm's text


def test_the_signed_report_reaches_orthanc_by_c_store(
        tmp_path, monkeypatch, empty_orthanc, django_capture_on_commit_callbacks):
    world, node = build(tmp_path, monkeypatch, **dimse(empty_orthanc))
    case = sign(world, django_capture_on_commit_callbacks)
    delivery = ReportDelivery.objects.get()
    assert (delivery.node, delivery.status, delivery.attempts) == (
        node, ReportDelivery.Status.DONE, 1)
    ds = report_in(empty_orthanc, case.study_uid)  # the pseudonymous study
    assert ds.SOPInstanceUID == delivery.sop_instance_uid
    check_report(ds, case, study_uid=case.study_uid, accession=case.case_id)
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0] \
        .ReferencedSOPInstanceUID == case.images.get().sop_uid
    assert AuditEvent.objects.filter(action="report_delivery.done").count() == 1


def test_the_signed_report_reaches_orthanc_by_stow_rs(
        tmp_path, monkeypatch, empty_orthanc, django_capture_on_commit_callbacks):
    monkeypatch.setenv("CXR_TEST_PACS_AUTH", "Bearer not-checked-by-this-orthanc")
    world, _ = build(tmp_path, monkeypatch, protocol=RemoteNode.Protocol.DICOMWEB,
                     base_url=empty_orthanc.dicomweb_url, auth_env="CXR_TEST_PACS_AUTH",
                     timeout_s=10, receives_reports=True)
    case = sign(world, django_capture_on_commit_callbacks)
    assert ReportDelivery.objects.get().status == ReportDelivery.Status.DONE
    check_report(report_in(empty_orthanc, case.study_uid), case, study_uid=case.study_uid,
                 accession=case.case_id)


def test_original_identifiers_kept_encrypted_and_referenced(
        tmp_path, monkeypatch, settings, empty_orthanc, django_capture_on_commit_callbacks):
    settings.PACS_UID_KEY = Fernet.generate_key().decode()
    world, _ = build(tmp_path, monkeypatch, **dimse(empty_orthanc, keep_original_uids=True))
    original = pydicom.dcmread(tmp_path / "0.dcm", stop_before_pixels=True)
    uid, accession = str(original.StudyInstanceUID), str(original.AccessionNumber)
    assert accession == "ACC0"
    link = UidLink.objects.get()
    with connection.cursor() as cursor:  # the row as stored: only the token
        cursor.execute("SELECT * FROM pacs_uidlink")
        row = repr(cursor.fetchall())
    assert uid not in row and uid.encode() not in bytes(link.token) and accession not in row
    events = json.dumps(list(AuditEvent.objects.values("before", "after")), default=str)
    assert uid not in events and "ACC0" not in events
    case = sign(world, django_capture_on_commit_callbacks)
    assert case.study_uid != uid
    assert ReportDelivery.objects.get().status == ReportDelivery.Status.DONE
    check_report(report_in(empty_orthanc, uid), case, study_uid=uid, accession=accession)
    assert "CurrentRequestedProcedureEvidenceSequence" not in report_in(empty_orthanc, uid)


def test_orthanc_down_retried_failed_visible_then_retried_and_delivered(
        tmp_path, monkeypatch, empty_orthanc, django_capture_on_commit_callbacks):
    world, node = build(tmp_path, monkeypatch, **dimse(empty_orthanc, port=free_port()))
    case = sign(world, django_capture_on_commit_callbacks)  # nothing listens on that port
    delivery = ReportDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (ReportDelivery.Status.FAILED, 3)
    assert delivery.error.startswith("Gave up after 3 attempts; last error: Could not "
                                     "connect to the PACS")
    assert empty_orthanc.studies() == []
    coordinator = Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user
    client = Client()
    client.force_login(coordinator)
    data = client.get(f"/monitor/{world.trial.slug}/data.json").json()
    assert data["numbers"]["deliveries.failed"] == 1
    assert [row["cells"][:2] for row in data["tables"]["deliveries"]["rows"]] == [
        [case.case_id, "PACS"]]
    assert any("not delivered" in action["text"] for action in data["actions"])
    page = client.get(f"/monitor/{world.trial.slug}/").content.decode()
    assert "Could not connect to the PACS" in page and "Retry failed deliveries" in page
    reader = world.readers[Arm.SCP].user
    reader_client = Client()
    reader_client.force_login(reader)
    retry = f"/monitor/{world.trial.slug}/retry-deliveries/"
    assert reader_client.post(retry, {"confirm": "yes"}).status_code == 403

    node.port = empty_orthanc.dicom_port  # the PACS is back
    node.save()
    assert client.post(retry, {"confirm": "yes"}).status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == (
        ReportDelivery.Status.DONE, 1, "")
    check_report(report_in(empty_orthanc, case.study_uid), case, study_uid=case.study_uid,
                 accession=case.case_id)
    actions = list(AuditEvent.objects.filter(action__startswith="report_delivery.")
                   .order_by("pk").values_list("action", "actor"))
    assert actions == [("report_delivery.queued", None), ("report_delivery.failed", None),
                       ("report_delivery.retried", coordinator.pk),
                       ("report_delivery.done", None)]
    assert client.get(f"/monitor/{world.trial.slug}/data.json").json()[
        "numbers"]["deliveries.failed"] == 0


def test_the_sweep_sends_what_was_lost(tmp_path, monkeypatch, empty_orthanc,
                                       django_capture_on_commit_callbacks):
    """A sign-off whose process stopped right after the commit (the hook never ran), and a
    run whose worker died (lease out): the periodic sweep sends them."""
    world, _ = build(tmp_path, monkeypatch, **dimse(empty_orthanc))
    with django_capture_on_commit_callbacks(execute=False):
        read_and_sign(world, 0)
    case = world.assignment(Arm.AI_ASSISTED, 0).case
    assert not ReportDelivery.objects.exists()
    assert tasks.sweep_deliveries() == 1
    delivery = ReportDelivery.objects.get()
    assert delivery.status == ReportDelivery.Status.DONE
    check_report(report_in(empty_orthanc, case.study_uid), case, study_uid=case.study_uid,
                 accession=case.case_id)
    ReportDelivery.objects.filter(pk=delivery.pk).update(  # as if its worker died
        status=ReportDelivery.Status.RUNNING, claim="dead", lease_until=timezone.now())
    assert tasks.sweep_deliveries() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (ReportDelivery.Status.DONE, 2)
    assert len(empty_orthanc.studies()) == 1  # the same SR instance, stored again
    assert tasks.sweep_deliveries() == 0


def test_no_delivery_without_a_node_receiving_reports_and_no_link_without_a_key(
        tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    world, _ = build(tmp_path, monkeypatch, protocol=RemoteNode.Protocol.DIMSE,
                     ae_title="PACS", host="127.0.0.1", port=free_port(),
                     receives_reports=False, keep_original_uids=True)
    sign(world, django_capture_on_commit_callbacks)
    assert not ReportDelivery.objects.exists()
    assert not UidLink.objects.exists()  # the site allows it, but PACS_UID_KEY is not set


def test_fhir_diagnostic_report(tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    world, _ = build(tmp_path, monkeypatch)
    case = world.assignment(Arm.AI_ASSISTED, 0).case
    url = f"/api/trials/{world.trial.slug}/cases/{case.pk}/diagnostic-report/"
    coordinator = APIClient()
    coordinator.force_authenticate(
        Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user)
    assert coordinator.get(url).status_code == 404  # not signed yet
    sign(world, django_capture_on_commit_callbacks)
    response = coordinator.get(url)
    assert response.status_code == 200
    report = DiagnosticReport.model_validate(response.json())
    assert report.status == "final" and report.code.coding[0].code == "18748-4"
    assert report.subject.identifier.value == case.case_id
    assert report.conclusion == IMPRESSION
    review = Review.objects.get(case=case)
    assert report.issued == review.signed_at
    assert report.resultsInterpreter[0].display == printed_name(world.senior.user)
    text = base64.b64decode(response.json()["presentedForm"][0]["data"]).decode()
    assert report.presentedForm[0].data == text.encode()  # parsed: decoded
    assert report.presentedForm[0].contentType.startswith("text/plain")
    assert FINDINGS in text and IMPRESSION in text
    body = response.content.decode()
    assert "Kestrel" not in body and "Plover" not in body
    assert not any(arm in body for arm in Arm.values)
    for member in (world.readers[Arm.AI_ASSISTED], world.senior):
        other = APIClient()
        other.force_authenticate(member.user)
        assert other.get(url).status_code == 403
    missing = f"/api/trials/{world.trial.slug}/cases/{case.pk + 999}/diagnostic-report/"
    assert coordinator.get(missing).status_code == 404


def test_an_error_from_the_pacs_is_stored_without_uids() -> None:
    from pacs.delivery import scrub

    text = ("Refused: study 1.2.826.0.1.3680043.8.498.12345 already has a report "
            "(from 127.0.0.1:104)")
    assert scrub(text) == "Refused: study <UID> already has a report (from 127.0.0.1:104)"
    assert len(scrub("x" * 2000)) == 500


def test_content_basic_text_sr_does_not_allow_is_refused() -> None:
    from pacs.sr import as_basic_text

    num = hd.sr.NumContentItem(name=codes.SCT.Diameter, value=3.0, unit=codes.UCUM.Millimeter,
                               relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    root = hd.sr.ContainerContentItem(name=codes.DCM.Finding)
    root.ContentSequence = hd.sr.ContentSequence([num])
    with pytest.raises(ValueError, match=r"\['NUM'\]"):
        as_basic_text(root)
