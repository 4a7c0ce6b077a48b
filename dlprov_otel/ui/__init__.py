"""The DLProv dashboard: a web app over a store, served by ``dlprov ui`` and by the collector under ``/ui/``.

Pages (plain JavaScript ES modules and SVG, no build step, no CDN): executions with live
per-epoch charts, task timeline, data lineage and PROV downloads; dataflows as prospective
graphs; comparison of runs; a read-only SQL console.

- :mod:`.web`: :class:`~dlprov_otel.ui.web.DashboardApp`, an HTTP app (:mod:`dlprov_otel.http`);
- :mod:`.server`: ``dlprov ui``'s server: the dashboard and the read-only query app, no ingest;
- :mod:`.cli`: the ``dlprov ui`` command; :mod:`.data`, :mod:`.lineage`: the documents it shows.

This package's ``__init__`` imports nothing, so that ``dlprov`` builds its commands quickly.
"""
