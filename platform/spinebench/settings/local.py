"""Embedded defaults for `make run`: DEBUG on, SQLite under var/, workers on the folder broker under var/broker/
(or on CELERY_BROKER_URL when set)."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
