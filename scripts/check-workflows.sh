#!/usr/bin/env bash
# Validate the GitHub Actions workflows offline: the workflow JSON schema bundled
# with check-jsonschema, then zizmor's security audits (pinning, permissions,
# template injection, credentials) without its online audits.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
[ -x "$bin/zizmor" ] || bin=$(dirname "$(command -v zizmor)")  # CI installs into its own Python
workflows=(.github/workflows/*.yml)
"$bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
"$bin/zizmor" --offline --no-progress --color never .github/workflows
