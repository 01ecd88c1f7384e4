"""The synthetic radiographs: deterministic, fast, anatomically laid out, findings where the
truth puts them, and still marked synthetic."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from trial.dicom.synthetic import (
    BURNED_IN,
    COMMENT,
    MANUFACTURER,
    MODEL_NAME,
    ImageFinding,
    cxr_pixels,
    make_cxr,
)

ROWS, COLS = 1000, 820


def image(findings=(), seed: int = 4) -> np.ndarray:
    return cxr_pixels(seed=seed, rows=ROWS, columns=COLS, findings=tuple(findings))


def box(a: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """A region by position: x from the image's left (0) to right (1), y from top to bottom."""
    rows, cols = a.shape
    return a[int(y0 * rows):int(y1 * rows), int(x0 * cols):int(x1 * cols)]


def test_same_seed_same_image_other_seed_other_image() -> None:
    first = cxr_pixels(seed=9, rows=300, columns=250)
    assert np.array_equal(first, cxr_pixels(seed=9, rows=300, columns=250))
    assert not np.array_equal(first, cxr_pixels(seed=10, rows=300, columns=250))
    assert first.dtype == np.float32 and first.min() >= 0 and first.max() <= 1


def test_a_full_size_radiograph_takes_well_under_a_second() -> None:
    cxr_pixels(seed=1, rows=200, columns=160)  # warm up (imports, the font)
    cpu = []
    for seed in (2, 3):
        started = time.process_time()
        pixels = cxr_pixels(seed=seed, rows=2500, columns=2000,
                            findings=(ImageFinding("consolidation", side="right", lobe="lower"),))
        cpu.append(time.process_time() - started)
    assert pixels.shape == (2500, 2000)
    assert min(cpu) < 1.0, cpu


def test_the_anatomy_is_where_a_pa_film_has_it() -> None:
    a = image()
    lung_r, lung_l = box(a, 0.2, 0.3, 0.25, 0.4), box(a, 0.7, 0.8, 0.25, 0.4)
    mediastinum = box(a, 0.47, 0.53, 0.35, 0.55)
    abdomen = box(a, 0.3, 0.7, 0.85, 0.95)
    outside = box(a, 0.0, 0.04, 0.6, 0.9)  # air beside the patient
    assert lung_r.mean() < mediastinum.mean() - 0.2 and lung_l.mean() < mediastinum.mean() - 0.2
    assert abdomen.mean() > lung_r.mean() + 0.2  # below the hemidiaphragms
    assert outside.mean() < lung_r.mean()
    # The heart bulges to the patient's left (the image's right): at the heart's level, just
    # lateral to the spine, the image's right is heart and its left still lung.
    assert box(a, 0.66, 0.7, 0.5, 0.6).mean() > box(a, 0.3, 0.34, 0.5, 0.6).mean() + 0.1
    # Ribs: bright bands over the lung, so a column through the lung is far from flat.
    column = box(a, 0.27, 0.29, 0.2, 0.55).mean(axis=1)
    assert column.std() > 0.03


@pytest.mark.parametrize(("finding", "where", "elsewhere", "sign"), [
    # (finding, region that changes, the mirror region, +1 brighter / -1 darker)
    (ImageFinding("effusion", side="right", size="moderate"),
     (0.12, 0.38, 0.55, 0.68), (0.62, 0.88, 0.55, 0.68), 1),
    (ImageFinding("consolidation", side="left", lobe="lower"),
     (0.62, 0.85, 0.48, 0.65), (0.15, 0.38, 0.48, 0.65), 1),
    (ImageFinding("tb", side="right", cavity=True),
     (0.15, 0.42, 0.1, 0.32), (0.58, 0.85, 0.1, 0.32), 1),
    (ImageFinding("mass", side="left", zone="upper", cm=5.0),
     (0.55, 0.9, 0.12, 0.35), (0.1, 0.45, 0.12, 0.35), 1),
    (ImageFinding("pneumothorax", side="left", size="large"),  # a lucent rim, no markings
     (0.74, 0.82, 0.15, 0.4), (0.18, 0.26, 0.15, 0.4), -1),
    (ImageFinding("cardiomegaly"), (0.74, 0.8, 0.5, 0.62), (0.2, 0.26, 0.5, 0.62), 1),
])
def test_a_finding_is_drawn_where_the_truth_puts_it(finding, where, elsewhere, sign) -> None:
    """Same seed with and without the finding: the same anatomy, so the difference is the
    finding; it sits on the named side (the patient's right is the image's left)."""
    diff = image([finding]) - image()
    here, there = box(diff, *where).mean(), box(diff, *elsewhere).mean()
    assert sign * here > 0.01, here
    assert abs(there) < abs(here) / 3, (here, there)


def test_the_file_is_marked_synthetic_in_its_tags_and_its_pixels(tmp_path: Path) -> None:
    path = make_cxr(tmp_path / "a.dcm", seed=3, rows=800, columns=656, bits=12, age=41,
                    sex="M", findings=(ImageFinding("nodule", side="right", zone="mid", cm=2),))
    ds = pydicom.dcmread(path)
    assert (ds.Manufacturer, ds.ManufacturerModelName, ds.ImageComments) == (
        MANUFACTURER, MODEL_NAME, COMMENT)
    assert ds.BitsStored == 12 and ds.PatientAge == "041Y" and ds.PatientSex == "M"
    pixels = ds.pixel_array
    assert pixels.max() <= 4095
    # The burned-in text "SYNTHETIC" at the bottom left: near-white strokes on dark.
    corner = pixels[int(0.9 * 800):, :int(0.5 * 656)]
    assert (corner > 0.9 * 4095).sum() > 50
    assert BURNED_IN == "SYNTHETIC"
