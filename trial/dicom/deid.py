"""De-identification (DICOM PS3.15 Basic Application Confidentiality Profile) by allowlist.

An allowlist, not a blocklist: vendors put identifying text in private tags and in attributes
no blocklist knows about, so we keep only what display and analysis need and drop the rest.
Patient characteristics (age, sex) are retained (the "Retain Patient Characteristics Option");
UIDs are replaced by a salted deterministic mapping, so images of one study stay together
across imports without the source UID being recoverable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

MAX_AGE = 90
# LO values are at most 64 characters: one statement per value.
DEID_METHOD = [
    "PS3.15 Basic Application Confidentiality Profile",
    "allowlist of attributes; private tags removed",
    "UIDs remapped (salted); age and sex retained",
    "cxr-reader-trials",
]
DEID_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113108", "Retain Patient Characteristics Option"),
)

# What display and analysis need; everything else (and every private tag) is removed.
KEEP = frozenset({
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
    "SeriesInstanceUID", "Modality", "SeriesNumber", "InstanceNumber", "ImageType",
    "PresentationIntentType", "PatientAge", "PatientSex", "Manufacturer",
    "ManufacturerModelName", "BodyPartExamined", "ViewPosition", "ViewCodeSequence",
    "Laterality", "ImageLaterality", "PatientOrientation", "BurnedInAnnotation",
    # Image pixel module
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "PlanarConfiguration", "PixelAspectRatio",
    "SmallestImagePixelValue", "LargestImagePixelValue", "PixelPaddingValue",
    "PixelPaddingRangeLimit", "NumberOfFrames", "FrameIncrementPointer", "PixelData",
    "ExtendedOffsetTable", "ExtendedOffsetTableLengths",
    "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
    # Geometry
    "PixelSpacing", "ImagerPixelSpacing", "PixelSpacingCalibrationType",
    "EstimatedRadiographicMagnificationFactor",
    # Modality LUT, VOI LUT, presentation
    "RescaleIntercept", "RescaleSlope", "RescaleType", "ModalityLUTSequence",
    "WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction",
    "VOILUTSequence", "PresentationLUTShape", "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
})
# Items of the sequences we keep may only hold these.
KEEP_IN_ITEMS = {
    "ModalityLUTSequence": frozenset({"LUTDescriptor", "ModalityLUTType", "LUTExplanation",
                                      "LUTData"}),
    "VOILUTSequence": frozenset({"LUTDescriptor", "LUTExplanation", "LUTData"}),
    "ViewCodeSequence": frozenset({"CodeValue", "CodingSchemeDesignator", "CodeMeaning",
                                   "CodingSchemeVersion", "ViewModifierCodeSequence"}),
    "ViewModifierCodeSequence": frozenset({"CodeValue", "CodingSchemeDesignator",
                                           "CodeMeaning", "CodingSchemeVersion"}),
}
# Type 2 attributes of the DX/CR IODs: present but empty keeps the file valid.
EMPTY_TYPE2 = ("PatientBirthDate", "StudyDate", "StudyTime", "ReferringPhysicianName",
               "StudyID", "AccessionNumber")


def salted_hash(salt: str, value: str) -> str:
    """sha256(salt + value): the trial-scoped key used for grouping and duplicate checks."""
    return hashlib.sha256(f"{salt}{value}".encode()).hexdigest()


def remap_uid(salt: str, uid: str) -> str:
    """Same source UID -> same "2.25.<int>" UID within a trial; not reversible without salt."""
    digest = hashlib.sha256(f"uid:{salt}:{uid}".encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def patient_age(ds: Dataset) -> int | None:
    """Years from PatientAge ("054Y", "006M"...) or BirthDate vs StudyDate, capped at 90."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY])\s*", str(ds.get("PatientAge", "") or ""))
    if match:
        number, unit = int(match.group(1)), match.group(2)
        years = number if unit == "Y" else number // {"D": 365, "W": 52, "M": 12}[unit]
        return min(years, MAX_AGE)
    birth = _date(ds.get("PatientBirthDate"))
    seen = next(
        (d for d in (_date(ds.get(k)) for k in ("StudyDate", "SeriesDate", "AcquisitionDate",
                                                  "ContentDate")) if d), None
    )
    if birth is None or seen is None or seen < birth:
        return None
    years = seen.year - birth.year - ((seen.month, seen.day) < (birth.month, birth.day))
    return min(years, MAX_AGE)


def _date(value: object) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(value or "").strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def patient_sex(ds: Dataset) -> str:
    sex = str(ds.get("PatientSex", "") or "").strip().upper()
    return sex if sex in {"F", "M", "O"} else "U"


def _strip(ds: Dataset, keep: frozenset[str]) -> None:
    """Delete every element not in ``keep`` (private tags have no keyword, so they go too)."""
    for elem in list(ds):
        if elem.keyword not in keep:
            del ds[elem.tag]
        elif elem.VR == "SQ":
            item_keep = KEEP_IN_ITEMS.get(elem.keyword, frozenset())
            for item in elem.value:
                _strip(item, item_keep)


def deidentify(ds: FileDataset, *, salt: str, case_id: str, age: int | None) -> FileDataset:
    """De-identify ``ds`` in place for ``case_id``; pixel data (compressed or not) is kept."""
    new_uids = {k: remap_uid(salt, str(ds[k].value))
                for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    sex = ds.get("PatientSex")
    _strip(ds, KEEP)
    for keyword, uid in new_uids.items():
        setattr(ds, keyword, uid)
    ds.PatientName = case_id
    ds.PatientID = case_id
    if age is not None:
        ds.PatientAge = f"{min(age, MAX_AGE):03d}Y"
    elif "PatientAge" in ds:
        del ds.PatientAge
    ds.PatientSex = sex if sex in ("F", "M", "O") else ""
    for keyword in EMPTY_TYPE2:
        setattr(ds, keyword, "")
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEID_METHOD
    ds.DeidentificationMethodCodeSequence = Sequence([_code(v, m) for v, m in DEID_CODES])
    ds.file_meta = _file_meta(ds)
    ds.preamble = b"\x00" * 128  # a preamble can carry a whole TIFF, identifiers included
    return ds


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _file_meta(ds: FileDataset) -> FileMetaDataset:
    """A fresh file meta: the source's can name the sending station (AE title, private info)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "CXR_TRIALS_1"
    return meta


def to_bytes(ds: FileDataset) -> bytes:
    """The Part 10 file bytes, in the source transfer syntax (compressed data stays as is)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
