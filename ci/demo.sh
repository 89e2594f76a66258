#!/usr/bin/env bash
# The main job: a demo of what tether does.
set -euo pipefail
cd "$(dirname "$0")/.."
# The kernel on its model runtime, then the Python package on CPython.
cargo run --quiet --release -p binding-core --example identity --features model
bash binding-py/demo.sh
