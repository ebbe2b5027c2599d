"""Sign-up page (login/logout are django.contrib.auth's views)."""

from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render


def signup(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("challenges:list")
    return render(request, "registration/signup.html", {"form": form})
