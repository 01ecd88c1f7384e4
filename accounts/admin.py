"""The admin side: a superuser resets a person's two-factor sign-in (audited).

django-otp's own device pages are removed: they would let a device be deleted or its secret
shown without an audit event. The users' list gains a "2FA" column and the reset action.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from trial.errors import ServiceError
from trial.permissions import is_superuser

from . import devices

for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

User = get_user_model()
_Base: type[admin.ModelAdmin] = (
    type(admin.site.get_model_admin(User)) if admin.site.is_registered(User) else UserAdmin)
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class TwoFactorUserAdmin(_Base):
    """Whatever user admin was registered, plus the two-factor column and reset action."""

    actions = [*(_Base.actions or ()), "reset_two_factor"]
    list_display = (*_Base.list_display, "two_factor")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(has_two_factor=Exists(
            TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)))

    @admin.display(description="2FA", boolean=True, ordering="has_two_factor")
    def two_factor(self, obj) -> bool:
        return bool(getattr(obj, "has_two_factor", False))

    def has_reset_two_factor_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request.user)

    @admin.action(description="Reset two-factor sign-in (lost phone): set up again at next "
                              "sign-in", permissions=["reset_two_factor"])
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for user in queryset.order_by("pk"):
            try:
                devices.reset(user, by=request.user)
            except ServiceError as exc:
                self.message_user(request, f"{user}: {exc.message}", level=messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"Two-factor sign-in reset: {done}.", messages.SUCCESS)
