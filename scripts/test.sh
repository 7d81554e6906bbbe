#!/usr/bin/env bash
# Runs every test with node's own runner; CI's log ends with its pass/fail counts.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's Node.js (scripts/setup-node.sh), for the runner and every node a test starts.
export PATH="$PWD/var/node/bin:$PATH"
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=1 "$@" "${files[@]}"
