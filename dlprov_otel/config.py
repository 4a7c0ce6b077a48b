"""Settings read from the environment, and small helpers for local ports."""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger("dlprov_otel")


def env_float(name: str, default: float) -> float:
    """``$name`` as a number, or ``default`` (with a warning when it is set but not a number)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        logger.warning("DLProv: %s=%r is not a number; using %s", name, raw, default)
        return default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), 0))
        return int(sock.getsockname()[1])
