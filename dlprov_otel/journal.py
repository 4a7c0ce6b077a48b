"""The local append-only journal: the durable boundary of provenance.

Every span of a process is appended, as one compact record, to a per-process journal file
before anything else happens to it: dataset emissions on the calling thread, other spans when
they end. A record is a ``marshal`` copied into a shared memory map of the file (no system
call, and the GIL is kept: the bytes are in the page cache and survive the death of the
process, SIGKILL included). The file grows ahead of the writer by ``posix_fallocate``, so the
blocks are reserved before a byte is copied: a full disk is an error at the call that needs
more space (said once, the spans then kept in memory), never a ``SIGBUS``. Where
``posix_fallocate`` is missing, each record is one ``os.write`` to an ``O_APPEND`` file. Spans are then
built and exported off the training thread. A checkpoint file says up to where the store
or collector has committed; a journal is deleted only after its spans have been read back
from the store (or acknowledged by the collector, which acknowledges after commit).

A journal whose process is gone (its ``flock`` is free) and that is not fully committed is
replayed automatically: by the next DLProv process that opens the same store or talks to
the same endpoint, and by ``dlprov replay``.

File layout, under ``<spool dir>/journal/<target key>/``::

    <host>-<pid>-<random>.jnl     frames: 4-byte little-endian length + marshal payload,
                                  then zeros where the file was reserved ahead (a length of 0
                                  ends the records; a closed journal is cut at its last frame)
    <host>-<pid>-<random>.ckpt    the byte offset below which every record is committed

Records are tuples: ``("h", version, target, pid, resource attributes, created ns)`` first,
then ``("s", trace_id, span_id, parent_span_id, name, start ns, end ns, attributes,
status code, status description, links)`` per span. A row of a running task (the hot path of
``t.output``) is written compactly: its constant attributes once per set and task as
``("p", plan number, name, constant attributes, data keys, numeric flags)``, then
``("r", trace_id, span_id, parent_span_id, time ns, plan number, values)`` per row
(:func:`expand_row` makes the span's attributes from both).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import marshal
import mmap
import os
import re
import secrets
import socket
import struct
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from .errors import DiskFullError, DLProvError

logger = logging.getLogger(__name__)

VERSION = 1
_LEN = struct.Struct("<I")


def _put_length_by_slice(buffer: Any, offset: int, n: int) -> None:
    buffer[offset : offset + 4] = _LEN.pack(n)


# put_length(map, offset, n): a record's length into the map as one 4-byte store (the native
# format copies it whole; "<I" would write it a byte at a time), where native is "<I"
put_length = (
    struct.Struct("@I").pack_into
    if sys.byteorder == "little" and struct.calcsize("@I") == 4
    else _put_length_by_slice
)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SCOPE = InstrumentationScope("dlprov_otel")
SpanKey = tuple[int, int]  # (trace id, span id)
MAPPED = hasattr(os, "posix_fallocate") and hasattr(mmap, "MAP_SHARED")
GROW_MIN = 64 * 1024  # bytes reserved ahead of the writer at least (a multiple of the page size)
GROW_MAX = 16 * 1024 * 1024  # and at most beyond what the journal holds


def target_key(target: str) -> str:
    """A directory name for a store URL or an endpoint (readable prefix + hash)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target)[-40:].strip("_") or "target"
    return f"{safe}-{hashlib.sha256(target.encode()).hexdigest()[:12]}"


def journal_root(spool_dir: str | os.PathLike[str]) -> Path:
    return Path(spool_dir) / "journal"


def _disk_error(exc: OSError, path: Path) -> DLProvError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"disk full: cannot write the provenance journal {path} ({exc.strerror})")
    return DLProvError(f"cannot write the provenance journal {path}: {exc}")


