"""Password pages under ``/accounts/`` (see ``config/urls.py``), with Django's route names
(``password_reset`` ...), which the admin's sign-in page and Django's forms look for."""

from django.urls import path

from . import password_views as views

urlpatterns = [
    path("password/reset/", views.PasswordReset.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PasswordResetSent.as_view(), name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", views.SetPassword.as_view(),
         name="password_reset_confirm"),
    path("welcome/<uidb64>/<token>/", views.AcceptInvitation.as_view(),
         name="invitation_accept"),
    path("password/done/", views.PasswordSetDone.as_view(), name="password_reset_complete"),
]
