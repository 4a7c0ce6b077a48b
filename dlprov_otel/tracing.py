"""OpenTelemetry set-up and the spans DLProv-OTel emits.

``configure()`` builds a ``TracerProvider`` with unlimited span attributes, events and links
and the :class:`~dlprov_otel.processor.LosslessSpanProcessor`, exporting either into a store
in this process or over OTLP to a collector. Executions are traces; tasks and dataset
emissions are spans (see the README, "Architecture").
"""

from __future__ import annotations

import atexit
import contextvars
import datetime as dt
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Link, Span, Status, StatusCode

from . import hardware, ranks, recipe, semconv, signals
from .config import env_float
from .errors import SpecError
from .journal import orphans
from .model import Dataflow, normalize_tag
from .pipeline import TRACER_NAME, Telemetry, checkpoint, open_journal, replay_orphans_in_background
from .processor import LosslessSpanProcessor
from .recorder import Recorder, SystemRandomIdGenerator
from .store import drainlock
from .store.schema import CATALOG as CATALOG_TABLES

logger = logging.getLogger(__name__)

_UNLIMITED = SpanLimits(
    max_attributes=SpanLimits.UNSET,
    max_events=SpanLimits.UNSET,
    max_links=SpanLimits.UNSET,
    max_span_attributes=SpanLimits.UNSET,
    max_event_attributes=SpanLimits.UNSET,
    max_link_attributes=SpanLimits.UNSET,
    max_attribute_length=SpanLimits.UNSET,
    max_span_attribute_length=SpanLimits.UNSET,
)


_state: Telemetry | None = None
_state_lock = threading.RLock()
if recipe.enabled():
    recipe.install_seed_hooks()  # at import: scripts seed before their first execution starts


