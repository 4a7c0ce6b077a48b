"""Moved to tests/unit/test_api_spans.py (the unit tier, on an in-memory exporter).

Only this re-export is left, for tests/test_core_store.py, until it imports ``seed_snippet``
from ``tests.unit.user_scripts``; then this file goes.
"""

from tests.unit.user_scripts import seed_snippet

__all__ = ["seed_snippet"]
