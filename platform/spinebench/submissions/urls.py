from django.urls import path

from . import baseline_views, choice_views, compare_views, viewer_views, views

app_name = "submissions"
urlpatterns = [
    path("<int:pk>/", views.submission_detail, name="detail"),
    path("<int:pk>/plots/<slug:kind>.png", views.submission_plot, name="plot"),
    path("<int:pk>/cancel/", views.submission_cancel, name="cancel"),
    path("<int:pk>/method-card/", views.method_card_edit, name="method-card"),
    path("<int:pk>/cases/<str:case_id>/", viewer_views.case_page, name="case"),
    path("<int:pk>/cases/<str:case_id>.png", viewer_views.case_image, name="case-image"),
    path("<int:pk>/cases/<str:case_id>/slices/<str:plane>/<str:index>.png", viewer_views.ct_slice, name="case-slice"),
    path("new/<slug:challenge>/<slug:phase>/", views.submission_create, name="create"),
    path("baselines/<slug:challenge>/", baseline_views.baselines_page, name="baselines"),
    path("choose/<slug:challenge>/<slug:phase>/", choice_views.choose_page, name="choose"),
    path("<int:pk>/compare/", compare_views.compare_page, name="compare"),
]
