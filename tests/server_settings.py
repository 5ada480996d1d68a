"""The example project's settings, plus what the real-server feed tests need: anonymous
reads, and processors from ``TROVE_TEST_PROCESSORS`` (JSON)."""

import json
import os

from trove_project.settings import *  # noqa: F403 - settings are module globals
from trove_project.settings import TROVE

TROVE = {
    **TROVE,
    "anonymous_read": True,
    "processors": json.loads(os.environ.get("TROVE_TEST_PROCESSORS", "{}")),
}
