"""The Celery app. Queues: `scoring` (quick CSV scoring, re-ranking, sweeps), `containers-cpu` and `containers-gpu`
(algorithm containers; a GPU host runs a worker consuming only `containers-gpu`) and `baselines` (background baseline
training, one at a time, so training never delays scoring). Late acks, reject on worker lost and prefetch 1 come from
settings (CELERY_*), so with Redis or RabbitMQ a message taken by a worker that dies is delivered again; every task
locks its row and checks the status before acting, so the second delivery never does the work twice.
With no CELERY_BROKER_URL the broker is a folder (kombu's filesystem transport, see settings): the same workers and
code as production, started by `spinebench serve`; it never redelivers, so the beat sweeps requeue expired leases."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinebench.settings.local")

QUEUE_SCORING = "scoring"
QUEUE_CONTAINERS_CPU = "containers-cpu"
QUEUE_CONTAINERS_GPU = "containers-gpu"
QUEUE_BASELINES = "baselines"

app = Celery("spinebench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
