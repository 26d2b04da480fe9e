#!/usr/bin/env bash
# The whole suite on a fresh Debian machine: install the real peers, then run node:test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-peers.sh && npm test
