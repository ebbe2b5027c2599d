"""Settings shared by every environment. Every value that differs between machines comes from the environment
(django-environ); the defaults are the embedded ones: SQLite under var/, files on local disk, Celery workers on a
broker that is a folder under var/ (`spinebench serve` starts them)."""

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

REPO_ROOT = Path(__file__).resolve().parents[3]

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
    # The web server's threads, two worker processes and beat share one file. WAL lets readers run beside the one
    # writer; IMMEDIATE makes every transaction take the write lock at BEGIN, so two transactions never both read
    # and then deadlock upgrading to write (SQLite's "database is locked" that no timeout cures); the busy timeout
    # makes a writer wait for the lock instead of failing. synchronous=NORMAL is durable in WAL mode across crashes
    # of the processes (only a power loss may drop the last commits).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_S", default=30),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Storage roots. MEDIA_ROOT holds uploads (never served directly: submission files are private to their creator);
# DATASETS_ROOT holds the dataset folders (docs/formats.md), never served: training data goes out as zip downloads.
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
DATASETS_ROOT = Path(env("DATASETS_ROOT", default=str(VAR_DIR / "datasets")))
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_URL = "/static/"
# The project's own stylesheet and scripts (brand tweaks, theme, tabs); the frameworks come from packages.
STATICFILES_DIRS = [Path(__file__).resolve().parents[1] / "static"]
MEDIA_URL = "/media/"
# Every stored file (uploads, dataset archives, algorithm outputs, plots) goes through Django's storage API:
# SPINEBENCH_STORAGE=filesystem (the embedded default, under MEDIA_ROOT) or s3 (django-storages: AWS S3 or any
# S3-compatible service, docs/storage.md). What needs a local path reads a checksum-verified copy under
# SPINEBENCH_CACHE_DIR (spinebench.uploads.local_cache), pruned oldest-first above SPINEBENCH_CACHE_MAX_BYTES.
SPINEBENCH_STORAGE = env("SPINEBENCH_STORAGE", default="filesystem")
SPINEBENCH_CACHE_DIR = Path(env("SPINEBENCH_CACHE_DIR", default=str(VAR_DIR / "cache")))
SPINEBENCH_CACHE_MAX_BYTES = env.int("SPINEBENCH_CACHE_MAX_BYTES", default=50 * 1024**3)
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if SPINEBENCH_STORAGE == "s3":
    # Private objects only: no ACL (the bucket's own policy, which must not grant public reads), no public URLs;
    # every download goes through a view that asks spinebench.access first. Credentials may also come from the
    # usual boto3 chain (instance role, ~/.aws) when AWS_ACCESS_KEY_ID is unset.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "location": env("AWS_LOCATION", default=""),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=300),
            "file_overwrite": False,
            "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default=None),
            # An object opened as a file is buffered in memory up to this size, on disk beyond it (the backend's
            # own default, 0, keeps it all in memory).
            "max_memory_size": env.int("AWS_S3_MAX_MEMORY_SIZE", default=16 * 1024**2),
        },
    }
elif SPINEBENCH_STORAGE != "filesystem":
    raise ImproperlyConfigured(f"SPINEBENCH_STORAGE={SPINEBENCH_STORAGE!r}: use 'filesystem' or 's3'")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: no CDN (the docs page works offline)
    "drf_spectacular",
    "spinebench.uploads",  # the one upload path: below every domain app
    "axes",
    "csp",
    "spinebench.accounts",
    # Page assets, all served by whitenoise from installed packages (no CDN: the site works without internet):
    "bootstrap",  # django-bootstrap-static: Bootstrap 5.3 CSS + JS bundle
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",  # ships htmx.min.js; its middleware sets request.htmx
    "spinebench.challenges",
    "spinebench.teams",
    "spinebench.datasets",
    "spinebench.submissions",
    "spinebench.evaluation",
    "spinebench.leaderboards",
    "spinebench.algorithms",
    "spinebench.workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "spinebench.challenges.middleware.RoleMemoMiddleware",  # each request's role lookups answered once
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "spinebench.uploads.middleware.UploadLimitMiddleware",  # before CSRF, which reads the body
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout noted during sign-in into the lockout response
]

