"""DICOM intake: validation, de-identification, import, rendering, synthetic demo images."""
