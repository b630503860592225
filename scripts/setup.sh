#!/usr/bin/env bash
# Installs everything fedcart needs on a fresh Debian machine: system packages,
# the virtual environment in .venv/ and the front-end assets. Each step leaves a
# stamp so a second run costs seconds; a changed pyproject.toml re-installs.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="libzbar0 chromium junit4 libgoogle-gson-java aapt iproute2 iptables"
VENV=.venv
STAMP_PY=.venv/.stamp-$(sha256sum pyproject.toml | cut -c1-16)

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
    echo "setup: creating $VENV and installing Python packages (TensorFlow takes a minute)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e ".[dev]"
    rm -f "$VENV"/.stamp-*
    touch "$STAMP_PY"
fi

if [ -f web/package.json ] && [ ! -d web/node_modules ]; then
    echo "setup: installing front-end packages from npm"
    (cd web && npm ci --no-audit --no-fund --silent)
fi

[ -f .env ] || cp .env.example .env
