"""Names the PROV documents use: namespaces and prefixes, and the sets with a PROV type."""

from __future__ import annotations

VOCAB_URI = "https://w3id.org/dlprov/ns#"
ID_URI = "https://w3id.org/dlprov/id/"
VOCAB_PREFIX = "dlprov"
ID_PREFIX = "dlid"

# Sets whose elements are trained models: typed dlprov:TrainedModel, attributed to the scientist.
MODEL_SETS = frozenset({"otrainedmodel"})

__all__ = ["ID_PREFIX", "ID_URI", "MODEL_SETS", "VOCAB_PREFIX", "VOCAB_URI"]
