"""Fetch pinned artifacts from Maven Central with the machine's own Maven.

Maven runs with strict checksums (``-C``: a download whose .sha1 does not match fails), and
the copy handed to the services is checked again against the .sha1 Maven stored beside the
artifact, so a truncated or tampered file in the local repository is caught too. Copies live in
``cache_dir`` (outside the repo); Maven's own local repository stays the usual ~/.m2.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import StackError, ToolMissingError
from deploy.process import locked, log_event, tail

MAVEN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Coordinates:
    """groupId:artifactId:version[:extension[:classifier]]."""

    group: str
    artifact: str
    version: str
    extension: str = "jar"
    classifier: str = ""

    @classmethod
    def parse(cls, text: str) -> Coordinates:
        parts = text.split(":")
        if not 3 <= len(parts) <= 5:
            raise ValueError(f"bad Maven coordinates {text!r}")
        return cls(*parts)

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.{self.extension}"

    def __str__(self) -> str:
        text = f"{self.group}:{self.artifact}:{self.version}:{self.extension}"
        return f"{text}:{self.classifier}" if self.classifier else text

    def repo_path(self, local_repo: Path) -> Path:
        return local_repo.joinpath(*self.group.split("."), self.artifact, self.version, self.filename)


def local_repository() -> Path:
    """Maven's local repository: $SOCFLOW_MAVEN_REPO or ~/.m2/repository (passed to mvn explicitly)."""
    return Path(os.environ.get("SOCFLOW_MAVEN_REPO") or Path.home() / ".m2" / "repository")


def find_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolMissingError("Maven (mvn) is not installed; on Debian: apt-get install maven",
                               service="maven")
    return mvn


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()  # noqa: S324 (Maven Central publishes .sha1; used for integrity, not security)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha1(path: Path, sha1_file: Path) -> None:
    """Raise unless ``path`` hashes to the value in ``sha1_file`` (Maven's ``<hash> [name]`` format)."""
    try:
        expected = sha1_file.read_text().split()[0].strip().lower()
    except (OSError, IndexError) as error:
        raise StackError(f"no checksum file {sha1_file} for {path.name}", service="maven") from error
    actual = sha1_of(path)
    if actual != expected:
        raise StackError(f"checksum mismatch for {path}: sha1 {actual}, expected {expected}",
                         service="maven")


