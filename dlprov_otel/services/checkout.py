"""Finding the files of a development service: an explicit setting, else the checkout, else a clear error."""

from __future__ import annotations

import os
from pathlib import Path

from dlprov_otel.errors import DLProvError

# The checkout this package runs from (editable install), if it is one: the folder above dlprov_otel/.
_CHECKOUT = Path(__file__).resolve().parents[2]


class ServiceFilesNotFound(DLProvError, RuntimeError):
    """The folder a development service needs is neither set nor in a checkout."""


def checkout_folder(setting: str, relative: str, marker: str) -> Path:
    """``$setting``, else ``<checkout>/relative`` when it holds ``marker``; else :class:`ServiceFilesNotFound`."""
    value = os.environ.get(setting)
    if value:
        return Path(value).expanduser()
    candidate = _CHECKOUT / relative
    if (candidate / marker).is_file():
        return candidate
    raise ServiceFilesNotFound(
        f"{relative}/ of a dlprov-otel checkout is needed and was not found: set {setting} to that folder"
    )
