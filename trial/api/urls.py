"""``/api/``: trials, and under ``/api/trials/{trial_slug}/`` everything of one trial.

Path converters (not regexes) so the OpenAPI schema knows each parameter's type.
"""

from django.urls import include, path
from rest_framework.routers import DefaultRouter, SimpleRouter

from . import views_allocation as allocation
from . import views_cases as cases
from . import views_design as design
from . import views_images as images

router = DefaultRouter(use_regex_path=False)
router.include_format_suffixes = False
router.register("trials", design.TrialViewSet, basename="trial")

TRIAL = "trials/<slug:trial_slug>"
nested = SimpleRouter(use_regex_path=False)
nested.register(f"{TRIAL}/sites", design.SiteViewSet, basename="trial-site")
nested.register(f"{TRIAL}/members", design.MemberViewSet, basename="trial-member")
nested.register(f"{TRIAL}/criteria", design.CriterionViewSet, basename="trial-criterion")
nested.register(f"{TRIAL}/cases", cases.CaseViewSet, basename="trial-case")
nested.register(f"{TRIAL}/images", images.ImageViewSet, basename="trial-image")
nested.register(f"{TRIAL}/import-jobs", images.ImportJobViewSet, basename="trial-import-job")
nested.register(f"{TRIAL}/assignments", cases.AssignmentViewSet, basename="trial-assignment")
nested.register(f"{TRIAL}/audit", cases.AuditViewSet, basename="trial-audit")

urlpatterns = [
    path("", include(router.urls)),
    path("", include(nested.urls)),
    path(f"{TRIAL}/randomization/", allocation.RandomizationView.as_view(),
         name="trial-randomization"),
    path(f"{TRIAL}/randomization/generate/", allocation.GenerateListView.as_view(),
         name="trial-randomization-generate"),
    path(f"{TRIAL}/randomization/import/", allocation.ImportListView.as_view(),
         name="trial-randomization-import"),
    path(f"{TRIAL}/randomization/extend/", allocation.ExtendListView.as_view(),
         name="trial-randomization-extend"),
    path(f"{TRIAL}/randomization/extend/import/", allocation.ImportExtensionView.as_view(),
         name="trial-randomization-extend-import"),
    path(f"{TRIAL}/allocations/", allocation.AllocationListView.as_view(),
         name="trial-allocations"),
    path(f"{TRIAL}/allocations/allocate-all/", allocation.AllocateAllView.as_view(),
         name="trial-allocations-allocate-all"),
    path(f"{TRIAL}/assign/", cases.AssignView.as_view(), name="trial-assign"),
]
