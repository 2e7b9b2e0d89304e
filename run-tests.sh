#!/usr/bin/env bash
# Run the test suite from a fresh checkout: creates the virtual environment,
# installs the project with its test dependencies, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/pytest" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
  echo "==> setting up $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e ".[test]"
  touch "$VENV/.installed"
fi
"$VENV/bin/python" -m pytest "$@"
