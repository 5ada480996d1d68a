"""URLs of the REST API, mounted by the project under ``/api/``."""

urlpatterns: list = []
