"""The rule-set cache: a hit gives the engine a load from files gives, and nothing else ever does.

Each test has its own cache directory (``SOCFLOW_CACHE_DIR``) and its own copy of the project's
rules, so that editing a rule file is a real edit.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from detectors.sigma import SigmaEngine
from detectors.sigma.cache import KEEP, cache_root, load_engine, ruleset_digest
from tests.sigma.conftest import CONFIG_DIR, REPO_ROOT

ENCODED = {
    "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
               "provider_name": "Microsoft-Windows-Sysmon",
               "event_data": {"Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                              "OriginalFileName": "PowerShell.EXE",
                              "CommandLine": "powershell.exe -NoP -enc SQBFAFgA"}},
    "socflow": {"logsource": {"product": "windows", "category": "process_creation"}},
}


@pytest.fixture()
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOCFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SOCFLOW_RULESET_CACHE", raising=False)
    folder = tmp_path / "rules"
    shutil.copytree(REPO_ROOT / "rules", folder)
    return folder


def _summary(engine: SigmaEngine, report: Any) -> tuple[Any, ...]:
    return (tuple(engine.rules), len(engine.correlations), report.render(),
            [rule.id for rule in engine.match(ENCODED)])


def _cache_files() -> list[Path]:
    return sorted(cache_root().glob("*.pickle"))


def test_a_hit_gives_what_a_load_from_files_gives(rules: Path) -> None:
    first, first_report, outcome = load_engine([rules], config_dir=CONFIG_DIR)
    assert outcome.state == "miss" and outcome.path is not None and outcome.path.exists()
    assert oct(outcome.path.stat().st_mode & 0o777) == "0o600"
    second, second_report, outcome = load_engine([rules], config_dir=CONFIG_DIR)
    assert outcome.state == "hit"
    reference, reference_report = SigmaEngine.load([rules], config_dir=CONFIG_DIR)
    assert _summary(first, first_report) == _summary(second, second_report) == _summary(reference, reference_report)
    assert _summary(second, second_report)[3], "the sample event fires the encoded-command rule"
    assert [corr.name for corr in second.correlations] == [corr.name for corr in reference.correlations]


def test_an_edited_rule_is_loaded_from_its_file(rules: Path) -> None:
    load_engine([rules], config_dir=CONFIG_DIR)
    rule_file = next((rules / "windows").glob("*encoded_command.yml"))
    rule_file.write_text(rule_file.read_text(encoding="utf-8").replace("level: ", "level: critical\nx_old_level: ", 1),
                         encoding="utf-8")
    engine, _, outcome = load_engine([rules], config_dir=CONFIG_DIR)
    assert outcome.state == "miss"
    assert {rule.level for rule in engine.rules if rule.path == str(rule_file)} == {"critical"}
    assert len(_cache_files()) == 2  # the old set's entry stays valid for the old files


def test_a_removed_rule_file_or_other_configuration_is_another_key(rules: Path, tmp_path: Path) -> None:
    before = ruleset_digest([rules], CONFIG_DIR)
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    assert ruleset_digest([rules], config) == before  # same bytes (the path of config is not the key)
    (config / "sigma" / "windows.yml").write_text(
        (config / "sigma" / "windows.yml").read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert ruleset_digest([rules], config) != before
    next((rules / "windows").glob("*encoded_command.yml")).unlink()
    assert ruleset_digest([rules], CONFIG_DIR) != before


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05K\x01."])
def test_a_corrupt_cache_file_is_a_miss_and_is_rewritten(rules: Path, damage: bytes) -> None:
    _, _, outcome = load_engine([rules], config_dir=CONFIG_DIR)
    assert outcome.path is not None
    outcome.path.write_bytes(damage)
    engine, _, again = load_engine([rules], config_dir=CONFIG_DIR)
    assert again.state == "miss" and ("corrupt" in again.reason or "format" in again.reason)
    assert engine.match(ENCODED)
    assert load_engine([rules], config_dir=CONFIG_DIR)[2].state == "hit"


def test_a_cache_writable_by_others_is_never_read(rules: Path) -> None:
    _, _, outcome = load_engine([rules], config_dir=CONFIG_DIR)
    assert outcome.path is not None
    os.chmod(outcome.path, 0o666)
    _, _, again = load_engine([rules], config_dir=CONFIG_DIR)
    assert again.state == "miss" and "private" in again.reason
    os.chmod(outcome.path.parent, 0o777)
    _, _, third = load_engine([rules], config_dir=CONFIG_DIR)
    assert third.state == "miss" and "directory is not private" in third.reason


def test_a_symlinked_cache_file_is_not_followed(rules: Path, tmp_path: Path) -> None:
    _, _, outcome = load_engine([rules], config_dir=CONFIG_DIR)
    assert outcome.path is not None
    elsewhere = tmp_path / "elsewhere.pickle"
    outcome.path.rename(elsewhere)
    outcome.path.symlink_to(elsewhere)
    _, _, again = load_engine([rules], config_dir=CONFIG_DIR)
    assert again.state == "miss" and "unreadable" in again.reason


def test_the_cache_can_be_turned_off(rules: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCFLOW_RULESET_CACHE", "0")
    _, _, outcome = load_engine([rules], config_dir=CONFIG_DIR)
    assert outcome.state == "off" and not _cache_files()


def test_the_cache_keeps_only_the_most_recently_used_files(rules: Path) -> None:
    root = cache_root()
    root.mkdir(parents=True, mode=0o700)
    for number in range(KEEP + 5):  # stale entries of older rule-set versions, oldest first
        stale = root / f"{number:064x}.pickle"
        stale.write_bytes(b"old")
        os.utime(stale, (1_000_000 + number, 1_000_000 + number))
    newest_stale = root / f"{KEEP + 4:064x}.pickle"
    _, _, outcome = load_engine([rules])
    assert outcome.state == "miss" and outcome.path is not None
    kept = set(root.glob("*.pickle"))
    assert len(kept) == KEEP and outcome.path in kept and newest_stale in kept
    assert not (root / f"{0:064x}.pickle").exists()


def test_a_published_set_is_a_cache_hit_at_its_final_place(rules: Path, tmp_path: Path) -> None:
    # publish() validates in a staging directory, then renames it: the job's load must not parse again.
    from detectors.ruleset import RULES_DIR, publish

    published = publish([rules], tmp_path / "store", config_dir=CONFIG_DIR)
    engine, _, outcome = load_engine([published.path / RULES_DIR], config_dir=CONFIG_DIR)
    assert outcome.state == "hit"
    assert all(str(rule.path).startswith(str(published.path)) and str(rule.info.path).startswith(str(published.path))
               for rule in engine.loaded_rules())
    assert not list(cache_root().glob("*.pickle"))[1:]  # the staging copy's entry was moved, not left
