"""pytest settings: the same as base, with fast password hashing and throwaway storage roots per test run.
DATABASE_URL / CELERY_BROKER_URL from the environment select PostgreSQL + Redis (CI); unset gives SQLite and tasks
run in-process at dispatch (the only settings that do: the site itself always hands tasks to workers). Tests that
need a real worker on the embedded broker start one (tests/harness)."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F401,F403
from .base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
_GIVEN_ROOT = env("SPINEBENCH_TEST_ROOT", default="")
_TMP = Path(_GIVEN_ROOT or tempfile.mkdtemp(prefix="spinebench-test-"))
#: This process made the throwaway root (tests/conftest.py removes it when the session ends: a whole run writes
#: gigabytes of images, archives and datasets there).
SPINEBENCH_TEST_ROOT_OWNED = not _GIVEN_ROOT
SPINEBENCH_TEST_ROOT = _TMP
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(_TMP / "media")))
DATASETS_ROOT = Path(env("DATASETS_ROOT", default=str(_TMP / "datasets")))
SPINEBENCH_CACHE_DIR = Path(env("SPINEBENCH_CACHE_DIR", default=str(_TMP / "cache")))
STORAGES = {
    **STORAGES,  # noqa: F405 (SPINEBENCH_STORAGE=s3 runs the suite on a bucket)
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The pytest process never consumes from the broker itself: it dispatches for the worker subprocess, or runs eagerly.
CELERY_TASK_ALWAYS_EAGER = not env("CELERY_BROKER_URL", default="")
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://"  # eager dispatch still opens a producer: keep it off the embedded broker folder
CELERY_TASK_EAGER_PROPAGATES = True
STATIC_ROOT = _TMP / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# The suite calls the API far faster than any client; the throttle tests set small rates themselves.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min", "auth_token": "100000/min"},
}
