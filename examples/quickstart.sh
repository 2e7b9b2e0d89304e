#!/usr/bin/env bash
# The main job on a bundled example, from a fresh checkout:
# install, make a tiny model and a key, sign, verify, tamper, see it fail.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/provenance" ]; then
  echo "==> setting up $VENV (one time)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e .
fi
PY="$VENV/bin/python"
PROVENANCE="$VENV/bin/provenance"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/provenance-quickstart.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "make a tiny model and a signing key"
"$PY" examples/make_tiny_model.py "$WORK/tiny-model"
"$PY" - "$WORK" <<'PYEOF'
import sys
from pathlib import Path
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

work = Path(sys.argv[1])
key = ec.generate_private_key(ec.SECP256R1())
(work / "signing-key.pem").write_bytes(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
(work / "signing-key.pub").write_bytes(key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
print(f"wrote {work}/signing-key.pem and signing-key.pub")
PYEOF

step "provenance hash tiny-model"
"$PROVENANCE" hash "$WORK/tiny-model"

step "provenance sign tiny-model --key signing-key.pem"
"$PROVENANCE" sign "$WORK/tiny-model" --key "$WORK/signing-key.pem"

step "provenance inspect tiny-model/model.sig"
"$PROVENANCE" inspect "$WORK/tiny-model/model.sig"

step "provenance verify tiny-model --key signing-key.pub"
"$PROVENANCE" verify "$WORK/tiny-model" --key "$WORK/signing-key.pub"

step "lineage: attest the training data, the training run and an evaluation"
mkdir -p "$WORK/train-data" "$WORK/eval-data"
for i in 1 2 3; do echo "{\"text\": \"example $i\"}" > "$WORK/train-data/part-$i.jsonl"; done
echo '{"text": "held out"}' > "$WORK/eval-data/part-1.jsonl"
"$PROVENANCE" attest dataset "$WORK/train-data" --key "$WORK/signing-key.pem" \
  --license CC-BY-4.0 --source-uri https://example.org/train-data --split train=3
"$PROVENANCE" attest training "$WORK/tiny-model" --key "$WORK/signing-key.pem" \
  --dataset "$WORK/train-data" --param learning_rate=0.001 --param epochs=3 \
  --builder-id https://example.org/quickstart --entry-point make_tiny_model.py
"$PROVENANCE" attest eval "$WORK/tiny-model" --key "$WORK/signing-key.pem" \
  --metric accuracy=0.93 --dataset "$WORK/eval-data" --threshold 'accuracy>=0.9'

step "provenance verify tiny-model --key signing-key.pub --attestations"
"$PROVENANCE" verify "$WORK/tiny-model" --key "$WORK/signing-key.pub" --attestations

step "provenance lineage tiny-model"
"$PROVENANCE" lineage "$WORK/tiny-model"

step "tamper: flip one byte of model.safetensors, then verify again"
"$PY" - "$WORK/tiny-model/model.safetensors" <<'PYEOF'
import sys
path = sys.argv[1]
with open(path, "r+b") as f:
    f.seek(-1, 2)
    last = f.read(1)
    f.seek(-1, 2)
    f.write(bytes([last[0] ^ 0x01]))
PYEOF
set +e
"$PROVENANCE" verify "$WORK/tiny-model" --key "$WORK/signing-key.pub"
status=$?
set -e
echo "exit code: $status (1 = verification failed)"
if [ "$status" -ne 1 ]; then
  echo "expected verification to fail with exit code 1" >&2
  exit 1
fi
step "done: the signed model verified, the tampered one was refused"
