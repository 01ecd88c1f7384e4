from django.apps import AppConfig


class DraftingConfig(AppConfig):
    name = "drafting"
    verbose_name = "AI drafts"

    def ready(self) -> None:
        """Drafting extends the trial app below it, which never imports it: an imported image
        gets the model's PNG made with its viewer files, an enrolled case gets its draft
        queued, and the trial's and the case's admin pages show the drafts."""
        from trial.admin.cases import CaseAdmin
        from trial.dicom.render import pixels_decoded
        from trial.enrolment import case_enrolled

        from .admin import extend_trial_admin
        from .admin_case import draft_panel
        from .preprocess import prepare_at_import

        case_enrolled.connect(_queue_draft, dispatch_uid="drafting.queue_draft")
        pixels_decoded.connect(prepare_at_import, dispatch_uid="drafting.model_png")
        extend_trial_admin()
        CaseAdmin.add_panel("ai_draft", "AI draft", draft_panel, description="current draft")


def _queue_draft(sender, case, **kwargs) -> None:
    """Pre-generation: an enrolled case's AI draft is queued as soon as enrolment commits."""
    from .tasks import queue_draft

    queue_draft(case)
