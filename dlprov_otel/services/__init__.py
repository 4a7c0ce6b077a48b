"""Development services run from a checkout of dlprov-otel: a local Neo4j and the OpenTelemetry Collector.

They need files that are not in the wheel (the Maven project ``neo4j/``, the Collector Builder
files ``collector/otelcol/``). Each finds its folder by an explicit setting
(``DLPROV_NEO4J_PROJECT``, ``DLPROV_OTELCOL_DIR``), else in the checkout this package runs from,
else it stops with a one-line error naming the setting (see :func:`.checkout.checkout_folder`).
"""
