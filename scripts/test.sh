#!/usr/bin/env bash
# Runs every check that guards main: formatting, lints and the whole test suite.
# CI runs exactly this script (through .ci/run); run it locally before you push.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== test services"
source scripts/test-services.sh

echo "== cargo test"
cargo test --workspace --locked
