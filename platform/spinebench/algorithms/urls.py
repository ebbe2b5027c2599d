from django.urls import path

from . import views

app_name = "algorithms"
urlpatterns = [
    path("", views.howto, name="howto"),
    path("submissions/<int:pk>/", views.submission_jobs, name="submission"),
]
