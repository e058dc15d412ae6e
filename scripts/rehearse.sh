#!/usr/bin/env bash
# ONE command on a fresh machine: set-up (scripts/bootstrap.sh), then the full cutover
# rehearsal on this machine: playbooks/rehearsal_setup.yml (throwaway PostgreSQL, sample
# SQLite database, sample app on SQLite) and playbooks/migrate.yml against
# inventories/local; prints the run summary. Safe to re-run (each run resets the
# rehearsal and starts a new cutover run). Exit status non-zero on any failure.
#   ./scripts/rehearse.sh [extra ansible-playbook args, e.g. -e pgcutover_rehearsal_pfa_records=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
inv=inventories/local

echo "== rehearsal set-up (PostgreSQL, sample database, app on SQLite)"
ansible-playbook -i "$inv" playbooks/rehearsal_setup.yml "$@"

echo "== cutover: playbooks/migrate.yml"
start=$(date +%s.%N)
ansible-playbook -i "$inv" playbooks/migrate.yml -e cutover_state_new_run=true "$@"
end=$(date +%s.%N)

state_dir=.rehearsal/state
run_id=$(cat "$state_dir/current")
summary="$state_dir/runs/$run_id.summary.json"
echo "== summary ($summary)"
python3 - "$summary" "$start" "$end" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"run {s['run_id']}: {s['status']}")
print(f"migrate.yml wall time {wall:.1f} s (phases {s['total_s']} s); "
      f"downtime (app stop -> app healthy) {s['downtime_s']} s; maintenance {s['maintenance_s']} s")
for p in s["phases"]:
    print(f"  {p['phase']:<28} {p['status']:<8} {p['duration_s']:>7} s")
print(f"rows {s['rows_total']}, digests matched {s['digests_matched']}, re-exported: {s['reexported']}")
for t, v in s["tables"].items():
    print(f"  {t:<30} {v['rows']:>9} rows  {'ok' if v['digest_matched'] else 'MISMATCH'}  {v['target_digest']}")
sys.exit(0 if s["status"] == "completed" and s["all_digests_matched"] else 1)
PY
