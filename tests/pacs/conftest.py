"""The PACS tests' real Orthanc: started once per session, emptied for the tests that use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.orthanc import OrthancServer, orthanc_server


@pytest.fixture(scope="session")
def orthanc() -> Iterator[OrthancServer]:
    """A real Orthanc with DICOMweb (see ``tests.support.orthanc``), shared by the session:
    tests give their studies their own UIDs, or use ``empty_orthanc``."""
    with orthanc_server() as server:
        yield server


@pytest.fixture
def empty_orthanc(orthanc: OrthancServer) -> Iterator[OrthancServer]:
    """The session's Orthanc with no study in it, emptied again after the test."""
    orthanc.clear()
    yield orthanc
    orthanc.clear()
