#!/usr/bin/env bash
# The main job: a demo of what tether does.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p binding-core --example identity --features model
