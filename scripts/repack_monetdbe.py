"""Retag monetdbe's cp310 wheel as cp310-abi3, drop its ``tests`` package, fix its version probe.

Usage: repack_monetdbe.py WHEEL OUTDIR
"""

import subprocess
import sys
import tempfile
from pathlib import Path


def main(wheel: str, outdir: str) -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", tmp, wheel], check=True)
        (root,) = Path(tmp).iterdir()
        tests = root / "tests"
        if tests.is_dir():
            subprocess.run(["rm", "-rf", str(tests)], check=True)
        # monetdbe reads its version through pkg_resources, which current setuptools no longer
        # ships; importlib.metadata gives the same answer.
        vfile = root / "monetdbe" / "version.py"
        vtext = vfile.read_text()
        vtext = vtext.replace("import pkg_resources", "from importlib import metadata")
        vtext = vtext.replace('pkg_resources.require("monetdbe")[0].version', 'metadata.version("monetdbe")')
        vtext = vtext.replace("pkg_resources.DistributionNotFound", "metadata.PackageNotFoundError")
        if "pkg_resources" in vtext:
            sys.exit(f"unexpected monetdbe/version.py, cannot remove pkg_resources:\n{vtext}")
        vfile.write_text(vtext)
        record = next(root.glob("*.dist-info/RECORD"))
        kept = [ln for ln in record.read_text().splitlines() if not ln.startswith("tests/")]
        record.write_text("\n".join(kept) + "\n")
        top = next(root.glob("*.dist-info/top_level.txt"), None)
        if top is not None:
            top.write_text("".join(f"{n}\n" for n in top.read_text().split() if n != "tests"))
        packdir = Path(tmp, "packed")
        packdir.mkdir()
        subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", str(packdir), str(root)], check=True)
        (packed,) = packdir.glob("*.whl")
        subprocess.run(
            [sys.executable, "-m", "wheel", "tags", "--remove", "--abi-tag", "abi3", str(packed)],
            check=True,
        )
        (tagged,) = packdir.glob("*abi3*.whl")
        target = out / tagged.name
        target.write_bytes(tagged.read_bytes())
        print(f"retagged: {target.name}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
