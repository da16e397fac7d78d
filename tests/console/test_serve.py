"""``socflow serve`` as a process: HTTPS with a certificate from the settings, HSTS, clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.console.conftest import free_port

pytestmark = pytest.mark.integration


def _certificate(directory: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = directory / "console.pem", directory / "console.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_serve_over_tls(tmp_path: Path, elasticsearch_url: str) -> None:
    cert, key = _certificate(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    env = {**os.environ, "SOCFLOW_ELASTICSEARCH__URL": elasticsearch_url, "SOCFLOW_CONSOLE__TLS_CERT": str(cert),
           "SOCFLOW_CONSOLE__TLS_KEY": str(key), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-m", "alerts.cli", "--data-dir", str(tmp_path / "data"), "serve",
                                "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusted, timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"socflow serve did not answer: {process.communicate(timeout=5)}")
                time.sleep(0.2)
        assert answer.json() == {"status": "ok"}
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
        login = httpx.get(f"https://127.0.0.1:{port}/login", verify=trusted)
        assert "Secure" in login.headers["set-cookie"] and login.headers["set-cookie"].startswith("__Host-")
        with pytest.raises(httpx.TransportError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).raise_for_status()
    finally:
        process.send_signal(signal.SIGINT)
        out, _err = process.communicate(timeout=20)
    assert f"socflow console on https://127.0.0.1:{port}/" in out
    assert "no console users yet" in out
