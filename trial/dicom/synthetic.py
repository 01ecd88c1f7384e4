"""Synthetic chest radiographs for the demo and the tests: never a patient, and marked so.

The images look enough like a PA chest film (dark lungs, bright mediastinum and spine, ribs,
noise, optionally an opacity) to exercise the viewer and the model path, and they carry the
identifying attributes a real file would, so de-identification is exercised end to end.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

MANUFACTURER = "SYNTHETIC"
MODEL_NAME = "cxr-trials synthetic generator"
COMMENT = "SYNTHETIC IMAGE - not a patient"
PRIVATE_CREATOR = "CXR TRIALS SYNTHETIC"
SOP_CLASSES = {"DX": DigitalXRayImageStorageForPresentation, "CR": ComputedRadiographyImageStorage}


def _blob(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float,
          soft: float = 0.04) -> np.ndarray:
    """A soft-edged ellipse, 1 inside and 0 outside (a sigmoid, so no aliasing)."""
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    return 1.0 / (1.0 + np.exp(np.clip((r - 1.0) / soft, -50, 50)))


def cxr_pixels(*, seed: int, rows: int = 1024, columns: int = 1024,
               opacity: bool | None = None) -> np.ndarray:
    """A float32 attenuation map in [0, 1] (1 = bright on MONOCHROME2), vectorised."""
    rng = np.random.default_rng(seed)
    y = np.linspace(-1, 1, rows, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, columns, dtype=np.float32)[None, :]
    tilt = rng.uniform(-0.03, 0.03)
    body = _blob(x, y, 0, 0.1, 0.9, 1.15, 0.02)
    lungs = np.maximum(_blob(x, y, -0.37 + tilt, -0.1, 0.25, 0.6, 0.03),
                       _blob(x, y, 0.37 + tilt, -0.08, 0.26, 0.62, 0.03))
    heart = _blob(x, y, 0.12 + tilt, 0.3, 0.3 * rng.uniform(0.9, 1.2), 0.24, 0.08)
    mediastinum = _blob(x, y, 0, -0.25, 0.1, 0.9, 0.1)
    spine = _blob(x, y, 0, 0, 0.05, 1.4, 0.1) * (0.85 + 0.15 * np.sin(y * 45))
    ribs = np.clip((np.sin((y - 0.45 * x**2) * 30 + rng.uniform(0, 6.28)) - 0.7) / 0.3, 0, 1)
    clavicles = _blob(np.abs(x), y, 0.3, -0.66 + 0.15 * np.abs(x), 0.3, 0.045, 0.15)
    field = 0.05 + 0.45 * body - 0.32 * lungs * (1 - 0.7 * heart) + 0.13 * heart * body
    field += 0.1 * mediastinum * body + 0.06 * spine + 0.09 * ribs * lungs + 0.1 * clavicles
    has_opacity = rng.random() < 0.4 if opacity is None else opacity
    if has_opacity:
        side = rng.choice([-0.38, 0.38])
        cy = rng.uniform(-0.3, 0.3)
        sigma = rng.uniform(0.06, 0.14)
        field += 0.22 * np.exp(-((x - side) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) * lungs
    field += rng.normal(0, 0.012, size=(rows, columns)).astype(np.float32)
    return np.clip(field, 0, 1).astype(np.float32)


def make_cxr(
    path: Path | str,
    *,
    seed: int,
    rows: int = 1024,
    columns: int = 1024,
    patient_id: str = "SYN000001",
    patient_name: str = "Synthetic^Patient",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    accession: str = "SYNACC0001",
    age: int | str | None = 54,
    sex: str = "F",
    modality: str = "DX",
    view_position: str = "PA",
    photometric: str = "MONOCHROME2",
    bits: int = 16,
    transfer_syntax: str = ExplicitVRLittleEndian,
    opacity: bool | None = None,
    institution: str = "Synthetic General Hospital",
    referring_physician: str = "Referrer^Synthetic",
) -> Path:
    """Write a synthetic PA chest radiograph; returns ``path``.

    ``bits`` is BitsStored (8 to 16); ``transfer_syntax`` may be a lossless compressed one
    (RLE Lossless, JPEG 2000 Lossless); ``photometric`` MONOCHROME1 stores inverted values.
    """
    path = Path(path)
    top = 2**bits - 1
    values = np.rint(cxr_pixels(seed=seed, rows=rows, columns=columns, opacity=opacity)
                     * 0.92 * top + 0.02 * top)
    if photometric == "MONOCHROME1":
        values = top - values
    arr = values.astype(np.uint8 if bits <= 8 else np.uint16)
    ds = _identified_dataset(
        seed=seed, patient_id=patient_id, patient_name=patient_name, accession=accession,
        age=age, sex=sex, modality=modality, institution=institution,
        referring_physician=referring_physician,
    )
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ViewPosition = view_position
    ds.set_pixel_data(arr, photometric, bits, generate_instance_uid=False)
    low, high = np.percentile(arr, [0.5, 99.5])
    ds.WindowCenter = f"{(low + high) / 2:.0f}"
    ds.WindowWidth = f"{max(high - low, 1):.0f}"
    ds.WindowCenterWidthExplanation = "SYNTHETIC DEFAULT"
    if UID(transfer_syntax).is_compressed:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _identified_dataset(*, seed: int, patient_id: str, patient_name: str, accession: str,
                        age: int | str | None, sex: str, modality: str, institution: str,
                        referring_physician: str) -> Dataset:
    """Everything a real file would carry about the patient, site and people."""
    study_date = dt.date(2025, 1, 1) + dt.timedelta(days=seed % 365)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SOP_CLASSES.get(modality, SecondaryCaptureImageStorage)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.OtherPatientIDs = f"OTHER-{patient_id}"
    ds.PatientSex = sex
    if isinstance(age, int):
        ds.PatientAge = f"{age:03d}Y"
        birth = study_date.replace(year=study_date.year - age) - dt.timedelta(days=seed % 300 + 1)
        ds.PatientBirthDate = birth.strftime("%Y%m%d")
    elif age:
        ds.PatientAge = age
    ds.PatientAddress = "1 Synthetic Street, Nowhere"
    ds.InstitutionName = institution
    ds.InstitutionAddress = "2 Example Road, Sampletown"
    ds.ReferringPhysicianName = referring_physician
    ds.OperatorsName = "Operator^Synthetic"
    ds.StationName = "SYNTH-STATION-1"
    ds.AccessionNumber = accession
    ds.StudyID = f"S{seed:06d}"
    ds.StudyDescription = f"CHEST PA for {patient_name}"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.ImageComments = COMMENT
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.DeviceSerialNumber = f"SN-{seed:08d}"
    ds.BodyPartExamined = "CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImagerPixelSpacing = [0.35, 0.35]
    ds.PixelSpacing = [0.35, 0.35]
    block = ds.private_block(0x0029, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", f"private note on {patient_id}")
    return ds
