#!/usr/bin/env bash
# Runs a real deploy of the bundled example into ./example-output/app: no cloud account needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/example-output"
mkdir -p "$out"
# A pid file of a "running" app: excluded, so the deploy keeps it.
mkdir -p "$out/app" && echo $$ > "$out/app/app.pid"
export STRETCHER_EXAMPLE_DEST="$out/app"
export STRETCHER_STATE_DIR="$out/state"
echo "file://$root/examples/hello/manifest.yml" | node "$root/dist/cli.js"
echo
echo "Deployed into $out/app:"
(cd "$out/app" && find . | sort | sed 's/^/  /')
echo "Deploy record: $(ls "$out"/state/deploys/*.json)"
