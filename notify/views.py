"""The person's own notification page: e-mails on or off, for all their trials."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from .preferences import email_enabled, set_email_enabled


class PreferenceForm(forms.Form):
    email_enabled = forms.BooleanField(
        required=False, label="E-mail me a summary of the work waiting for me")


@login_required
def preferences_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            set_email_enabled(request.user, form.cleaned_data["email_enabled"])
            return redirect(f"{reverse('notify:preferences')}?saved=1")
    else:
        form = PreferenceForm(initial={"email_enabled": email_enabled(request.user)})
    return render(request, "notify/preferences.html", {
        "form": form, "enabled": email_enabled(request.user),
        "saved": request.GET.get("saved") == "1", "address": request.user.email})
