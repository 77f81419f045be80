#!/bin/sh
# Entrypoint for restorebox sandbox images. Same contract as the official image:
#   POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (one is required on first start; the
#   file keeps it out of the container's configuration and is deleted once read; either
#   may hold a SCRAM verifier instead of a password, stored as it is: restorebox passes
#   only verifiers), POSTGRES_USER (default postgres),
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
quitting=
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
        --auth-local=trust --auth-host=scram-sha-256 --wal-segsize=1 --no-sync \
        --no-instructions >/dev/null
    printf "%s\n" "listen_addresses = '*'" "password_encryption = 'scram-sha-256'" \
        "unix_socket_directories = '/var/run/postgresql'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    touch "$PGDATA/.restorebox-setup-pending"
fi

# Start the server in the background (never with the password in its environment) and
# return once it answers on its socket; then, after the set-up, stay with it until it stops.
start_server() {
    # A reset's new container may start before the old one, killed, has let go of the
    # port they share: wait for it (a few milliseconds) rather than fail to listen.
    tries=0
    while port_in_use && [ "$tries" -lt 500 ]; do
        tries=$((tries + 1))
        sleep 0.01
    done
    env -u POSTGRES_PASSWORD postgres "$@" &
    server=$!
    trap 'kill -INT "$server" 2>/dev/null' INT TERM
    # SIGQUIT, what a reset sends the old container: the server stops at once (no
    # shutdown checkpoint) and lets go of the port, while the container idles until it
    # is removed (its teardown would compete with the new container's start).
    trap 'quitting=1; kill -QUIT "$server" 2>/dev/null' QUIT
    until server_ready; do
        kill -0 "$server" 2>/dev/null || { wait "$server"; exit 1; }
        sleep 0.01
    done
}

# Whether something listens on 5432 here, from the kernel's tables (shell built-ins only).
port_in_use() {
    for table in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$table" ] || continue
        while read -r _ address _ state _; do
            case "$address:$state" in *:1538:0A) return 0 ;; esac  # 0x1538 = 5432, LISTEN
        done < "$table"
    done
    return 1
}

# Whether the server accepts connections, read from postmaster.pid (line 8 says "ready")
# with shell built-ins: polling with a client would make the server fork a backend for
# every attempt while it recovers, CPU that ten copies starting at once share.
server_ready() {
    [ -r "$PGDATA/postmaster.pid" ] || return 1
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        if [ "$n" -eq 8 ]; then
            case "$line" in ready*) return 0 ;; esac
            return 1
        fi
    done < "$PGDATA/postmaster.pid"
    return 1
}

serve_until_stopped() {
    while kill -0 "$server" 2>/dev/null; do
        wait "$server" || true
    done
    if [ -n "${quitting:-}" ]; then
        exec sleep infinity
    fi
}

# A container from a snapshot carries the lock files of the server that ran when it was
# taken; no server runs yet in this one, so they are stale (a reused PID would otherwise
# make the new server refuse to start).
rm -f "$PGDATA/postmaster.pid" /var/run/postgresql/.s.PGSQL.*

if [ ! -e "$PGDATA/.restorebox-setup-pending" ]; then
    if [ -n "${RESTOREBOX_NEW_PASSWORD_VERIFIER:-}${RESTOREBOX_NEW_PASSWORD_FILE:-}" ]; then
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
        new_password=${RESTOREBOX_NEW_PASSWORD_VERIFIER:-}
        [ -n "$new_password" ] || new_password=$(cat "$RESTOREBOX_NEW_PASSWORD_FILE")
        unset POSTGRES_PASSWORD RESTOREBOX_NEW_PASSWORD_VERIFIER
        start_server "$@"
        mv "$PGDATA/pg_hba.conf.restorebox" "$PGDATA/pg_hba.conf"
        mv "$PGDATA/postgresql.auto.conf.restorebox" "$PGDATA/postgresql.auto.conf"
        # new_password: a SCRAM verifier (what restorebox passes), stored as it is, or
        # a password from the file.
        NEW_PASSWORD=$new_password \
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
# The server holds the role's verifier now: the file goes, so that no snapshot of this
# container (and no copy of one) carries it.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    rm -f "$POSTGRES_PASSWORD_FILE" 2>/dev/null || echo "docker-entrypoint: could not remove $POSTGRES_PASSWORD_FILE" >&2
fi
rm -f "$PGDATA/.restorebox-setup-pending"

serve_until_stopped
