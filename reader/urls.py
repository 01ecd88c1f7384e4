"""Reader-facing URLs, and sign-in for people who are not staff (the admin login refuses them).

Names are namespaced (``reader:login``, ``reader:logout``); ``settings.LOGIN_URL`` points at
``/accounts/login/``.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "reader"
urlpatterns = [
    path("", views.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="/"), name="logout"),
]
