"""Start a real Orthanc PACS (Debian's package, with its DICOMweb plugin) on loopback ports.

Used by the PACS tests (a session fixture) the way PostgreSQL and Redis are started: free
ports for DICOM and HTTP, a throw-away storage folder, no authentication, HTTP reachable from
loopback only. Orthanc 1.10 runs as root without complaint, so no service user is needed.
Studies are put in through its REST API (``upload``) and sent on with its own C-STORE SCU
(``store``), exactly as a hospital's PACS would send them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.servers import ServerUnavailable, free_port

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_TIMEOUT = 60  # s; a loaded two-core machine can be slow to start it
TIMEOUT = 30  # s per REST call


@dataclass
class OrthancServer:
    """A running Orthanc: its ports and AE title, and REST helpers for the tests."""

    http_port: int
    dicom_port: int
    aet: str
    root: Path
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    def rest(self, method: str, path: str, **kwargs) -> requests.Response:
        """One REST call; an HTTP error raises with Orthanc's own explanation."""
        reply = self.session.request(method, f"{self.http_url}{path}", timeout=TIMEOUT,
                                     **kwargs)
        if reply.status_code >= 400:
            raise RuntimeError(f"Orthanc {method} {path}: {reply.status_code} {reply.text}")
        return reply

    def upload(self, source: Path | bytes) -> dict:
        """Store one DICOM file (``POST /instances``); Orthanc's answer (``ID``,
        ``ParentStudy``, ...)."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        return self.rest("POST", "/instances", data=data,
                         headers={"Content-Type": "application/dicom"}).json()

    def add_modality(self, name: str, *, aet: str, host: str, port: int) -> None:
        """Declare a DICOM peer Orthanc may send to (``PUT /modalities/<name>``)."""
        self.rest("PUT", f"/modalities/{name}",
                  json={"AET": aet, "Host": host, "Port": port})

    def echo(self, modality: str) -> None:
        """C-ECHO the modality from Orthanc; raises if it does not answer."""
        self.rest("POST", f"/modalities/{modality}/echo", json={})

    def store(self, modality: str, resources: list[str]) -> dict:
        """Send studies/series/instances (Orthanc ids) to the modality with Orthanc's own
        C-STORE SCU, synchronously."""
        return self.rest("POST", f"/modalities/{modality}/store",
                         json={"Resources": resources, "Synchronous": True}).json()

    def studies(self) -> list[str]:
        """The Orthanc ids of the studies it holds."""
        return self.rest("GET", "/studies").json()

    def study_uids(self) -> list[str]:
        return [self.rest("GET", f"/studies/{sid}").json()["MainDicomTags"]["StudyInstanceUID"]
                for sid in self.studies()]

    def delete_study(self, study_id: str) -> None:
        self.rest("DELETE", f"/studies/{study_id}")

    def clear(self) -> None:
        """Delete every study: a test starts from an empty PACS."""
        for study_id in self.studies():
            self.delete_study(study_id)


def config(*, http_port: int, dicom_port: int, aet: str, storage: Path) -> dict:
    return {
        "Name": "cxr-trials-test",
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "StorageCompression": False,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomModalities": {},
        "DicomModalitiesInDatabase": False,
        "DicomCheckCalledAet": False,
        # Close an outgoing association as soon as a store is done (default: 5 s later), so a
        # test's listener sees it end before the test does.
        "DicomAssociationCloseDelay": 0,
        "SaveJobs": False,
        "HttpTimeout": TIMEOUT,
    }


def _wait_for_system(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with code {proc.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(f"{url}/system", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"Orthanc did not answer {url}/system within {START_TIMEOUT} s: "
                       f"{log.read_text(errors='replace')[-2000:]}")


@contextmanager
def orthanc_server(*, aet: str = "ORTHANC") -> Iterator[OrthancServer]:
    """A throw-away Orthanc with the DICOMweb plugin on free loopback ports."""
    if not ORTHANC.exists() or not DICOMWEB_PLUGIN.exists():
        raise ServerUnavailable("Orthanc or its DICOMweb plugin not found. Install them: "
                                "apt-get install orthanc orthanc-dicomweb")
    root = Path(tempfile.mkdtemp(prefix="cxr-orthanc-"))
    http_port, dicom_port = free_port(), free_port()
    while dicom_port == http_port:
        dicom_port = free_port()
    path, log = root / "orthanc.json", root / "orthanc.log"
    path.write_text(json.dumps(config(http_port=http_port, dicom_port=dicom_port, aet=aet,
                                      storage=root / "storage")))
    with log.open("wb") as out:
        proc = subprocess.Popen([str(ORTHANC), str(path)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=root)
    server = OrthancServer(http_port=http_port, dicom_port=dicom_port, aet=aet, root=root)
    try:
        _wait_for_system(server.http_url, proc, log)
        yield server
    finally:
        server.session.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
