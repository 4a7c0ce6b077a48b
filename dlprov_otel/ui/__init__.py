"""The DLProv dashboard: a web app served by the collector under ``/ui/``.

Pages (plain JavaScript ES modules and SVG, no build step, no CDN): executions with live
per-epoch charts, task timeline, data lineage and PROV downloads; dataflows as prospective
graphs; comparison of runs; a read-only SQL console. ``dlprov ui --store PATH`` serves it for a
local store; ``dlprov collector serve`` serves it next to OTLP ingest.
"""

from __future__ import annotations

from .web import handle_get, handles

__all__ = ["handle_get", "handles"]
