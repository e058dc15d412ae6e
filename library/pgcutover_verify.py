#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin adapter over pgcutover.verify_export / verify_source / verify_target.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pgcutover_verify
short_description: Prove that an export, its SQLite source or the PostgreSQL target match
description:
  - V(export) - checks the export directory against its manifest - size, then SHA-256,
    then row counts, and the manifest digest. Every missing, extra, truncated or altered
    file is reported by name. Never connects to PostgreSQL.
  - V(source) - recomputes every table's content digest from the SQLite file (read-only)
    and compares it with the manifest - proves that nobody wrote since the export.
  - V(target) - recomputes every table's row count and content digest inside PostgreSQL
    and compares them with the manifest.
  - Read-only in every mode; a mismatch fails the task with every problem listed.
version_added: "0.1.0"
author: pgcutover maintainers
options:
  mode:
    description: What to verify.
    type: str
    choices: [export, source, target]
    default: export
  export_dir:
    description: Export directory (with its C(manifest.json)).
    type: path
    required: true
  sqlite_path:
    description: The SQLite file, for O(mode=source).
    type: path
  dsn:
    description: libpq connection string without a password, for O(mode=target).
    type: str
  login_password:
    description: Password for O(dsn); prefer O(passfile). Never logged.
    type: str
  passfile:
    description: libpq password file (mode 0600), appended to O(dsn) as C(passfile=).
    type: path
  target_schema:
    description: PostgreSQL schema holding the imported tables (O(mode=target)).
    type: str
    default: public
notes:
  - Never changes anything (RV(changed) is always false); supports check mode.
'''

EXAMPLES = r'''
- name: T-30 | Verify the export files
  pgcutover_verify:
    mode: export
    export_dir: /var/lib/pgcutover/export

- name: T-15 | Prove nobody wrote to SQLite since the export (app stopped)
  pgcutover_verify:
    mode: source
    export_dir: /var/lib/pgcutover/export
    sqlite_path: /srv/pfa/prisma/dev.db

- name: T-5 | Verify PostgreSQL against the manifest
  pgcutover_verify:
    mode: target
    export_dir: /var/lib/pgcutover/export
    dsn: "host=db.internal dbname=pfa user=pfa_migrator"
    passfile: /root/.pgpass
'''

RETURN = r'''
ok:
  description: True when everything matched (otherwise the task fails).
  returned: success
  type: bool
tables:
  description: Per-table results (rows, digests, ok).
  returned: success
  type: dict
manifest_digest:
  description: Digest of the manifest verified against.
  returned: success
  type: str
problems:
  description: Empty on success (on failure they are in RV(error.details)).
  returned: success
  type: list
  elements: dict
error:
  description: On failure - code C(export_mismatch) or C(target_mismatch) and C(details),
    one entry per missing, extra, truncated, altered file or differing table.
  returned: failure
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pgcutover_ansible import (
    CONNECTION_ARGSPEC, connection_kwargs, require_pgcutover, run_engine)


def main():
    argument_spec = dict(
        mode=dict(type='str', choices=['export', 'source', 'target'], default='export'),
        export_dir=dict(type='path', required=True),
        sqlite_path=dict(type='path'),
    )
    argument_spec.update(CONNECTION_ARGSPEC)
    argument_spec['dsn'] = dict(CONNECTION_ARGSPEC['dsn'], required=False)
    module = AnsibleModule(
        argument_spec=argument_spec, supports_check_mode=True,
        required_if=[('mode', 'source', ['sqlite_path']), ('mode', 'target', ['dsn'])])
    require_pgcutover(module)
    p = module.params
    if p['mode'] == 'export':
        from pgcutover.verify_export import verify_export
        result = run_engine(module, verify_export, p['export_dir'])
    elif p['mode'] == 'source':
        from pgcutover.verify_source import verify_source
        result = run_engine(module, verify_source, p['export_dir'], p['sqlite_path'])
    else:
        # mode target: owned by the target side (pgcutover.verify_target)
        from pgcutover.verify_target import verify_target
        result = run_engine(module, verify_target, p['export_dir'], **connection_kwargs(module))
    result.pop('changed', None)
    # A ``warnings`` key in module results is deprecated in ansible-core 2.19: warn instead.
    for warning in result.pop('warnings', None) or []:
        module.warn(str(warning))
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
