from django.urls import path

from . import baseline_views, views

app_name = "submissions"
urlpatterns = [
    path("<int:pk>/", views.submission_detail, name="detail"),
    path("<int:pk>/plots/<slug:kind>.png", views.submission_plot, name="plot"),
    path("<int:pk>/cancel/", views.submission_cancel, name="cancel"),
    path("<int:pk>/cases/<str:case_id>/", views.submission_case, name="case"),
    path("<int:pk>/cases/<str:case_id>.png", views.submission_case_image, name="case-image"),
    path("new/<slug:challenge>/<slug:phase>/", views.submission_create, name="create"),
    path("baselines/<slug:challenge>/", baseline_views.baselines_page, name="baselines"),
]
