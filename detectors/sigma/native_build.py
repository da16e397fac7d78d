"""Compile the Sigma engine's hot modules with mypyc: ``python -m detectors.sigma.native_build``.

``detectors/sigma/compiler.py`` and ``engine.py`` are typed Python that mypy already checks;
mypyc (shipped with mypy) compiles exactly that code to C extension modules, which run the
matcher about 1.8x as fast. The build goes next to the sources with a stamp of the sources'
digest (see ``detectors/sigma/native.py``: a build that no longer matches its sources is not
used), and into a cache under ``~/.cache/socflow/native`` keyed by that digest, so a fresh clone
or a checkout of an older commit costs a copy, not a compile (~45 s).

Without a C compiler, Python headers or mypyc the build fails with a clear error; socflow then
runs the same modules as plain Python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from detectors.errors import NativeBuildError
from detectors.sigma import native

# Run by a fresh interpreter in an empty directory, so that setuptools does not read this
# project's pyproject.toml (pip builds the project with its own, newer setuptools).
_SETUP = """
import sys
from mypyc.build import mypycify
from setuptools import setup
setup(name="socflow-sigma-native", script_args=["build_ext", "--build-lib", sys.argv[1]],
      ext_modules=mypycify(sys.argv[2:], group_name="detectors.sigma._native", opt_level="3"))
"""


def cache_dir() -> Path:
    """Where builds are kept by digest: beside deploy/'s downloads (``~/.cache/socflow``)."""
    return Path(os.environ.get("SOCFLOW_NATIVE_CACHE", Path.home() / ".cache" / "socflow" / "native"))


def build(*, force: bool = False) -> str:
    """Make the compiled build current; return what was done ("current", "cached", "compiled")."""
    digest = native.source_digest()
    if not force and native.stamp_matches() and native.compiled_files():
        return "current"
    cached = cache_dir() / digest
    how = "cached"
    if force or not (cached / "stamp.json").is_file():
        _compile(cached, digest)
        how = "compiled"
    remove()
    for path in sorted(cached.iterdir()):
        if path.name != "stamp.json":
            _install(path, native.HERE / path.name)
    _install(cached / "stamp.json", native.STAMP)
    return how


def _install(source: Path, target: Path) -> None:
    # Through a new file and a rename: a running process (a Flink worker) has the old extension
    # mapped, and overwriting that file in place would crash it.
    partial = target.with_name(f".{target.name}.partial")
    shutil.copy2(source, partial)
    os.replace(partial, target)


def remove() -> None:
    """Delete the compiled build (socflow then runs the pure-Python modules)."""
    for path in native.compiled_files():
        path.unlink()
    native.STAMP.unlink(missing_ok=True)


def _compile(target: Path, digest: str) -> None:
    repo = native.HERE.parents[1]
    sources = [str(native.HERE / f"{name}.py") for name in native.MODULES]
    with tempfile.TemporaryDirectory(prefix="socflow-native-") as work:
        output = Path(work) / "lib"
        env = {**os.environ, "MYPYPATH": str(repo)}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", _SETUP, str(output), *sources], cwd=work, env=env,
                                capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            raise NativeBuildError(f"mypyc build failed (exit {result.returncode}): "
                                   f"{(result.stderr or result.stdout).strip()[-2000:]}")
        built = sorted((output / "detectors" / "sigma").glob("*.so"))
        if not built:
            raise NativeBuildError("mypyc build produced no extension module")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for path in built:
            shutil.copy2(path, staging / path.name)
        stamp = {"digest": digest, "python": sys.implementation.cache_tag, "files": [p.name for p in built],
                 "seconds": round(time.monotonic() - started, 1)}
        (staging / "stamp.json").write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # whole or absent: a killed build leaves no half entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--force", action="store_true", help="compile even if a current build exists")
    group.add_argument("--remove", action="store_true", help="delete the compiled build (run pure Python)")
    args = parser.parse_args(argv)
    if args.remove:
        remove()
        print("sigma engine: compiled build removed; the pure-Python modules run")
        return 0
    try:
        how = build(force=args.force)
    except NativeBuildError as error:
        print(f"sigma engine: {error}; the pure-Python modules run (same results, about half the speed)",
              file=sys.stderr)
        return 1
    print(f"sigma engine: compiled build {how} ({', '.join(p.name for p in native.compiled_files())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
