"""After migrate.yml: PostgreSQL serves the app and holds exactly the exported data."""
from __future__ import annotations

import json
import shlex

from conftest import http_get, run_json


def test_postgresql_running_and_listening(host, facts):
    assert host.socket(f"tcp://127.0.0.1:{facts['pg_port']}").is_listening
    ready = host.run(shlex.join([f"{facts['pg_bin']}/pg_isready", "-h", "127.0.0.1",
                                 "-p", str(facts["pg_port"])]))
    assert ready.rc == 0, ready.stdout + ready.stderr


def test_app_healthy_on_postgresql(host, facts):
    status, body = http_get(host, facts["app_url"] + "/health")
    assert status == 200, body
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["database"] == "postgresql"
    assert health["users"] > 0


def test_env_file_points_at_postgresql_and_is_private(host, facts, env_file):
    assert env_file.exists
    assert env_file.mode == 0o600
    url_lines = [line for line in env_file.content_string.splitlines()
                 if line.strip().startswith("DATABASE_URL=")]
    assert len(url_lines) == 1, "exactly one DATABASE_URL line"
    url = url_lines[0].split("=", 1)[1].strip().strip("'\"")
    assert url.startswith(("postgresql://", "postgres://")), "DATABASE_URL is not PostgreSQL"
    assert f":{facts['app_db_port']}/" in url, "DATABASE_URL names another port"


def test_run_recorded_complete(current_run):
    assert current_run["status"] == "completed"
    assert current_run["data"]["imported"] is True


def test_env_file_backups_are_private(host, facts):
    # The runbook keeps the pre-switch env file (it may hold secrets) next to it.
    found = host.check_output(shlex.join(["find", facts["app_dir"], "-maxdepth", "1",
                                          "-name", ".env*", "-printf", "%m %f\\n"]))
    modes = dict(reversed(line.split(" ", 1)) for line in found.splitlines())
    assert ".env" in modes
    for name, mode in modes.items():
        assert int(mode, 8) & 0o077 == 0, f"{name}: mode {mode}"


def test_target_equals_export_manifest(host, facts, export_dir):
    # The tool's own proof: every table's row count and content digest recomputed
    # from PostgreSQL equal the manifest's.
    report = run_json(host, [facts["cli"], "verify-target", export_dir,
                             "--dsn", facts["dsn"]])
    assert report.get("ok", True) is not False, report
    # And an independent look: exact row counts in the target vs the manifest.
    manifest = json.loads(host.file(f"{export_dir}/manifest.json").content_string)
    counts = run_json(host, [facts["python"], f"{facts['files']}/target_fingerprint.py",
                             "--dsn", facts["dsn"]])["row_counts"]
    schema = facts.get("target_schema", "public")
    expected = {f"{schema}.{t}": m["rows"] for t, m in manifest["tables"].items()}
    assert {k: counts.get(k) for k in expected} == expected
    assert sum(expected.values()) > 0


def test_export_files_are_private(host, export_dir):
    export = host.file(export_dir)
    assert export.is_directory and export.mode == 0o700
    names = export.listdir()
    assert "manifest.json" in names
    for name in names:
        f = host.file(f"{export_dir}/{name}")
        assert f.is_file and f.mode == 0o600, f"{name}: mode {oct(f.mode)}"
