"""``/api/trials/{slug}/worklist/...`` (readers) and ``.../reviews/...`` (seniors)."""

from django.urls import path

from . import api, rating_api

TRIAL = "trials/<slug:trial_slug>"
READ = f"{TRIAL}/worklist/<int:position>"
REVIEW = f"{TRIAL}/reviews/<int:case_pk>"
RATE = f"{TRIAL}/rating/<int:campaign>/items"

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
    path(f"{RATE}/", rating_api.RatingWorklistView.as_view(), name="rater-items"),
    path(f"{RATE}/<str:code>/", rating_api.RatingItemView.as_view(), name="rater-item"),
    path(f"{RATE}/<str:code>/open/", rating_api.OpenRatingItemView.as_view(),
         name="rater-item-open"),
    path(f"{RATE}/<str:code>/submit/", rating_api.SubmitRatingView.as_view(),
         name="rater-item-submit"),
]

# The coordinator's side of rating campaigns (``reader.campaign_api``).
from rest_framework.routers import SimpleRouter  # noqa: E402

from . import campaign_api  # noqa: E402

campaign_router = SimpleRouter(use_regex_path=False)
campaign_router.register(f"{TRIAL}/campaigns", campaign_api.CampaignViewSet,
                         basename="trial-campaign")
urlpatterns += campaign_router.urls
