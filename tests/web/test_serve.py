"""`threatmesh serve` as a real process on 127.0.0.1: discovery and health answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_discovery_and_health(tmp_path: Path) -> None:
    home = tmp_path / "node"
    cli = [sys.executable, "-m", "threatmesh.cli", "--home", str(home)]
    assert subprocess.run([*cli, "init", "--name", "Served"], capture_output=True).returncode == 0
    port = _free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        deep = httpx.get(f"{base}/health?deep=1", timeout=10)
        assert deep.status_code == 200
        discovery = httpx.get(f"{base}/taxii2/", headers={"Accept": "application/taxii+json;version=2.1"}, timeout=5)
        assert discovery.status_code in (200, 401)
        assert discovery.headers["content-type"].startswith("application/taxii+json")
    finally:
        server.terminate()
        server.wait(10)
    banner = server.stderr.read().decode()  # type: ignore[union-attr]
    assert f"http://127.0.0.1:{port}/taxii2/" in banner


def test_serve_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    home = tmp_path / "node"
    cli = [sys.executable, "-m", "threatmesh.cli", "--home", str(home)]
    subprocess.run([*cli, "init"], capture_output=True, check=True)
    done = subprocess.run([*cli, "serve", "--host", "0.0.0.0", "--port", "1"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "refusing plain HTTP" in done.stderr and "Traceback" not in done.stderr