ROOT_URLCONF = "spinebench.urls"
WSGI_APPLICATION = "spinebench.wsgi.application"
TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parents[1] / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "spinebench.context_processors.site",
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
# Sign-in: django-axes first counts failures and refuses locked-out clients (login page, admin, token endpoint).
AUTHENTICATION_BACKENDS = [
    "spinebench.accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Failures count per (username, client address): guessing one account is stopped without letting anyone lock a
# victim out from elsewhere; DRF's throttles bound the guesses per address over all usernames on the API.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "spinebench.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = env("AXES_CLIENT_IP_CALLABLE", default=None)  # behind a proxy: a callable reading its header

# API tokens (spinebench.accounts): every token expires; the default lifetime, at most 365 days.
SPINEBENCH_TOKEN_TTL_DAYS = env.int("SPINEBENCH_TOKEN_TTL_DAYS", default=90)
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "challenges:list"
LOGOUT_REDIRECT_URL = "challenges:list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "spinebench.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_THROTTLE_CLASSES": [
        "spinebench.accounts.throttles.AnonThrottle",
        "spinebench.accounts.throttles.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("SPINEBENCH_THROTTLE_ANON", default="120/min"),  # per client address
        "user": env("SPINEBENCH_THROTTLE_USER", default="600/min"),  # per user (or worker token)
        "auth_token": env("SPINEBENCH_THROTTLE_AUTH_TOKEN", default="10/min"),  # POST /api/auth/token/, per address
    },
    "NUM_PROXIES": env.int("SPINEBENCH_NUM_PROXIES", default=None),  # client address from X-Forwarded-For
    "DEFAULT_SCHEMA_CLASS": "spinebench.api_schema.SpineBenchAutoSchema",  # documents the error answers too
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "SpineBench API",
    "DESCRIPTION": "Challenges, phases, leaderboards, registration, submissions and training-data downloads.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy (django-csp 4): only this site's own files; an inline <script>/<style> runs only with the
