from __future__ import annotations

from django.apps import AppConfig


class PacsConfig(AppConfig):
    """The hospital's systems: studies in over DICOM networking and DICOMweb, reports out."""

    name = "pacs"
    verbose_name = "PACS and DICOM networking"

    def ready(self) -> None:
        """pacs extends the apps below it, which never import it: a signed final report is
        sent to the site's PACS, and an import keeps a study's original identifiers where
        the site allows it."""
        from reader.review import review_signed
        from trial.signals import before_deidentify

        review_signed.connect(_deliver_report, dispatch_uid="pacs.deliver_report")
        before_deidentify.connect(_keep_original_ids, dispatch_uid="pacs.keep_original_ids")


def _deliver_report(sender, review, **kwargs) -> None:
    """On sign-off (after commit): one delivery per node of the site that receives reports."""
    from .tasks import deliver_signed

    deliver_signed(review)


def _keep_original_ids(sender, case, ds, site, **kwargs) -> None:
    """At import, before de-identification: the original study identifiers, encrypted."""
    from .sr import keep_original_ids

    keep_original_ids(case, ds, site)
