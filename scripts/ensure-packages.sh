#!/usr/bin/env bash
# ensure-packages.sh COMMAND=PACKAGE ... — installs each Debian PACKAGE whose
# COMMAND is missing, with apt-get (as root, or through sudo without a
# password), refreshing the package lists once if an install fails.
# Exit 0 if every COMMAND is there at the end, 1 if not (with a message).
set -uo pipefail

missing=()
for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
done
((${#missing[@]} == 0)) && exit 0

if [[ "$(id -u)" == 0 ]]; then
    apt=(apt-get)
elif sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
else
    echo "ensure-packages: need ${missing[*]} (Debian packages) and cannot install them: not root, no sudo" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
install() { "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
if ! install; then
    "${apt[@]}" update -qq >/dev/null && install || {
        echo "ensure-packages: apt-get could not install ${missing[*]}" >&2
        exit 1
    }
fi
for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || { echo "ensure-packages: ${pair%%=*} still missing" >&2; exit 1; }
done
