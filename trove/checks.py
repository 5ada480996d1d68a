"""System checks: a misconfigured ``TROVE`` setting is reported by ``manage.py check``
(ids ``trove.E001``…) with a hint, instead of crashing at first use.

- ``trove.E001``: ``TROVE`` is not a dict, or has unknown keys.
- ``trove.E002``: a storage role cannot be built (unknown plugin, bad or missing options,
  a plugin that cannot fill the role).
- ``trove.E003``: a setting has a value of the wrong type.
- ``trove.E004``: a processor of ``TROVE["processors"]`` is malformed (its handler cannot
  be imported, ``schema``/``producer`` are not lists of names, unknown keys).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from trove.conf import DEFAULTS


@register("trove")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    raw = getattr(settings, "TROVE", {})
    if not isinstance(raw, dict):
        return [
            Error(
                "TROVE must be a dict.",
                hint="See the README's configuration table.",
                id="trove.E001",
            )
        ]
    errors = [
        Error(
            f"TROVE has an unknown key {key!r}.",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="trove.E001",
        )
        for key in sorted(set(raw) - set(DEFAULTS))
    ]
    errors += _check_types(raw)
    errors += _check_storage()
    errors += _check_processors(raw.get("processors"))
    return errors


def _check_processors(declared: Any) -> list[Error]:
    from trove.processors import settings_problems

    if not isinstance(declared, dict):
        return []  # trove.E003 says so
    return [
        Error(
            f"TROVE['processors']: {problem}.",
            hint="Each processor is {'handler': 'dotted.path.to.callable', 'schema': [...], "
            "'producer': [...]}; the handler is called with each matching event.",
            obj=f"TROVE['processors'][{name!r}]",
            id="trove.E004",
        )
        for name, config in declared.items()
        for problem in settings_problems(name, config)
    ]


def _check_types(raw: dict[str, Any]) -> list[Error]:
    errors = []
    for key in ("strict_schemas", "anonymous_read", "presigned_downloads", "bind_producer_to_user"):
        if key in raw and not isinstance(raw[key], bool):
            errors.append(Error(f"TROVE[{key!r}] must be True or False.", id="trove.E003"))
    size = raw.get("max_file_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        errors.append(
            Error(
                "TROVE['max_file_size'] must be a positive number of bytes or None.",
                id="trove.E003",
            )
        )
    for key in ("max_request_size", "max_json_depth", "max_query_terms"):
        value = raw.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.append(
                Error(
                    f"TROVE[{key!r}] must be a positive integer.",
                    hint=f"The default is {DEFAULTS[key]}.",
                    id="trove.E003",
                )
            )
    expiry = raw.get("presigned_expiry", 300)
    if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry <= 0:
        errors.append(
            Error(
                "TROVE['presigned_expiry'] must be a positive number of seconds.", id="trove.E003"
            )
        )
    if "processors" in raw and not isinstance(raw["processors"], dict):
        errors.append(
            Error("TROVE['processors'] must be a dict of name to processor.", id="trove.E003")
        )
    if "storage" in raw and not isinstance(raw["storage"], dict):
        errors.append(Error("TROVE['storage'] must be a dict of roles.", id="trove.E003"))
    return errors


def _check_storage() -> list[Error]:
    from trove.storage.handler import ROLES, InvalidStorageError, storages

    errors = []
    for role in ROLES:
        try:
            storages.build(role)
        except InvalidStorageError as error:
            if error.role == role:  # links that reuse a broken event storage: said once
                errors.append(
                    Error(
                        str(error),
                        hint=error.hint,
                        obj=f"TROVE['storage']['{role}']",
                        id="trove.E002",
                    )
                )
    return errors
