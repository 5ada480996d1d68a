"""URLs of the REST API, mounted by the project under ``/api/``.

Names start with ``trove-`` (the module sets no namespace, so that DRF's login views
included here keep the ``rest_framework`` namespace the browsable API looks for).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from . import cloudevents, feed, health, openapi, views

router = SimpleRouter()
router.register("events", views.EventViewSet, basename="trove-event")

urlpatterns = [
    path("", views.APIRootView.as_view(), name="trove-api-root"),
    re_path(
        r"^events$",
        views.CompatEventViewSet.as_view({"post": "create", "get": "to_list"}),
        name="trove-event-compat",
    ),
    *router.urls,
    path("query/", views.QueryView.as_view(), name="trove-query"),
    path("cloudevents/", cloudevents.CloudEventsView.as_view(), name="trove-cloudevents"),
    path("feed/", feed.FeedView.as_view(), name="trove-feed"),
    path("feed/stream/", feed.FeedStreamView.as_view(), name="trove-feed-stream"),
    path("files/<str:file_id>/", views.FileView.as_view(), name="trove-file-detail"),
    path(
        "files/<str:file_id>/content/",
        views.FileContentView.as_view(),
        name="trove-file-content",
    ),
    path("schemas/", views.SchemaListView.as_view(), name="trove-schema-list"),
    re_path(
        r"^schemas/(?P<schema_id>(?s:.+))/(?P<version>[^/]+)/$",
        views.SchemaDetailView.as_view(),
        name="trove-schema-detail",
    ),
    path("health/", health.HealthView.as_view(), name="trove-health"),
    path(
        "schema/",
        SpectacularAPIView.as_view(custom_settings=openapi.SCHEMA_SETTINGS),
        name="trove-openapi",
    ),
    path("docs/", SpectacularSwaggerView.as_view(url_name="trove-openapi"), name="trove-docs"),
    path("auth/", include("rest_framework.urls")),
]
