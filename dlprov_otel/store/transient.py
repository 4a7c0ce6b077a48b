"""Telling store failures that go away by retrying from those that never will.

A transaction conflict (MonetDB's optimistic concurrency control: two writers creating one
dataflow's schema, or committing over the same rows) or a lost connection (a server restart)
is transient: writers retry it and never reject the data. Anything else is about the data or
the statement, and is permanent.
"""

from __future__ import annotations

from ..errors import StoreError


class TransientStoreError(StoreError):
    """The store cannot take the write now, but will later: a transaction conflict (MonetDB's
    optimistic concurrency control) or a lost connection. Retry it; never reject the data."""


# MonetDB's messages for optimistic-concurrency conflicts, e.g. "CREATE SCHEMA: transaction
# conflict detected" and "COMMIT: transaction is aborted because of concurrency conflicts"
_CONFLICT_MARKERS = ("transaction conflict", "concurrency conflict")
# pymonetdb's messages for a connection that is gone (besides OSError and its subclasses)
_LOST_MARKERS = ("not connected", "server closed connection", "connection reset", "broken pipe")


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the server is gone."""
    return isinstance(exc, OSError) or any(m in str(exc).lower() for m in _LOST_MARKERS)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure goes away by retrying: a conflict or a lost connection (in the chain)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, TransientStoreError) or lost_connection(e):
            return True
        if any(m in str(e).lower() for m in _CONFLICT_MARKERS):
            return True
        e = e.__cause__ or e.__context__
    return False


def one_line(exc: BaseException) -> str:
    """The last non-empty line of an error message (MonetDB's own message, without its trace)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


__all__ = ["TransientStoreError", "is_transient", "lost_connection", "one_line"]
