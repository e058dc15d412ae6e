"""The app serves from SQLite, and the SQLite file is byte-identical to before."""
from __future__ import annotations

import json

from conftest import http_get


def test_app_healthy_on_sqlite(host, facts):
    status, body = http_get(host, facts["app_url"] + "/health")
    assert status == 200, body
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["database"] == "sqlite"


def test_env_file_points_at_sqlite(env_file):
    urls = [line.split("=", 1)[1].strip().strip("'\"")
            for line in env_file.content_string.splitlines()
            if line.strip().startswith("DATABASE_URL=")]
    assert len(urls) == 1 and urls[0].startswith("file:"), urls


def test_sqlite_checksum_unchanged(host, facts):
    assert host.file(facts["sqlite_path"]).sha256sum == facts["sqlite_sha256_before"]
