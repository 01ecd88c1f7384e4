"""Reader-facing URLs, and sign-in for people who are not staff (the admin login refuses them).

Names are namespaced (``reader:login``, ``reader:case`` ...); ``settings.LOGIN_URL`` points at
``/accounts/login/``. A reader addresses their cases by worklist position, never by an id.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import image_page, views

app_name = "reader"
urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="/"), name="logout"),
    path("images/<int:pk>/", image_page.image_page, name="image"),
    path("read/<slug:trial_slug>/", views.worklist_page, name="worklist"),
    path("read/<slug:trial_slug>/<int:position>/", views.case_page, name="case"),
    path("review/<slug:trial_slug>/", views.review_list_page, name="reviews"),
    path("review/<slug:trial_slug>/<int:case_pk>/", views.review_page, name="review"),
]
