# Shared helpers for scripts/*: sourced, not executed.
# shellcheck shell=bash
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${RESTOREBOX_VENV:-$REPO_ROOT/.venv}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    # apt_install PKG...: install the Debian packages that are missing.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
    # A virtualenv with restorebox and its dev dependencies, refreshed when pyproject.toml
    # or constraints.txt changes. constraints.txt pins what the suite was last run with;
    # refresh it with: .venv/bin/pip freeze --exclude-editable > constraints.txt
    local stamp="$VENV/.restorebox-installed"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv at $VENV"
        python3 -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$stamp" ] \
        || [ "$REPO_ROOT/constraints.txt" -nt "$stamp" ]; then
        log "installing Python dependencies (versions pinned by constraints.txt)"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -c "$REPO_ROOT/constraints.txt" -e "$REPO_ROOT[dev]"
        touch "$stamp"
    fi
}
