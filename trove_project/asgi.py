"""ASGI entry point for the example project."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trove_project.settings")

application = get_asgi_application()
