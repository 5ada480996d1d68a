"""What changed between two JSON values, path by path: the event page's version diff.

A structural diff reads better than a line diff of the pretty-printed text: each change
names the place (``author.name``, ``tags[1]``) with its value before and after. Equality is
JSON's, type-exact as in queries (``1`` and ``1.0`` are equal, ``1`` and ``true`` are not).
Arrays are compared position by position.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from trove.query import json_equal

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
#: Longest value text shown in a change; the event page shows the whole document anyway.
VALUE_LENGTH = 1000
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_ABSENT = object()


@dataclass(frozen=True)
class Change:
    """One difference: at ``path``, ``old`` became ``new`` (absent when added or removed)."""

    path: str
    kind: str
    old: Any = _ABSENT
    new: Any = _ABSENT

    @property
    def old_text(self) -> str:
        return "" if self.old is _ABSENT else value_text(self.old)

    @property
    def new_text(self) -> str:
        return "" if self.new is _ABSENT else value_text(self.new)


def value_text(value: Any) -> str:
    """A value as one line of JSON, cut at :data:`VALUE_LENGTH` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= VALUE_LENGTH else text[: VALUE_LENGTH - 1] + "…"


def join_path(path: str, step: str | int) -> str:
    """``path`` one step further: ``.key`` for plain keys, ``["odd key"]``, ``[index]``."""
    if isinstance(step, int):
        return f"{path}[{step}]"
    if _PLAIN_KEY.match(step):
        return f"{path}.{step}" if path else step
    return f"{path}[{json.dumps(step, ensure_ascii=False)}]"


def json_changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every difference between ``old`` and ``new``, in document order (``old``'s keys
    first, then keys only ``new`` has); an empty list when they are equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in [*old, *(key for key in new if key not in old)]:
            where = join_path(path, key)
            if key not in new:
                changes.append(Change(where, REMOVED, old=old[key]))
            elif key not in old:
                changes.append(Change(where, ADDED, new=new[key]))
            else:
                changes.extend(json_changes(old[key], new[key], where))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for index in range(max(len(old), len(new))):
            where = join_path(path, index)
            if index >= len(new):
                changes.append(Change(where, REMOVED, old=old[index]))
            elif index >= len(old):
                changes.append(Change(where, ADDED, new=new[index]))
            else:
                changes.extend(json_changes(old[index], new[index], where))
        return changes
    if json_equal(old, new):
        return []
    return [Change(path or "(whole value)", CHANGED, old=old, new=new)]
