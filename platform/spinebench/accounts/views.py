"""Sign-up page (login/logout are django.contrib.auth's views, guarded by django-axes) and the token API."""

from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from . import email_links
from .forms import EmailChangeForm, ProfileForm, SignupForm, TokenForm
from .lockout import lockout_response
from .models import ApiToken
from .profiles import has_verified_email, profile_for
from .serializers import (
    ApiTokenSerializer,
    IssuedTokenSerializer,
    TokenRequestSerializer,
)
from .throttles import AnonThrottle, TokenEndpointThrottle
from .tokens import TokenRefused, issue_token, revoke

MAIL_NOT_SENT = "We could not send the mail just now; please use 'send a new link' in a few minutes."
TOO_MANY = "You asked for many link mails in the last hour; please wait a while before asking for another."


def _mail_link(request, send, sent_message: str, **kwargs) -> None:
    """Send a link mail and say on the next page whether it went out."""
    try:
        sent = send(request=request, **kwargs)
    except email_links.TooManyMails:
        messages.warning(request, TOO_MANY)
        return
    if sent:
        messages.info(request, sent_message)
    else:
        messages.warning(request, MAIL_NOT_SENT)


def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        profile_for(user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        _mail_link(request, email_links.send_verification,
                   f"We sent a link to {user.email}: follow it to verify your address.", user=user)
        return redirect("challenges:list")
    return render(request, "registration/signup.html", {"form": form})


def verify_email(request, token):
    """Follow a verification link. A tampered or expired link gets a page offering a new link, never an error."""
    try:
        user = email_links.verify(token)
    except email_links.LinkExpired:
        return render(request, "accounts/link_problem.html", {"problem": "expired", "token": token}, status=400)
    except email_links.LinkInvalid:
        return render(request, "accounts/link_problem.html", {"problem": "invalid"}, status=400)
    messages.success(request, f"Thank you: {user.email} is verified.")
    return redirect("profile" if request.user == user else "login")


@require_POST
def resend_verification(request):
    """Send a new verification link: to the signed-in user, or to the owner of an authentic but expired link."""
    user = request.user if request.user.is_authenticated else None
    if user is None and request.POST.get("token"):
        try:
            email_links.read_token(request.POST["token"], salt=email_links.VERIFY_SALT)
        except email_links.LinkExpired as expired:
            user = get_user_model().objects.filter(pk=expired.user_pk).first()
        except email_links.LinkInvalid:
            user = None
    if user is None:
        messages.info(request, "Log in to get a new verification link.")
        return redirect("login")
    if not user.email:
        messages.warning(request, "Add an email address first.")
    elif has_verified_email(user):
        messages.info(request, f"{user.email} is already verified.")
    else:
        _mail_link(request, email_links.send_verification, f"We sent a new link to {user.email}.", user=user)
    return redirect("profile" if request.user.is_authenticated else "login")


@login_required
def profile(request):
    """The profile form and the email address (verify it, or change it by a link sent to the new address)."""
    profile_obj = profile_for(request.user)
    form = ProfileForm(instance=profile_obj)
    email_form = EmailChangeForm(user=request.user)
    if request.method == "POST" and request.POST.get("action") == "profile":
        form = ProfileForm(request.POST, instance=profile_obj)
        if form.is_valid():
            form.save()
            messages.success(request, "Profile saved.")
            return redirect("profile")
    elif request.method == "POST" and request.POST.get("action") == "email":
        email_form = EmailChangeForm(request.POST, user=request.user)
        if email_form.is_valid():
            new_email = email_form.cleaned_data["email"]
            _mail_link(request, email_links.send_change_confirmation,
                       f"We sent a link to {new_email}; your address changes when you follow it.",
                       user=request.user, new_email=new_email)
            return redirect("profile")
    context = {"form": form, "email_form": email_form, "verified": has_verified_email(request.user)}
    return render(request, "accounts/profile.html", context)


def confirm_email_change(request, token):
    try:
        user = email_links.confirm_change(token)
    except email_links.LinkExpired:
        return render(request, "accounts/link_problem.html", {"problem": "change-expired"}, status=400)
    except email_links.LinkInvalid:
        return render(request, "accounts/link_problem.html", {"problem": "invalid"}, status=400)
    except email_links.EmailTaken:
        return render(request, "accounts/link_problem.html", {"problem": "taken"}, status=400)
    messages.success(request, f"Your email address is now {user.email} (verified).")
    return redirect("profile" if request.user == user else "login")


@login_required
def tokens(request):
    """List your API tokens and create one; a new token's secret is shown on this response only."""
    form = TokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = issue_token(
                user=request.user, name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except TokenRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            form = TokenForm()
    listed = ApiToken.objects.filter(user=request.user, kind=ApiToken.Kind.USER)
    return render(request, "accounts/tokens.html", {"form": form, "issued": issued, "tokens": listed})


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user, kind=ApiToken.Kind.USER)
    revoke(token)
    messages.success(request, f"Token '{token.name}' revoked; it no longer works.")
    return redirect("tokens")


class TokenCreateView(APIView):
    """Exchange a username and password for a new user token (the secret is in this response only).

    Throttled per client address (scope `auth_token`) and guarded by the same lockout as the login page."""

    authentication_classes: list[type] = []  # a password exchange: no session (no CSRF exemption needed), no token
    permission_classes = [permissions.AllowAny]
    throttle_classes = [AnonThrottle, TokenEndpointThrottle]

    @extend_schema(request=TokenRequestSerializer, responses={200: IssuedTokenSerializer})
    def post(self, request):
        payload = TokenRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        # The Django request: django-axes records the failure and the lockout on it.
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if getattr(request._request, "axes_locked_out", False):
            return lockout_response(request._request)
        if user is None:
            raise ValidationError({"non_field_errors": ["Unable to log in with the given username and password."]})
        try:
            issued = issue_token(user=user, name=data["name"], expires_in_days=data.get("expires_in_days"))
        except TokenRefused as refusal:
            raise ValidationError({"non_field_errors": [str(refusal)]}) from None
        body = {"token": issued.secret, **ApiTokenSerializer(issued.token).data}
        return Response(body, status=status.HTTP_200_OK)


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your own user tokens, without their secrets; DELETE revokes one (it stays listed, marked revoked)."""

    serializer_class = ApiTokenSerializer
    permission_classes = [permissions.IsAuthenticated]
    queryset = ApiToken.objects.none()  # for the schema; get_queryset() limits to the caller's tokens

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user, kind=ApiToken.Kind.USER)

    def perform_destroy(self, instance):
        revoke(instance)
