"""Sign-up page (login/logout are django.contrib.auth's views, guarded by django-axes) and the token API."""

from django.contrib.auth import authenticate, login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .lockout import lockout_response
from .models import ApiToken
from .serializers import ApiTokenSerializer, IssuedTokenSerializer, TokenRequestSerializer
from .throttles import AnonThrottle, TokenEndpointThrottle
from .tokens import TokenRefused, issue_token, revoke


def signup(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("challenges:list")
    return render(request, "registration/signup.html", {"form": form})


class TokenCreateView(APIView):
    """Exchange a username and password for a new user token (the secret is in this response only).

    Throttled per client address (scope `auth_token`) and guarded by the same lockout as the login page."""

    authentication_classes = []  # a password exchange: no session (no CSRF exemption needed), no token
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
