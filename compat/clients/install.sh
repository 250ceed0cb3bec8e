#!/usr/bin/env bash
# install.sh DIR — the client libraries the compatibility tests drive, into
# the build tree, never globally: a Python venv at DIR/venv with
# requirements.txt, and DIR/node/node_modules from package.json and
# package-lock.json (npm ci). Each part is redone only when its pinned list
# changed (a copy of the list beside the install says what is there).
# Exit 0 if both are in place at the end, 1 if not (with a message; the tests
# then say "skipped" and why).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:?usage: install.sh DIR}"
mkdir -p "$dir" || exit 1
status=0

venv="$dir/venv"
if ! cmp -s "$here/requirements.txt" "$venv/installed-requirements.txt"; then
    rm -rf "$venv"
    if python3 -m venv "$venv" &&
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"; then
        cp "$here/requirements.txt" "$venv/installed-requirements.txt"
    else
        echo "install.sh: could not build the Python venv at $venv (python3 -m venv, pip install -r requirements.txt)" >&2
        rm -rf "$venv"
        status=1
    fi
fi

node="$dir/node"
if ! cmp -s "$here/package-lock.json" "$node/installed-package-lock.json"; then
    rm -rf "$node"
    mkdir -p "$node"
    cp "$here/package.json" "$here/package-lock.json" "$node/"
    if command -v npm >/dev/null &&
        (cd "$node" && npm ci --silent --no-audit --no-fund >/dev/null); then
        cp "$here/package-lock.json" "$node/installed-package-lock.json"
    else
        echo "install.sh: could not install the Node.js clients at $node (npm ci; is npm installed?)" >&2
        rm -rf "$node"
        status=1
    fi
fi
exit $status
