"""Loading PROV documents into a real Neo4j 5 server: counts, idempotence, additivity,
typed properties, and the seed's Cypher queries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prov.constants import PROV_N_MAP

from dlprov_otel import cli
from dlprov_otel.neo4j_loader import Neo4jLoadError, load
from dlprov_otel.prov import build_document, export
from dlprov_otel.services import neo4j_local
from tests.seedflow import record_seed_flow

REFERENCE_JSON = Path(__file__).resolve().parent / "data" / "dlprov-mnist-example" / "mnist-example.json"
needs_server = [
    pytest.mark.neo4j,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[neo4j_local.Neo4jServer]:
    base = tmp_path_factory.mktemp("neo4j-loader")
    srv = neo4j_local.start(data_dir=base / "data", state_file=base / "server.json")
    yield srv
    srv.stop()


@pytest.fixture
def graph(server: neo4j_local.Neo4jServer):
    """A driver on an empty graph (the test server is ours: wiping it is the test's business,
    never the loader's)."""
    from neo4j import GraphDatabase

    with GraphDatabase.driver(server.uri, auth=server.auth, notifications_min_severity="OFF") as driver:
        driver.execute_query("MATCH (n) DETACH DELETE n")
        yield driver


def _q(driver, cypher: str, **params):
    return driver.execute_query(cypher, params).records


def _counts(driver) -> tuple[int, int]:
    nodes = _q(driver, "MATCH (n) RETURN count(n) AS c")[0]["c"]
    rels = _q(driver, "MATCH ()-[r]->() RETURN count(r) AS c")[0]["c"]
    return nodes, rels


def _doc_counts(doc) -> tuple[int, int, Counter]:
    records = list(doc.get_records())
    kinds = Counter(PROV_N_MAP[r.get_type()] for r in records if r.is_relation())
    return sum(r.is_element() for r in records), sum(kinds.values()), kinds


def _load(doc, server: neo4j_local.Neo4jServer) -> dict:
    return load(doc, uri=server.uri, user=server.user, password=server.password)


class TestWithServer:
    pytestmark = needs_server

    def test_graph_matches_document(self, dlprov, store_dir, server, graph) -> None:
        tag = record_seed_flow(store_dir, epochs=2)
        doc = build_document(dlprov.store, execution=tag)
        n_nodes, n_rels, kinds = _doc_counts(doc)
        result = _load(doc, server)
        assert (result["nodes"], result["relationships"]) == (n_nodes, n_rels)
        assert (result["nodes_created"], result["relationships_created"]) == (n_nodes, n_rels)
        assert _counts(graph) == (n_nodes, n_rels)
        by_type = {r["t"]: r["c"] for r in _q(graph, "MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS c")}
        assert by_type == dict(kinds)
        labels = {r["l"]: r["c"] for r in _q(graph, "MATCH (n) UNWIND labels(n) AS l RETURN l, count(*) AS c")}
        # the reference's 11 entities and the run's recipe; the scientist, the hardware and the script
        assert labels["Entity"] == 11 + 1 and labels["Activity"] == 5 and labels["Agent"] == 3
        assert labels["Plan"] == 2 and labels["Recipe"] == 1 and labels["SoftwareAgent"] == 1
        assert labels["Person"] == 1 and labels["Hardware"] == 1
        assert labels["Execution"] == 1 and labels["Task"] == 4 and labels["TrainedModel"] == 1
        ids = {r["id"] for r in _q(graph, "MATCH (n) RETURN n.id AS id")}
        assert ids == {str(r.identifier) for r in doc.get_records() if r.is_element()}

    def test_loading_twice_changes_nothing(self, dlprov, store_dir, server, graph) -> None:
        tag = record_seed_flow(store_dir, epochs=2)
        doc = build_document(dlprov.store, execution=tag)
        _load(doc, server)
        snapshot = "MATCH (n) RETURN n.id AS id, labels(n) AS l, properties(n) AS p ORDER BY id"
        rel_snapshot = (
            "MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS t, b.id AS b, properties(r) AS p ORDER BY a, t, b"
        )
        before = (_q(graph, snapshot), _q(graph, rel_snapshot))
        again = _load(doc, server)
        assert again["nodes_created"] == 0 and again["relationships_created"] == 0
        assert (_q(graph, snapshot), _q(graph, rel_snapshot)) == before

    def test_second_execution_adds_to_the_graph(self, dlprov, store_dir, server, graph) -> None:
        first = record_seed_flow(store_dir, epochs=2)
        second = record_seed_flow(store_dir, epochs=3)
        doc1 = build_document(dlprov.store, execution=first)
        doc2 = build_document(dlprov.store, execution=second)
        _load(doc1, server)
        ids1 = {str(r.identifier) for r in doc1.get_records() if r.is_element()}
        ids2 = {str(r.identifier) for r in doc2.get_records() if r.is_element()}
        result = _load(doc2, server)
        assert result["nodes_created"] == len(ids2 - ids1)  # plan, scientist, hardware are shared
        assert _counts(graph) == (len(ids1 | ids2), _doc_counts(doc1)[1] + _doc_counts(doc2)[1])
        execs = _q(graph, "MATCH (e:Execution) RETURN e.`dlprov:exec_tag` AS t ORDER BY t")
        assert [r["t"] for r in execs] == sorted([first, second])
        # the union equals the dataflow's document, loaded in one go
        whole = build_document(dlprov.store, dataflow="mnist")
        n_nodes, n_rels, _ = _doc_counts(whole)
        assert _counts(graph) == (n_nodes, n_rels)
        assert _load(whole, server)["nodes_created"] == 0

    def test_properties_keep_their_types(self, dlprov, store_dir, server, graph) -> None:
        tag = record_seed_flow(store_dir, epochs=2)
        _load(build_document(dlprov.store, execution=tag), server)
        rows = _q(
            graph,
            "MATCH (n:Entity {`dlprov:ds_tag`: 'otrainmodel'}) RETURN n.`dlprov:loss` AS loss, "
            "n.`dlprov:epoch` AS epoch, n.`dlprov:val_loss` AS val_loss, n.`dlprov:timestamp` AS ts ORDER BY epoch",
        )
        stored = dlprov.store.query(
            'SELECT loss, epoch FROM "mnist"."otrainmodel" WHERE execution_tag = ? ORDER BY epoch', [tag]
        ).rows
        assert [(r["loss"], r["epoch"]) for r in rows] == [(float(a), float(b)) for a, b in stored]
        assert all(type(r["loss"]) is float and r["val_loss"] is None and isinstance(r["ts"], str) for r in rows)
        from neo4j.time import DateTime

        ex = _q(graph, "MATCH (e:Execution) RETURN e.`prov:startTime` AS s, e.`prov:endTime` AS e")[0]
        assert isinstance(ex["s"], DateTime) and ex["s"] <= ex["e"]
        hw = _q(graph, "MATCH (h:Hardware) RETURN h.`dlprov:cpu_count` AS c")[0]
        assert type(hw["c"]) is int and hw["c"] >= 1
        gen = _q(graph, "MATCH (:Entity)-[g:wasGeneratedBy]->(:Task) RETURN g.`prov:time` AS t LIMIT 1")[0]
        assert isinstance(gen["t"], DateTime)
        # numeric comparisons work without toFloat()
        best = _q(graph, "MATCH (n:Entity) WHERE n.`dlprov:loss` < 0.2 RETURN count(n) AS c")[0]["c"]
        assert best == 2  # epoch 1 and the test metrics

    def test_seed_queries(self, dlprov, store_dir, server, graph) -> None:
        tag = record_seed_flow(store_dir, epochs=2)
        _load(build_document(dlprov.store, execution=tag), server)
        # Average loss over every generated entity that has one (the seed's query as written).
        avg = _q(graph, "MATCH (b:Entity)-[:wasGeneratedBy]->(c:Activity) RETURN avg(b.`dlprov:loss`) AS a")[0]["a"]
        losses = [
            r[0]
            for table in ("otrainmodel", "otestmodel")
            for r in dlprov.store.query(f'SELECT loss FROM "mnist"."{table}" WHERE execution_tag = ?', [tag]).rows
        ]
        assert avg == pytest.approx(sum(losses) / len(losses), rel=1e-12)
        path = _q(
            graph,
            "MATCH p = shortestPath((a:Entity {`dlprov:ds_tag`: 'otestmodel'})-[*]-"
            "(b:Entity {`dlprov:ds_tag`: 'oloaddata'})) RETURN [n IN nodes(p) | n.`prov:label`] AS names",
        )
        assert len(path) == 1 and path[0]["names"][0] == "otestmodel" and path[0]["names"][-1] == "oloaddata"
        gen = _q(
            graph,
            "MATCH p = shortestPath((a:Entity {`dlprov:ds_tag`: 'otestmodel'})-[:wasGeneratedBy]-"
            "(b:Activity {`dlprov:dt_tag`: 'testmodel'})) RETURN length(p) AS n",
        )
        assert [r["n"] for r in gen] == [1]
        # The complete path to the raw dataset. The seed's undirected `-[*]-` enumerates every
        # trail of the graph (millions here, with lineage and agents), so it is asked for one...
        full = _q(
            graph,
            "MATCH p = (a:Entity {`dlprov:ds_tag`: 'otestmodel'})-[*]-(b:Entity {`dlprov:ds_tag`: 'iinputdataset'}) "
            "RETURN p LIMIT 1",
        )
        assert len(full) == 1
        # ...and the directed lineage gives every route, through both the test set and the model.
        lineage = _q(
            graph,
            "MATCH p = (a:Entity {`dlprov:ds_tag`: 'otestmodel'})-[:used|wasGeneratedBy*]->"
            "(b:Entity {`dlprov:ds_tag`: 'iinputdataset'}) RETURN [n IN nodes(p) | n.`prov:label`] AS names",
        )
        routes = sorted(tuple(r["names"]) for r in lineage)
        assert routes == [
            ("otestmodel", "testmodel", "otestset", "splitdata", "oloaddata", "loaddata", "iinputdataset"),
            ("otestmodel", "testmodel", "otrainedmodel", "trainmodel", "otrainset", "splitdata", "oloaddata",
             "loaddata", "iinputdataset"),
        ]
        derived = _q(
            graph,
            "MATCH p = (a:Entity {`dlprov:ds_tag`: 'otestmodel'})-[:wasDerivedFrom*]->"
            "(b:Entity {`dlprov:ds_tag`: 'iinputdataset'}) RETURN length(p) AS n ORDER BY n",
        )
        assert [r["n"] for r in derived] == [3, 4]

    def test_reference_document_loads(self, server, graph) -> None:
        result = _load(str(REFERENCE_JSON), server)
        assert (result["nodes"], result["relationships"]) == (16, 19)
        assert _counts(graph) == (16, 19)

    def test_cli_load_and_bad_credentials(self, dlprov, store_dir, server, graph, tmp_path, capsys) -> None:
        tag = record_seed_flow(store_dir, epochs=2)
        common = ["--uri", server.uri, "--user", server.user, "--password", server.password]
        assert cli.main(["neo4j", "load", "--execution", tag, "--store", str(store_dir), *common]) == 0
        assert "20 nodes" in capsys.readouterr().out  # 18, the run's recipe and its script
        (path,) = export(dlprov.store, execution=tag, formats=("json",), out_dir=tmp_path)
        assert cli.main(["neo4j", "load", "--file", str(path), *common]) == 0
        assert "(0 nodes and 0 relationships new)" in capsys.readouterr().out
        with pytest.raises(Neo4jLoadError, match="rejected the credentials of user 'neo4j'"):
            load(path, uri=server.uri, user="neo4j", password="not-the-password")


def test_closed_port_is_a_clear_error(tmp_path) -> None:
    port = neo4j_local.free_port()
    with pytest.raises(Neo4jLoadError, match=f"cannot reach Neo4j at bolt://127.0.0.1:{port}"):
        load(str(REFERENCE_JSON), uri=f"bolt://127.0.0.1:{port}", password="x")


def test_wrong_uri_and_missing_file_are_clear_errors(tmp_path, capsys) -> None:
    with pytest.raises(Neo4jLoadError, match="invalid Neo4j URI 'http://localhost:7474'"):
        load(str(REFERENCE_JSON), uri="http://localhost:7474", password="x")
    with pytest.raises(Neo4jLoadError, match="no PROV document at"):
        load(tmp_path / "missing.json")
    code = cli.main(["neo4j", "load", "--file", str(REFERENCE_JSON), "--uri", "localhost:7687"])
    assert code == 1 and "invalid Neo4j URI" in capsys.readouterr().err
