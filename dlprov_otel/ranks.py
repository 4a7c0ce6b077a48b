"""Multi-process jobs (torchrun, SLURM, MPI): one job is one execution.

Every rank of a job derives the same execution tag (dataflow, script and the launcher's run
id) and starts its execution span under the same deterministic remote parent, so all ranks
share one trace; ``rank_attributes()`` puts the rank on every span.

Embedded MonetDB admits one process, so when a job with ``WORLD_SIZE > 1`` exports into an
embedded store, only rank 0 opens it. The other ranks write their spans as OTLP files into a
shared job directory (``<spool dir>/ranks/<run id>/``, see :func:`job_dir`) and rank 0 ingests
them into the store while the job runs (every ``DLPROV_RANK_POLL`` seconds, default 0.5) and,
at its shutdown, waits for every other rank to finish (``DLPROV_RANK_WAIT`` seconds, default
120) before ingesting the rest. Files that rank 0 could not ingest (it died first) stay
there: ``dlprov replay --spool-dir <job dir>`` stores them later. A MonetDB server or an OTLP
collector needs none of this: every rank writes to it directly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import semconv

logger = logging.getLogger(__name__)

_DONE_SUFFIX = ".done"


@dataclass(frozen=True)
class Job:
    """This process's place in a multi-process job."""

    rank: int
    world_size: int
    run_id: str  # the launcher's id of the job, the same on every rank

    @property
    def key(self) -> str:
        """``run_id`` as a safe directory name."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.run_id)[:100] or "job"


def rank_attributes() -> dict[str, int]:
    """Rank and world size of a distributed job (torchrun, SLURM, MPI), when there is one."""
    env = os.environ
    rank = env.get("RANK") or env.get("SLURM_PROCID") or env.get("OMPI_COMM_WORLD_RANK")
    world = env.get("WORLD_SIZE") or env.get("SLURM_NTASKS") or env.get("OMPI_COMM_WORLD_SIZE")
    if rank is None or world is None:
        return {}
    try:
        return {semconv.RANK: int(rank), semconv.WORLD_SIZE: int(world)}
    except ValueError:
        return {}


def current_job() -> Job | None:
    """The job this process is a rank of, when ``WORLD_SIZE`` (or SLURM/MPI) says > 1."""
    ranks = rank_attributes()
    world = ranks.get(semconv.WORLD_SIZE, 1)
    if world <= 1:
        return None
    return Job(rank=ranks[semconv.RANK], world_size=world, run_id=_run_id())


def _run_id() -> str:
    env = os.environ
    run = env.get("TORCHELASTIC_RUN_ID", "")
    if run and run.lower() != "none":  # torchrun's default --rdzv-id is the word "none"
        return f"{run}-{env.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm-{env['SLURM_JOB_ID']}-{env.get('SLURM_STEP_ID', '0')}"
    if env.get("OMPI_MCA_orte_hnp_uri") or env.get("PMIX_NAMESPACE"):
        return env.get("PMIX_NAMESPACE") or env["OMPI_MCA_orte_hnp_uri"]
    # Without a run id (torchrun --rdzv-id left at "none"): the rendezvous address and the
    # launcher's pid tell one job on one node apart from the next.
    seed = f"{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}:{os.getppid()}"
    return "job-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def is_launcher() -> bool:
    """True in a launcher that starts ranks (``torchrun``, ``python -m torch.distributed.run``).

    Such a process records nothing itself but, under ``opentelemetry-instrument torchrun``,
    would otherwise open (and lock) the embedded store its rank 0 needs.
    """
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if argv0 == "torchrun":
        return True
    path = Path(sys.argv[0]).as_posix() if sys.argv and sys.argv[0] else ""
    return path.endswith(("torch/distributed/run.py", "torch/distributed/launch.py"))


def job_execution_tag(dataflow: str) -> str | None:
    """The execution tag all ranks of the current job share, or ``None`` outside a job."""
    job = current_job()
    if job is None:
        return None
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"
    return f"{dataflow}-{script}-{job.key}"  # no spaces or colons, as default tags


def root_context(execution_tag: str) -> otel_context.Context:
    """Parent context of an execution's root span: empty, or shared by all ranks of a job.

    In a job, every rank parents its execution span on the same remote span whose trace and
    span ids are derived from the tag, so the whole job is one trace.
    """
    if current_job() is None:
        return otel_context.Context()
    digest = hashlib.sha256(f"dlprov-job:{execution_tag}".encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    parent = trace.SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent), otel_context.Context())


def job_dir(job: Job) -> Path:
    """``DLPROV_RANK_DIR``, else ``<spool dir>/ranks/<run id>``: where ranks > 0 write spans."""
    from .spool import default_spool_dir

    env = os.environ.get("DLPROV_RANK_DIR")
    return Path(env) if env else default_spool_dir() / "ranks" / job.key


def uses_rank_spool(store: object) -> Job | None:
    """The job when this process is part of one and ``store`` names an embedded store."""
    from .store import normalize_url

    job = current_job()
    if job is None:
        return None
    try:
        url = normalize_url(store if store is None else os.fspath(store))  # type: ignore[arg-type]
    except Exception:
        return None
    return job if url.startswith("monetdbe:") and url != "monetdbe::memory:" else None


class RankSpoolExporter(SpanExporter):
    """Exporter of a rank > 0: each batch becomes an OTLP file in the job directory."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.directory = job_dir(job)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.files = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from . import spool

        try:
            spool.write(spool.encode(spans), self.directory)
        except Exception as exc:
            logger.error("DLProv: rank %d cannot write spans to %s: %s", self.job.rank, self.directory, exc)
            return SpanExportResult.FAILURE
        self.files += 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        # Written after the processor exported everything: rank 0 waits for this marker.
        marker = self.directory / f"rank-{self.job.rank}{_DONE_SUFFIX}"
        try:
            marker.write_text(f"{os.getpid()} {time.time()}\n")
        except OSError as exc:
            logger.error("DLProv: rank %d cannot write %s: %s", self.job.rank, marker, exc)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class RankSpoolIngester(SpanProcessor):
    """On rank 0: ingests the other ranks' span files into the store, online and at the end.

    Added to the provider after the exporting processor, so its ``shutdown`` runs once
    rank 0's own spans are stored and before the store is closed.
    """

    def __init__(self, job: Job, store: object, poll: float = 0.5, wait: float = 120.0) -> None:
        self.job = job
        self.store = store
        self.directory = job_dir(job)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.poll = poll
        self.wait = wait
        self.spans = 0
        self.files = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._warned = False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="dlprov-rank-ingest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.ingest_pending()

    def ingest_pending(self) -> int:
        """Store every complete file now in the job directory; returns the spans stored."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        from .records import from_otlp
        from .spool import pending

        stored = 0
        with self._lock:
            for path in pending(self.directory):
                try:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(path.read_bytes())
                    records = from_otlp(request)
                    store = self.store.result() if hasattr(self.store, "result") else self.store  # PendingStore
                    store.ingest(records)  # type: ignore[attr-defined]
                except Exception as exc:  # keep the file for `dlprov replay`, go on with the rest
                    if not self._warned:
                        self._warned = True
                        logger.error("DLProv: cannot ingest rank spans from %s: %s", path, exc)
                    continue
                path.unlink()
                stored += len(records)
                self.files += 1
            self.spans += stored
        return stored

    def _done_ranks(self) -> set[int]:
        done = set()
        for p in self.directory.glob(f"rank-*{_DONE_SUFFIX}"):
            try:
                done.add(int(p.name[len("rank-") : -len(_DONE_SUFFIX)]))
            except ValueError:
                continue
        return done

    def shutdown(self) -> None:
        if os.getpid() != self._pid or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        others = set(range(1, self.job.world_size))
        deadline = time.monotonic() + self.wait
        while not others <= self._done_ranks() and time.monotonic() < deadline:
            self.ingest_pending()
            time.sleep(0.1)
        self.ingest_pending()
        missing = sorted(others - self._done_ranks())
        if missing:
            logger.warning(
                "DLProv: ranks %s did not finish within %.0f s; their remaining spans stay in %s "
                "(store them later with `dlprov replay --spool-dir %s`)",
                missing,
                self.wait,
                self.directory,
                self.directory,
            )
            return
        for p in self.directory.glob(f"rank-*{_DONE_SUFFIX}"):
            p.unlink(missing_ok=True)
        try:
            self.directory.rmdir()
        except OSError:
            pass  # files that could not be ingested stay for replay

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.ingest_pending()
        return True

    def on_start(self, span, parent_context=None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        return None
