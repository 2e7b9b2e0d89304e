#!/usr/bin/env bash
# The main job on a bundled example, from a fresh checkout:
# install, make a tiny model and a key, sign, verify, attest its lineage, then
# let a policy allow it, change it, and see the policy deny it with the reasons.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/provenance" ] || ! "$VENV/bin/python" -c "import numpy" 2>/dev/null; then
  echo "==> setting up $VENV (one time)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e '.[numpy]'   # numpy: the verified load into arrays
fi
PY="$VENV/bin/python"
PROVENANCE="$VENV/bin/provenance"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/provenance-quickstart.XXXXXX")
# KEEP=1 ./examples/quickstart.sh keeps the folder (model, keys, policy, audit log).
if [ -n "${KEEP:-}" ]; then
  trap 'echo "kept $WORK"' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
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

step "provenance scan tiny-model: every file checked by the rules of its format"
"$PROVENANCE" scan "$WORK/tiny-model"

step "a policy decides whether the model may load"
cat > "$WORK/policy.yaml" <<YAML
# Who must sign, what the attestations must say, what may be in the folder.
version: 1
signers:
  - name: release key
    key: $WORK/signing-key.pub
attestations:
  - type: training
    predicate:
      properties:
        runDetails:
          properties:
            builder:
              properties:
                id: {const: "https://example.org/quickstart"}
  - type: evaluation
    thresholds: enforce            # accuracy>=0.9, as attest eval recorded it
files:
  unsigned: deny
  formats:
    deny: [pickle]                 # nothing that runs code when loaded
YAML
"$PROVENANCE" policy check "$WORK/policy.yaml"

step "provenance verify tiny-model --policy policy.yaml"
"$PROVENANCE" verify "$WORK/tiny-model" --policy "$WORK/policy.yaml" \
  --audit-log "$WORK/audit.jsonl"

step "load it: verified under the policy, the weights read once into numpy arrays"
cat > "$WORK/load.py" <<'PYEOF'
import sys

from provenance.loaders import safetensors
from provenance.policy import PolicyDenied

model, policy = sys.argv[1], sys.argv[2]
try:
    # Each file is read once, hashed from that memory and checked against the
    # signature and the policy; the arrays are views of the very bytes verified.
    tensors = safetensors.load_folder(model, policy=policy)
except PolicyDenied as e:
    print(f"refused: {e}")
    for reason in e.decision.reasons:
        if reason.severity == "error":
            print(f"  {reason.rule}: {reason.message}")
    sys.exit(1)
for name, array in tensors.items():
    print(f"loaded {name}: {array.dtype} {array.shape}, first values {array[:3].tolist()}")
PYEOF
"$PY" "$WORK/load.py" "$WORK/tiny-model" "$WORK/policy.yaml"

step "change the model: flip one byte of model.safetensors, drop a hostile pickle beside it"
"$PY" - "$WORK/tiny-model" <<'PYEOF'
import sys
from pathlib import Path

model = Path(sys.argv[1])
weights = model / "model.safetensors"
data = bytearray(weights.read_bytes())
data[-1] ^= 0x01
weights.write_bytes(bytes(data))
# A pickle that would run `echo pwned` if loaded, written as bytes: never loaded here.
(model / "extra.pkl").write_bytes(b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R.")
print(f"changed {weights.name}, added extra.pkl")
PYEOF

step "provenance scan tiny-model/extra.pkl (exit 1: it imports os.system)"
set +e
"$PROVENANCE" scan "$WORK/tiny-model/extra.pkl"
echo "exit code: $? (1 = findings)"
set -e

step "provenance verify tiny-model --policy policy.yaml (again)"
set +e
"$PROVENANCE" verify "$WORK/tiny-model" --policy "$WORK/policy.yaml" \
  --audit-log "$WORK/audit.jsonl"
status=$?
set -e
echo "exit code: $status (1 = denied by the policy)"
if [ "$status" -ne 1 ]; then
  echo "expected the policy to deny the changed model with exit code 1" >&2
  exit 1
fi
echo "audit log: $(wc -l < "$WORK/audit.jsonl") decisions in $WORK/audit.jsonl"

step "load it again: the same verified load now loads nothing"
set +e
"$PY" "$WORK/load.py" "$WORK/tiny-model" "$WORK/policy.yaml"
status=$?
set -e
echo "exit code: $status (1 = refused)"
if [ "$status" -ne 1 ]; then
  echo "expected the verified load to refuse the changed model" >&2
  exit 1
fi
step "done: the signed model was allowed and loaded; changed, it was denied and loaded nothing"
[ -n "${KEEP:-}" ] || echo "(the folder is removed now; KEEP=1 ./examples/quickstart.sh keeps it)"
