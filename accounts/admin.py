"""The admin side of accounts: *People* (a coordinator's view of their trials' people, with
*Invite a person*, *Deactivate* and *Reactivate*) and the superuser's two-factor reset.

*People* lists the accounts with a role in a trial the coordinator coordinates (superusers:
everyone), with those roles only (never a role in another trial), the last sign-in and whether
the account is active. It changes nothing by hand: a new person or a new role comes through
*Invite a person* (also a button on *Memberships*), which creates the account or reuses the one
with that e-mail and sends the link to choose a password (``accounts.invitations``). Switching
an account off and on follows ``trial.people``'s rule: a coordinator changes only an account
all of whose roles are in trials they coordinate (never their own, never a superuser's, never
the last active coordinator of a trial); for a person shared with another trial they may only
end the role in their own trial (*Memberships*, when nothing points at it) or ask a superuser.
Every step is an audit event.

django-otp's own device pages are removed: they would let a device be deleted or its secret
shown without an audit event. The users' list gains a "2FA" column and the reset action.
The admin templates of this module are in ``accounts/templates/admin/`` (the *Invite a person*
buttons of the People and Memberships lists, the invitation form).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html_join
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from trial import people
from trial.admin.base import call_service, coordinated_ids, for_each, may_coordinate
from trial.errors import ServiceError
from trial.models import Membership, Role, Trial
from trial.permissions import is_superuser

from . import devices, invitations, passwords
from .forms import InviteForm
from .models import Person

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


class TrialFilter(admin.SimpleListFilter):
    """The trials the coordinator coordinates (all, for a superuser)."""

    title = "trial"
    parameter_name = "trial"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        trials = Trial.objects.all() if is_superuser(request.user) else Trial.objects.filter(
            pk__in=coordinated_ids(request))
        return [(str(t.pk), t.name) for t in trials.order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        wanted = self.value()
        if not wanted or wanted not in {key for key, _ in self.lookup_choices}:
            return queryset
        return queryset.filter(memberships__trial_id=wanted).distinct()


class RoleFilter(admin.SimpleListFilter):
    """People with this role in one of the coordinator's trials."""

    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return Role.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in Role.values:
            return queryset
        members = Membership.objects.filter(role=self.value())
        if not is_superuser(request.user):
            members = members.filter(trial_id__in=coordinated_ids(request))
        return queryset.filter(pk__in=members.values("user_id"))


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    """The people of the coordinator's trials: read-only rows, the invitation and the
    account's switch (deactivate, reactivate)."""

    list_display = ("username", "full_name", "email", "roles", "is_active", "last_sign_in")
    list_display_links = ("username",)
    list_filter = ("is_active", TrialFilter, RoleFilter)
    search_fields = ("username", "first_name", "last_name", "email")
    ordering = ("username",)
    fields = ("username", "first_name", "last_name", "email", "is_active", "last_login",
              "date_joined", "roles")
    readonly_fields = fields
    actions = ["deactivate", "reactivate"]

    # --- what a coordinator sees ---

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        shown = Membership.objects.select_related("trial", "site").order_by("trial__name",
                                                                            "role")
        if not is_superuser(request.user):
            shown = shown.filter(trial_id__in=coordinated_ids(request))
        outside = Membership.objects.filter(user=OuterRef("pk")).exclude(
            trial_id__in=coordinated_ids(request))
        return people.people_seen_by(request.user, model=Person).annotate(
            outside_roles=Exists(outside)).prefetch_related(
            Prefetch("memberships", queryset=shown, to_attr="shown_roles"))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        """Out of scope (or absent) is 403 for non-superusers, so nothing is revealed."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None and not is_superuser(request.user):
            raise PermissionDenied
        return obj

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj: Person) -> str:
        return obj.get_full_name() or "–"

    @admin.display(description="last sign-in", ordering="last_login")
    def last_sign_in(self, obj: Person):
        return obj.last_login

    @admin.display(description="roles (in your trials)")
    def roles(self, obj: Person) -> str:
        members = getattr(obj, "shown_roles", None)
        if members is None:
            return "–"
        return format_html_join(
            "; ", "{}", ((f"{m.get_role_display()} of {m.trial.name}"
                          + (f" ({m.site.code})" if m.site_id else ""),) for m in members)
        ) or "–"

    def get_list_display(self, request: HttpRequest):
        by = request.user

        @admin.display(description="account yours to switch off", boolean=True)
        def managed(obj: Person) -> bool:
            """``trial.people.check_manages`` in short (the actions apply the rule itself)."""
            if obj.pk == by.pk:
                return False
            if is_superuser(by):
                return True
            return not obj.is_superuser and not getattr(obj, "outside_roles", True)

        return (*self.list_display, managed)

    # --- permissions: coordinators and superusers look; nobody edits a row by hand ---

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_coordinate(request, None)

    def has_view_permission(self, request: HttpRequest, obj: Person | None = None) -> bool:
        return may_coordinate(request, None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # "Invite a person" instead

    def has_change_permission(self, request: HttpRequest, obj: Person | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Person | None = None) -> bool:
        return False  # never: their records point at them; deactivate instead

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return may_coordinate(request, None)

    # --- actions ---

    @admin.action(description="Deactivate: no sign-in any more (their records stay)",
                  permissions=["manage"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        for_each(self, request, queryset.order_by("username"),
                 lambda person: people.deactivate(person, by=request.user), "Deactivated")

    @admin.action(description="Reactivate: may sign in again", permissions=["manage"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        for_each(self, request, queryset.order_by("username"),
                 lambda person: people.reactivate(person, by=request.user), "Reactivated")

    # --- Invite a person ---

    def get_urls(self) -> list[URLPattern]:
        invite = path("invite/", self.admin_site.admin_view(self.invite_view),
                      name="accounts_person_invite")
        return [invite, *super().get_urls()]

    def invite_view(self, request: HttpRequest) -> HttpResponse:
        if not may_coordinate(request, None):
            raise PermissionDenied
        form = InviteForm(request.POST or None, user=request.user,
                          initial=self._invite_initial(request))
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done, invited = call_service(
                self, request, invitations.invite, trial=data["trial"], email=data["email"],
                role=data["role"], by=request.user, first_name=data["first_name"],
                last_name=data["last_name"], site=data["site"],
                years_experience=data["years_experience"])
            if done:
                self.message_user(request, _invited_message(invited), level=messages.SUCCESS)
                if "_another" in request.POST:
                    return HttpResponseRedirect(
                        f"{request.path}?trial={data['trial'].pk}")
                return HttpResponseRedirect(reverse("admin:accounts_person_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Invite a person",
            "opts": self.model._meta,
            "form": form,
            "valid_for": passwords.valid_for(),
        }
        return TemplateResponse(request, "admin/accounts/person/invite.html", context)

    @staticmethod
    def _invite_initial(request: HttpRequest) -> dict:
        """The trial of the list the button was on (or the only trial coordinated)."""
        ids = (set(Trial.objects.values_list("pk", flat=True)) if is_superuser(request.user)
               else coordinated_ids(request))
        wanted = request.GET.get("trial", "")
        if wanted.isdigit() and int(wanted) in ids:
            return {"trial": int(wanted)}
        return {"trial": next(iter(ids))} if len(ids) == 1 else {}


def _invited_message(invited: invitations.Invitation) -> str:
    member, user = invited.membership, invited.user
    what = f"{user.get_username()} is {member.get_role_display().lower()} of {member.trial}"
    if invited.new_account:
        return f"Invited: {what}. An e-mail with a link to choose a password went to {user.email}."
    if invited.link_sent:
        return (f"An account with this e-mail existed: {what} now. It had no password yet, so "
                f"a new link to choose one went to {user.email}.")
    return (f"An account with this e-mail existed: {what} now (its name and password are "
            f"unchanged). An e-mail telling them went to {user.email}.")
