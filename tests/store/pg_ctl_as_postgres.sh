#!/usr/bin/env bash
# pg_ctl for pytest-postgresql on this machine (see docs/population.md, "PostgreSQL in the tests").
#
# 1. PostgreSQL refuses to run as root: as root, pg_ctl runs as the `postgres` system user.
# 2. The data folder and log live under $MALLES_PG_ROOT (default /tmp/malles-pytest-postgresql),
#    not in pytest's tmp tree: other pytest sessions running at the same time prune old
#    /tmp/pytest-of-<user>/pytest-N folders, which killed the server mid-session. The folder
#    holding the -D and -l paths pytest-postgresql passes is mapped to a stable folder there (an
#    empty folder stays at the -D path, whose existence pytest-postgresql checks); a successful
#    `stop` removes the mapped folder.
set -u
PG_BIN="${MALLES_PG_BIN:-/usr/lib/postgresql/15/bin}"
ROOT="${MALLES_PG_ROOT:-/tmp/malles-pytest-postgresql}"
command="${1:-}"
creating=false
case "$command" in initdb|start) creating=true ;; esac

map_dir() { echo "$ROOT/$(printf '%s' "$(dirname "$1")" | md5sum | cut -c1-16)"; }

args=()
base=""
prev=""
for arg in "$@"; do
    case "$prev" in
        -D|--pgdata|-l|--log)
            base=$(map_dir "$arg")
            if $creating; then
                mkdir -p "$base"
                case "$prev" in -D|--pgdata) mkdir -p "$arg" ;; esac
            fi
            args+=("$base/$(basename "$arg")") ;;
        *) args+=("$arg") ;;
    esac
    prev="$arg"
done

if [ "$(id -u)" = "0" ]; then
    if $creating; then
        chown -R postgres "$ROOT"
        chmod o+x "$(dirname "$ROOT")" 2>/dev/null
    fi
    runuser -u postgres -- "$PG_BIN/pg_ctl" "${args[@]}"
else
    "$PG_BIN/pg_ctl" "${args[@]}"
fi
status=$?
if [ "$command" = "stop" ] && [ $status -eq 0 ] && [ -n "$base" ]; then
    rm -rf "$base"
fi
exit $status
