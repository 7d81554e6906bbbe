#!/usr/bin/env bash
# Tempest's network API tests against Seam behind a real Keystone (after scripts/setup.sh).
# Usage: bash scripts/tempest.sh [REGEX] [--serve]; --help for more.
set -euo pipefail
cd "$(dirname "$0")/.."
exec var/node/bin/node --import tsx scripts/tempest.ts "$@"
