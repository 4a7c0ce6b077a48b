"""The DLProv collector (distribution ``dlprov-otel-collector``): OTLP in, the provenance store, queries out.

- :mod:`.server`: ``dlprov collector serve``: mounts OTLP/HTTP ingest, the core's read-only
  query app and the dashboard on one HTTP port (:mod:`dlprov_otel.http`), and OTLP/gRPC;
- :mod:`.ingest`: the store owner shared by both front ends (admission, partial success, rejects);
- :mod:`.otlp_http`: ``POST /v1/traces``; :mod:`.grpc_server`: ``TraceService/Export``;
- :mod:`.decode`: OTLP payloads (protobuf, OTLP/JSON, gzip, deflate);
- :mod:`.settings`: :class:`~.settings.Settings` and the command's options; :mod:`.cli`: the
  ``dlprov collector`` commands.
"""
