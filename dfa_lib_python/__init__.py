"""``dfa_lib_python``: the module paths of the original DLProv/DfAnalyzer client library, on
DLProv-OTel's DfAnalyzer API (:mod:`dlprov_otel.api`), so the original's scripts run unchanged::

    from dfa_lib_python.dataflow import Dataflow
    from dfa_lib_python.task import Task
    from dfa_lib_python.dataset import DataSet
    from dfa_lib_python.element import Element

Instead of HTTP posts to a DfAnalyzer server, every call records OpenTelemetry spans into the
provenance store (``$DLPROV_STORE``, ``./dlprov-data`` by default) or to a collector
(``$DLPROV_ENDPOINT``). ``Task`` takes both the published 3-argument form
``Task(id, dataflow_tag, transformation_tag)`` and DLProv's
``Task(id, dataflow_tag, exec_tag, transformation_tag, dependency=...)``.
"""

from .attribute import Attribute
from .attribute_type import AttributeType
from .dataflow import Dataflow
from .dataset import DataSet
from .dependency import Dependency
from .element import Element
from .program import Program
from .set import Set
from .set_type import SetType
from .task import Task
from .task_status import TaskStatus
from .transformation import Transformation

__all__ = [
    "Attribute",
    "AttributeType",
    "DataSet",
    "Dataflow",
    "Dependency",
    "Element",
    "Program",
    "Set",
    "SetType",
    "Task",
    "TaskStatus",
    "Transformation",
]
