#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin adapter over pgcutover.analyze (the CLI's `pgcutover analyze`).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pgcutover_analyze
short_description: Analyze a SQLite database before moving it to PostgreSQL
description:
  - Opens the SQLite file read-only (URI C(mode=ro); a WAL database without a C(-wal)
    file is read without creating C(-wal)/C(-shm)) inside one read transaction. The
    file is never changed.
  - Reports tables, row counts, sizes (C(dbstat)), declared types and the actual
    C(typeof()) mix per column, the type plan (logical type and PostgreSQL type per
    column), the foreign-key graph and load order (cycles reported), C(PRAGMA
    integrity_check) and C(foreign_key_check) (orphans by table and key).
  - Lists blockers - data that cannot move without loss - by table, column and key
    (primary key or rowid), never by value - NUL in TEXT, invalid UTF-8, REAL in
    INTEGER columns, booleans other than 0/1, timestamps PostgreSQL cannot hold,
    integers beyond 2^53 in float columns, numerics not fitting, identifiers longer
    than 63 bytes or colliding after truncation, orphaned rows.
version_added: "0.1.0"
author: pgcutover maintainers
options:
  sqlite_path:
    description: The SQLite database file.
    type: path
    required: true
  dest:
    description:
      - Also write the JSON report to this file (mode 0600). Not written in check mode.
    type: path
  fail_on_blockers:
    description: Fail the task (error code C(blocker)) when blockers are found.
    type: bool
    default: true
notes:
  - Read-only; supports check mode (the analysis runs, O(dest) is not written).
  - The report carries counts, types and keys, never row values.
'''

EXAMPLES = r'''
- name: T-60 | Analyze the application database
  pgcutover_analyze:
    sqlite_path: /srv/pfa/prisma/dev.db
    dest: /var/lib/pgcutover/pre-migration-analysis.json
  register: pfa_analysis

- name: T-60 | Show what the type plan decided for users
  ansible.builtin.debug:
    msg: "{{ pfa_analysis.tables.users.columns | map(attribute='pg_type') | list }}"
'''

RETURN = r'''
ok:
  description: True when no blocker was found.
  returned: always
  type: bool
blockers:
  description: Each with C(table), C(column), C(reason), C(count) and up to 20 C(keys).
  returned: always
  type: list
  elements: dict
  sample: [{"table": "users", "column": "isActive", "reason": "boolean value not 0/1",
            "count": 1, "keys": ["ckx0..."]}]
warnings_found:
  description: Non-blocking findings (JSON kept as text, long index names, ...), each
    with C(table), C(column) and C(message) (renamed from the report's C(warnings),
    which Ansible reserves).
  returned: always
  type: list
  elements: dict
tables:
  description: Per table C(rows), C(size_bytes), C(primary_key), C(autoincrement),
    C(columns) (declared, typeof mix, storage, logical, pg_type, ...), C(unique),
    C(indexes) and C(foreign_keys).
  returned: always
  type: dict
load_order:
  description: Tables, parents before children.
  returned: always
  type: list
  elements: str
fk_cycles:
  description: Groups of tables whose foreign keys form a cycle.
  returned: always
  type: list
  elements: list
total_rows:
  description: Rows in all tables.
  returned: always
  type: int
integrity_check:
  description: C(ok), or the messages of C(PRAGMA integrity_check).
  returned: always
  type: raw
foreign_key_check:
  description: C(orphans) count and C(violations) per table and foreign key.
  returned: always
  type: dict
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pgcutover_ansible import require_pgcutover, run_engine


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sqlite_path=dict(type='path', required=True),
            dest=dict(type='path'),
            fail_on_blockers=dict(type='bool', default=True),
        ),
        supports_check_mode=True)
    require_pgcutover(module)
    from pgcutover.analyze import analyze

    p = module.params
    report = run_engine(module, analyze, p['sqlite_path'])
    changed = False
    if p['dest']:
        data = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        old = None
        if os.path.exists(p['dest']):
            with open(p['dest'], encoding='utf-8') as f:
                old = f.read()
        # "seconds" differs on every run: compare without it for idempotence
        strip = lambda s: None if s is None else {k: v for k, v in json.loads(s).items()
                                                   if k != 'seconds'}  # noqa: E731
        changed = strip(old) != strip(data)
        if changed and not module.check_mode:
            tmp = p['dest'] + '.tmp'
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                f.write(data)
            os.replace(tmp, p['dest'])
    result = dict(report)
    result['warnings_found'] = result.pop('warnings')
    if report['blockers'] and p['fail_on_blockers']:
        b = report['blockers'][0]
        module.fail_json(msg="%d blocker(s) found, first: %s.%s: %s" % (
            len(report['blockers']), b['table'], b.get('column'), b['reason']),
            error=dict(code='blocker', table=b['table'], column=b.get('column'),
                       details=report['blockers']), **result)
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
