"""The one digest of files the whole project records and looks up.

A file's sha256 is that of its bytes; a folder's (a SavedModel, a dataset folder) is the sha256
of its files in sorted order, each preceded by its path relative to the folder and a NUL. The
integrations record it when a model or data file is saved or read, and ``dlprov lineage PATH``
computes the same to find the runs behind it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Size in bytes and sha256 of a file, or of a folder's files (see the module's text)."""
    p = Path(path)
    is_dir = p.is_dir()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if is_dir else [p]
    h = hashlib.sha256()
    size = 0
    for f in files:
        if is_dir:
            h.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(CHUNK):
                h.update(block)
                size += len(block)
    return size, h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    return file_digest(path)[1]


__all__ = ["file_digest", "sha256_file"]
