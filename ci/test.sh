#!/usr/bin/env bash
# The README's test command, shared by .ci/run and any CI workflow.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
