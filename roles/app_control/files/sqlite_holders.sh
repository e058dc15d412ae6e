#!/bin/sh
# sqlite_holders.sh FILE...: print "pid command path" for every process holding FILE or
# its -wal/-shm/-journal open (a /proc scan: what fuser/lsof report, without needing
# them installed). Prints nothing when no process holds them. Exit 2 if a file's
# directory is missing (the path is wrong, which must not pass as "no holder").
set -u
targets=""
for f in "$@"; do
  d=$(dirname "$f")
  [ -d "$d" ] || { echo "missing directory: $d" >&2; exit 2; }
  real=$(cd "$d" && pwd -P)/$(basename "$f")
  targets="$targets
$real
$real-wal
$real-shm
$real-journal"
done
self=$$
for fd in /proc/[0-9]*/fd/*; do
  t=$(readlink "$fd" 2>/dev/null) || continue
  case "$targets" in
    *"
$t"|*"
$t
"*)
      pid=${fd#/proc/}; pid=${pid%%/*}
      [ "$pid" = "$self" ] && continue
      comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
      echo "$pid $comm $t" ;;
  esac
done | sort -u
