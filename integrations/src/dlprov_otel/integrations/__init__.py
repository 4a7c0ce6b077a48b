"""Zero-code provenance of deep-learning frameworks (the ``dlprov-otel-integrations``
distribution), one package per framework on one shared layer:

- ``_shared``: the error guard (log once; strict mode for tests), the patcher (wrapt in,
  ``unwrap`` out), the resolver of the current dataflow and execution, and the base
  instrumentor with the keywords every ``instrument()`` takes;
- ``lineage``: data descriptions and your own load/split/transform steps;
- ``keras``: ``KerasInstrumentor`` and ``DLProvCallback``;
- ``torch``: ``TorchInstrumentor`` and the explicit ``log_epoch``/``log_test``/...;
- ``lightning_callback``: ``DLProvLightningCallback`` (on the torch recorder);
- ``demo``: the ``dlprov demo`` command.
"""
