#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin adapter over pgcutover.importer (the CLI's `pgcutover import` and `pgcutover plan`).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pgcutover_import
short_description: Load a verified pgcutover export into PostgreSQL in one transaction
description:
  - Verifies the export directory against its manifest (sizes, SHA-256, row counts,
    manifest digest) before connecting; a tampered or incomplete export is refused.
  - In one transaction, under an advisory lock (one import at a time), creates the
    schema (O(schema_mode=auto)) or checks that the application's own schema fits
    (O(schema_mode=existing), every problem listed), loads every table with C(COPY) in
    the manifest's load order, builds keys, indexes and foreign keys after the load,
    sets identity/serial sequences above max(id) and SQLite's high-water mark, checks
    row counts and content digests (computed in SQL) against the manifest, and writes a
    marker row in the C(pgcutover) control schema. Any failure rolls everything back.
  - A second run with the same export is a no-op (RV(changed=false)) while the
    imported tables still hold the imported row counts.
  - Runs where the export directory is; the C(pgcutover) package and psycopg2 must be
    importable by C(ansible_python_interpreter) there.
version_added: "0.1.0"
author: pgcutover maintainers
options:
  export_dir:
    description: Export directory written by C(pgcutover export) / M(pgcutover_export).
    type: path
    required: true
  schema_mode:
    description:
      - V(auto) translates the SQLite schema from the manifest (quoted identifiers,
        NOT NULL, defaults, keys, unique and NOCASE indexes, foreign keys, identity).
      - V(existing) loads into tables made by the application's migration tool (for
        example C(prisma migrate deploy)); C(_prisma_migrations) is left to that tool.
    type: str
    choices: [auto, existing]
    default: auto
  replace:
    description:
      - Replace what a previous import put there. V(auto) drops only tables recorded
        in the C(pgcutover) control schema; V(existing) truncates the export's tables.
      - Without it a non-empty target is refused.
    type: bool
    default: false
  dsn:
    description: libpq connection string of the target, without a password.
    type: str
    required: true
  login_password:
    description: Password for O(dsn); prefer O(passfile). Never logged.
    type: str
  passfile:
    description: libpq password file (mode 0600) appended to O(dsn) as C(passfile=).
    type: path
  target_schema:
    description: PostgreSQL schema to load into.
    type: str
    default: public
notes:
  - Check mode runs the same planning read-only and returns RV(executed_queries) (the
    statements the import would run) and RV(compat), changing nothing.
  - Returned data carries counts and digests, never row data.
'''

EXAMPLES = r'''
- name: T-10 | Import the export into PostgreSQL (schema made by prisma migrate deploy)
  pgcutover_import:
    export_dir: /var/lib/pgcutover/export
    schema_mode: existing
    dsn: "host=db.internal port=5432 dbname=pfa user=pfa_migrator"
    passfile: /root/.pgpass
  register: pg_import

- name: Rehearsal | Import into a scratch database, replacing the previous rehearsal
  pgcutover_import:
    export_dir: /var/lib/pgcutover/export
    dsn: "host=127.0.0.1 dbname=pfa_rehearsal user=pfa_migrator"
    login_password: "{{ vault_pg_migrator_password }}"
    replace: true
'''

RETURN = r'''
changed:
  description: False when this export was already imported and the tables are unchanged.
  returned: always
  type: bool
manifest_digest:
  description: Digest of the imported manifest (recorded in the marker row).
  returned: always
  type: str
tables:
  description: Per table C(rows) and C(content_digest) (recomputed in PostgreSQL); also
    C(seconds) and C(passthrough) for a real run.
  returned: always
  type: dict
  sample: {"users": {"rows": 7, "content_digest": "v2:7:b66320bfd7783807:e32e76748b6b4925"}}
skipped_tables:
  description: Tables of the export not loaded (existing mode, owned by the app's migration tool).
  returned: always
  type: list
  elements: str
import_id:
  description: Id of the marker row in C(pgcutover.imports).
  returned: when not in check mode
  type: int
executed_queries:
  description: Statements the import would run (check mode).
  returned: check mode
  type: list
  elements: str
compat:
  description: Existing-mode compatibility report (target type of every column).
  returned: check mode
  type: dict
diff:
  description: Per-table row counts and content digests after the import (never row data).
  returned: when changed
  type: dict
error:
  description: On failure, the typed error (code C(import_failed), C(schema_mismatch),
    C(export_mismatch), C(target)) with table, column, key and details - never row values.
  returned: failure
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pgcutover_ansible import (
    CONNECTION_ARGSPEC, connection_kwargs, require_pgcutover, run_engine)


def main():
    argument_spec = dict(
        export_dir=dict(type='path', required=True),
        schema_mode=dict(type='str', choices=['auto', 'existing'], default='auto'),
        replace=dict(type='bool', default=False),
    )
    argument_spec.update(CONNECTION_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_pgcutover(module)
    from pgcutover.importer import import_export, plan_import

    p = module.params
    kwargs = dict(connection_kwargs(module), schema_mode=p['schema_mode'], replace=p['replace'])
    if module.check_mode:
        result = run_engine(module, plan_import, p['export_dir'], **kwargs)
    else:
        result = run_engine(module, import_export, p['export_dir'], **kwargs)
    if result.get('changed'):
        result['diff'] = dict(
            before={}, after={t: "%s rows, %s" % (v.get('rows'), v.get('content_digest'))
                              for t, v in result.get('tables', {}).items()})
    module.exit_json(**result)


if __name__ == '__main__':
    main()