def run_mvn(args: list[str], log_dir: Path, what: str, cwd: Path | None = None) -> None:
    """Run Maven in batch mode; on failure raise with the tail of its log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "maven.log"
    cmd = [find_mvn(), "-B", "-C", "-Dstyle.color=never", f"-Dmaven.repo.local={local_repository()}", *args]
    log_event("maven_fetch", what=what)
    with log_path.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                    timeout=MAVEN_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as error:
            raise StackError(f"Maven timed out fetching {what}", service="maven",
                             log_tail=tail(log_path)) from error
    if result.returncode != 0:
        raise StackError(f"Maven could not fetch {what} (offline, or not on Maven Central?)",
                         service="maven", log_tail=tail(log_path))


def fetch_artifact(coords: str | Coordinates, cache_dir: Path) -> Path:
    """One artifact, checksum-verified, copied to ``cache_dir/artifacts``; cached after the first call."""
    coordinates = Coordinates.parse(coords) if isinstance(coords, str) else coords
    target_dir = cache_dir / "artifacts"
    target = target_dir / coordinates.filename
    target_sha1 = target.with_name(target.name + ".sha1")
    if target.exists() and target_sha1.exists():
        verify_sha1(target, target_sha1)
        return target
    # Two processes (a developer's `stack up`, a test session) may fetch at once: one at a time.
    with locked(cache_dir / ".locks" / f"{coordinates.filename}.lock"):
        if target.exists() and target_sha1.exists():
            verify_sha1(target, target_sha1)
            return target
        return _fetch_artifact(coordinates, target)


def _fetch_artifact(coordinates: Coordinates, target: Path) -> Path:
    target_dir = target.parent
    target_sha1 = target.with_name(target.name + ".sha1")
    cache_dir = target_dir.parent
    in_repo = coordinates.repo_path(local_repository())
    repo_sha1 = in_repo.with_name(in_repo.name + ".sha1")
    if not (in_repo.exists() and repo_sha1.exists()):
        run_mvn(["dependency:get", f"-Dartifact={coordinates}", "-Dtransitive=false"],
                cache_dir / "logs", str(coordinates))
    if not in_repo.exists():
        raise StackError(f"Maven reported success but {in_repo} is missing", service="maven")
    verify_sha1(in_repo, repo_sha1)
    target_dir.mkdir(parents=True, exist_ok=True)
    # Copy under a temporary name first so a crash never leaves a half file under the real name.
    partial = target.with_name(target.name + ".part")
    shutil.copyfile(in_repo, partial)
    verify_sha1(partial, repo_sha1)
    shutil.copyfile(repo_sha1, target_sha1)
    partial.replace(target)
    log_event("artifact_cached", artifact=str(coordinates), path=target)
    return target


POM_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>socflow.deploy</groupId>
  <artifactId>resolve-{artifact}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
DEPENDENCY_TEMPLATE = """    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>"""


def fetch_with_dependencies(coords: str | Coordinates, cache_dir: Path,
                            extra: tuple[str, ...] = ()) -> list[Path]:
    """A jar and its runtime dependencies, resolved by Maven into ``cache_dir/lib/<artifact>-<version>``
    (in repository layout, so each copy can be checked against the .sha1 stored beside its source).

    A throwaway pom names the one dependency; ``dependency:copy-dependencies`` resolves the
    runtime closure exactly as Maven would for a project using it. A stamp file marks a complete
    copy, so later calls cost nothing. ``extra`` adds jars the main one leaves to the application
    (e.g. a logging binding); they change the directory name so each set is cached apart.
    """
    coordinates = Coordinates.parse(coords) if isinstance(coords, str) else coords
    extras = [Coordinates.parse(text) for text in extra]
    suffix = "-" + hashlib.sha256(",".join(extra).encode()).hexdigest()[:8] if extras else ""
    dest = cache_dir / "lib" / f"{coordinates.artifact}-{coordinates.version}{suffix}"
    stamp = dest / ".complete"
    if stamp.exists():
        return sorted(dest.rglob("*.jar"))
    with locked(cache_dir / ".locks" / f"{dest.name}.lock"):
        if stamp.exists():
            return sorted(dest.rglob("*.jar"))
        return _resolve(coordinates, extras, dest, cache_dir)


def _resolve(coordinates: Coordinates, extras: list[Coordinates], dest: Path, cache_dir: Path) -> list[Path]:
    stamp = dest / ".complete"
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="socflow-resolve-") as work:
        pom = Path(work) / "pom.xml"
        dependencies = "\n".join(
            DEPENDENCY_TEMPLATE.format(group=item.group, artifact=item.artifact, version=item.version)
            for item in [coordinates, *extras])
        pom.write_text(POM_TEMPLATE.format(artifact=coordinates.artifact, dependencies=dependencies))
        run_mvn(["-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={dest}",
                 "-DincludeScope=runtime", "-Dmdep.useRepositoryLayout=true"],
                cache_dir / "logs", f"{coordinates} with dependencies", cwd=Path(work))
    jars = sorted(dest.rglob("*.jar"))
    if not any(jar.name == coordinates.filename for jar in jars):
        raise StackError(f"{coordinates.filename} missing after dependency resolution", service="maven")
    # copy-dependencies took them from the local repository, which Maven checked on download
    # (-C); the repository layout of the copy tells where each stored .sha1 is, check them too.
    local_repo = local_repository()
    for jar in jars:
        verify_sha1(jar, local_repo / jar.relative_to(dest).with_name(jar.name + ".sha1"))
    stamp.write_text("\n".join(jar.name for jar in jars) + "\n")
    log_event("dependencies_cached", artifact=str(coordinates), jars=len(jars), path=dest)
    return jars
