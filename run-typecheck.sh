#!/usr/bin/env bash
# mypy --strict over the library and the CLI. The CLI's folder (cli/) installs
# as the package provenance_cli; mypy is shown that name through a link.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
link=$(mktemp -d "${TMPDIR:-/tmp}/provenance-mypy.XXXXXX")
trap 'rm -rf "$link"' EXIT
ln -s "$PWD/cli" "$link/provenance_cli"
MYPYPATH="$link" "$VENV/bin/mypy" -p provenance -p provenance_cli "$@"
