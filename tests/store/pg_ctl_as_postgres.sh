#!/bin/sh
# pg_ctl for pytest-postgresql when the tests run as root.
# PostgreSQL refuses to run as root, so as root this runs pg_ctl as the `postgres` system user,
# after giving that user the data folder's parent (a pytest tmp folder) and traversal of its ancestors.
PG_BIN="${MALLES_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ "$(id -u)" != "0" ]; then
    exec "$PG_BIN/pg_ctl" "$@"
fi
prev=""
for arg in "$@"; do
    case "$prev" in
        -D|--pgdata|-l|--log)
            parent=$(dirname "$arg")
            mkdir -p "$parent"
            chown postgres "$parent"
            dir="$parent"
            while [ "$dir" != "/" ]; do
                dir=$(dirname "$dir")
                chmod o+x "$dir" 2>/dev/null
            done
            ;;
    esac
    prev="$arg"
done
exec runuser -u postgres -- "$PG_BIN/pg_ctl" "$@"
