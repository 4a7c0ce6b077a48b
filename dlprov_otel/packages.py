"""Which installed distribution provides a module, and its version: one pass, cached on disk.

``importlib.metadata`` answers these by scanning every installed distribution on each call
(``packages_distributions()`` ~0.23 s and ``version()`` ~10 ms a call with TensorFlow and
torch installed). A run's recipe needs both for every imported package, so one pass over the
distributions builds the whole catalogue, and it is kept in ``~/.cache/dlprov/packages/``
under a key made of ``sys.path`` and the modification times of its package folders:
installing, upgrading or removing a package changes its folder, and so the key. A cache that
cannot be read or written only costs the pass again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

Catalogue = dict[str, list[list[str]]]  # top-level module -> [[distribution, version], ...]

_memo: dict[str, Catalogue] = {}


def cache_dir() -> Path:
    base = os.environ.get("DLPROV_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dlprov"
    )
    return Path(base) / "packages"


def _key() -> str:
    """``sys.path``, and the modification times of its package folders (``site-packages``,
    ``dist-packages``): an install, upgrade or removal changes them. Other entries (the script's
    folder, where a run writes its files; a checkout on the path) count by name only."""
    h = hashlib.sha256(sys.version.encode())
    for entry in sys.path:
        stamp = -1
        if os.path.basename(entry.rstrip(os.sep)) in ("site-packages", "dist-packages"):
            try:
                stamp = os.stat(entry).st_mtime_ns
            except OSError:
                pass
        h.update(f"{entry}\0{stamp}\n".encode())
    return h.hexdigest()[:24]


def _tops(dist: object) -> set[str]:
    """The top-level names a distribution installs: ``top_level.txt``, else its files."""
    text = dist.read_text("top_level.txt")  # type: ignore[attr-defined]
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    tops: set[str] = set()
    for f in dist.files or ():  # type: ignore[attr-defined]
        parts = f.parts
        if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) > 1:
            tops.add(parts[0])
        elif parts[0].endswith(".py"):
            tops.add(parts[0][:-3])
    return {t for t in tops if t.isidentifier()}


def _scan() -> Catalogue:
    from importlib.metadata import distributions

    out: Catalogue = {}
    for dist in distributions():
        try:
            meta = dist.metadata
            name, version = meta["Name"], meta["Version"]
            if not name or not version:
                continue
            for top in _tops(dist):
                pairs = out.setdefault(top, [])
                if [name, version] not in pairs:
                    pairs.append([name, version])
        except Exception:  # one broken distribution never hides the others
            logger.debug("DLProv: reading a distribution's metadata failed", exc_info=True)
    return out


def catalogue() -> Catalogue:
    """Top-level module name -> its distributions and their versions (cached)."""
    key = _key()
    if key in _memo:
        return _memo[key]
    path = cache_dir() / f"{key}.json"
    try:
        found = json.loads(path.read_text())
        if isinstance(found, dict):
            _memo[key] = found
            return found
    except (OSError, ValueError):
        pass
    found = _scan()
    _memo[key] = found
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump(found, tmp)
        os.replace(tmp.name, path)
    except OSError:
        logger.debug("DLProv: could not cache the package catalogue", exc_info=True)
    return found


def versions(modules: set[str] | list[str] | tuple[str, ...]) -> dict[str, str]:
    """Distribution name -> version for the distributions that provide ``modules``."""
    cat = catalogue()
    out: dict[str, str] = {}
    for mod in modules:
        for name, version in cat.get(mod, ()):
            out[name] = version
    return out
