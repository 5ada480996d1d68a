"""A project set up as "Using Trove in your project" says, and nothing more, serves the REST
API and its OpenAPI document: run in a fresh process with Django's usual new-project
settings plus the README's lines."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_project import ROOT, SAFE_ENV

PROJECT = """
import base64, json, sys
import django
from django.conf import settings

data = sys.argv[1]
settings.configure(
    DEBUG=False,
    SECRET_KEY="test",
    ALLOWED_HOSTS=["testserver"],
    USE_TZ=True,
    ROOT_URLCONF=__name__,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": data + "/db.sqlite3"}},
    # Django's new-project apps and middleware, then the README's lines.
    INSTALLED_APPS=[
        "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
        "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
        "rest_framework", "django_filters", "drf_spectacular", "trove",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    }],
    STATIC_URL="static/",
    REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"},
    TROVE={"storage": {
        "events": {"plugin": "storage-orm", "options": {"database": "default"}},
        "files": {"plugin": "storage-file-system", "options": {"directory": data + "/files"}},
        "links": "useEventStorage",
    }},
)
django.setup()

from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls), path("api/", include("trove.api.urls"))]

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

call_command("check", fail_level="WARNING")
call_command("migrate", verbosity=0)
User.objects.create_superuser("root", password="pw")
auth = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"root:pw").decode()}
client = Client()
body = {"schema": "note.created", "payload": {"text": "hi"}}
created = client.post("/api/events/", body, content_type="application/json", **auth)
listed = client.get("/api/events/", {"payload.text": "hi"}, **auth)
openapi = client.get("/api/schema/", {"format": "json"}, **auth)
admin_page = client.get("/admin/login/")
print(json.dumps({
    "created": created.status_code,
    "listed": [e["payload"] for e in listed.json()["results"]],
    "openapi": openapi.status_code,
    "paths": sorted(json.loads(openapi.content)["paths"]) if openapi.status_code == 200 else [],
    "admin": admin_page.status_code,
}))
"""


def test_the_readme_setup_serves_the_api_and_its_openapi_document(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROJECT, str(tmp_path)],
        cwd=tmp_path,
        env={**SAFE_ENV, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["created"] == 201
    assert outcome["listed"] == [{"text": "hi"}]
    assert outcome["openapi"] == 200 and "/api/events/" in outcome["paths"]
    assert outcome["admin"] == 200
