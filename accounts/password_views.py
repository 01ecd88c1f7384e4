"""The pages of "Forgot your password?" and of an invitation's link (``accounts.passwords``).

Django's views, with: the project's templates; links from ``SITE_URL``; the same answer
whether or not the e-mail is known (no account enumeration); no link for a deactivated
account; an audit event when a password is set through a link; no sign-in afterwards (the
person signs in as usual: password, then the two-factor code if they have a device).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpResponse
from django.urls import reverse_lazy

from . import passwords
from .forms import ResetForm


class PasswordReset(auth_views.PasswordResetView):
    form_class = ResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form: ResetForm) -> HttpResponse:
        self.extra_email_context = {"site_url": passwords.site_url(),
                                    "valid_for": passwords.valid_for(),
                                    "site_name": "CXR reader trials"}
        return super().form_valid(form)


class PasswordResetSent(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"

    def get_context_data(self, **kwargs: Any) -> dict:
        return {**super().get_context_data(**kwargs), "valid_for": passwords.valid_for()}


class SetPassword(auth_views.PasswordResetConfirmView):
    """The link's page: a new password, twice, checked by the project's validators."""

    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")
    post_reset_login = False  # never: the two-factor code would be skipped
    through = passwords.RESET

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def get_context_data(self, **kwargs: Any) -> dict:
        return {**super().get_context_data(**kwargs), "through": self.through}

    def form_valid(self, form) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            passwords.password_set(form.user, through=self.through)
        return response


class AcceptInvitation(SetPassword):
    """An invitation's link: the first password of a new account."""

    through = passwords.INVITATION


class PasswordSetDone(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
