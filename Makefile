# The README's two commands are `make demo` and `make test`; each bootstraps .venv from nothing.
PY      := .venv/bin/python
EXTRAS_DEMO := keras,dev
EXTRAS_ALL  := keras,torch,transformers,server,neo4j,collector,dev
STAMP_ALL   := .venv/.installed-all
STAMP_DEMO  := .venv/.installed-demo
export PATH := $(CURDIR)/.venv/bin:$(PATH):/usr/local/go/bin

.PHONY: demo test test-unit install install-all lint bench bench-quick neo4j neo4j-stop otelcol collector monetdb monetdb-build monetdb-stop chaos clean

$(STAMP_DEMO): pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh $(EXTRAS_DEMO)
	touch $@

$(STAMP_ALL): pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh $(EXTRAS_ALL)
	touch $@ $(STAMP_DEMO)

install: $(STAMP_DEMO)     ## SDK + Keras: enough for the demo
install-all: $(STAMP_ALL)  ## everything: torch, server, neo4j, collector, dev tools

demo: $(STAMP_DEMO)        ## the main job: Keras training recorded into ./dlprov-data, SQL + PROV
	.venv/bin/dlprov demo

test: $(STAMP_ALL) otelcol monetdb-build ## all tests: embedded MonetDB and a MonetDB server, Neo4j (Maven), the OpenTelemetry Collector (Go)
	.venv/bin/ruff check .
	$(PY) -m pytest

test-unit: $(STAMP_ALL)    ## the fast tier: the SDK on an in-memory exporter (seconds; no MonetDB, no server)
	$(PY) -m pytest tests/unit -q

lint: $(STAMP_ALL)
	.venv/bin/ruff check .

bench: $(STAMP_ALL) otelcol
	$(PY) bench/run.py --full

bench-quick: $(STAMP_ALL)
	$(PY) bench/run.py --quick

neo4j: $(STAMP_ALL)        ## start a local Neo4j Community (built with Maven) on 127.0.0.1
	$(PY) -m dlprov_otel.services.neo4j_local start

neo4j-stop:
	$(PY) -m dlprov_otel.services.neo4j_local stop

otelcol:                   ## build the OpenTelemetry Collector with the Collector Builder (Go)
	collector/otelcol/build.sh

collector: $(STAMP_ALL)    ## run the DLProv collector on 127.0.0.1:4318 (HTTP) and :4317 (gRPC)
	.venv/bin/dlprov collector serve

chaos: $(STAMP_ALL) monetdb-build ## rounds of random faults on a training job (SIGKILL/SIGTERM, collector and server kill -9, held store, full tmpfs): emitted vs stored
	$(PY) scripts/chaos.py --rounds $(or $(ROUNDS),20) $(if $(SEED),--seed $(SEED)) --server

monetdb-build:             ## build the MonetDB server from source once, into a cache outside the repository
	scripts/monetdb.sh build

monetdb: $(STAMP_ALL)      ## start a MonetDB server on 127.0.0.1 (built once) and print its monetdb:// URL
	scripts/monetdb.sh start

monetdb-stop:
	scripts/monetdb.sh stop

clean:
	rm -rf .venv dlprov-data dlprov-out neo4j/target neo4j/run collector/otelcol/build
