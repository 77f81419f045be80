#!/bin/sh
# Entrypoint for restorebox sandbox images. Same contract as the official image:
#   POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (one is required on first start; the
#   file keeps the password out of the container's configuration), POSTGRES_USER (default postgres),
#   POSTGRES_DB (default: $POSTGRES_USER). Listens on 5432; TCP logins use
#   scram-sha-256; the local socket inside the container trusts its own users.
#
# The cluster was initialised when the image was built. On first start the server
# comes up at once and the requested database, then the role with its password, are
# created over the local socket: a TCP login can only succeed once both exist, so a
# client that logs in successfully finds everything ready.
set -eu

# The cluster's bootstrap superuser: a name no dump uses (see the Dockerfile).
BOOTSTRAP=${RESTOREBOX_BOOTSTRAP_USER:-restorebox_bootstrap}
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export POSTGRES_USER POSTGRES_DB

if [ "${1:-postgres}" != "postgres" ]; then
    exec "$@"
fi
[ $# -gt 0 ] && shift
# pg_cron (preloaded where the image has it) lives in one database: the sandbox's.
set -- -c "cron.database_name=$POSTGRES_DB" "$@"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # The data directory was replaced (e.g. an empty mount): initialise it now.
    initdb --pgdata="$PGDATA" --username="$BOOTSTRAP" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions >/dev/null
    printf "%s\n" "listen_addresses = '*'" "password_encryption = 'scram-sha-256'" \
        "unix_socket_directories = '/var/run/postgresql'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    touch "$PGDATA/.restorebox-setup-pending"
fi

# Start the server in the background (never with the password in its environment) and
# return once it answers on its socket; then, after the set-up, stay with it until it stops.
start_server() {
    env -u POSTGRES_PASSWORD postgres "$@" &
    server=$!
    trap 'kill -INT "$server" 2>/dev/null' INT TERM
    until pg_isready -q -h /var/run/postgresql; do
        kill -0 "$server" 2>/dev/null || { wait "$server"; exit 1; }
        sleep 0.01
    done
}

serve_until_stopped() {
    while kill -0 "$server" 2>/dev/null; do
        wait "$server" || true
    done
}

# A container from a snapshot carries the lock files of the server that ran when it was
# taken; no server runs yet in this one, so they are stale (a reused PID would otherwise
# make the new server refuse to start).
rm -f "$PGDATA/postmaster.pid" /var/run/postgresql/.s.PGSQL.*

if [ ! -e "$PGDATA/.restorebox-setup-pending" ]; then
    if [ -n "${RESTOREBOX_NEW_PASSWORD_FILE:-}" ]; then
        # A copy of a snapshot, started once: until POSTGRES_USER has the new password,
        # pg_hba.conf admits the local socket only (the snapshot's password never works
        # over TCP), and fsync is off so the crash recovery of a snapshot taken from a
        # running server skips syncing the whole data directory. Then both files are
        # put back and the configuration reloaded: TCP logins with the new password work,
        # and fsync is on again.
        cp -p "$PGDATA/pg_hba.conf" "$PGDATA/pg_hba.conf.restorebox"
        grep -E '^[[:space:]]*local[[:space:]]' "$PGDATA/pg_hba.conf.restorebox" \
            > "$PGDATA/pg_hba.conf" || true
        cp -p "$PGDATA/postgresql.auto.conf" "$PGDATA/postgresql.auto.conf.restorebox"
        echo "fsync = off" >> "$PGDATA/postgresql.auto.conf"
        unset POSTGRES_PASSWORD
        start_server "$@"
        mv "$PGDATA/pg_hba.conf.restorebox" "$PGDATA/pg_hba.conf"
        mv "$PGDATA/postgresql.auto.conf.restorebox" "$PGDATA/postgresql.auto.conf"
        NEW_PASSWORD=$(cat "$RESTOREBOX_NEW_PASSWORD_FILE") \
            psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$BOOTSTRAP" -d postgres <<'SQL'
\getenv pass NEW_PASSWORD
\getenv user POSTGRES_USER
ALTER ROLE :"user" PASSWORD :'pass';
\o /dev/null
SELECT pg_reload_conf();
SQL
        serve_until_stopped
        exit 0
    fi
    unset POSTGRES_PASSWORD
    exec postgres "$@"
fi

if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
    export POSTGRES_PASSWORD
fi
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "docker-entrypoint: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE must be set" >&2
    exit 1
fi

start_server "$@"

BOOTSTRAP_USER=$BOOTSTRAP psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$BOOTSTRAP" \
    -d postgres <<'SQL'
\getenv pass POSTGRES_PASSWORD
\getenv user POSTGRES_USER
\getenv db POSTGRES_DB
\getenv bootstrap BOOTSTRAP_USER
SELECT :'db' <> 'postgres' AS create_db, :'user' = :'bootstrap' AS bootstrap_user \gset
\if :create_db
CREATE DATABASE :"db" STRATEGY FILE_COPY;
\endif
\if :bootstrap_user
ALTER ROLE :"user" PASSWORD :'pass';
\else
CREATE ROLE :"user" SUPERUSER LOGIN PASSWORD :'pass';
\endif
SQL
unset POSTGRES_PASSWORD
rm -f "$PGDATA/.restorebox-setup-pending"

serve_until_stopped