# request's nonce (`nonce="{{ request.csp_nonce }}"`). Images may come from https (challenge descriptions link them).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", "https:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Celery. Workers always run the tasks (never the web request), in every mode; only tests run them in-process.
# No CELERY_BROKER_URL = embedded mode: kombu's filesystem transport, one file per message in var/broker/. Chosen over
# SQLAlchemy/SQLite because it needs no extra package and puts no second writer on a SQLite lock beside the site's
# database; a message is claimed by an atomic rename, so two workers never take the same one. Neither serverless
# transport redelivers a message whose worker was killed: the beat sweeps below requeue expired leases instead.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or "filesystem://"
BROKER_DIR = Path(env("SPINEBENCH_BROKER_DIR", default=str(VAR_DIR / "broker")))
CELERY_TASK_ALWAYS_EAGER = False
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
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any]
if CELERY_BROKER_URL.startswith("filesystem:"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Publishers write and consumers read the same folder. Taken messages are renamed into `processed/` (same
        # file system, so the rename is atomic: with the default temp folder kombu would copy and delete, and two
        # workers could take one message); the sweep prunes that folder.
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": True,
        "processed_folder": str(BROKER_DIR / "processed"),
        "polling_interval": 0.5,
    }
    # Remote control (`celery inspect`) broadcasts through fanout files every worker polls: not worth it here.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 10)),
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_DEFAULT_QUEUE = "scoring"
# Each container queue has its own exchange of the same name, so a remote worker's RabbitMQ user can be limited to
# its queue by one pattern (configure/write/read `^containers-gpu$`; docs/workers.md): on the default exchange
# ("scoring") it would need rights on a name that is also the scoring queue's.
CELERY_TASK_QUEUES = [
    Queue("scoring"),
    Queue("containers-cpu", Exchange("containers-cpu", type="direct"), routing_key="containers-cpu"),
    Queue("containers-gpu", Exchange("containers-gpu", type="direct"), routing_key="containers-gpu"),
    Queue("baselines"),
]
CELERY_TASK_ROUTES = {
    # The baseline sweep is quick: it must not wait behind a training run on the baselines queue.
    "spinebench.submissions.baseline_tasks.sweep_baseline_runs": {"queue": "scoring"},
    "spinebench.submissions.baseline_tasks.*": {"queue": "baselines"},
    "spinebench.submissions.tasks.*": {"queue": "scoring"},
    "spinebench.leaderboards.tasks.*": {"queue": "scoring"},
    "spinebench.evaluation.tasks.*": {"queue": "scoring"},
    "spinebench.workers.tasks.*": {"queue": "scoring"},
    "spinebench.uploads.tasks.*": {"queue": "scoring"},
    # A remote worker's finished run is scored by the site's own workers.
    "spinebench.algorithms.tasks.score_algorithm_submission": {"queue": "scoring"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-time-limits": {
        "task": "spinebench.submissions.tasks.sweep_time_limits",
        "schedule": env.int("SPINEBENCH_SWEEP_INTERVAL_S", default=60),
    },
    # Baseline runs whose worker stopped (lease expired) are requeued.
    "sweep-baseline-runs": {
        "task": "spinebench.submissions.baseline_tasks.sweep_baseline_runs",
        "schedule": env.int("SPINEBENCH_SWEEP_INTERVAL_S", default=60),
    },
    # Submissions whose scoring worker died (or whose message was lost with it) are requeued, at most
    # SPINEBENCH_MAX_REQUEUES times, then failed with the reason.
    "sweep-stale-submissions": {
        "task": "spinebench.submissions.tasks.sweep_stale_submissions",
        "schedule": env.int("SPINEBENCH_SWEEP_INTERVAL_S", default=60),
    },
    # Container runs whose worker died (lease expired) are requeued, and orphan containers removed.
    "recover-container-jobs": {
        "task": "spinebench.algorithms.tasks.recover_container_jobs",
        "schedule": env.int("SPINEBENCH_RECOVERY_INTERVAL_S", default=60),
    },
    "prune-worker-records": {
        "task": "spinebench.workers.tasks.prune",
        "schedule": 3600,
    },
    # Dataset checks whose worker died are failed with the reason once past their time limit (nothing kept).
    "sweep-dataset-checks": {
        "task": "spinebench.organizers.tasks.sweep_dataset_checks",
        "schedule": env.int("SPINEBENCH_SWEEP_INTERVAL_S", default=60) * 10,
    },
    # Chunked upload sessions past their expiry lose their partial bytes (and an unclaimed finished upload).
    "sweep-upload-sessions": {
        "task": "spinebench.uploads.tasks.sweep_upload_sessions",
        "schedule": env.int("SPINEBENCH_SWEEP_INTERVAL_S", default=60) * 10,
    },
}
# A queued or scoring submission untouched this long has lost its worker (or its message): requeue it.
SPINEBENCH_SCORING_LEASE_SECONDS = env.int("SPINEBENCH_SCORING_LEASE_SECONDS", default=600)
SPINEBENCH_MAX_REQUEUES = env.int("SPINEBENCH_MAX_REQUEUES", default=3)
# Container runs: a run whose heartbeat is older than this belongs to a dead worker.
SPINEBENCH_CONTAINER_LEASE_SECONDS = env.int("SPINEBENCH_CONTAINER_LEASE_SECONDS", default=60)
# Worker heartbeats: every worker records one this often; a queue is served when a worker consuming it was seen
# within SPINEBENCH_WORKER_ALIVE_S.
SPINEBENCH_HEARTBEAT_INTERVAL_S = env.float("SPINEBENCH_HEARTBEAT_INTERVAL_S", default=15.0)
SPINEBENCH_WORKER_ALIVE_S = env.int("SPINEBENCH_WORKER_ALIVE_S", default=60)
# Threads torch may use in a worker process (the baselines worker sets it so training never starves scoring);
# 0 leaves torch's default.
SPINEBENCH_TORCH_THREADS = env.int("SPINEBENCH_TORCH_THREADS", default=0)

# Upper bound on any upload (the phase sets its own, smaller, limits); Django refuses larger request bodies early.
SPINEBENCH_MAX_UPLOAD_BYTES = env.int("SPINEBENCH_MAX_UPLOAD_BYTES", default=2 * 1024**3)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Uploads (spinebench.uploads): every request body streams through one handler that counts, hashes and stops at
# the strictest of SPINEBENCH_MAX_UPLOAD_BYTES (above) and the view's own limit (a phase's max_upload_bytes);
# accepted files are charged to a storage account (a user, or a challenge for organizers' data).
FILE_UPLOAD_HANDLERS = ["spinebench.uploads.handlers.LimitedUploadHandler"]
SPINEBENCH_USER_STORAGE_QUOTA_BYTES = env.int("SPINEBENCH_USER_STORAGE_QUOTA_BYTES", default=20 * 1024**3)
SPINEBENCH_CHALLENGE_STORAGE_QUOTA_BYTES = env.int("SPINEBENCH_CHALLENGE_STORAGE_QUOTA_BYTES", default=500 * 1024**3)
# Any zip read from an upload: at most this many entries (its unpacked bytes are capped by the phase).
SPINEBENCH_ZIP_MAX_ENTRIES = env.int("SPINEBENCH_ZIP_MAX_ENTRIES", default=10_000)
# Resumable chunked uploads (spinebench.uploads.chunked): the largest file of each kind a session may declare, the
# largest chunk one PUT may carry, how long an untouched session lives, and where partial bytes wait (empty: a
# hidden folder under MEDIA_ROOT, so finalising is a rename on the same disk).
SPINEBENCH_MAX_ALGORITHM_ARCHIVE_BYTES = env.int("SPINEBENCH_MAX_ALGORITHM_ARCHIVE_BYTES", default=20 * 1024**3)
SPINEBENCH_MAX_DATASET_ARCHIVE_BYTES = env.int("SPINEBENCH_MAX_DATASET_ARCHIVE_BYTES", default=50 * 1024**3)
# A dataset zip uploaded by organizers (spinebench.organizers.dataset_uploads) is unpacked by a background job: at
# most this many entries and this many unpacked bytes (the archive itself is capped above, per kind).
SPINEBENCH_DATASET_ZIP_MAX_ENTRIES = env.int("SPINEBENCH_DATASET_ZIP_MAX_ENTRIES", default=200_000)
SPINEBENCH_MAX_DATASET_UNPACKED_BYTES = env.int("SPINEBENCH_MAX_DATASET_UNPACKED_BYTES", default=200 * 1024**3)
# A dataset check running longer than this has lost its worker: the sweep fails it and removes what it left.
SPINEBENCH_DATASET_CHECK_TIME_LIMIT_S = env.int("SPINEBENCH_DATASET_CHECK_TIME_LIMIT_S", default=6 * 3600)
SPINEBENCH_MAX_PREDICTIONS_ZIP_BYTES = env.int("SPINEBENCH_MAX_PREDICTIONS_ZIP_BYTES", default=10 * 1024**3)
SPINEBENCH_UPLOAD_CHUNK_MAX_BYTES = env.int("SPINEBENCH_UPLOAD_CHUNK_MAX_BYTES", default=64 * 1024**2)
SPINEBENCH_UPLOAD_SESSION_HOURS = env.int("SPINEBENCH_UPLOAD_SESSION_HOURS", default=24)
SPINEBENCH_UPLOAD_SESSIONS_DIR = env("SPINEBENCH_UPLOAD_SESSIONS_DIR", default="")
# The submission page sends files larger than this through the chunk API, in chunks of this size.
SPINEBENCH_PAGE_CHUNK_BYTES = env.int("SPINEBENCH_PAGE_CHUNK_BYTES", default=8 * 1024**2)
# Loading an algorithm archive into the engine: how long the engine may take to answer (it unpacks every layer first).
SPINEBENCH_IMAGE_LOAD_TIMEOUT_S = env.int("SPINEBENCH_IMAGE_LOAD_TIMEOUT_S", default=1800)
# Email (Django's email framework). Production: EMAIL_URL, e.g. smtp+tls://user:password@mail.example.org:587
# (django-environ's email_url). Without it (the embedded default, `make run`) every mail is written as a file under
# var/mail/ (SPINEBENCH_VAR_DIR/mail), so sign-up and password reset work on a laptop without a mail server.
EMAIL_URL = env("EMAIL_URL", default="")
if EMAIL_URL:
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_TIMEOUT = env.int(
    "EMAIL_TIMEOUT", default=20
)  # seconds; a hung server fails the try (it is retried) instead of hanging
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="SpineBench <noreply@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Absolute links in mails sent by tasks (notifications), which have no request to take the host from.
SPINEBENCH_SITE_URL = env("SPINEBENCH_SITE_URL", default="http://127.0.0.1:8000")
# Email verification and email change links stop working after this many hours (password reset: PASSWORD_RESET_TIMEOUT).
SPINEBENCH_EMAIL_LINK_HOURS = env.int("SPINEBENCH_EMAIL_LINK_HOURS", default=48)
# Verification / email-change mails one account may ask for per hour (the change form must not be a spam relay).
SPINEBENCH_LINK_MAILS_PER_HOUR = env.int("SPINEBENCH_LINK_MAILS_PER_HOUR", default=5)
# Notifications: listens to submissions and registrations (it comes after them), mails from the scoring queue.
INSTALLED_APPS.append("spinebench.notifications")
INSTALLED_APPS.append("spinebench.organizers")  # the highest app: the organizers' console and audit trail
CELERY_TASK_ROUTES["spinebench.notifications.tasks.*"] = {"queue": "scoring"}
# A day before a phase closes its participants get a reminder (once each); beat looks for closing phases this often.
CELERY_BEAT_SCHEDULE["phase-closing-reminders"] = {
    "task": "spinebench.notifications.tasks.send_phase_closing_reminders",
    "schedule": env.int("SPINEBENCH_REMINDER_INTERVAL_S", default=900),
}
TEMPLATES[0]["OPTIONS"]["context_processors"].append("spinebench.accounts.context_processors.account_notice")
TEMPLATES[0]["OPTIONS"]["context_processors"].append("spinebench.notifications.context_processors.unread_notifications")
# Several models have a `kind` field: name their enums in the OpenAPI schema.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "NotificationKindEnum": "spinebench.notifications.kinds.Kind",
        "ApiTokenKindEnum": "spinebench.accounts.models.ApiToken.Kind",
        "RegistrationQuestionKindEnum": "spinebench.challenges.models.RegistrationQuestion.Kind",
        # Several models have a `status` field with their own choices: one named enum each.
        "SubmissionStatusEnum": "spinebench.submissions.status.Status",
        "RegistrationStatusEnum": "spinebench.challenges.models.Registration.Status",
        "BundleImportStatusEnum": "spinebench.organizers.models.BundleImport.Status",
        "DatasetUploadStatusEnum": "spinebench.organizers.models.DatasetUpload.Status",
        "TeamInvitationStatusEnum": "spinebench.teams.models.Invitation.Status",
        "UploadSessionStatusEnum": "spinebench.uploads.models.UploadSession.Status",
    }
)
# Bundles uploaded through the site or the API (spinebench.challenges.bundle_schema, untrusted profile): the most
# cases one generated dataset may ask for.
SPINEBENCH_UPLOADED_BUNDLE_MAX_CASES = env.int("SPINEBENCH_UPLOADED_BUNDLE_MAX_CASES", default=200)
# The cache (rendered leaderboard fragments and export bodies, keyed by snapshot; DRF throttles): per process in
# the embedded default; set CACHE_URL (e.g. redis://127.0.0.1:6379/1, a Redis database of its own: a cache clear
# empties it) so that every web process shares one.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# This site's containers on a Docker engine carry this id (label org.spinebench.scope) and its recovery removes only
# containers with it, so several sites can share one engine. Default: derived from SECRET_KEY and the database name
# (two sites differ in one of them); set it explicitly, the same, on remote container workers.
SPINEBENCH_INSTANCE_ID = env("SPINEBENCH_INSTANCE_ID", default="") or hashlib.sha256(
    f"{SECRET_KEY}\0{DATABASES['default']['NAME']}".encode()
).hexdigest()[:16]
# A container run whose engine went away (restarted) goes back to its queue and is tried again after this many
# seconds, at most SPINEBENCH_MAX_REQUEUES times.
SPINEBENCH_ENGINE_RETRY_SECONDS = env.int("SPINEBENCH_ENGINE_RETRY_SECONDS", default=15)
# Remote container workers (docs/workers.md): their job descriptions name files by signed URLs valid this long.
# SPINEBENCH_JOB_SERVER is set only on a remote worker host (settings.remote_worker): the site it works for.
SPINEBENCH_WORKER_URL_TTL_S = env.int("SPINEBENCH_WORKER_URL_TTL_S", default=3600)
SPINEBENCH_JOB_SERVER = ""
SPINEBENCH_WORKER_TOKEN = ""
SPINEBENCH_WORKER_DIR = VAR_DIR / "remote-worker"
# The organizers' console (spinebench.organizers): when set, only members of this group (and site operators) may
# create challenges; empty: any signed-in user. Logos and banners: the largest accepted image file and side.
SPINEBENCH_CHALLENGE_CREATORS_GROUP = env.str("SPINEBENCH_CHALLENGE_CREATORS_GROUP", default="")
SPINEBENCH_CHALLENGE_IMAGE_MAX_BYTES = env.int("SPINEBENCH_CHALLENGE_IMAGE_MAX_BYTES", default=2 * 1024 * 1024)
SPINEBENCH_CHALLENGE_IMAGE_MAX_SIDE = env.int("SPINEBENCH_CHALLENGE_IMAGE_MAX_SIDE", default=4096)
CELERY_TASK_ROUTES["spinebench.organizers.tasks.*"] = {"queue": "scoring"}  # bundle imports (phantom generation)
