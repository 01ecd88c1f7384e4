"""``manage.py prepare_images``: images without viewer files (imported before imports made
them) are prepared outside any web request, which otherwise refuses them (409)."""

from __future__ import annotations

import io
import shutil

import pytest
from django.core.management import call_command

from tests.support.draft_world import imported_case
from tests.support.factories import SiteFactory, TrialFactory
from trial.dicom.viewer_pixels import (
    PIXELS_NAME,
    PixelsNotPrepared,
    derived_dir,
    viewer_meta,
)

pytestmark = pytest.mark.django_db


def test_an_image_without_viewer_files_is_refused_then_prepared(tmp_path) -> None:
    trial = TrialFactory(slug="old")
    case = imported_case(trial, SiteFactory(trial=trial, code="H1"), tmp_path, seed=5)
    image = case.images.get()
    made_at_import = viewer_meta(image)
    shutil.rmtree(derived_dir(image))  # as a database from before this release
    with pytest.raises(PixelsNotPrepared, match="prepare_images"):
        viewer_meta(image)
    out = io.StringIO()
    call_command("prepare_images", trial="old", stdout=out, stderr=io.StringIO())
    assert "Prepared 1 image(s); 0 already had their files." in out.getvalue()
    assert (derived_dir(image) / PIXELS_NAME).exists()
    assert viewer_meta(image) == made_at_import
    again = io.StringIO()
    call_command("prepare_images", stdout=again, stderr=io.StringIO())
    assert "Prepared 0 image(s); 1 already had their files." in again.getvalue()
