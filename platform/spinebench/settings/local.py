"""Embedded defaults for `make run`: DEBUG on, SQLite under var/, tasks in-process unless CELERY_BROKER_URL is set."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
