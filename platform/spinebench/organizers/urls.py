"""The organizers' console pages. Other console sections add their own URL modules beside this one."""

from django.urls import path

from . import dataset_views, views

app_name = "organizers"
urlpatterns = [
    path("manage/", views.index, name="index"),
    path("manage/new/", views.challenge_create, name="create"),
    path("manage/preview/", views.preview, name="preview"),
    path("manage/import/", views.bundle_import, name="import"),
    path("manage/import/<int:pk>/", views.bundle_import_status, name="import-status"),
    path("challenges/<slug:slug>/manage/", views.overview, name="overview"),
    path("challenges/<slug:slug>/manage/challenge/", views.challenge_edit, name="challenge"),
    path("challenges/<slug:slug>/manage/organizers/", views.organizers, name="organizers"),
    path(
        "challenges/<slug:slug>/manage/organizers/<int:user_pk>/remove/",
        views.organizer_remove,
        name="organizer-remove",
    ),
    path("challenges/<slug:slug>/manage/phases/", views.phase_list, name="phases"),
    path("challenges/<slug:slug>/manage/phases/new/", views.phase_create, name="phase-create"),
    path("challenges/<slug:slug>/manage/phases/<int:pk>/", views.phase_edit, name="phase-edit"),
    path("challenges/<slug:slug>/manage/phases/<int:pk>/move/<str:direction>/", views.phase_move, name="phase-move"),
    path("challenges/<slug:slug>/manage/registrations/", views.registrations, name="registrations"),
    path("challenges/<slug:slug>/manage/terms/", views.terms, name="terms"),
    path("challenges/<slug:slug>/manage/registrations.csv", views.registrations_csv, name="registrations-csv"),
    path("challenges/<slug:slug>/manage/questions/", views.questions, name="questions"),
    path("challenges/<slug:slug>/manage/questions/<int:pk>/", views.question_edit, name="question-edit"),
    path("challenges/<slug:slug>/manage/questions/<int:pk>/remove/", views.question_remove, name="question-remove"),
    path(
        "challenges/<slug:slug>/manage/questions/<int:pk>/move/<str:direction>/",
        views.question_move,
        name="question-move",
    ),
    path("challenges/<slug:slug>/manage/announcements/", views.announcements, name="announcements"),
    path("challenges/<slug:slug>/manage/announcements/<int:pk>/", views.announcement_edit, name="announcement-edit"),
    path(
        "challenges/<slug:slug>/manage/announcements/<int:pk>/delete/",
        views.announcement_delete,
        name="announcement-delete",
    ),
    path("challenges/<slug:slug>/manage/audit/", views.audit, name="audit"),
    path("challenges/<slug:slug>/manage/datasets/", dataset_views.datasets, name="datasets"),
    path("challenges/<slug:slug>/manage/datasets/uploads/<int:pk>/", dataset_views.dataset_upload,
         name="dataset-upload"),
    path("challenges/<slug:slug>/manage/datasets/uploads/<int:pk>/attach/", dataset_views.dataset_attach,
         name="dataset-attach"),
    path("challenges/<slug:slug>/manage/datasets/uploads/<int:pk>/discard/", dataset_views.dataset_discard,
         name="dataset-discard"),
    path("challenges/<slug:slug>/manage/phases/<int:pk>/datasets/", dataset_views.phase_datasets,
         name="phase-datasets"),
]
