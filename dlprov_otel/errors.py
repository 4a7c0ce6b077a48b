"""The exceptions DLProv-OTel raises: each names the thing that is wrong."""


class DLProvError(Exception):
    """Base class of every error DLProv-OTel raises on purpose."""


class SpecError(DLProvError, ValueError):
    """A dataflow, transformation, set, attribute or tag is malformed or unknown."""


class ElementError(DLProvError, ValueError):
    """An element does not fit its set: wrong arity, or a value of the wrong type."""


class StoreError(DLProvError):
    """The provenance store cannot be opened, reached or written."""


class StoreURLError(StoreError, ValueError):
    """A store URL is malformed or names an unknown scheme."""


class StoreLockedError(StoreError):
    """The embedded store is opened by another process."""


class QueryError(DLProvError):
    """A SQL statement failed or was refused."""


class DiskFullError(StoreError):
    """The disk holding the store, the journal or the spool is full."""
