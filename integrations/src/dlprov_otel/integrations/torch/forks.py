"""Forked children (DataLoader workers) inherit the patches; they must record nothing."""

from __future__ import annotations

import os


class _Process:
    in_child = False  # read by the per-step patches: a plain attribute


process = _Process()


def _after_fork_in_child() -> None:
    process.in_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["process"]
