#!/usr/bin/env bash
# Runs the Node-side unit tests again on the newest supported Node major.
# The npm registry's `node` package carries the binary, so nothing is fetched
# from outside the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE24_VERSION="${NODE24_VERSION:-24}"
echo "unit tests on node@${NODE24_VERSION}: $(npx -y "node@${NODE24_VERSION}" -v)"
npx -y "node@${NODE24_VERSION}" ./node_modules/vitest/vitest.mjs run --project '*:node' "$@"
