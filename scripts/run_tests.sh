#!/usr/bin/env bash
# Runs pytest and refuses to turn green on an empty run: pytest exits 5 when it
# collected nothing, and we also require at least one passed test in the summary.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p artifacts
.venv/bin/python -m pytest "$@" 2>&1 | tee artifacts/pytest.log
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 5 ]; then
    echo "run_tests: pytest collected no tests: failing the run" >&2
    exit 1
fi
if [ "$rc" -eq 0 ] && ! tail -n 3 artifacts/pytest.log | grep -qE '[0-9]+ passed'; then
    echo "run_tests: no test passed: failing the run" >&2
    exit 1
fi
exit "$rc"
