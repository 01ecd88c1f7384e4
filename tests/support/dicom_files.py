"""Write DICOM (and not-quite-DICOM) files for the intake and rendering tests.

``write_dicom`` builds tiny images with exact pixel values (for rendering checks);
``identified_cxr`` writes a realistic synthetic radiograph full of identifying values, and
returns those values so a test can search the stored bytes for each of them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

from trial.dicom.synthetic import make_cxr

SMALL = 96  # rows and columns of the test radiographs: fast, still an image

IDENTIFYING = {
    "patient_name": "Doeberg^Janet",
    "patient_id": "MRN-7788991",
    "accession": "ACC-4455662",
    "institution": "St Elsewhere Teaching Hospital",
    "referring_physician": "Housewright^Gregor",
}


def identified_cxr(path: Path, *, seed: int = 1, study_uid: str | None = None,
                   **overrides) -> tuple[Path, dict[str, str]]:
    """A synthetic CXR carrying identifying values; returns them (UIDs included) as text."""
    values = {**IDENTIFYING, **{k: v for k, v in overrides.items() if k in IDENTIFYING}}
    extra = {k: v for k, v in overrides.items() if k not in IDENTIFYING}
    study_uid = study_uid or generate_uid()
    series_uid, sop_uid = generate_uid(), generate_uid()
    make_cxr(path, seed=seed, rows=SMALL, columns=SMALL, study_uid=study_uid,
             series_uid=series_uid, sop_uid=sop_uid, **values, **extra)
    secrets = {
        **values,
        "other_patient_id": f"OTHER-{values['patient_id']}",
        "private": f"private note on {values['patient_id']}",
        "comment": "SYNTHETIC IMAGE - not a patient",
        "institution_address": "2 Example Road, Sampletown",
        "patient_address": "1 Synthetic Street, Nowhere",
        "operator": "Operator^Synthetic",
        "station": "SYNTH-STATION-1",
        "serial": f"SN-{seed:08d}",
        "study_uid": study_uid,
        "series_uid": series_uid,
        "sop_uid": sop_uid,
    }
    return path, secrets


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    modality: str = "DX",
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    voi_lut: tuple[int, int, list[int]] | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    with_pixels: bool = True,
    **tags,
) -> Path:
    """A minimal valid DX file with exactly ``pixels``; ``rescale`` = (slope, intercept),
    ``window`` = (centre, width), ``voi_lut`` = (first mapped, bits, table)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = "Test^Pixels"
    ds.PatientID = "PIX-1"
    bits = bits_stored or (8 if pixels.dtype == np.uint8 else 16)
    ds.set_pixel_data(pixels, photometric, bits, generate_instance_uid=False)
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = (f"{v:g}" for v in rescale)
        ds.RescaleType = "US"
    if window:
        ds.WindowCenter, ds.WindowWidth = (f"{v:g}" for v in window)
    if voi_lut:
        first, lut_bits, table = voi_lut
        item = Dataset()
        item.LUTDescriptor = [len(table), first, lut_bits]
        item.add_new("LUTData", "US", table)
        ds.VOILUTSequence = Sequence([item])
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    if not with_pixels:
        del ds.PixelData
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if UID(transfer_syntax).is_compressed:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(rows: int = 16, columns: int = 16, *, top: int = 4095,
         dtype: type = np.uint16) -> np.ndarray:
    """Values 0..top spread over the image, row by row: every display level appears."""
    return np.linspace(0, top, rows * columns).round().astype(dtype).reshape(rows, columns)


def truncated_copy(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def text_file(path: Path) -> Path:
    path.write_text("Patient list, do not upload\n")
    return path


def png_file(path: Path) -> Path:
    buffer = io.BytesIO()
    PILImage.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def media_files(root: Path, folder: str = "dicom") -> list[Path]:
    """Files under MEDIA_ROOT/<folder> (the stored images), for "nothing was left" checks."""
    base = Path(root) / folder
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
