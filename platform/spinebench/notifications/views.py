"""The notification list (mark as read), email preferences and the one-click unsubscribe page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from spinebench.accounts.profiles import has_verified_email

from . import services
from .forms import EmailPreferencesForm
from .kinds import Kind
from .models import EmailPreference, Notification
from .unsubscribe import read_token

PAGE_SIZE = 100


@login_required
def notification_list(request):
    notifications = Notification.objects.filter(user=request.user)[:PAGE_SIZE]
    unread = Notification.objects.filter(user=request.user, read_at__isnull=True).count()
    return render(request, "notifications/list.html", {"notifications": notifications, "unread": unread})


@login_required
@require_POST
def mark_read(request):
    """Mark one notification (`pk`) or all of them as read."""
    pk = request.POST.get("pk")
    pks = [int(pk)] if pk and pk.isdigit() else None
    services.mark_read(user=request.user, pks=pks)
    return redirect("notifications:list")


@login_required
def preferences(request):
    muted = set(EmailPreference.objects.filter(user=request.user).values_list("kind", flat=True))
    form = EmailPreferencesForm(request.POST or None, initial={"kinds": [k for k in Kind.values if k not in muted]})
    if request.method == "POST" and form.is_valid():
        services.set_email_kinds(user=request.user, kinds_on=form.cleaned_data["kinds"])
        messages.success(request, "Email preferences saved.")
        return redirect("notifications:preferences")
    return render(
        request, "notifications/preferences.html", {"form": form, "verified": has_verified_email(request.user)}
    )


@csrf_exempt  # the signed token is the authorisation; mail clients POST here for one-click unsubscribe (RFC 8058)
def unsubscribe(request, token):
    """GET shows one button (link scanners that prefetch a GET change nothing); POST unsubscribes, no login needed."""
    parsed = read_token(token)
    if parsed is None or parsed[1] not in Kind.values:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    user_pk, kind = parsed
    label = Kind(kind).label
    if request.method == "POST":
        services.mute(user_pk=user_pk, kind=kind)
        return render(request, "notifications/unsubscribe.html", {"done": True, "label": label})
    return render(request, "notifications/unsubscribe.html", {"label": label, "token": token})
