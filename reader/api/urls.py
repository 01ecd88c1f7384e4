"""``/api/trials/{slug}/worklist/...`` (readers) and ``.../reviews/...`` (seniors)."""

from django.urls import path

from . import reading as api

TRIAL = "trials/<slug:trial_slug>"
READ = f"{TRIAL}/worklist/<int:position>"
REVIEW = f"{TRIAL}/reviews/<int:case_pk>"

urlpatterns = [
    path(f"{TRIAL}/worklist/", api.WorklistView.as_view(), name="reader-worklist"),
    path(f"{READ}/", api.ReadingView.as_view(), name="reader-reading"),
    path(f"{READ}/open/", api.OpenReadingView.as_view(), name="reader-reading-open"),
    path(f"{READ}/events/", api.EventView.as_view(), name="reader-reading-events"),
    path(f"{READ}/save/", api.SaveView.as_view(), name="reader-reading-save"),
    path(f"{READ}/submit/", api.SubmitView.as_view(), name="reader-reading-submit"),
    path(f"{READ}/amend/", api.AmendView.as_view(), name="reader-reading-amend"),
    path(f"{TRIAL}/reviews/", api.ReviewListView.as_view(), name="senior-reviews"),
    path(f"{REVIEW}/", api.ReviewView.as_view(), name="senior-review"),
    path(f"{REVIEW}/open/", api.OpenReviewView.as_view(), name="senior-review-open"),
    path(f"{REVIEW}/save/", api.SaveReviewView.as_view(), name="senior-review-save"),
    path(f"{REVIEW}/sign/", api.SignView.as_view(), name="senior-review-sign"),
]
