# -*- coding: utf-8 -*-
"""Ansible-only glue shared by the pgcutover_* modules.

The engine (the ``pgcutover`` package) raises typed errors; this is the only place
that turns them into ``fail_json``. The package must be importable by the Python that
runs the module on the managed host (install it in a venv there and point
``ansible_python_interpreter`` at it).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

try:
    import pgcutover  # noqa: F401
    from pgcutover.errors import PgcutoverError
    HAS_PGCUTOVER = True
    PGCUTOVER_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported through fail_json
    HAS_PGCUTOVER = False
    PGCUTOVER_IMPORT_ERROR = traceback.format_exc()

    class PgcutoverError(Exception):
        pass


# Connection options shared by the modules that talk to PostgreSQL.  The password is
# no_log and goes straight to libpq; ``passfile`` is the alternative that keeps the
# secret out of Ansible variables altogether.
CONNECTION_ARGSPEC = dict(
    dsn=dict(type='str', required=True),
    login_password=dict(type='str', no_log=True),
    passfile=dict(type='path'),
    target_schema=dict(type='str', default='public'),
)


def require_pgcutover(module):
    if not HAS_PGCUTOVER:
        module.fail_json(
            msg="The pgcutover Python package is not importable by %s; install it on "
                "the managed host and set ansible_python_interpreter" % module._name,
            exception=PGCUTOVER_IMPORT_ERROR)


def connection_kwargs(module):
    """Engine keyword arguments for the shared connection options."""
    p = module.params
    dsn = p['dsn']
    if p.get('passfile'):
        dsn = "%s passfile=%s" % (dsn, p['passfile'])
    return dict(dsn=dsn, password=p.get('login_password'), schema=p.get('target_schema'))


def run_engine(module, func, *args, **kwargs):
    """Call an engine function; a PgcutoverError becomes fail_json with its fields."""
    try:
        return func(*args, **kwargs)
    except PgcutoverError as exc:
        data = exc.as_dict() if hasattr(exc, 'as_dict') else {}
        msg = data.pop('message', str(exc))
        module.fail_json(msg=msg, error=data)
