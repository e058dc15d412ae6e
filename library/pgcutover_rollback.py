#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin adapter over pgcutover.rollback.rollback (the CLI's `pgcutover rollback`).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pgcutover_rollback
short_description: Restore the SQLite source of a cutover, refusing when PostgreSQL holds newer writes
description:
  - Proves that the SQLite database file equals the pre-migration snapshot
    (SHA-256 of the main file, no C(-wal) content, no hot journal). If it does,
    nothing changes.
  - Otherwise restores it from the first backup whose own C(.sha256) file verifies
    and equals O(expected_sha256), by copying to a temporary file in the same
    directory, fsync, rename over the database; C(-wal)/C(-journal) content and the replaced
    file are kept aside as C(<file>.pre-rollback-<timestamp>), C(-shm) and empty
    side files are removed. The result is verified again. A second run is a no-op.
  - Before that, with O(check_target_writes), compares every table of the
    PostgreSQL target with the export manifest (row count and content digest).
    Any difference means the application wrote to PostgreSQL after the cutover;
    the module then fails naming the tables unless O(force=true).
  - Refuses to replace the SQLite file while any process holds it open (scan of
    C(/proc)); stop the application first. O(force) does not override this.
  - Runs on the host that holds the SQLite file. The C(pgcutover) package and
    psycopg2 must be importable by C(ansible_python_interpreter) there.
version_added: "0.1.0"
author: pgcutover maintainers
options:
  sqlite_path:
    description: Path of the application's SQLite database file.
    type: path
    required: true
  expected_sha256:
    description:
      - SHA-256 of the snapshot to return to, as returned in C(sha256) by
        C(pgcutover backup-source) (equal to the source file's SHA-256 when the
        backup was a locked byte copy, the normal case with the app stopped).
    type: str
    required: true
  backups:
    description:
      - Backup files to restore from, in order of preference (each with its
        C(<file>.sha256) next to it). A corrupt or different backup is skipped and
        reported in RV(skipped_backups).
    type: list
    elements: path
    default: []
  export_dir:
    description: Export directory whose C(manifest.json) describes the data imported into PostgreSQL.
    type: path
  check_target_writes:
    description:
      - Compare PostgreSQL with the export manifest and refuse when they differ.
      - Requires O(export_dir) and O(dsn). Set to V(false) only when the target was
        never opened to the application.
    type: bool
    default: true
  force:
    description:
      - Roll back even though PostgreSQL holds writes made after the cutover (they
        are reported in RV(target) and lost for the application).
    type: bool
    default: false
  dsn:
    description:
      - libpq connection string of the PostgreSQL target, without a password
        (for example C(host=db port=5432 dbname=pfa user=pfa_migrator)).
      - Required by the argument spec shared with the other pgcutover modules only
        when O(check_target_writes=true).
    type: str
  login_password:
    description: Password for O(dsn); prefer O(passfile). Never logged.
    type: str
  passfile:
    description: libpq password file (mode 0600) appended to O(dsn) as C(passfile=).
    type: path
  target_schema:
    description: PostgreSQL schema that holds the imported tables.
    type: str
    default: public
notes:
  - Check mode reports what would happen (RV(changed), RV(restore_from),
    RV(skipped_backups), RV(target)) and changes nothing; the target check runs in
    check mode too, so a refusal shows up before the real run.
  - Returned data carries counts, digests, checksums and paths, never row data.
seealso:
  - name: pgcutover docs/INTERFACES.md
    description: Engine functions shared by the CLI and the modules.
    link: https://example.invalid/pgcutover/docs/INTERFACES.md
'''

EXAMPLES = r'''
- name: T+30 | Roll back to SQLite (refuses if the app already wrote to PostgreSQL)
  pgcutover_rollback:
    sqlite_path: /opt/pfa-app/prisma/dev.db
    expected_sha256: "{{ cutover_backup.sha256 }}"
    backups:
      - "/var/backups/pfa/a/{{ cutover_backup.file_name }}"
      - "/var/backups/pfa/b/{{ cutover_backup.file_name }}"
    export_dir: /var/lib/pgcutover/export
    dsn: "host=db.internal port=5432 dbname=pfa user=pfa_migrator"
    passfile: /root/.pgpass
  register: rollback

