"""PROV-O (RDF) with the unqualified relations asserted beside the qualified ones.

The ``prov`` library writes a relation that has a time or attributes only in its qualified
form (``?e prov:qualifiedGeneration [ prov:activity ?a ; prov:atTime ... ]``), so plain PROV-O
queries (``?e prov:wasGeneratedBy ?a``, ``?e prov:wasDerivedFrom+ ?x``) found nothing. PROV-O
intends both: each qualified influence here also gets its binary triple.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prov.model import ProvDocument
    from rdflib import Graph

PROV_NS = "http://www.w3.org/ns/prov#"
# qualified property -> (the influencer's property on the qualification node, the unqualified property)
QUALIFIED = {
    "qualifiedGeneration": ("activity", "wasGeneratedBy"),
    "qualifiedUsage": ("entity", "used"),
    "qualifiedDerivation": ("entity", "wasDerivedFrom"),
    "qualifiedAssociation": ("agent", "wasAssociatedWith"),
    "qualifiedCommunication": ("activity", "wasInformedBy"),
    "qualifiedAttribution": ("agent", "wasAttributedTo"),
    "qualifiedInvalidation": ("activity", "wasInvalidatedBy"),
    "qualifiedStart": ("entity", "wasStartedBy"),
    "qualifiedEnd": ("entity", "wasEndedBy"),
    "qualifiedDelegation": ("agent", "actedOnBehalfOf"),
    "qualifiedInfluence": ("influencer", "wasInfluencedBy"),
}


def rdf_graph(doc: ProvDocument) -> Graph:
    """The document as PROV-O triples, qualified and unqualified."""
    from prov.serializers.provrdf import ProvRDFSerializer
    from rdflib import Graph, URIRef

    encoded = ProvRDFSerializer(doc).encode_document(doc)
    graph = Graph()
    for prefix, uri in encoded.namespaces():
        graph.bind(prefix, uri)
    for triple in encoded.triples((None, None, None)):
        graph.add(triple)
    prov = {name: URIRef(PROV_NS + name) for name in QUALIFIED}
    for name, (via, plain) in QUALIFIED.items():
        via_p, plain_p = URIRef(PROV_NS + via), URIRef(PROV_NS + plain)
        for subject, _, node in list(graph.triples((None, prov[name], None))):
            for influencer in graph.objects(node, via_p):
                graph.add((subject, plain_p, influencer))
    return graph


def turtle(doc: ProvDocument) -> str:
    """The document in Turtle (see :func:`rdf_graph`)."""
    return rdf_graph(doc).serialize(format="turtle")


__all__ = ["QUALIFIED", "rdf_graph", "turtle"]
