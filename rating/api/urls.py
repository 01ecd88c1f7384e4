"""``/api/trials/{slug}/rating/{campaign}/items/...`` (raters) and ``.../campaigns/`` (the
coordinator's side, ``rating.api.campaigns``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import campaigns, raters

TRIAL = "trials/<slug:trial_slug>"
RATE = f"{TRIAL}/rating/<int:campaign>/items"

urlpatterns = [
    path(f"{RATE}/", raters.RatingWorklistView.as_view(), name="rater-items"),
    path(f"{RATE}/<str:code>/", raters.RatingItemView.as_view(), name="rater-item"),
    path(f"{RATE}/<str:code>/open/", raters.OpenRatingItemView.as_view(),
         name="rater-item-open"),
    path(f"{RATE}/<str:code>/submit/", raters.SubmitRatingView.as_view(),
         name="rater-item-submit"),
]

campaign_router = SimpleRouter(use_regex_path=False)
campaign_router.register(f"{TRIAL}/campaigns", campaigns.CampaignViewSet,
                         basename="trial-campaign")
urlpatterns += campaign_router.urls