- name: T+30 | Roll back and accept losing post-cutover PostgreSQL writes
  pgcutover_rollback:
    sqlite_path: /opt/pfa-app/prisma/dev.db
    expected_sha256: "{{ cutover_backup.sha256 }}"
    backups: "{{ cutover_backup.copies | map(attribute='path') | list }}"
    export_dir: /var/lib/pgcutover/export
    dsn: "host=db.internal port=5432 dbname=pfa user=pfa_migrator"
    login_password: "{{ vault_pg_migrator_password }}"
    force: "{{ rollback_accept_data_loss | bool }}"

- name: Restore only (the target was never opened to the application)
  pgcutover_rollback:
    sqlite_path: /opt/pfa-app/prisma/dev.db
    expected_sha256: "{{ cutover_backup.sha256 }}"
    backups: ["/var/backups/pfa/a/{{ cutover_backup.file_name }}"]
    check_target_writes: false
'''

RETURN = r'''
changed:
  description: True when the SQLite file was (or in check mode would be) restored.
  returned: always
  type: bool
source_matches:
  description: The SQLite file equalled the expected snapshot before this run.
  returned: always
  type: bool
restore_from:
  description: Backup file used (or to be used) for the restore; null when none was needed.
  returned: always
  type: str
  sample: /var/backups/pfa/a/dev.db.backup-20261127T130000Z
skipped_backups:
  description: Backups that were not used and why (missing, checksum mismatch, different snapshot).
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/var/backups/pfa/a/dev.db.backup-x", "reason": "checksum mismatch (corrupt or tampered)"}]
replaced_kept_as:
  description: Where the replaced database file and side-file content were kept.
  returned: when not in check mode
  type: list
  elements: str
before:
  description: Fingerprint of the SQLite file before (sha256, size, mtime, wal_sha256, wal_size); null if missing.
  returned: always
  type: dict
after:
  description: Fingerprint after the restore (equals O(expected_sha256)).
  returned: when not in check mode
  type: dict
holders:
  description: Processes holding the SQLite file open (pid, command, path).
  returned: when the file differs
  type: list
  elements: dict
target:
  description:
    - Post-cutover write check; null when O(check_target_writes=false).
    - C(writes_detected), C(differing_tables) and per table C(expected_rows),
      C(actual_rows), C(expected_digest), C(actual_digest), C(differs).
  returned: always
  type: dict
  sample: {"writes_detected": true, "differing_tables": ["sync_logs"], "tables": {"sync_logs": {"expected_rows": 0, "actual_rows": 1, "expected_digest": "v2:0:0000000000000000:0000000000000000", "actual_digest": "v2:1:...", "differs": true}}}
error:
  description: On failure, the typed error (code C(target_writes), C(source), C(source_in_use), C(usage), ...) with table and details.
  returned: failure
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pgcutover_ansible import (
    CONNECTION_ARGSPEC, connection_kwargs, require_pgcutover, run_engine)


def main():
    argument_spec = dict(
        sqlite_path=dict(type='path', required=True),
        expected_sha256=dict(type='str', required=True),
        backups=dict(type='list', elements='path', default=[]),
        export_dir=dict(type='path'),
        check_target_writes=dict(type='bool', default=True),
        force=dict(type='bool', default=False),
    )
    argument_spec.update(CONNECTION_ARGSPEC)
    argument_spec['dsn'] = dict(CONNECTION_ARGSPEC['dsn'], required=False)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('check_target_writes', True, ('export_dir', 'dsn'))],
        supports_check_mode=True,
    )
    require_pgcutover(module)
    from pgcutover.rollback import rollback

    p = module.params
    conn = connection_kwargs(module) if p['dsn'] else dict(dsn=None, password=None,
                                                           schema=p['target_schema'])
    result = run_engine(
        module, rollback, p['sqlite_path'], p['expected_sha256'], backups=p['backups'],
        export_dir=p['export_dir'], force=p['force'],
        check_target_writes=p['check_target_writes'], dry_run=module.check_mode, **conn)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
