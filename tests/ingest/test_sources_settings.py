"""Collector configuration by source (``collector.files``): ``socflow collect files`` without paths reads
each configured glob with its format, time zone and host; bad settings are refused with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from alerts.cli import main
from ingest.errors import IngestError
from ingest.files import collect_paths
from ingest.settings import CollectorSettings, FileSourceSettings
from ingest.spool import read_batches
from tests.ingest.test_sources import DATA


def _config(tmp_path: Path, files: list[dict]) -> Path:
    config = tmp_path / "socflow.yaml"
    config.write_text(yaml.safe_dump({"collector": {"files": files}}), encoding="utf-8")
    return config


def test_collect_files_without_paths_reads_the_configured_sources(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "srv"
    (logs / "named").mkdir(parents=True)
    (logs / "dns02").mkdir()
    shutil.copy(DATA / "bind-queries.log", logs / "named" / "queries.log")
    shutil.copy(DATA / "bind-queries.log", logs / "named" / "queries.log.1")
    shutil.copy(DATA / "windns-dns.log", logs / "dns02" / "dns.log")
    shutil.copy(DATA / "dnsmasq.log", logs / "dns02" / "not-configured.log")
    config = _config(tmp_path, [
        {"name": "BIND queries of dc-dns01", "paths": [str(logs / "named" / "queries.log*")], "format": "bind",
         "timezone": "Asia/Ho_Chi_Minh", "host": "dc-dns01"},
        {"name": "Windows DNS of dc-dns02", "paths": [str(logs / "dns02" / "dns.log")], "timezone": "Asia/Ho_Chi_Minh",
         "host": "dc-dns02"},
    ])
    spool = tmp_path / "spool"
    assert main(["--config", str(config), "collect", "files", "--spool", str(spool), "--no-progress"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (stats["files"], stats["events"], stats["skipped"]) == (3, 15, 7)
    events = [event for batch in read_batches(spool) for event in batch]
    bind = [event for event in events if event["event"]["dataset"] == "bind.log"]
    windns = [event for event in events if event["event"]["dataset"] == "windows_dns.log"]
    assert len(bind) == 10 and len(windns) == 5
    # 10:00 in Hanoi (UTC+7) is 03:00 UTC; the syslog line's own host (dns01) is kept.
    assert bind[0]["@timestamp"] == "2026-11-22T03:00:00.123Z" and bind[0]["host"]["name"] == "dc-dns01"
    assert bind[4]["host"]["name"] == "dns01" and bind[4]["@timestamp"].endswith("T03:00:03.000Z")
    assert windns[0]["@timestamp"] == "2026-11-22T03:00:05.000Z"
    assert {event["socflow"]["node"]["id"] for event in windns} == {"dc-core"}  # dc-dns02, by the inventory
    assert {event["host"]["name"] for event in windns} == {"dc-dns02"}


def test_explicit_paths_ignore_the_configured_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(DATA / "bind-queries.log", tmp_path / "queries.log")
    config = _config(tmp_path, [{"name": "BIND", "paths": [str(tmp_path / "*.log")], "format": "bind",
                                 "timezone": "Asia/Ho_Chi_Minh"}])
    spool = tmp_path / "spool"
    assert main(["--config", str(config), "collect", "files", str(tmp_path / "queries.log"), "--spool", str(spool),
                 "--no-progress"]) == 0
    events = [event for batch in read_batches(spool) for event in batch]
    assert events[0]["@timestamp"] == "2026-11-22T10:00:00.123Z"  # sniffed as BIND, read as UTC


def test_bad_source_settings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        FileSourceSettings(name="x", paths=["/var/log/x"], timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        FileSourceSettings(name="x", paths=[])
    with pytest.raises(IngestError, match="unknown format 'fortigat'"):
        collect_paths([], tmp_path / "spool", settings=CollectorSettings(),
                      sources=[FileSourceSettings(name="x", paths=[str(tmp_path)], format="fortigat")])
    assert main(["--config", str(_config(tmp_path, [])), "collect", "files", "--spool", str(tmp_path / "s")]) == 2
    assert "no file sources configured" in capsys.readouterr().err
