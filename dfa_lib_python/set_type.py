"""``SetType``: ``INPUT`` or ``OUTPUT``, DLProv-OTel's own enum."""

from dlprov_otel.model import SetType

__all__ = ["SetType"]
