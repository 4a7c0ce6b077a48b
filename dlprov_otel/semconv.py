"""Semantic conventions: every span name, span attribute and resource key DLProv-OTel uses.

Everything lives under ``dlprov.``; OpenTelemetry's own conventions (``service.*``,
``host.*``, ``os.*``, ``process.*``) are reused where they fit. Nothing else in the code
base spells one of these strings.
"""

from __future__ import annotations

import re

# --- what a span stands for (value of KIND) -------------------------------------------------
KIND = "dlprov.span.kind"
KIND_DATAFLOW = "dataflow"  # the dataflow specification (prospective provenance)
KIND_EXECUTION = "execution"  # root span of a run: ends with the run
KIND_EXECUTION_START = "execution.start"  # short marker: the run exists and is RUNNING
KIND_TASK = "task"  # one task of a transformation: ends with the task
KIND_TASK_STATE = "task.state"  # short marker: a task changed state (RUNNING) while running
KIND_DATASET = "dataset"  # one emission of a dataset: ends at once
KIND_RECIPE = "recipe"  # part of the recipe of a run (code, environment, seeds): ends at once

# --- dataflow ------------------------------------------------------------------------------
DATAFLOW_TAG = "dlprov.dataflow.tag"
DATAFLOW_SPEC = "dlprov.dataflow.spec"  # JSON, see model.Dataflow.to_spec()
DATAFLOW_SPEC_HASH = "dlprov.dataflow.spec_hash"

# --- execution -----------------------------------------------------------------------------
EXECUTION_TAG = "dlprov.execution.tag"
EXECUTION_STATUS = "dlprov.execution.status"
EXECUTION_SCIENTIST = "dlprov.execution.scientist"
EXECUTION_ERROR = "dlprov.execution.error"
EXECUTION_NAME = "dlprov.execution.name"  # a name people give the run (DLPROV_RUN_NAME)
HARDWARE_PREFIX = "dlprov.hardware."  # dlprov.hardware.cpu_model, .cpu_count, .memory_bytes, .gpus
HARDWARE_CPU_MODEL = "dlprov.hardware.cpu_model"
HARDWARE_CPU_COUNT = "dlprov.hardware.cpu_count"
HARDWARE_MEMORY = "dlprov.hardware.memory_bytes"
HARDWARE_GPUS = "dlprov.hardware.gpus"
HARDWARE_CONTAINER = "dlprov.hardware.container"
HOST_NAME = "host.name"
HOST_ARCH = "host.arch"
OS_TYPE = "os.type"
OS_DESCRIPTION = "os.description"
PROCESS_PID = "process.pid"
PROCESS_RUNTIME_VERSION = "process.runtime.version"
SERVICE_NAME = "service.name"

# --- recipe of a run (dlprov_otel/recipe.py): parallel lists, one entry per name ------------
RECIPE_PHASE = "dlprov.recipe.phase"  # start, environment or end
RECIPE_NAMES = "dlprov.recipe.names"
RECIPE_VALUES = "dlprov.recipe.values"
RECIPE_DIGESTS = "dlprov.recipe.digests"  # sha256, or "" where the entry has none

# --- distributed runs ----------------------------------------------------------------------
RANK = "dlprov.rank"
WORLD_SIZE = "dlprov.world_size"

# --- task ----------------------------------------------------------------------------------
TRANSFORMATION_TAG = "dlprov.transformation.tag"
TASK_ID = "dlprov.task.id"
TASK_STATUS = "dlprov.task.status"
TASK_DEPENDENCIES = "dlprov.task.dependencies"  # task ids this task depends on
TASK_DEPENDENCY_TRANSFORMATIONS = "dlprov.task.dependency_transformations"
TASK_ERROR = "dlprov.task.error"

# --- dataset emission ----------------------------------------------------------------------
DATASET_TAG = "dlprov.dataset.tag"
DATASET_ELEMENTS = "dlprov.dataset.element_count"
DATASET_ATTRIBUTES = "dlprov.dataset.attributes"  # attribute names, in order
DATASET_TYPES = "dlprov.dataset.types"  # attribute types (TEXT, NUMERIC, FILE), same order
DATASET_ROLE = "dlprov.dataset.role"  # INPUT or OUTPUT of the task's transformation
DATA_PREFIX = "dlprov.data."  # dlprov.data.<attribute>: one value per element


def data_key(attribute: str) -> str:
    """Span attribute key that carries the values of one dataset attribute."""
    return DATA_PREFIX + attribute


# --- status values -------------------------------------------------------------------------
READY = "READY"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
TERMINATED = "TERMINATED"  # stopped by a signal (SIGTERM, SIGHUP, SIGINT): the scheduler's stop
STATUSES = (READY, RUNNING, FINISHED, FAILED, TERMINATED)

# --- tags ----------------------------------------------------------------------------------
TAG_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# --- provenance columns --------------------------------------------------------------------
# Every set relation carries these columns besides its attributes (their SQL types and order:
# store/schema.py). They are named here, below the store, because the data model
# (model.Attribute) refuses them as attribute names; every other module takes them from
# store.schema.
PROVENANCE_COLUMNS = (
    "task_id",
    "producer_task_id",
    "consumer_task_id",
    "execution_tag",
    "rank",
    "emitted_at",
    "element_id",
    "trace_id",
    "span_id",
    "idx",
)
RESERVED_COLUMNS = frozenset(PROVENANCE_COLUMNS)


def sanitize_name(name: str) -> str:
    """Turn a free-form name (a Keras metric such as ``f1-score``) into a valid attribute tag."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", str(name).strip().lower())
    if not cleaned or not (cleaned[0].isalpha() or cleaned[0] == "_"):
        cleaned = "m_" + cleaned
    cleaned = cleaned[:63]
    if cleaned in RESERVED_COLUMNS:
        cleaned = "m_" + cleaned
    return cleaned
