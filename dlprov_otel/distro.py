"""The ``dlprov`` OpenTelemetry distro and configurator, for ``opentelemetry-instrument``.

``DLPROV_STORE=./runs opentelemetry-instrument python train.py`` records an unmodified
training script: the configurator sets up the provenance pipeline and the instrumentors
(``dlprov_keras``, ``dlprov_torch``) record the training.

The pipeline is set up at start when the environment asks for DLProv (``DLPROV_STORE``,
``DLPROV_ENDPOINT``, or ``dlprov`` in ``OTEL_TRACES_EXPORTER``). Otherwise, and in
multiprocessing workers, it is set up on the first provenance record, from the same
variables (default ``./dlprov-data``): a program that never trains opens no store, and a
worker never competes with its parent for the embedded store.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

logger = logging.getLogger(__name__)


class DLProvDistro(BaseDistro):
    """The distro: nothing to change in the environment (the configurator does the work)."""

    def _configure(self, **kwargs: Any) -> None:
        return None


def _dlprov_exporter() -> bool:
    """``OTEL_TRACES_EXPORTER`` names the ``dlprov`` (in-process MonetDB) exporter."""
    return "dlprov" in [e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")]


def _asks_for_dlprov() -> bool:
    return bool(os.environ.get("DLPROV_STORE") or os.environ.get("DLPROV_ENDPOINT") or _dlprov_exporter())


def _is_worker() -> bool:
    # a multiprocessing "spawn" child runs sitecustomize again before it knows its parent
    return "--multiprocessing-fork" in sys.argv


class DLProvConfigurator(_BaseConfigurator):
    """Configures the DLProv pipeline (``dlprov_otel.configure``) from the environment.

    ``store`` / ``endpoint`` keyword arguments override the environment. A store that
    cannot be opened is logged, not raised: the program runs without provenance.
    """

    def _configure(self, **kwargs: Any) -> None:
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return
        store = kwargs.get("store")
        endpoint = kwargs.get("endpoint")
        if store is None and endpoint is None and (not _asks_for_dlprov() or _is_worker()):
            return  # configured on first use (dlprov_otel.telemetry())
        from .ranks import is_launcher

        if is_launcher():
            # `opentelemetry-instrument torchrun ...`: the launcher trains nothing; opening the
            # embedded store here would lock rank 0 out of it
            return
        if store is None and endpoint is None and _dlprov_exporter() and not os.environ.get("DLPROV_ENDPOINT"):
            # OTEL_TRACES_EXPORTER=dlprov names the in-process MonetDB exporter: a generic
            # OTEL_EXPORTER_OTLP_ENDPOINT must not divert the provenance elsewhere
            from .store import default_store_url

            store = default_store_url()
        try:
            from . import configure

            configure(store=store, endpoint=endpoint)
        except Exception as exc:
            logger.error("DLProv: the provenance pipeline could not be set up: %s", exc)


__all__ = ["DLProvConfigurator", "DLProvDistro"]
