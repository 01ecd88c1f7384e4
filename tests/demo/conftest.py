"""The demo's tests build many demo trials: their synthetic radiographs are made small here
(the image's content is checked in ``test_images.py``, at full size), so each case costs a
tenth of what a real-size one does. The subprocess test of the README's path keeps the real
size."""

import pytest

import demo.build


@pytest.fixture(autouse=True)
def small_demo_images(monkeypatch) -> None:
    monkeypatch.setattr(demo.build, "IMAGE_ROWS", 448)
    monkeypatch.setattr(demo.build, "IMAGE_COLUMNS", 368)
