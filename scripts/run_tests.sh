#!/usr/bin/env bash
# What `make test` (and so CI, via .ci/run) runs: the gates first, then pytest.
#
# Gates: `ruff check .`, `ruff format --check .` and `mypy` (no arguments: the [tool.mypy]
# section of pyproject.toml says which files). Any finding fails the run with one line naming
# the failed gate(s), and pytest does not start. Their output also lands in artifacts/gates.log.
#
# Pytest gets every argument given to this script (`bash scripts/run_tests.sh -q tests/cartnet`)
# and refuses to turn green on an empty run: pytest exits 5 when it collected nothing, and we
# also require at least one passed test in the summary. Its log is artifacts/pytest.log.
#
# FEDCART_SKIP_GATES=1 skips ruff and mypy, for quick local pytest runs of one part:
#     FEDCART_SKIP_GATES=1 bash scripts/run_tests.sh -q tests/cartnet
# CI never sets it. The last line printed is the wall time of each step and of the whole run.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p artifacts
VENV=.venv

run_started=$SECONDS
timings=()

duration() {  # seconds -> "42s" or "6m12s"
    local s=$1
    if [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

report_times() {
    local line="run_tests: " part
    for part in "${timings[@]}"; do line+="$part, "; done
    echo "${line}total $(duration $((SECONDS - run_started)))"
}
trap report_times EXIT

if [ "${FEDCART_SKIP_GATES:-}" = "1" ]; then
    echo "run_tests: FEDCART_SKIP_GATES=1: skipping ruff and mypy"
else
    for tool in ruff mypy; do
        if [ ! -x "$VENV/bin/$tool" ]; then
            echo "run_tests: $VENV/bin/$tool is missing: run \`make setup\` (it installs requirements-dev.lock)" >&2
            exit 1
        fi
    done
    : >artifacts/gates.log
    failed=()
    gate() {  # gate NAME COMMAND...: runs one gate, tees its output to the log, remembers a failure
        local name=$1 rc
        shift
        echo "== $name" | tee -a artifacts/gates.log
        "$@" 2>&1 | tee -a artifacts/gates.log
        rc=${PIPESTATUS[0]}
        [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
    }
    started=$SECONDS
    gate "ruff check" "$VENV/bin/ruff" check .
    gate "ruff format --check" "$VENV/bin/ruff" format --check .
    timings+=("ruff $(duration $((SECONDS - started)))")
    started=$SECONDS
    gate "mypy" "$VENV/bin/mypy"
    timings+=("mypy $(duration $((SECONDS - started)))")
    if [ "${#failed[@]}" -gt 0 ]; then
        joined=$(printf '; %s' "${failed[@]}")
        echo "run_tests: gate failed: ${joined:2} (findings above and in artifacts/gates.log); pytest not run" >&2
        exit 1
    fi
fi

started=$SECONDS
"$VENV/bin/python" -m pytest "$@" 2>&1 | tee artifacts/pytest.log
rc=${PIPESTATUS[0]}
timings+=("pytest $(duration $((SECONDS - started)))")
if [ "$rc" -eq 5 ]; then
    echo "run_tests: pytest collected no tests: failing the run" >&2
    exit 1
fi
if [ "$rc" -eq 0 ] && ! tail -n 3 artifacts/pytest.log | grep -qE '[0-9]+ passed'; then
    echo "run_tests: no test passed: failing the run" >&2
    exit 1
fi
exit "$rc"
