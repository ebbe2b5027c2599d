"""The Celery app. Queues: `scoring` (quick CSV scoring and re-ranking), `containers-cpu` and `containers-gpu`
(algorithm containers; a GPU host runs a worker consuming only `containers-gpu`). Late acks, reject on worker lost
and prefetch 1 come from settings (CELERY_*), so a message taken by a worker that dies is delivered again; every task
locks its row and checks the status before acting, so the second delivery never does the work twice.
With no CELERY_BROKER_URL the tasks run in-process (task_always_eager), through the same code."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinebench.settings.local")

QUEUE_SCORING = "scoring"
QUEUE_CONTAINERS_CPU = "containers-cpu"
QUEUE_CONTAINERS_GPU = "containers-gpu"

app = Celery("spinebench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
