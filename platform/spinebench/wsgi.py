"""WSGI entry point (gunicorn spinebench.wsgi, with platform/ on the Python path)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinebench.settings.production")
application = get_wsgi_application()
