from django.apps import AppConfig


class PacsConfig(AppConfig):
    """The hospital's systems: studies in over DICOM networking and DICOMweb, reports out."""

    name = "pacs"
    verbose_name = "PACS and DICOM networking"
