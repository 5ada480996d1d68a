"""WSGI entry point for the example project (`gunicorn trove_project.wsgi`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trove_project.settings")

application = get_wsgi_application()
