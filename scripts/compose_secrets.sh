#!/bin/sh
# The files behind docker-compose.yml's `secrets:` (MongoDB passwords), each made once: 48 hex digits from
# /dev/urandom. `make up` runs it; an existing file is kept, so passwords stay those mongo's users were made with.
# The files are 0644 inside a 0700 folder: the containers (mongo as uid 999, fedcart as 10001) read them through
# compose's bind mount, while other users of this machine cannot get into the folder.
# usage: scripts/compose_secrets.sh [COMPOSE_FILE]   (default docker-compose.yml; paths are relative to its folder)
set -eu

compose="${1:-docker-compose.yml}"
root=$(dirname "$compose")
paths=$(sed -n 's/^[[:space:]]*file:[[:space:]]*\(\.\/\.secrets\/[A-Za-z0-9._-]*\)[[:space:]]*$/\1/p' "$compose")
if [ -z "$paths" ]; then
    echo "compose_secrets.sh: $compose names no ./.secrets/ file" >&2
    exit 1
fi
made=0
for path in $paths; do
    target="$root/$path"
    folder=$(dirname "$target")
    mkdir -p "$folder"
    chmod 700 "$folder"
    if [ ! -s "$target" ]; then
        (umask 022 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$target.tmp")
        mv "$target.tmp" "$target"
        made=$((made + 1))
    fi
done
if [ "$made" -gt 0 ]; then
    echo "compose_secrets.sh: made $made password file(s) in $folder"
fi
