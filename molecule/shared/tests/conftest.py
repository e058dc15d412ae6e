"""Fixtures shared by the molecule scenarios' testinfra tests.

The scenario's prepare step writes the resolved rehearsal settings and the "before"
measurements to $MOLECULE_EPHEMERAL_DIRECTORY/rehearsal_facts.json (testinfra cannot
template inventory variables). Commands run through testinfra's `host`, so the same
tests work against a remote staging host.
"""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest



@pytest.fixture(scope="session")
def facts() -> dict:
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "rehearsal_facts.json"
    return json.loads(path.read_text())


def run_json(host, argv: list[str], expect_rc: int = 0):
    """Run argv on the host (no shell), return its stdout parsed as JSON."""
    cmd = host.run(shlex.join(argv))
    assert cmd.rc == expect_rc, f"{argv[:3]} exited {cmd.rc}: {cmd.stderr[-2000:]}"
    return json.loads(cmd.stdout)


@pytest.fixture
def target_now(host, facts) -> dict:
    """Fingerprint of the target database as it is now (see files/target_fingerprint.py)."""
    return run_json(host, [facts["python"], f"{facts['files']}/target_fingerprint.py",
                           "--dsn", facts["dsn"]])


@pytest.fixture
def current_run(host, facts) -> dict:
    """The runbook's record of the current cutover run (roles/cutover_state)."""
    run_id = host.file(f"{facts['state_dir']}/current").content_string.strip()
    assert run_id, "no current cutover run recorded"
    return json.loads(host.file(f"{facts['state_dir']}/runs/{run_id}.json").content_string)


@pytest.fixture
def export_dir(current_run) -> str:
    """The export this run imported (the runbook records it; a re-export gets a new dir)."""
    return current_run["data"]["export_dir"]


@pytest.fixture
def env_file(host, facts):
    return host.file(facts["env_file"])


def http_get(host, url: str) -> tuple[int, str]:
    """GET url from the host itself; returns (status, body)."""
    cmd = host.run(shlex.join(["curl", "-sS", "-m", "10", "-w", "\n%{http_code}", url]))
    assert cmd.rc == 0, f"GET {url} failed: {cmd.stderr}"
    body, _, status = cmd.stdout.rpartition("\n")
    return int(status), body