class Journal:
    """The journal of this process for one target (a store URL or an endpoint)."""

    def __init__(self, spool_dir: str | os.PathLike[str], target: str, resource: Resource | None = None) -> None:
        self.target = target
        self.directory = journal_root(spool_dir) / target_key(target)
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', socket.gethostname())[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = self.directory / f"{name}.jnl"
        self.checkpoint_path = self.directory / f"{name}.ckpt"
        self.mapped = MAPPED
        flags = os.O_RDWR | os.O_CREAT if self.mapped else os.O_WRONLY | os.O_CREAT | os.O_APPEND
        # made under another name, locked, then renamed: no other process's scan for orphan
        # journals (which probes or claims every unlocked *.jnl) can see it unlocked
        creating = self.path.with_suffix(".jnl.new")
        self._fd = os.open(creating, flags, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "alive": replay skips locked files
            os.rename(creating, self.path)
        except OSError:
            os.close(self._fd)
            with contextlib.suppress(OSError):
                creating.unlink()
            raise
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None  # the file, shared, up to _end (reserved)
        self._end = 0
        self._offset = 0
        self._uncommitted: dict[SpanKey, int] = {}  # span -> offset of its record, in append order
        self._checkpoint = 0
        self._pid = os.getpid()
        self._plans = 0
        self.records = 0
        self.committed = 0
        self.failed_writes = 0
        self.closed = False
        self.error: str | None = None
        attrs = dict(resource.attributes) if resource is not None else {}
        self._append(("h", VERSION, target, self._pid, attrs, 0), None)
        self._checkpoint = self._offset
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    # -- writing (the caller's thread) ------------------------------------------------------
    def append_span(
        self,
        trace_id: int,
        span_id: int,
        parent_id: int,
        name: str,
        start: int,
        end: int,
        attributes: dict[str, Any],
        status: tuple[int, str | None] = (0, None),
        links: tuple[SpanKey, ...] = (),
    ) -> bool:
        """Append one ended span; False when the journal could not be written (counted)."""
        return self._append(
            ("s", trace_id, span_id, parent_id, name, start, end, attributes, status[0], status[1], links),
            (trace_id, span_id),
        )

    def append_readable(self, span: ReadableSpan) -> bool:
        ctx = span.context
        parent = span.parent.span_id if span.parent is not None else 0
        links = tuple((lk.context.trace_id, lk.context.span_id) for lk in span.links)
        status = (int(span.status.status_code.value), span.status.description)
        return self.append_span(
            ctx.trace_id, ctx.span_id, parent, span.name, span.start_time or 0, span.end_time or 0,
            dict(span.attributes or {}), status, links,
        )

    def add_plan(self, name: str, head: dict[str, Any], keys: tuple[str, ...], numeric: tuple[bool, ...]) -> int:
        """Journal the constant part of rows (see :func:`expand_row`); returns its number for
        :meth:`row_sink` (-1 when it could not be written: rows then go as whole spans)."""
        with self._lock:
            number = self._plans
            self._plans += 1
        return number if self._append(("p", number, name, head, keys, numeric), None) else -1

    def row_sink(self) -> tuple[threading.Lock, dict[SpanKey, int]] | None:
        """(lock, uncommitted spans) for the caller that appends ``"r"`` records itself
        (``Recorder.row_recorder``: one frame on the hot path); None when the journal is not
        memory-mapped (records then go through :meth:`append_payload`). Under the lock, unless
        ``closed``: with ``off = _offset`` and ``end = off + 4 + len(payload)``, space up to
        ``end`` (``end <= _end`` or :meth:`_grow`), the payload copied into ``_map`` at
        ``off + 4`` and then its length at ``off`` (so a record whose length is there is
        whole), the span's offset into the uncommitted spans, ``_offset = end`` and
        ``records`` counted."""
        return (self._lock, self._uncommitted) if self.mapped else None

    def append_payload(self, data: bytes, key: SpanKey) -> bool:
        """Append one record already marshalled (``data``) for span ``key``."""
        if self.closed or os.getpid() != self._pid:
            return False
        return self._put(data, key)

    def _grow(self, end: int) -> bool:
        """Reserve the file up to at least ``end`` and map it (under the lock); False (counted,
        said once) when the disk cannot give the space."""
        size = self._end
        want = max(end + GROW_MIN, min(2 * size, size + GROW_MAX))
        want += -want % GROW_MIN
        least = end + (-end % mmap.PAGESIZE)
        error = OSError("no space")
        for target in (want, least) if least < want else (want,):
            try:
                os.posix_fallocate(self._fd, size, target - size)
                new = mmap.mmap(self._fd, target, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError as exc:
                error = exc
                if self._map is None and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    break
                continue
            old, self._map, self._end = self._map, new, target
            if old is not None:
                old.close()
            return True
        if self._map is None and error.errno not in (errno.ENOSPC, errno.EDQUOT):
            # this file system cannot reserve or map the journal: plain appends (see _put)
            logger.debug("DLProv: journal %s not memory-mapped (%s)", self.path, error)
            self.mapped = False
            fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) | os.O_APPEND)
            return False
        self._write_failed(error)
        return False

    def _finish(self, frame: bytes, written: int) -> bool:
        """A short write (disk full mid-record): finish it, or fail."""
        rest = frame[written:]
        try:
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        except OSError as exc:
            self._write_failed(exc)
            return False
        return True

    def _write_failed(self, exc: OSError) -> None:
        self.failed_writes += 1
        if self.error is None:
            self.error = str(_disk_error(exc, self.path))
            logger.error("DLProv: %s; spans are kept in memory and exported", self.error)

    def _append(self, record: tuple, key: SpanKey | None) -> bool:
        if self.closed or os.getpid() != self._pid:
            return False
        return self._put(marshal.dumps(record), key)

    def _put(self, data: bytes, key: SpanKey | None) -> bool:
        if self.mapped:
            with self._lock:
                if self.closed:
                    return False
                off = self._offset
                end = off + _LEN.size + len(data)
                if end <= self._end or self._grow(end):
                    m = self._map
                    m[off + _LEN.size : end] = data  # the payload first, then its length
                    put_length(m, off, len(data))
                    if key is not None:
                        self._uncommitted[key] = off
                    self._offset = end
                    self.records += 1
                    return True
                if self.mapped:
                    return False
        frame = _LEN.pack(len(data)) + data
        with self._lock:
            if self.closed:
                return False
            try:
                written = os.write(self._fd, frame)
            except OSError as exc:
                self._write_failed(exc)
                return False
            if written != len(frame) and not self._finish(frame, written):
                return False
            if key is not None:
                self._uncommitted[key] = self._offset
            self._offset += len(frame)
            self.records += 1
        return True

    # -- checkpoint (the export thread) -----------------------------------------------------
    def commit(self, keys: Sequence[SpanKey]) -> None:
        """These spans are stored: advance the checkpoint past every committed prefix."""
        with self._lock:
            for k in keys:
                if self._uncommitted.pop(k, None) is not None:
                    self.committed += 1
            first = next(iter(self._uncommitted.values()), None)
            checkpoint = self._offset if first is None else first
            if checkpoint == self._checkpoint:
                return
            self._checkpoint = checkpoint
        self._write_checkpoint(checkpoint)

    @property
    def pending(self) -> int:
        return len(self._uncommitted)

    @property
    def offset(self) -> int:
        """Where the next record will be written."""
        return self._offset

    def committed_below(self, offset: int) -> bool:
        """Every span journalled before byte ``offset`` is committed."""
        with self._lock:
            first = next(iter(self._uncommitted.values()), None)
        return first is None or first >= offset

    def _write_checkpoint(self, offset: int) -> None:
        tmp = self.checkpoint_path.with_suffix(".ckpt.tmp")
        try:
            tmp.write_text(str(offset))
            os.replace(tmp, self.checkpoint_path)
        except OSError as exc:  # the checkpoint is an optimisation: replay is idempotent
            logger.debug("journal checkpoint not written: %s", exc)

    def close(self, *, delete: bool) -> None:
        """Close; ``delete`` only when every span was read back from the store."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._map is not None:
                with contextlib.suppress(OSError, BufferError):
                    self._map.close()
                self._map = None
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._offset)  # what was reserved ahead goes
            with contextlib.suppress(OSError):
                os.close(self._fd)
        if delete and not self._uncommitted:
            for p in (self.path, self.checkpoint_path):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    def _after_fork_in_child(self) -> None:
        self.closed = True  # a forked worker (DataLoader) never writes into its parent's journal


def expand_row(plan: tuple, values: tuple) -> dict[str, Any]:
    """The attributes of a row's dataset span: the plan's constant attributes, then one
    one-value list per data key (ints of numeric attributes as floats)."""
    _, _, _, head, keys, numeric = plan
    attrs = dict(head)
    for key, num, value in zip(keys, numeric, values, strict=True):
        attrs[key] = [float(value) if num and type(value) is int else value]
    return attrs


# --- reading and replay -------------------------------------------------------------------
def read_records(path: Path, start: int = 0) -> Iterator[tuple]:
    """The records of a journal from byte ``start``; a torn last record is ignored."""
    for _, rec in _records_at(path, start):
        yield rec


def _records_at(path: Path, start: int = 0) -> Iterator[tuple[int, tuple]]:
    data = path.read_bytes()
    pos = start
    while pos + _LEN.size <= len(data):
        (n,) = _LEN.unpack_from(data, pos)
        if n == 0:
            break  # space reserved ahead of the writer: no record from here on
        end = pos + _LEN.size + n
        if end > len(data):
            break  # the process died inside this write
        try:
            yield pos, marshal.loads(data[pos + _LEN.size : end])
        except (EOFError, ValueError, TypeError):
            logger.warning("DLProv: a damaged record in %s at byte %d was skipped", path, pos)
        pos = end


def _checkpoint_of(path: Path) -> int:
    try:
        return int(path.with_suffix(".ckpt").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def to_readable(record: tuple, resource: Resource) -> ReadableSpan:
    """A journal span record as the SDK's ``ReadableSpan`` (what exporters take)."""
    _, trace_id, span_id, parent_id, name, start, end, attrs, code, desc, links = record
    ctx = SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)
    parent = SpanContext(trace_id, parent_id, is_remote=False, trace_flags=_SAMPLED) if parent_id else None
    return ReadableSpan(
        name=name,
        context=ctx,
        parent=parent,
        resource=resource,
        attributes=attrs,
        links=[Link(SpanContext(t, s, is_remote=False, trace_flags=_SAMPLED)) for t, s in links],
        status=Status(StatusCode(code), desc) if code else Status(StatusCode.UNSET),
        start_time=start,
        end_time=end,
        instrumentation_scope=_SCOPE,
    )


