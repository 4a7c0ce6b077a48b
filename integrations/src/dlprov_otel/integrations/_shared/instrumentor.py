"""The base of every integration's instrumentor: the same ``instrument()`` keywords.

``instrument(tracer_provider=None, dataflow=None, execution=None, store=None, **options)``
(see :class:`~.context.Settings`). A subclass patches in :meth:`_start` through its
:attr:`patcher` and undoes nothing itself: :meth:`_uninstrument` calls :meth:`_stop` and
then removes every patch the patcher recorded.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

import dlprov_otel

from .context import Settings, activate, deactivate
from .patching import Patcher


class DLProvInstrumentor(BaseInstrumentor):
    """An OpenTelemetry instrumentor recording a framework's training as provenance."""

    name = "dlprov"  # the framework, in log messages
    default_dataflow = "dlprov"

    @property
    def patcher(self) -> Patcher:
        patcher = self.__dict__.get("_patcher")
        if patcher is None:
            patcher = self.__dict__["_patcher"] = Patcher(self.name)
        return patcher

    @property
    def settings(self) -> Settings | None:
        """What the instrumentor was last instrumented with (``None`` when it is not)."""
        return self.__dict__.get("_settings")

    def _instrument(self, **kwargs: Any) -> None:
        settings = Settings.from_kwargs(kwargs)
        if settings.store is not None:
            dlprov_otel.configure(store=settings.store)
        self.__dict__["_settings"] = settings
        activate(settings)
        try:
            self._start(settings)
        except BaseException:  # not instrumented: undo what was done
            self._uninstrument()
            raise

    def _uninstrument(self, **kwargs: Any) -> None:
        settings = self.settings
        try:
            self._stop()
        finally:
            self.patcher.unpatch_all()
            if settings is not None:
                deactivate(settings)
            self.__dict__["_settings"] = None

    def _start(self, settings: Settings) -> None:
        """Patch the framework (now, or when it is imported)."""
        raise NotImplementedError

    def _stop(self) -> None:
        """Record what is pending before the patches go."""


__all__ = ["DLProvInstrumentor"]
