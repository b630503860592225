#!/bin/sh
# The Secrets the Kubernetes manifests expect, made on the operator's machine (where the swarm authority lives):
#
#   fedcart-bridges   each bridge pod's keys and certificate (bridge-N.node_ed25519.key, bridge-N.node_x25519.key,
#                     bridge-N.certificate.json) and the swarm's public key (swarm.json)
#   fedcart-carts     the same for each cart pod (cart-N.*), plus cart-N.mongodb-password with --mongodb
#   fedcart-mongodb   with --mongodb: mongodb-root-password, mongodb-seed-password, mongodb-cart-N-password
#
# It runs `fedcart authority init --exist-ok` and `fedcart enrol --keep-valid` for every pod into OUT/nodes/<pod>,
# keeps MongoDB passwords in OUT/mongodb/, and writes OUT/fedcart-*.yaml for `kubectl apply -f`. Run it again
# to renew certificates (within a day of their end) or to add pods: kept keys and passwords stay the same.
# OUT holds every node's private keys: keep it like the authority, off the nodes and out of version control.
#
# usage: secrets.sh --authority DIR --out DIR [--namespace NS] [--bridges N] [--carts N] [--days D] [--mongodb]
set -eu

authority=""
out=""
namespace="fedcart"
bridges=2
carts=3
days=365
mongodb=0
fedcart="${FEDCART:-fedcart}"

usage() {
    sed -n 's/^# usage: /usage: /p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --authority) authority="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        --namespace) namespace="${2:?}"; shift 2 ;;
        --bridges) bridges="${2:?}"; shift 2 ;;
        --carts) carts="${2:?}"; shift 2 ;;
        --days) days="${2:?}"; shift 2 ;;
        --mongodb) mongodb=1; shift ;;
        -h|--help) usage ;;
        *) echo "secrets.sh: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$authority" ] && [ -n "$out" ] || usage
case "$bridges$carts" in *[!0-9]*) echo "secrets.sh: --bridges and --carts take a number" >&2; exit 2 ;; esac
if [ $((bridges + carts)) -eq 0 ]; then
    echo "secrets.sh: nothing to enrol (--bridges 0 --carts 0)" >&2
    exit 2
fi

umask 077
mkdir -p "$out/nodes"
"$fedcart" authority init --dir "$authority" --exist-ok >/dev/null

# pods ROLE PREFIX COUNT: the pod names of a StatefulSet, each enrolled in its own folder.
enrol_pods() {
    i=0
    while [ "$i" -lt "$3" ]; do
        "$fedcart" enrol --authority "$authority" --data-dir "$out/nodes/$2-$i" --role "$1" --days "$days" --keep-valid
        i=$((i + 1))
    done
}

b64() {
    base64 <"$1" | tr -d '\n'
}

# header NAME: a Secret manifest's first lines.
header() {
    printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$1" "$namespace"
    printf '  labels:\n    app.kubernetes.io/part-of: fedcart\ntype: Opaque\ndata:\n'
}

# node_entries PREFIX COUNT: every pod's enrolment files as Secret data entries, and the swarm's key once.
node_entries() {
    i=0
    while [ "$i" -lt "$2" ]; do
        dir="$out/nodes/$1-$i"
        for file in node_ed25519.key node_x25519.key certificate.json; do
            printf '  %s: %s\n' "$1-$i.$file" "$(b64 "$dir/$file")"
        done
        if [ "$mongodb" = 1 ] && [ "$1" = cart ]; then
            printf '  %s: %s\n' "$1-$i.mongodb-password" "$(b64 "$out/mongodb/mongodb-$1-$i-password")"
        fi
        i=$((i + 1))
    done
    printf '  swarm.json: %s\n' "$(b64 "$out/nodes/$1-0/swarm.json")"
}

# password NAME: a MongoDB password kept in OUT/mongodb (made once: 48 hex digits from /dev/urandom).
password() {
    file="$out/mongodb/mongodb-$1-password"
    if [ ! -s "$file" ]; then
        od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$file.tmp"
        mv "$file.tmp" "$file"
    fi
}

enrol_pods bridge bridge "$bridges"
enrol_pods cart cart "$carts"

if [ "$mongodb" = 1 ]; then
    mkdir -p "$out/mongodb"
    password root
    password seed
    i=0
    while [ "$i" -lt "$carts" ]; do
        password "cart-$i"
        i=$((i + 1))
    done
    {
        header fedcart-mongodb
        for file in "$out"/mongodb/mongodb-*-password; do
            printf '  %s: %s\n' "$(basename "$file")" "$(b64 "$file")"
        done
    } >"$out/fedcart-mongodb.yaml"
fi
if [ "$bridges" -gt 0 ]; then
    { header fedcart-bridges; node_entries bridge "$bridges"; } >"$out/fedcart-bridges.yaml"
fi
if [ "$carts" -gt 0 ]; then
    { header fedcart-carts; node_entries cart "$carts"; } >"$out/fedcart-carts.yaml"
fi
echo "Secrets for namespace $namespace in $out: kubectl apply -f $out/fedcart-<name>.yaml (they hold private keys)"
