"""``TaskStatus``: the states a task passes through (``Task.set_status``)."""

from __future__ import annotations

from enum import Enum


class TaskStatus(Enum):
    READY = "READY"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


__all__ = ["TaskStatus"]
