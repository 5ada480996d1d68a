"""The browsable API as Trove's views render it, where the project enables DRF's."""

from __future__ import annotations

from rest_framework.renderers import BrowsableAPIRenderer


class TroveBrowsableAPIRenderer(BrowsableAPIRenderer):
    """DRF's browsable API with one breadcrumb per page name.

    DRF lists each URL prefix that resolves to a view, and ``/api/events`` (the original
    Trove client's path, without the slash) is a view of its own, so ``/api/events/`` would
    read "Api Root / Events / Events". Of consecutive crumbs with one name, the deeper stays.
    """

    def get_breadcrumbs(self, request) -> list[tuple[str, str]]:
        crumbs = super().get_breadcrumbs(request)
        return [
            crumb
            for crumb, following in zip(crumbs, [*crumbs[1:], None], strict=True)
            if following is None or following[0] != crumb[0]
        ]


def with_trove_browsable_api(renderers: list) -> list:
    """``renderers`` with DRF's browsable API renderer, if configured, as Trove's."""
    return [
        TroveBrowsableAPIRenderer() if type(renderer) is BrowsableAPIRenderer else renderer
        for renderer in renderers
    ]
