#!/usr/bin/env bash
# A four-step toy ML pipeline recorded with in-toto and verified end to end:
# an owner signs the layout, two functionaries (alice: data, bob: training and
# packaging) run the steps with `provenance run`, `provenance verify-pipeline`
# checks the chain, and a policy allows the released model only as the
# pipeline's product. Then a poisoned training file is caught, with its reason.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/provenance" ]; then
  echo "==> setting up $VENV (one time)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e .
fi
PY="$(cd "$(dirname "$VENV/bin/python")" && pwd)/python"
PROVENANCE="$(cd "$(dirname "$VENV/bin/provenance")" && pwd)/provenance"
STEPS="$PWD/examples/pipeline/steps.py"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/provenance-pipeline.XXXXXX")
# KEEP=1 ./examples/pipeline/run.sh keeps the folder (keys, layout, links, release).
if [ -n "${KEEP:-}" ]; then
  trap 'echo "kept $WORK"' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
cd "$WORK"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
provenance() { "$PROVENANCE" "$@"; }

step "keys: the pipeline's owner, and two functionaries"
"$PY" - <<'PYEOF'
from pathlib import Path
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

Path("keys").mkdir()
for name, key in (("owner", ec.generate_private_key(ec.SECP384R1())),
                  ("alice", ec.generate_private_key(ec.SECP256R1())),
                  ("bob", ec.generate_private_key(ec.SECP256R1()))):
    Path(f"keys/{name}.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    Path(f"keys/{name}.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    print(f"keys/{name}.pem")
PYEOF
mkdir raw
"$PY" -c "
import random; random.seed(7)
print('x,y')
for i in range(40): print(f'{i},{3 * i + 2 + random.gauss(0, 1):.3f}')" > raw/measurements.csv

step "the owner writes and signs the layout"
provenance layout init \
  --functionary prepare-data=keys/alice.pub --functionary train=keys/bob.pub \
  --functionary evaluate=keys/alice.pub --functionary package=keys/bob.pub \
  --expires 90d --output root.layout.json
provenance layout sign root.layout.json --key keys/owner.pem

step "the functionaries run the four steps, each recording a signed link"
provenance run --step prepare-data --key keys/alice.pem --links links \
  --materials raw --products data -- "$PY" "$STEPS" prepare
provenance run --step train --key keys/bob.pem --links links \
  --materials data --products model -- "$PY" "$STEPS" train
provenance run --step evaluate --key keys/alice.pem --links links \
  --materials model data --products eval -- "$PY" "$STEPS" evaluate
provenance run --step package --key keys/bob.pem --links links \
  --materials model eval --products release -- "$PY" "$STEPS" package
ls links

step "verify the whole chain against the signed layout"
provenance verify-pipeline --layout root.layout --layout-key keys/owner.pub --links links

step "sign the release, and let a policy allow it only as the pipeline's product"
provenance sign release --key keys/bob.pem
cat > policy.yaml <<'YAML'
version: 1
signers:
  - {name: bob, key: keys/bob.pub}
pipeline:
  layout: root.layout
  layout_keys: [keys/owner.pub]
  links: links
  model: {step: package, path: release}
YAML
provenance verify release --policy policy.yaml

step "attack: poison the training data after it was prepared, and train again"
echo "1000,-5" >> data/train.csv
provenance run --step train --key keys/bob.pem --links links \
  --materials data --products model -- "$PY" "$STEPS" train
if provenance verify-pipeline --layout root.layout --layout-key keys/owner.pub --links links; then
  echo "the poisoned chain verified: this must not happen" >&2
  exit 1
fi
echo "(refused, as it should be: exit 1 names the step, the rule and the file)"