def span_record(rec: tuple, plans: dict[int, tuple]) -> tuple:
    """A row record (``"r"``) as the span record (``"s"``) it stands for; others unchanged."""
    if rec[0] != "r":
        return rec
    _, trace_id, span_id, parent_id, ts, plan_no, values = rec
    plan = plans[plan_no]
    return ("s", trace_id, span_id, parent_id, plan[2], ts, ts, expand_row(plan, values), 0, None, ())


def load(path: Path, *, from_checkpoint: bool = True) -> tuple[str | None, list[ReadableSpan]]:
    """(target, spans not yet checkpointed) of one journal file."""
    resource = Resource.get_empty()
    target: str | None = None
    spans: list[ReadableSpan] = []
    header_seen = False
    plans: dict[int, tuple] = {}
    start = _checkpoint_of(path) if from_checkpoint else 0
    for pos, rec in _records_at(path):  # headers and plans before the checkpoint count too
        if not rec:
            continue
        kind = rec[0]
        if kind == "h" and not header_seen:
            target, resource, header_seen = rec[2], Resource(rec[4]), True
        elif kind == "p":
            plans[rec[1]] = rec
        elif pos >= start and kind in ("s", "r"):
            try:
                spans.append(to_readable(span_record(rec, plans), resource))
            except (KeyError, ValueError, TypeError):
                logger.warning("DLProv: a damaged record in %s at byte %d was skipped", path, pos)
    return target, spans


def span_keys(path: Path) -> list[SpanKey]:
    """(trace id, span id) of every span a journal holds, without building the spans."""
    return [(rec[1], rec[2]) for rec in read_records(path) if rec and rec[0] in ("s", "r")]


def orphans(spool_dir: str | os.PathLike[str], target: str | None = None) -> list[Path]:
    """Journals whose process is gone (their lock is free), for one target or all."""
    root = journal_root(spool_dir)
    dirs = [root / target_key(target)] if target is not None else [d for d in root.glob("*") if d.is_dir()]
    found = []
    for d in dirs:
        for path in sorted(d.glob("*.jnl")):
            if _unlocked(path):
                found.append(path)
    return found


def _unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    for p in (path, path.with_suffix(".ckpt")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
