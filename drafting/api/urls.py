"""``/api/trials/{slug}/model-endpoints/`` and ``.../drafts/`` (coordinators, statisticians)."""

from rest_framework.routers import SimpleRouter

from . import views

TRIAL = "trials/<slug:trial_slug>"
router = SimpleRouter(use_regex_path=False)
router.register(f"{TRIAL}/model-endpoints", views.ModelEndpointViewSet,
                basename="trial-model-endpoint")
router.register(f"{TRIAL}/drafts", views.DraftViewSet, basename="trial-draft")

urlpatterns = router.urls
