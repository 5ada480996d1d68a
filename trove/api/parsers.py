"""Multipart event bodies read into the same document a JSON body gives.

The original Trove clients post ``multipart/form-data``: ``payload``, ``metadata`` and
``links`` as JSON text, ``schema`` as JSON text (an object) or a plain id, ``producer`` as
plain text, and every uploaded part is a file. This parser decodes the JSON parts so that
one serializer validates both forms; the uploaded parts stay where Django put them (in
memory when small, else in a temporary file) and are streamed to the file storage. An
empty part counts as not given: HTML forms (the browsable API's among them) send every
field, filled or not.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rest_framework.exceptions import ValidationError
from rest_framework.parsers import DataAndFiles, MultiPartParser


class EventMultiPartParser(MultiPartParser):
    """``multipart/form-data`` whose text parts become a JSON-like event document."""

    #: Parts always holding JSON text.
    json_fields: ClassVar[frozenset[str]] = frozenset({"payload", "metadata", "links", "files"})

    def parse(self, stream, media_type=None, parser_context=None) -> DataAndFiles:
        parsed = super().parse(stream, media_type, parser_context)
        document: dict[str, Any] = {}
        problems: dict[str, list[str]] = {}
        for name in parsed.data:
            values = parsed.data.getlist(name)
            if len(values) > 1:
                problems[name] = [f"{name!r} was given {len(values)} times; give it once."]
                continue
            if values[0] == "":
                continue
            try:
                document[name] = self.decode(name, values[0])
            except ValueError as error:
                problems[name] = [f"{name!r} is not valid JSON text: {error}."]
        if problems:
            raise ValidationError(problems)
        return DataAndFiles(document, parsed.files)

    def decode(self, name: str, text: str) -> Any:
        """A part's value: JSON for :attr:`json_fields` and for a ``schema`` object, else text."""
        if name in self.json_fields or (name == "schema" and text.lstrip().startswith("{")):
            return json.loads(text, parse_constant=_reject_constant)
        return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
