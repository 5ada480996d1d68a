"""What makes a write survive a power cut on a POSIX file system, shared by the stores that
write files themselves (the JSON directory, the file-system file store)."""

from __future__ import annotations

import os


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make the names in directory ``path`` durable: a rename or a new file is not, until
    its directory is fsynced."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
