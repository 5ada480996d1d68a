"""App configuration: registers Trove's system checks when Django starts."""

from django.apps import AppConfig


class TroveConfig(AppConfig):
    name = "trove"
    verbose_name = "Trove"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from trove import checks  # noqa: F401 - registers the checks
