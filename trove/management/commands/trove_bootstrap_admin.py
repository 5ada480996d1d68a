"""Make sure someone can log into the admin on a fresh install.

``make run`` calls this after ``migrate`` so a newcomer's first run ends with a working
admin login instead of a detour through ``createsuperuser``. When no superuser exists it
creates ``admin`` with a random password and prints both once; the password is stored
only as Django's hash, so it cannot be shown again. When a superuser already exists it
changes nothing and says how to reset a forgotten password. It is safe to run on every
start.
"""

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create a superuser 'admin' with a random password, printed once, "
        "unless a superuser already exists."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        manager = user_model._default_manager
        existing = manager.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            username = existing.get_username()
            self.stdout.write(
                f"A superuser already exists ({username}). If you forgot its password, "
                f"reset it with: python manage.py changepassword {username}"
            )
            return
        if manager.filter(**{user_model.USERNAME_FIELD: USERNAME}).exists():
            self.stderr.write(
                f"A user named '{USERNAME}' exists but is not a superuser, so no admin "
                "login was created. Create one with: python manage.py createsuperuser"
            )
            return
        password = secrets.token_urlsafe(16)
        manager.create_superuser(**{user_model.USERNAME_FIELD: USERNAME}, password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin login created (shown only this once): "
                f"username: {USERNAME}  password: {password}"
            )
        )
