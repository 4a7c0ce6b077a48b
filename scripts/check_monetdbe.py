"""Verify that monetdbe is the real embedded MonetDB: open a database, write, read back."""

import sys
import tempfile

try:
    import monetdbe
except ImportError as exc:  # pragma: no cover - printed for the person installing
    sys.exit(f"monetdbe is not importable: {exc}")

version = getattr(monetdbe, "__version__", None)
try:
    from importlib.metadata import version as dist_version

    version = dist_version("monetdbe")
except Exception:
    pass
if version is None or tuple(int(p) for p in version.split(".")[:2]) < (0, 11):
    sys.exit(f"monetdbe {version} is installed, but 0.11 (the embedded MonetDB) is needed")
with tempfile.TemporaryDirectory() as tmp:
    try:
        con = monetdbe.connect(tmp)
        cur = con.cursor()
        cur.execute("CREATE TABLE t (x DOUBLE, s CLOB)")
        cur.execute("INSERT INTO t VALUES (1.5, 'ok')")
        con.commit()
        cur.execute("SELECT x, s FROM t")
        row = cur.fetchone()
        con.close()
    except Exception as exc:
        sys.exit(f"monetdbe {version} is installed but cannot open an embedded database: {exc}")
if row is None or row[0] != 1.5 or row[1] != "ok":
    sys.exit(f"monetdbe {version}: read back {row!r} instead of (1.5, 'ok')")
print(f"monetdbe {version}: embedded MonetDB opened, wrote and read back a row")
