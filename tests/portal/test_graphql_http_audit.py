"""External references against the running service (uvicorn in a subprocess on a fresh
SQLite database): the GraphQL over HTTP audit suite (npm `graphql-http`, `serverAudits`), run
with node, and schemathesis generating operations from the schema.

Needs `node` for the audit (skipped without it) and `tests/portal/audit/node_modules`
(`npm ci --prefix tests/portal/audit`; run here when missing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET

AUDIT_DIR = Path(__file__).parent / "audit"
BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0
AUDIT_TIMEOUT = 180.0


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNERGRAPH_")}
    env.update(
        PARTNERGRAPH_DATABASE_URL=f"sqlite://{database}",
        PARTNERGRAPH_SECRET_KEY=TEST_SECRET,
        PARTNERGRAPH_DEVELOPMENT="false",
    )
    return env


def _wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not answer /healthz in {START_TIMEOUT}s:\n{log.read_text()}")


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    """The service on 127.0.0.1, migrated first; stopped afterwards."""
    env = _server_env(tmp_path / "audit.sqlite3")
    migrated = subprocess.run(
        [_tool("partnergraph"), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "portal.app:create_app_from_env", "--factory"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, server, log)
        yield f"{base}/graphql"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the graphql-http audit suite runs on Node.js")
    if not (AUDIT_DIR / "node_modules" / "graphql-http").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not on PATH and tests/portal/audit/node_modules is missing")
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=AUDIT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}{installed.stderr}"
    return node


def _admin_token(server_url: str, tmp_path: Path) -> str:
    """An admin's access token: the audits introspect, which anonymous callers may not."""
    env = _server_env(tmp_path / "audit.sqlite3")
    email, password = "audit@example.com", "audit-password-123"
    created = subprocess.run(
        [_tool("partnergraph"), "create-admin", "--email", email, "--password", password],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    request = urllib.request.Request(
        server_url.replace("/graphql", "/auth/login"),
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token: str = json.loads(response.read())["access_token"]
    return token


def test_graphql_over_http_audits_pass(node: str, server_url: str, tmp_path: Path) -> None:
    token = _admin_token(server_url, tmp_path)
    audit = subprocess.run(
        [node, "audit.mjs", server_url],
        env={**os.environ, "AUDIT_TOKEN": token},
        cwd=AUDIT_DIR,
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT,
    )
    output = audit.stdout + audit.stderr
    failed_must = [line for line in output.splitlines() if line.startswith("FAIL ")]
    assert failed_must == [], output
    assert audit.returncode == 0, output
    # Every SHOULD audit passes too (graphql-http is pinned; a new one is a conscious update).
    assert [line for line in output.splitlines() if line.startswith("WARN ")] == [], output
    summary = re.search(r"^summary: (.*)$", output, re.MULTILINE)
    assert summary is not None, output
    counts = {
        level: (int(ok), int(total))
        for level, ok, total in re.findall(r"(MUST|SHOULD|MAY) (\d+)/(\d+) passed", summary[1])
    }
    assert set(counts) == {"MUST", "SHOULD", "MAY"}, output
    assert all(total > 0 for _, total in counts.values()), output
    assert counts["MUST"][0] == counts["MUST"][1], output
    assert counts["SHOULD"][0] == counts["SHOULD"][1], output


def test_schemathesis_finds_no_server_error(server_url: str, tmp_path: Path) -> None:
    """Schemathesis generates queries and mutations from the schema (as an admin, so every
    field is reachable): bad input must answer documented refusals (BAD_USER_INPUT, NOT_FOUND...),
    never a 5xx nor an INTERNAL_SERVER_ERROR (the check is in schemathesis_hooks.py)."""
    token = _admin_token(server_url, tmp_path)
    result = subprocess.run(
        [
            _tool("schemathesis"),
            "run",
            server_url,
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "no_server_error",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "20261123",
            "--no-color",
        ],
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.portal.schemathesis_hooks"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases is not None, output
    assert int(cases.group(1)) > 100, output  # it really generated operations
    assert cases.group(1) == cases.group(2), output
