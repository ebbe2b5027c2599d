"""A remote container worker host (`spinebench worker --server URL --token TOKEN --queues containers-gpu`;
docs/workers.md):
no database, no shared disk. DATABASES is empty, so any database query raises at once instead of reaching a server;
job descriptions, inputs and signed URLs come from the worker-token API (algorithms.remote_client), and the files of
a run live in SPINEBENCH_WORKER_DIR on this host. The broker is RabbitMQ with a user limited to the worker's queue
(CELERY_BROKER_URL, e.g. amqps://gpu-host-1:SECRET@broker.example.org:5671/spinebench in production)."""

from pathlib import Path

from .base import *  # noqa: F401,F403
from .base import VAR_DIR, env

DEBUG = False
DATABASES = {}  # no database on a remote worker: an ORM query raises ImproperlyConfigured
SPINEBENCH_JOB_SERVER = env("SPINEBENCH_JOB_SERVER")  # the site's address, e.g. https://spinebench.example.org
SPINEBENCH_WORKER_TOKEN = env("SPINEBENCH_WORKER_TOKEN")  # a worker token (manage.py create_worker_token NAME)
SPINEBENCH_WORKER_DIR = Path(env("SPINEBENCH_WORKER_DIR", default=str(VAR_DIR / "remote-worker")))
MEDIA_ROOT = SPINEBENCH_WORKER_DIR / "media"  # runs' scratch folders (job_worker.work_folder), never shared
DATASETS_ROOT = SPINEBENCH_WORKER_DIR / "no-datasets"  # inputs are downloaded per job; nothing is read from here
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(MEDIA_ROOT)}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# Remote control, events, gossip and mingle use exchanges beyond the worker's own queue, which its broker user may
# not touch; results are not kept (the site learns every outcome through the API).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_BEAT_SCHEDULE = {}
