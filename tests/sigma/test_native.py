"""The mypyc-compiled build of the engine: same matches as the sources, never a stale build.

Every other Sigma test runs whichever build is loaded (the compiled one after ``deploy/run
test``); these check what is special about it: that it answers exactly as the plain-Python
modules do, and that a build older than its sources is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.sigma import BUILD
from detectors.sigma.native import ENV_SWITCH, compiled_files, stamp_matches
from tests.sigma.conftest import REPO_ROOT

WHICH = "import detectors.sigma as s, detectors.sigma.engine as e; print(s.BUILD); print(e.__file__)"

MATCH_ALL = """
import hashlib, json, sys
from pathlib import Path
from detectors.sigma import BUILD, SigmaEngine
from detectors.sigma.events import iter_windows_file
from ingest.logsource import LogsourceTable
rules, samples, config = map(Path, sys.argv[1:4])
engine, report = SigmaEngine.load([rules, config.parent / "rules"], config_dir=config)
table = LogsourceTable.load(config / "logsources.yaml")
digest, matches, events = hashlib.sha256(), 0, 0
for path in sorted(samples.rglob("*.evtx")):
    for _, event in iter_windows_file(path, table=table):
        ids = [rule.id for rule in engine.match(event)]
        digest.update(json.dumps(ids).encode())
        matches, events = matches + len(ids), events + 1
print(json.dumps({"build": BUILD, "loaded": report.loaded, "events": events, "matches": matches,
                  "digest": digest.hexdigest()}))
"""


def run_python(code: str, *args: str, compiled: str = "1", path: Path = REPO_ROOT) -> list[str]:
    env = {**os.environ, ENV_SWITCH: compiled, "PYTHONPATH": os.pathsep.join([str(path), str(REPO_ROOT)])}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=path, env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def require_build() -> None:
    if not compiled_files() or not stamp_matches():
        pytest.skip("no current compiled build (deploy/run test makes one: detectors/sigma/native_build.py)")


def test_ci_runs_the_compiled_engine() -> None:
    if os.environ.get("CI", "").lower() in {"", "0", "false", "no"}:
        pytest.skip("checked in CI, where deploy/run test builds it")
    assert BUILD == "compiled", "deploy/run test should have compiled the engine: see its output"


def test_a_build_older_than_its_sources_is_not_used(tmp_path: Path) -> None:
    require_build()
    package = tmp_path / "detectors"
    shutil.copytree(REPO_ROOT / "detectors", package, ignore=shutil.ignore_patterns("__pycache__"))
    assert run_python(WHICH, path=tmp_path)[0] == "compiled"

    engine = package / "sigma" / "engine.py"
    engine.write_text(engine.read_text(encoding="utf-8") + "\n# edited after the build\n", encoding="utf-8")
    build, origin = run_python(WHICH, path=tmp_path)
    assert build.startswith("pure (compiled build is older than the sources")
    assert origin == str(engine)


def test_the_switch_turns_the_compiled_build_off() -> None:
    require_build()
    build, origin = run_python(WHICH, compiled="0")
    assert build == f"pure ({ENV_SWITCH}=0)"
    assert origin.endswith("engine.py")


@pytest.mark.corpus
@pytest.mark.slow
def test_compiled_and_pure_builds_match_alike(sigma_corpus: Path, evtx_samples: Path) -> None:
    require_build()
    args = (str(sigma_corpus / "rules" / "windows"), str(evtx_samples), str(REPO_ROOT / "config"))
    compiled = json.loads(run_python(MATCH_ALL, *args, compiled="1")[-1])
    pure = json.loads(run_python(MATCH_ALL, *args, compiled="0")[-1])
    assert compiled.pop("build") == "compiled"
    assert pure.pop("build").startswith("pure")
    assert compiled["events"] > 8000 and compiled["matches"] > 1000
    assert compiled == pure
