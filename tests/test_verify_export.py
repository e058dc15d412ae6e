"""verify-export finds every damaged file; verify-source finds every write since export."""
from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from pgcutover import sample
from pgcutover.errors import ExportVerificationError
from pgcutover.export import export
from pgcutover.manifest import load_manifest
from pgcutover.verify_export import verify_export
from pgcutover.verify_source import verify_source


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    base = tmp_path_factory.mktemp("ver")
    db = base / "app.db"
    sample.generate(db)
    export(db, base / "out")
    return db, base / "out"


@pytest.fixture
def copy(pristine, tmp_path):
    db, out = pristine
    shutil.copytree(out, tmp_path / "out")
    shutil.copy(db, tmp_path / "app.db")
    return tmp_path / "app.db", tmp_path / "out"


def test_pristine_export_verifies(pristine):
    r = verify_export(pristine[1])
    assert r["ok"] and r["total_rows"] == 71 and not r["problems"]


def test_every_problem_is_reported_by_file_name(copy):
    _db, out = copy
    m = load_manifest(out)
    files = {t: m["tables"][t]["file"] for t in m["tables"]}
    # altered: same size, one byte flipped
    p = out / files["users"]
    data = bytearray(p.read_bytes())
    data[5] = ord("Z") if data[5] != ord("Z") else ord("Y")
    p.write_bytes(bytes(data))
    # truncated
    p = out / files["organizations"]
    p.write_bytes(p.read_bytes()[:-10])
    # missing
    (out / files["api_configurations"]).unlink()
    # extra
    (out / "stray.rows").write_text("x\n")
    # a row appended and removed elsewhere: size mismatch
    with open(out / files["ai_providers"], "a") as f:
        f.write("extra\trow\n")
    with pytest.raises(ExportVerificationError) as exc:
        verify_export(out)
    got = {(d["file"], d["problem"]) for d in exc.value.details}
    assert got == {(files["users"], "altered"), (files["organizations"], "truncated"),
                   (files["api_configurations"], "missing"), ("stray.rows", "extra"),
                   (files["ai_providers"], "size_mismatch")}
    assert exc.value.exit_status == 4


def test_altered_or_missing_manifest(copy):
    _db, out = copy
    m = json.loads((out / "manifest.json").read_text())
    m["tables"]["users"]["rows"] = 8
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportVerificationError, match="digest"):
        verify_export(out)
    (out / "manifest.json").unlink()
    with pytest.raises(ExportVerificationError, match="not a complete export"):
        verify_export(out)


@pytest.mark.parametrize("write", [
    "UPDATE users SET firstName = 'Sys' WHERE username = 'admin'",
    "DELETE FROM field_configurations",
    "INSERT INTO ai_usage_logs (userId, organizationId, provider, model) "
    "SELECT id, 'o', 'openai', 'gpt' FROM users LIMIT 1",
    "UPDATE organizations SET isActive = 1 - isActive WHERE code = 'ORG001'",
    "UPDATE users SET createdAt = '2025-01-01 00:00:00' WHERE username = 'admin'",
])
@pytest.mark.parametrize("parallel", [True, False])
def test_verify_source_detects_writes(copy, write, parallel, monkeypatch):
    from pgcutover import analyze as analyze_mod
    from pgcutover import export as export_mod
    # small split thresholds: the parallel path really splits the sample's tables
    monkeypatch.setattr(export_mod, "SPLIT_SCAN_MIN_ROWIDS", 4)
    monkeypatch.setattr(analyze_mod, "SPLIT_MIN_ROWIDS", 4)
    db, out = copy
    assert verify_source(out, db, parallel=parallel)["ok"]
    conn = sqlite3.connect(db)
    conn.execute(write)
    conn.commit()
    conn.close()
    with pytest.raises(ExportVerificationError) as exc:
        verify_source(out, db, parallel=parallel)
    assert exc.value.details and exc.value.details[0]["problem"] == "content_changed"
    assert sorted(p.name for p in out.parent.iterdir()) == ["app.db", "out"]
