"""Role pg_backup and the restore drill against a real PostgreSQL 15 and pgBackRest 2.45.

check mode, converge (archive_mode -> restart, stanza, first full backup, cron entries),
idempotence; the drill restores the latest backup into a throwaway instance and passes
with `pgcutover verify-target`, and FAILS (after cleaning up) when the repository is
corrupted or when the manifest expects other row counts.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_pool as bp  # noqa: E402


pytestmark = [pytest.mark.ansible, pytest.mark.pg]
CLI = str(bp.VENV_BIN / "pgcutover")


@pytest.fixture(scope="module")
def backed_up():
    with bp.throwaway_cluster("pgcutover-test-backup-") as (wd, cluster):
        loaded = bp.load_sample(cluster.dsn, 2000, wd)
        cipher = os.urandom(16).hex()
        br = wd / "pgbackrest"
        v = {
            "pg_backup_manage_package": False,
            "pg_backup_stanza": "pgcutover_test",
            "pg_backup_config_file": str(br / "etc" / "pgbackrest.conf"),
            "pg_backup_repo_path": str(br / "repo"),
            "pg_backup_log_path": str(br / "log"),
            "pg_backup_lock_path": str(br / "lock"),
            "pg_backup_pg_data_dir": str(cluster.data),
            "pg_backup_pg_port": cluster.port,
            "pg_backup_pg_socket_dir": str(cluster.sockdir),
            "pg_backup_cron_file": str(wd / "cron.d" / "pgbackrest-test"),
            "pg_backup_login_password": cluster.password,
            "vault_pg_backup_cipher_pass": cipher,
            "pg_restart_method": "pg_ctl",
            "pg_restart_data_dir": str(cluster.data),
            "pg_restart_log_file": str(cluster.base / "server.log"),
            "pg_backup_drill_dir": str(wd / "drill"),
            "pg_backup_drill_export_dir": str(loaded["export_dir"]),
            "pg_backup_drill_pgcutover_cli": CLI,
        }
        runs = bp.converge_runs("backups.yml", wd, v)
        yield {"wd": wd, "cluster": cluster, "vars": v, "runs": runs, "cipher": cipher,
               "export_dir": loaded["export_dir"]}


def _pgbackrest_info(b) -> dict:
    r = subprocess.run(["runuser", "-u", "postgres", "--", "pgbackrest",
                        f"--config={b['vars']['pg_backup_config_file']}",
                        f"--stanza={b['vars']['pg_backup_stanza']}", "--output=json", "info"],
                       capture_output=True, text=True, cwd="/tmp")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def test_converges_idempotent_and_check_mode_works(backed_up):
    runs = backed_up["runs"]
    assert runs["check"].returncode == 0, runs["check"].stdout[-3000:]
    assert runs["first"].returncode == 0, runs["first"].stdout[-4000:]
    assert runs["second"].returncode == 0, runs["second"].stdout[-3000:]
    assert bp.recap(runs["second"].stdout)["changed"] == 0, runs["second"].stdout[-3000:]
    for r in runs.values():
        assert backed_up["cipher"] not in r.stdout + r.stderr
        assert backed_up["cluster"].password not in r.stdout + r.stderr


def test_archiving_backup_retention_and_encryption(backed_up):
    with psycopg2.connect(backed_up["cluster"].dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('archive_mode'), current_setting('archive_command')")
        mode, command = cur.fetchone()
    assert mode == "on"
    assert command == (f"pgbackrest --config={backed_up['vars']['pg_backup_config_file']} "
                       "--stanza=pgcutover_test archive-push %p")
    info = _pgbackrest_info(backed_up)
    assert info["status"]["code"] == 0
    assert [b["type"] for b in info["backup"]] == ["full"]
    assert info["cipher"] == "aes-256-cbc"
    conf = Path(backed_up["vars"]["pg_backup_config_file"])
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    text = conf.read_text()
    assert "repo1-retention-full=2" in text and "repo1-cipher-type=aes-256-cbc" in text
    cron = Path(backed_up["vars"]["pg_backup_cron_file"]).read_text()
    assert "--type=full backup" in cron and "--type=diff backup" in cron
    assert " postgres pgbackrest " in cron


def _drill(backed_up, **overrides):
    return bp.run_playbook("restore_drill.yml", backed_up["wd"],
                           dict(backed_up["vars"], **overrides))


def _assert_cleaned_up(backed_up):
    assert not (backed_up["wd"] / "drill").exists()
    out = subprocess.run(["pgrep", "-f", str(backed_up["wd"] / "drill")], capture_output=True)
    assert out.returncode == 1, "drill instance still running"


def test_restore_drill_passes_on_a_good_backup(backed_up):
    r = _drill(backed_up)
    assert r.returncode == 0, r.stdout[-4000:]
    assert "verify-target" in r.stdout
    _assert_cleaned_up(backed_up)


@pytest.mark.slow
def test_restore_drill_fails_when_counts_differ_from_manifest(backed_up):
    export = backed_up["wd"] / "export-altered"
    shutil.copytree(backed_up["export_dir"], export)
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["tables"]["pfa_records"]["rows"] += 1
    (export / "manifest.json").write_text(json.dumps(manifest))
    r = _drill(backed_up, pg_backup_drill_export_dir=str(export),
               pg_backup_drill_verify="counts")
    assert r.returncode != 0
    assert "RESTORE DRILL FAILED" in r.stdout and "pfa_records manifest 2001 restored 2000" in r.stdout
    _assert_cleaned_up(backed_up)


def test_restore_drill_fails_on_a_corrupted_repository(backed_up):
    repo = Path(backed_up["vars"]["pg_backup_repo_path"]) / "backup" / "pgcutover_test"
    label = _pgbackrest_info(backed_up)["backup"][-1]["label"]
    files = sorted((repo / label / "pg_data" / "base").rglob("*"),
                   key=lambda p: p.stat().st_size if p.is_file() else 0)
    victim = files[-1]
    data = bytearray(victim.read_bytes())
    for i in range(64, min(len(data), 4096), 97):
        data[i] ^= 0xFF
    victim.write_bytes(bytes(data))
    r = _drill(backed_up)
    assert r.returncode != 0
    # pgBackRest refuses the damaged file: the instance is never started, still cleaned up.
    assert "restore_drill | Restore the latest backup" in r.stdout
    assert "restore_drill | Start the drill instance" not in r.stdout
    _assert_cleaned_up(backed_up)