def configure(
    store: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    *,
    service_name: str | None = None,
    headers: dict[str, str] | None = None,
    schedule_delay: float | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Set up OpenTelemetry for provenance and return the pipeline.

    ``store`` (a path or ``monetdb://`` URL) exports in this process; ``endpoint``
    (``http://host:4318``) sends OTLP to a DLProv collector. Without either, ``DLPROV_ENDPOINT``
    or ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` selects OTLP, else ``DLPROV_STORE`` or
    ``./dlprov-data`` is used. ``exporter`` (any OpenTelemetry ``SpanExporter``, such as the
    SDK's ``InMemorySpanExporter`` in tests) takes the place of both: spans go to it through
    the lossless processor and no store is opened. Calling it again replaces the previous
    pipeline.
    """
    global _state
    from .spool import default_spool_dir, quarantine_writer, spool_writer

    with _state_lock:
        if _state is not None:
            shutdown()  # also releases the previous store
        for df in _dataflows.values():
            df.saved_hash = None  # a new pipeline (maybe another store) gets the specs again
        if store is None and endpoint is None and exporter is None:
            endpoint = (
                os.environ.get("DLPROV_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            )
            if endpoint and os.environ.get("DLPROV_STORE"):
                endpoint = None  # an explicit store wins over a generic OTLP endpoint
        resource = Resource.create(
            {
                semconv.SERVICE_NAME: service_name or os.environ.get("OTEL_SERVICE_NAME") or "dlprov",
                **{k: v for k, v in hardware.host_facts().items() if k.startswith(("host.", "os.", "process."))},
            }
        )
        spool = spool_dir or default_spool_dir()
        store_obj = None
        hold = 0.0  # seconds before the first export (a lazy embedded store)
        if exporter is not None:
            target = f"exporter:{type(exporter).__name__}"
        elif endpoint:
            from .otlp import make_otlp_exporter

            exporter = make_otlp_exporter(endpoint, headers=headers)
            target = endpoint
        elif (job := ranks.uses_rank_spool(store)) is not None and job.rank > 0:
            # embedded MonetDB admits one process: ranks > 0 of a job hand spans to rank 0
            exporter = ranks.RankSpoolExporter(job)
            target = f"rank-spool:{exporter.directory}"
        else:
            from .exporter import MonetDBSpanExporter
            from .store import PendingStore, describe

            store_obj = PendingStore(store, lazy=True)  # opens when needed (see dlprov_otel.drain)
            if store_obj.url.startswith("monetdbe:/") and job is None:  # an embedded store of one process
                hold = env_float("DLPROV_STORE_DELAY", 10.0)
            exporter = MonetDBSpanExporter(store=store_obj)
            target = describe(store_obj.url)
        journal = open_journal(spool, target, resource)
        if journal is None:
            hold = 0.0  # nothing could be handed off: export from the start
        if store_obj is not None and hold <= 0:
            store_obj.start()  # a server, memory, rank 0 of a job, no journal or no delay: open now
        processor = LosslessSpanProcessor(
            exporter,
            schedule_delay=schedule_delay if schedule_delay is not None else env_float("DLPROV_SCHEDULE_DELAY", 0.2),
            shutdown_timeout=env_float("DLPROV_SHUTDOWN_TIMEOUT", 30.0),
            max_retry=env_float("DLPROV_RETRY_SECONDS", 300.0),
            spool=spool_writer(spool),
            on_exported=checkpoint(journal) if journal is not None else None,
            quarantine=quarantine_writer(spool),
            journaled=journal is not None,
            hold=hold,
        )
        ids = SystemRandomIdGenerator()
        provider = TracerProvider(
            resource=resource,
            span_limits=_UNLIMITED,
            shutdown_on_exit=False,
            id_generator=ids,
        )
        recorder = Recorder(provider.get_tracer(TRACER_NAME), ids, journal)
        if recorder.journal_processor is not None:
            provider.add_span_processor(recorder.journal_processor)  # first: journalled before anything
        provider.add_span_processor(processor)
        if store_obj is not None and job is not None:
            provider.add_span_processor(
                ranks.RankSpoolIngester(
                    job, store_obj, env_float("DLPROV_RANK_POLL", 0.5), env_float("DLPROV_RANK_WAIT", 120)
                )
            )
        _state = Telemetry(
            provider=provider, processor=processor, target=target, recorder=recorder,
            pending_store=store_obj, exporter=exporter, spool_dir=spool,
        )
        if journal is not None and not target.startswith("exporter:") and (
            store_obj is None or store_obj.started or _orphans_for_this_run(store_obj.url, spool, target)
        ):
            _state.replay = replay_orphans_in_background(spool, target, exporter)
        signals.install(_on_stop_signal)
        if set_global:
            _maybe_set_global(provider)
        return _state


def _orphans_for_this_run(url: str, spool_dir: Any, target: str) -> bool:
    """Journals of stopped processes that this run should store: none while a drainer (the
    previous run's hand-off) holds the store, since it stores them."""
    return bool(orphans(spool_dir, target)) and not drainlock.held_by_drainer(url[len("monetdbe:") :])


def _on_stop_signal(signum: int) -> None:
    """SIGTERM/SIGHUP with the default action: the process ends right after this."""
    signals.run_stop_hooks()
    _end_open_executions(semconv.TERMINATED, f"terminated by {signals.name(signum)}")
    shutdown(at_exit=True)


_provider_tracer: trace.Tracer | None = None


def use_tracer_provider(provider: trace.TracerProvider | None) -> None:
    """Record DLProv's spans with ``provider`` (an instrumentor's ``tracer_provider``, as
    OpenTelemetry's instrumentations honour it) instead of DLProv's own pipeline; ``None``
    goes back to the pipeline. That provider's processors then decide where spans go (no
    journal: it is part of DLProv's pipeline)."""
    global _provider_tracer
    _provider_tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None


def current_tracer() -> trace.Tracer:
    """The tracer DLProv's spans are recorded with now."""
    return _provider_tracer if _provider_tracer is not None else telemetry().tracer


def _maybe_set_global(provider: TracerProvider) -> None:
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)


def telemetry() -> Telemetry:
    """The configured pipeline, configuring it from the environment on first use."""
    with _state_lock:
        return _state if _state is not None else configure()


def shutdown(*, at_exit: bool = False) -> None:
    """End open executions, export everything and close the pipeline (``at_exit``: the
    process ends next; a lazy embedded store never opened is left to a drainer)."""
    global _state
    with _state_lock:
        if _state is not None:
            _end_open_executions()
            _state.shutdown(at_exit=at_exit)
            if _state.pending_store is not None:
                _state.pending_store.close()
            _state = None


def _at_exit() -> None:
    shutdown(at_exit=True)
    signals.exit_as_interrupted()


atexit.register(_at_exit)


# --- dataflows -----------------------------------------------------------------------------
_dataflows: dict[str, Dataflow] = {}


def register_dataflow(df: Dataflow) -> None:
    _dataflows[df.tag] = df


def lookup_dataflow(tag_or_df: Any) -> Dataflow:
    if isinstance(tag_or_df, Dataflow):
        _dataflows.setdefault(tag_or_df.tag, tag_or_df)
        return tag_or_df
    tag = normalize_tag(tag_or_df, "dataflow tag")
    try:
        return _dataflows[tag]
    except KeyError:
        raise SpecError(
            f"dataflow {tag!r} is not defined in this process: create Dataflow({tag!r}, predefined=True) "
            "(or with your transformations) and call save() first"
        ) from None


def emit_dataflow(df: Dataflow) -> None:
    """Send the dataflow specification as a span of its own (a new version if it changed)."""
    spec = df.to_spec()
    clash = sorted(set(spec.sets) & set(CATALOG_TABLES))
    if clash:
        raise SpecError(
            f"set tag(s) {', '.join(map(repr, clash))} of dataflow {df.tag!r} are names of DLProv's catalog "
            "tables; choose other tags"
        )
    register_dataflow(df)
    if df.saved_hash == spec.hash:
        return
    attrs = {
        semconv.KIND: semconv.KIND_DATAFLOW,
        semconv.DATAFLOW_TAG: df.tag,
        semconv.DATAFLOW_SPEC: spec.to_json(),
        semconv.DATAFLOW_SPEC_HASH: spec.hash,
    }
    span = current_tracer().start_span(f"dataflow {df.tag}", context=otel_context.Context(), attributes=attrs)
    span.end()
    df.saved_hash = spec.hash


# --- executions ----------------------------------------------------------------------------
class Execution:
    """One run of a dataflow: a trace whose root span lasts as long as the run."""

    def __init__(self, tag: str, dataflow: str, name: str | None = None) -> None:
        self.tag = str(tag)
        self.dataflow = dataflow
        self.name = run_name(name)
        self.span: Span | None = None
        self.context: otel_context.Context | None = None
        self.status = semconv.RUNNING
        self._lock = threading.Lock()
        self.recipe: recipe.RecipeRecorder | None = None

    def attributes(self) -> dict[str, Any]:
        return {
            semconv.EXECUTION_TAG: self.tag,
            semconv.DATAFLOW_TAG: self.dataflow,
            **ranks.rank_attributes(),
        }

    def start(self) -> Execution:
        with self._lock:
            if self.span is not None:
                return self
            tracer = current_tracer()
            attrs = {
                **self.attributes(),
                **({semconv.EXECUTION_NAME: self.name} if self.name else {}),
                semconv.EXECUTION_SCIENTIST: hardware.scientist(),
                **hardware.hardware_attributes(),
            }
            self.span = tracer.start_span(
                f"execution {self.dataflow}",
                context=ranks.root_context(self.tag),  # shared by all ranks of a job
                attributes={semconv.KIND: semconv.KIND_EXECUTION, **attrs},
            )
            self.context = trace.set_span_in_context(self.span, otel_context.Context())
            marker = tracer.start_span(
                "execution.start",
                context=self.context,
                attributes={
                    semconv.KIND: semconv.KIND_EXECUTION_START,
                    semconv.EXECUTION_STATUS: semconv.RUNNING,
                    **attrs,
                },
            )
            marker.end()
            self.recipe = _record_recipe(self)
            return self

    def end(self, status: str | None = None, error: BaseException | str | None = None) -> None:
        """End the run: FINISHED, or FAILED when ``error`` is given, or TERMINATED when a stop
        signal (SIGTERM, SIGHUP, SIGINT) is what ends it."""
        if status is None and signals.received is not None and (
            error is None or isinstance(error, KeyboardInterrupt | SystemExit)
        ):
            status = semconv.TERMINATED
            how = f"terminated by {signals.name(signals.received)}"
            error = f"{how} ({_error_text(error)})" if error is not None else how
        with self._lock:
            if self.span is None or not self.span.is_recording():
                return
            if self.recipe is not None:
                self.recipe.end()  # packages imported and seeds set since the start
            self.status = status or (semconv.FAILED if error else semconv.FINISHED)
            self.span.set_attribute(semconv.EXECUTION_STATUS, self.status)
            if error is not None:
                self.span.set_attribute(semconv.EXECUTION_ERROR, _error_text(error))
                self.span.set_status(Status(StatusCode.ERROR, _error_text(error)))
                if isinstance(error, BaseException):
                    self.span.record_exception(error)
            self.span.end()
        _executions.pop(self.tag, None)

    def __enter__(self) -> Execution:
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.end(error=exc)


def _record_recipe(ex: Execution) -> recipe.RecipeRecorder | None:
    """Start recording the recipe of ``ex`` (code, environment, seeds) as ``recipe`` spans."""
    if not recipe.enabled():
        return None

    def emit(entries: list[recipe.Entry], phase: str) -> None:
        # From the recipe's thread too, while shutdown() may hold the state lock and wait for
        # it: no lock taken here, and never a new pipeline configured from here.
        attrs = {**recipe.attributes(entries, phase), **ex.attributes()}
        if _provider_tracer is not None:
            _provider_tracer.start_span("execution.recipe", context=ex.context, attributes=attrs).end()
        elif (state := _state) is not None:
            state.recorder.emit(trace.get_current_span(ex.context).get_span_context(), "execution.recipe", attrs)

    try:
        rec = recipe.RecipeRecorder(emit)
        rec.start()
        return rec
    except Exception:  # the recipe never breaks training
        logger.debug("DLProv: recording the recipe of %s failed", ex.tag, exc_info=True)
        return None


_executions: dict[str, Execution] = {}
_executions_lock = threading.Lock()


CURRENT_EXECUTION: contextvars.ContextVar[Execution | None] = contextvars.ContextVar("dlprov_execution", default=None)
_auto_tags: dict[str, str] = {}


def default_execution_tag(dataflow: str) -> str:
    """``<dataflow>-<UTC date>-<UTC time>-<4 hex>`` (``mnist-20261130-225208-3f2a``): a name
    people can type and a file name as it is, no spaces or colons; the random suffix keeps two
    runs started in the same second apart."""
    return f"{dataflow}-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"



def run_name(name: str | None = None) -> str | None:
    """The run's name: ``name``, else ``$DLPROV_RUN_NAME``, else none."""
    name = name if name is not None else os.environ.get("DLPROV_RUN_NAME")
    return (name.strip() or None) if name else None


def current_execution_tag(dataflow: str) -> str:
    """The execution in scope, else one per dataflow and process (created on first use)."""
    ex = CURRENT_EXECUTION.get()
    if ex is not None:
        return ex.tag
    if dataflow not in _auto_tags:
        # all ranks of a multi-process job share one execution
        _auto_tags[dataflow] = ranks.job_execution_tag(dataflow) or default_execution_tag(dataflow)
    return _auto_tags[dataflow]


def current_execution() -> Execution | None:
    """The execution whose block (``dlprov_otel.execution(...)``) encloses this code."""
    return CURRENT_EXECUTION.get()


def execution_for(tag: Any, dataflow: str, name: str | None = None) -> Execution:
    """The running execution with this tag, started on first use (named ``name``, else
    ``$DLPROV_RUN_NAME``)."""
    key = str(tag)
    with _executions_lock:
        ex = _executions.get(key)
        if ex is None:
            ex = _executions[key] = Execution(key, dataflow, name)
    return ex.start()


def open_executions() -> list[Execution]:
    return list(_executions.values())


def _end_open_executions(status: str | None = None, error: str | None = None) -> None:
    for ex in list(_executions.values()):
        try:
            ex.end(status, error)
        except Exception:  # never fail an interpreter exit
            logger.debug("ending execution %s failed", ex.tag, exc_info=True)


def _error_text(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


# --- tasks and datasets -----------------------------------------------------------------------
def start_task_span(
    execution: Execution,
    transformation: str,
    task_id: str,
    dependencies: Sequence[tuple[str, str, Span | None]] = (),
) -> tuple[Span, otel_context.Context, dict[str, Any]]:
    """Start a task span under its execution; returns the span, its context and its attributes."""
    common = {
        semconv.EXECUTION_TAG: execution.tag,
        semconv.DATAFLOW_TAG: execution.dataflow,
        semconv.TRANSFORMATION_TAG: transformation,
        semconv.TASK_ID: task_id,
        **ranks.rank_attributes(),
    }
    links = [Link(span.get_span_context()) for _, _, span in dependencies if span is not None]
    attrs = {
        semconv.KIND: semconv.KIND_TASK,
        **common,
        semconv.TASK_DEPENDENCIES: [d[0] for d in dependencies],
        semconv.TASK_DEPENDENCY_TRANSFORMATIONS: [d[1] for d in dependencies],
    }
    tracer = current_tracer()
    span = tracer.start_span(transformation, context=execution.context, attributes=attrs, links=links)
    ctx = trace.set_span_in_context(span, execution.context)
    marker = tracer.start_span(
        f"{transformation}.state",
        context=ctx,
        attributes={semconv.KIND: semconv.KIND_TASK_STATE, semconv.TASK_STATUS: semconv.RUNNING, **common},
    )
    marker.end()
    return span, ctx, common


def emit_dataset_span(ctx: otel_context.Context, name: str, attributes: dict[str, Any]) -> None:
    """A dataset emission: a short span, child of its task, that ends at once. It is
    journalled here and built as a span off this thread."""
    if _provider_tracer is not None:  # an instrumentor's own tracer_provider: its processors decide
        _provider_tracer.start_span(name, context=ctx, attributes=attributes).end()
        return
    telemetry().recorder.emit(trace.get_current_span(ctx).get_span_context(), name, attributes)

