#!/usr/bin/env python3
"""sqlite_holders.py FILE...: list the processes holding FILE or its -wal/-shm/-journal
open (a /proc scan: what fuser/lsof report, without needing them installed, and without
forking per descriptor). Prints a JSON list of {pid, command, path}; empty = nobody.
Exit 2 when a file's directory does not exist (a wrong path must not pass as "free")."""
import json
import os
import sys


def main(paths):
    targets = set()
    for f in paths:
        d = os.path.dirname(os.path.abspath(f))
        if not os.path.isdir(d):
            sys.stderr.write("missing directory: %s\n" % d)
            return 2
        real = os.path.join(os.path.realpath(d), os.path.basename(f))
        targets.update(real + s for s in ("", "-wal", "-shm", "-journal"))
    me, found = os.getpid(), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t in targets:
                try:
                    with open("/proc/%s/comm" % pid) as c:
                        comm = c.read().strip()
                except OSError:
                    comm = None
                found.append({"pid": int(pid), "command": comm, "path": t})
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
