#!/usr/bin/env bash
# Installs everything fedcart needs on a fresh Debian machine: system packages,
# the virtual environment in .venv/ and the front-end assets. Each step leaves a
# stamp so a second run costs seconds.
#
# Python packages come from requirements-dev.lock (exact versions with hashes,
# written by `make lock`), never from the ranges in pyproject.toml, so two
# installs a month apart get the same bytes. The stamp is named after the hash
# of the lock and pyproject.toml: a changed lock (or project metadata) re-installs.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="libzbar0 chromium junit4 libgoogle-gson-java aapt iproute2 iptables"
VENV=.venv
LOCK=requirements-dev.lock
STAMP_PY=$VENV/.stamp-$(cat "$LOCK" pyproject.toml | sha256sum | cut -c1-16)

need_apt=""
for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt="$need_apt $pkg"
done
if [ -n "$need_apt" ]; then
    echo "setup: installing system packages:$need_apt"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need_apt >/dev/null
fi

if [ ! -f "$STAMP_PY" ]; then
    echo "setup: installing Python packages from $LOCK into $VENV (TensorFlow takes a minute the first time)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    # Every package, with its hash checked; pip refuses anything the lock does not pin.
    "$VENV/bin/pip" install -q --require-hashes -r "$LOCK"
    # The project itself, editable. --no-deps: its dependencies are exactly the lock's.
    # --no-build-isolation: the build backend (setuptools) is the locked one already in
    # the venv, rather than whatever the index serves that day.
    "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .
    rm -f "$VENV"/.stamp-*
    touch "$STAMP_PY"
fi

if [ -f web/package.json ] && [ ! -d web/node_modules ]; then
    echo "setup: installing front-end packages from npm"
    (cd web && npm ci --no-audit --no-fund --silent)
fi

[ -f .env ] || cp .env.example .env
