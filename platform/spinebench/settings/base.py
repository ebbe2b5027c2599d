"""Settings shared by every environment. Every value that differs between machines comes from the environment
(django-environ); the defaults are the embedded ones: SQLite under var/, files on local disk, tasks in-process."""

from pathlib import Path

import environ
from kombu import Queue

REPO_ROOT = Path(__file__).resolve().parents[3]
PLATFORM_ROOT = REPO_ROOT / "platform"

env = environ.Env()
if (REPO_ROOT / ".env").is_file():
    environ.Env.read_env(str(REPO_ROOT / ".env"), overwrite=False)

VAR_DIR = Path(env("SPINEBENCH_VAR_DIR", default=str(REPO_ROOT / "var")))

SECRET_KEY = env("SECRET_KEY", default="insecure-spinebench-development-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Page requests and in-process tasks share the file; wait for a writer instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Storage roots. MEDIA_ROOT holds uploads (never served directly: submission files are private to their creator);
# DATASETS_ROOT holds the dataset folders (docs/formats.md), never served: training data goes out as zip downloads.
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
DATASETS_ROOT = Path(env("DATASETS_ROOT", default=str(VAR_DIR / "datasets")))
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: no CDN (the docs page works offline)
    "drf_spectacular",
    "spinebench.challenges",
    "spinebench.datasets",
    "spinebench.submissions",
    "spinebench.leaderboards",
]
# The algorithm-container app is optional at import time so the platform runs before it lands.
if (Path(__file__).resolve().parents[1] / "algorithms" / "apps.py").is_file() or (
    Path(__file__).resolve().parents[1] / "algorithms" / "models.py"
).is_file():
    INSTALLED_APPS.append("spinebench.algorithms")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "spinebench.urls"
WSGI_APPLICATION = "spinebench.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parents[1] / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "challenges:list"
LOGOUT_REDIRECT_URL = "challenges:list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SpineBench API",
    "DESCRIPTION": "Challenges, phases, leaderboards, registration, submissions and training-data downloads.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery. No broker configured = embedded mode: tasks run in-process at dispatch (the same task code path).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://"  # eager dispatch still opens a producer; never reach for a default AMQP host
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message taken by a worker that died goes back to the queue this many seconds after delivery (Redis transport);
# workers look for such messages every few seconds (a tenth of the timeout, at most every 10 s).
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_DEFAULT_QUEUE = "scoring"
CELERY_TASK_QUEUES = [Queue("scoring"), Queue("containers-cpu"), Queue("containers-gpu")]
CELERY_TASK_ROUTES = {
    "spinebench.submissions.tasks.*": {"queue": "scoring"},
    "spinebench.leaderboards.tasks.*": {"queue": "scoring"},
}
CELERY_BEAT_SCHEDULE = {
    "sweep-time-limits": {
        "task": "spinebench.submissions.tasks.sweep_time_limits",
        "schedule": env.int("SPINEBENCH_SWEEP_INTERVAL_S", default=60),
    },
    # Container runs whose worker died (lease expired) are requeued, and orphan containers removed.
    "recover-container-jobs": {
        "task": "spinebench.algorithms.tasks.recover_container_jobs",
        "schedule": env.int("SPINEBENCH_RECOVERY_INTERVAL_S", default=60),
    },
}

# Upper bound on any upload (the phase sets its own, smaller, limits); Django refuses larger request bodies early.
SPINEBENCH_MAX_UPLOAD_BYTES = env.int("SPINEBENCH_MAX_UPLOAD_BYTES", default=2 * 1024**3)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Test-only hook: while this file exists, scoring waits inside its transaction (tests kill a worker there).
SPINEBENCH_SCORING_PAUSE_FILE = env("SPINEBENCH_SCORING_PAUSE_FILE", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Bundles uploaded through the site or the API (spinebench.challenges.bundle_schema, untrusted profile): the most
# cases one generated dataset may ask for.
SPINEBENCH_UPLOADED_BUNDLE_MAX_CASES = env.int("SPINEBENCH_UPLOADED_BUNDLE_MAX_CASES", default=200)
