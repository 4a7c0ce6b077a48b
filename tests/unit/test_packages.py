"""The package catalogue behind a recipe: the same answers as importlib.metadata, cached, and
renewed when a package is installed."""

from __future__ import annotations

import sys
from importlib.metadata import packages_distributions, version

from dlprov_otel import packages


def test_versions_agree_with_importlib_metadata(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DLPROV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(packages, "_memo", {})  # what this process read before, from elsewhere
    mods = {"pytest", "hypothesis", "numpy", "dlprov_otel"}
    mapping = packages_distributions()
    expected = {d: version(d) for m in mods for d in mapping.get(m, ())}
    assert packages.versions(mods) == expected
    assert list((tmp_path / "cache" / "packages").glob("*.json")), "the catalogue was not cached"
    packages._memo.clear()
    assert packages.versions(mods) == expected  # read back from the cache file


def _install_fake(site, name: str, ver: str) -> None:
    info = site / f"{name}-{ver}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    (site / name).mkdir()
    (site / name / "__init__.py").write_text("")


def test_installing_a_package_renews_the_catalogue(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DLPROV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(packages, "_memo", {})  # what this process read before, from elsewhere
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    assert packages.versions({"fakepkg_one"}) == {}
    _install_fake(site, "fakepkg_one", "1.2.3")
    assert packages.versions({"fakepkg_one"}) == {"fakepkg_one": "1.2.3"}


def test_an_unreadable_cache_costs_only_a_new_pass(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DLPROV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(packages, "_memo", {})  # what this process read before, from elsewhere
    first = packages.versions({"pytest"})
    for f in (tmp_path / "cache" / "packages").glob("*.json"):
        f.write_text("{not json")
    packages._memo.clear()
    assert packages.versions({"pytest"}) == first != {}


def test_files_written_beside_the_script_keep_the_catalogue(monkeypatch, tmp_path) -> None:
    # sys.path[0] is the script's folder, where a run writes its store and its model files
    script_dir = tmp_path / "project"
    script_dir.mkdir()
    monkeypatch.setattr(sys, "path", [str(script_dir), *sys.path])
    before = packages._key()
    (script_dir / "dlprov-data").mkdir()
    (script_dir / "model.keras").write_bytes(b"x")
    assert packages._key() == before
