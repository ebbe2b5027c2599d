from django.urls import path

from . import evaluation_image_views as views

app_name = "evaluation_images"

urlpatterns = [
    path("<slug:challenge>/<slug:phase>/evaluation/", views.evaluation_page, name="page"),
    path("<slug:challenge>/<slug:phase>/evaluation/declare/", views.declare, name="declare"),
    path("<slug:challenge>/<slug:phase>/evaluation/upload/", views.upload, name="upload"),
]
