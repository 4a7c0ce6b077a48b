"""The one error guard of the integrations (as MLflow autolog's ``safety`` utilities).

A failure of the provenance itself never reaches the training: :func:`guarded` calls a
function and, on an error, :func:`report` logs it once per site (later ones at DEBUG).
In strict mode (``DLPROV_STRICT=1``, or inside ``with strict():``) the error is raised
instead, so tests see every swallowed failure.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger("dlprov_otel.integrations")

STRICT_ENV = "DLPROV_STRICT"
_TRUE = ("1", "true", "yes", "on")

_lock = threading.Lock()
_logged: set[str] = set()  # sites (fixed names), so bounded
_strict_depth = 0


def is_strict() -> bool:
    """True inside :func:`strict` or when ``DLPROV_STRICT`` is set to 1/true/yes/on."""
    return _strict_depth > 0 or os.environ.get(STRICT_ENV, "").strip().lower() in _TRUE


@contextmanager
def strict() -> Iterator[None]:
    """Raise provenance failures in this block instead of logging them (for tests)."""
    global _strict_depth
    with _lock:
        _strict_depth += 1
    try:
        yield
    finally:
        with _lock:
            _strict_depth -= 1


def report(where: str, exc: BaseException) -> None:
    """A provenance failure at ``where``: raised in strict mode, else logged once per site."""
    if is_strict():
        raise exc
    with _lock:
        first = where not in _logged
        _logged.add(where)
    if not first:
        logger.debug("DLProv: %s failed again: %s", where, exc)
        return
    logger.warning(
        "DLProv: recording provenance (%s) failed; training is not affected: %s: %s",
        where,
        type(exc).__name__,
        exc,
        exc_info=logger.isEnabledFor(logging.DEBUG),
    )


def guarded(where: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; on an error :func:`report` it and return ``None``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        report(where, exc)
        return None


def forget_reported() -> None:
    """Log every site's next failure again (tests that count warnings start from here)."""
    with _lock:
        _logged.clear()


__all__ = ["STRICT_ENV", "forget_reported", "guarded", "is_strict", "report", "strict"]
