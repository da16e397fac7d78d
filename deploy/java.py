"""Find a JDK that Elasticsearch 8.19, Kafka 4.1 and Flink 2.2 all support (17 or 21).

Machines often carry a newer default JDK (here a Temurin 25) that Flink 2.2 and ES's bundled
launcher do not support, so the JDK is always chosen explicitly, never taken from PATH blindly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from deploy.errors import StackError, ToolMissingError
from deploy.settings import StackSettings

SUPPORTED_JAVA = (17, 21)
JVM_DIRS = (Path("/usr/lib/jvm"), Path("/usr/java"), Path("/opt/java"))


def java_version(java_home: Path) -> int | None:
    """Major version of the JDK at ``java_home`` (from its ``release`` file, else ``java -version``)."""
    release = java_home / "release"
    text = ""
    try:
        text = release.read_text()
    except OSError:
        java = java_home / "bin" / "java"
        if not java.exists():
            return None
        try:
            text = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30,
                                  check=False).stderr
        except (OSError, subprocess.TimeoutExpired):
            return None
    match = re.search(r'version\s*[=\s]\s*"(\d+)(?:\.(\d+))?', text, re.IGNORECASE)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8" style


def _usable(home: Path) -> bool:
    return (home / "bin" / "java").exists() and java_version(home) in SUPPORTED_JAVA


def find_java_home(settings: StackSettings | None = None) -> Path:
    """JDK home to run the services with.

    Order: ``settings.java_home`` (must be 17 or 21), ``$JAVA_HOME`` if 17/21, a JDK 17 under
    /usr/lib/jvm (then 21), then the ``java`` on PATH if it is 17/21.
    """
    if settings is not None and settings.java_home is not None:
        home = settings.java_home
        if not (home / "bin" / "java").exists():
            raise ToolMissingError(f"java_home {home} has no bin/java", service="java")
        version = java_version(home)
        if version not in SUPPORTED_JAVA:
            raise StackError(f"java_home {home} is Java {version}; need one of {SUPPORTED_JAVA}",
                             service="java")
        return home
    env_home = os.environ.get("JAVA_HOME")
    if env_home and _usable(Path(env_home)):
        return Path(env_home)
    for wanted in SUPPORTED_JAVA:
        for jvm_dir in JVM_DIRS:
            if not jvm_dir.is_dir():
                continue
            # Real directories before the Debian symlink aliases, for stable paths in logs.
            for candidate in sorted(jvm_dir.glob(f"*{wanted}*"), key=lambda p: (p.is_symlink(), p.name)):
                if _usable(candidate):
                    return candidate
    java = shutil.which("java")
    if java:
        home = Path(java).resolve().parent.parent
        if _usable(home):
            return home
    raise ToolMissingError(
        f"no JDK {' or '.join(map(str, SUPPORTED_JAVA))} found (set stack.java_home or JAVA_HOME; "
        "on Debian: apt-get install openjdk-17-jdk-headless)", service="java")
