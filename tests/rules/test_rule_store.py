"""``socflow rules import`` and ``tune``: releases side by side, tuning that survives them."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from alerts.cli import main
from detectors.sigma import SigmaEngine
from tests.conftest import corpora_dir

REPO = Path(__file__).resolve().parents[2]
WHOAMI = "c248c896-e412-4279-8c15-1c558067b6fa"  # rules/windows/process_creation/proc_creation_win_whoami_all_execution
WHOAMI_PATH = "rules/windows/process_creation/proc_creation_win_whoami_all_execution.yml"
FILTER = f"""title: Admin workstation runs whoami /all on purpose
id: 0e3a3d0c-8f0a-4a43-9d4c-6a1d8b1a0f01
description: The IT admins' inventory script runs whoami /all on ADMIN-PC every hour.
logsource:
  product: windows
  category: process_creation
filter:
  rules:
    - {WHOAMI}
  selection:
    Computer: ADMIN-PC
  condition: not selection
"""


def _corpus() -> Path:
    corpus = corpora_dir() / "sigma"
    if not corpus.is_dir():
        pytest.skip(f"SigmaHQ corpus not found under {corpora_dir()} (set SOCFLOW_CORPORA)")
    return corpus


def _whoami(computer: str) -> dict[str, Any]:
    return {"winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1, "computer_name": computer,
                       "event_data": {"Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all",
                                      "OriginalFileName": "whoami.exe"}}}


def _fires(active: Path, event: dict[str, Any]) -> set[str]:
    engine, _ = SigmaEngine.load([active])
    return {rule.id for rule in engine.match(event)}


def _import(capsys: pytest.CaptureFixture[str], data_dir: Path, source: Path, *extra: str) -> dict[str, Any]:
    assert main(["--data-dir", str(data_dir), "rules", "import", "--format", "json", str(source), *extra]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def _copy_rules(corpus: Path, target: Path) -> None:
    shutil.copytree(corpus, target, ignore=lambda folder, names: [
        name for name in names if not (Path(folder, name).is_dir() or name.endswith(".yml"))])


def test_filter_survives_a_new_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus()
    data = tmp_path / "data"
    first = _import(capsys, data, corpus, "--name", "sigma-2026-08-05")
    assert first["rules"] >= 3700 and first["previous"] is None and not first["orphans"]
    assert first["changes"]["added"]["high"] > 1000
    assert any(item["path"] == "tests/thor.yml" for item in first["skipped"])
    active = data / "rules" / "active"
    assert WHOAMI in _fires(active, _whoami("ADMIN-PC"))

    # Local tuning: a filter, a level override, a disabled rule.
    (tmp_path / "admin_whoami.yml").write_text(FILTER, encoding="utf-8")
    assert main(["--data-dir", str(data), "rules", "tune", "filter", str(tmp_path / "admin_whoami.yml")]) == 0
    assert WHOAMI not in _fires(active, _whoami("ADMIN-PC"))
    assert WHOAMI in _fires(active, _whoami("D03-C04-PC002"))
    assert main(["--data-dir", str(data), "rules", "tune", "level", WHOAMI, "high",
                 "--reason", "whoami /all outside the admin PC is rare here"]) == 0
    manifest = json.loads((data / "rules" / "releases" / "sigma-2026-08-05" / "RELEASE.json").read_text())
    disabled = next(rule_id for rule_id, rule in sorted(manifest["rules"].items())
                    if rule["status"] == "test" and rule_id != WHOAMI)
    assert main(["--data-dir", str(data), "rules", "tune", "disable", disabled, "--reason", "noisy on the portal"]) == 0
    capsys.readouterr()

    # A modified copy: the filtered rule changed, one rule removed, one deprecated, one added.
    copy = tmp_path / "sigma-next"
    _copy_rules(corpus, copy)
    target = copy / WHOAMI_PATH
    target.write_text(target.read_text(encoding="utf-8").replace("modified: 2024-03-05", "modified: 2026-09-01"),
                      encoding="utf-8")
    removed = copy / "rules/windows/process_creation/proc_creation_win_whoami_priv_discovery.yml"
    removed_id = next(line.split()[1] for line in removed.read_text(encoding="utf-8").splitlines()
                      if line.startswith("id:"))
    removed.unlink()
    deprecated = copy / "rules/windows/process_creation/proc_creation_win_whoami_groups_discovery.yml"
    deprecated.write_text(deprecated.read_text(encoding="utf-8").replace("status: test", "status: deprecated"),
                          encoding="utf-8")
    (copy / "rules/windows/process_creation/proc_creation_win_new.yml").write_text(
        (copy / WHOAMI_PATH).read_text(encoding="utf-8").replace(WHOAMI, "7e1f3f4c-3c11-4c55-9a43-4a8a4f2f9b10")
        .replace("Enumerate All", "Enumerate Everything"), encoding="utf-8")
    second = _import(capsys, data, copy, "--name", "sigma-2026-09-01")
    assert second["previous"] == "sigma-2026-08-05" and not second["orphans"]
    changes = second["changes"]
    assert changes["modified"] == {"medium": 1}
    assert changes["removed"] == {"high": 1} and changes["deprecated"] == {"medium": 1}
    assert changes["added"] == {"medium": 1}
    assert removed_id not in json.loads((data / "rules" / "releases" / "sigma-2026-09-01" / "RELEASE.json")
                                        .read_text())["rules"]
    # The tuning is applied to the new release: the filter, the level, the disabled rule.
    assert WHOAMI not in _fires(active, _whoami("ADMIN-PC"))
    engine, _ = SigmaEngine.load([active])
    (fired,) = [rule for rule in engine.match(_whoami("D03-C04-PC002")) if rule.id == WHOAMI]
    assert fired.level == "high"
    assert disabled not in {rule.id for rule in engine.rules}
    summary = json.loads((active / "ACTIVE.json").read_text())
    assert summary["release"] == "sigma-2026-09-01" and summary["filters"] == ["admin_whoami.yml"]
    assert sorted(p.name for p in (data / "rules" / "releases").iterdir()) == ["sigma-2026-08-05", "sigma-2026-09-01"]

    # A release without the filtered rule orphans the filter, and says so.
    (copy / WHOAMI_PATH).unlink()
    third = _import(capsys, data, copy, "--name", "sigma-2026-10-01")
    assert any(f"filter admin_whoami.yml: target rule(s) {WHOAMI}" in orphan for orphan in third["orphans"])
    assert any(f"level override for rule {WHOAMI}" in orphan for orphan in third["orphans"])
    assert json.loads((active / "ACTIVE.json").read_text())["filters"] == []
    assert main(["--data-dir", str(data), "rules", "releases"]) == 0
    assert "ORPHANED filter admin_whoami.yml" in capsys.readouterr().out


def _small_release(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("web_path_traversal", "web_portal_sql_injection", "web_scanner_user_agent"):
        for suffix in (".yml", ".tests.yml"):
            shutil.copyfile(REPO / "rules" / "web" / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def test_zip_release_digest_is_the_folder_digest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _small_release(tmp_path / "web-1")
    archive = tmp_path / "web-1.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.iterdir()):
            zipped.write(path, f"web-1/{path.name}")
    from_folder = _import(capsys, tmp_path / "a", folder)
    from_zip = _import(capsys, tmp_path / "b", archive)
    assert from_zip["digest"] == from_folder["digest"] and from_zip["release"] == "web-1"
    assert from_zip["rules"] == 3  # the .tests.yml files are test events, not rules
    again = _import(capsys, tmp_path / "b", archive)
    assert again["unchanged"] is True


def test_plain_report_and_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCFLOW_RULES__MIN_LEVEL", "high")  # the settings model's selection
    folder = _small_release(tmp_path / "web-1")
    assert main(["--data-dir", str(tmp_path / "d"), "rules", "import", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("imported web-1: 3 rules, digest ")
    assert "added\thigh\t1" in out and "added\tmedium\t2" in out
    assert out[-1].startswith("active rule set: 1 rules")  # only the high one: SQL injection


@pytest.mark.parametrize(("make", "error"), [
    (lambda p: p / "missing", "no such file or folder"),
    (lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt", "neither a folder nor a zip"),
    (lambda p: (p / "broken.zip").write_bytes(b"PK\x03\x04 truncated") and p / "broken.zip",
     "neither a folder nor a zip"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no Sigma rule in the release"),
])
def test_bad_releases_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, error: str) -> None:
    source = make(tmp_path)
    assert main(["--data-dir", str(tmp_path / "d"), "rules", "import", str(source)]) == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / "d" / "rules" / "CURRENT").exists()


def test_zip_slip_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("rules/ok.yml", (REPO / "rules/web/web_path_traversal.yml").read_text())
        zipped.writestr("../../outside.yml", "title: x\n")
    assert main(["--data-dir", str(tmp_path / "d"), "rules", "import", str(archive)]) == 2
    assert "escapes the release folder" in capsys.readouterr().err
    assert not (tmp_path / "outside.yml").exists()


def test_bad_files_inside_a_release_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _small_release(tmp_path / "web-1")
    (folder / "not_yaml.yml").write_text("title: [\n", encoding="utf-8")
    (folder / "not_sigma.yml").write_text("title: notes\n", encoding="utf-8")
    (folder / "copy.yml").write_text((folder / "web_path_traversal.yml").read_text(), encoding="utf-8")
    (folder / "huge.yml").write_text("# x\n" * (3 * 1024 * 1024), encoding="utf-8")
    result = _import(capsys, tmp_path / "d", folder)
    reasons = {item["path"]: item["reason"] for item in result["skipped"]}
    assert reasons["not_yaml.yml"].startswith("not YAML")
    assert reasons["not_sigma.yml"] == "not a Sigma rule (no detection or correlation)"
    assert reasons["huge.yml"].endswith("larger than 10 MB")
    duplicated = [path for path in ("copy.yml", "web_path_traversal.yml") if path in reasons]
    assert len(duplicated) == 1 and "duplicate rule id" in reasons[duplicated[0]]


def test_bad_tuning_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    base = ["--data-dir", str(data), "rules", "tune"]
    assert main([*base, "disable", "e0491526-f487-433c-9e83-ad4f4a08ae0d", "--reason", "x"]) == 2
    assert "no release imported yet" in capsys.readouterr().err
    _import(capsys, data, _small_release(tmp_path / "web-1"))
    not_filter = tmp_path / "rule.yml"
    shutil.copyfile(REPO / "rules/web/web_path_traversal.yml", not_filter)
    cases = [
        ([*base, "filter", str(not_filter)], "not a Sigma filter rule"),
        ([*base, "filter", str(tmp_path / "nowhere.yml")], "not a readable YAML file"),
        ([*base, "disable", "no-such-id", "--reason", "x"], "no rule no-such-id in the current release"),
        ([*base, "disable", "e0491526-f487-433c-9e83-ad4f4a08ae0d", "--reason", "  "], "a reason is required"),
        ([*base, "enable", "e0491526-f487-433c-9e83-ad4f4a08ae0d"], "is not disabled"),
    ]
    for args, error in cases:
        assert main(args) == 2, args
        assert error in capsys.readouterr().err
    orphan_filter = tmp_path / "orphan.yml"
    orphan_filter.write_text(FILTER, encoding="utf-8")
    assert main([*base, "filter", str(orphan_filter)]) == 0
    assert f"ORPHANED filter orphan.yml: target rule(s) {WHOAMI}" in capsys.readouterr().out


def test_release_name_collision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    folder = _small_release(tmp_path / "web-1")
    _import(capsys, data, folder)
    (folder / "web_path_traversal.yml").write_text(
        (folder / "web_path_traversal.yml").read_text().replace("level: medium", "level: high"), encoding="utf-8")
    assert main(["--data-dir", str(data), "rules", "import", str(folder)]) == 2
    assert "already in the store with another digest" in capsys.readouterr().err
    assert main(["--data-dir", str(data), "rules", "import", "--name", "../up", str(folder)]) == 2
    assert "not a plain folder name" in capsys.readouterr().err
    result = _import(capsys, data, folder, "--name", "web-2")
    assert result["changes"]["modified"] == {"high": 1}
