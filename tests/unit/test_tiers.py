"""Every collected test belongs to exactly one tier, and tests/unit is the unit tier."""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")


def test_every_collected_test_has_one_tier(request: pytest.FixtureRequest) -> None:
    unit_dir = Path(__file__).resolve().parent
    for item in request.session.items:
        tiers = [t for t in TIERS if item.get_closest_marker(t)]
        assert len(tiers) == 1, (item.nodeid, tiers)
        in_unit_dir = unit_dir in Path(item.path).resolve().parents
        assert (tiers == ["unit"]) == in_unit_dir, (item.nodeid, tiers)
