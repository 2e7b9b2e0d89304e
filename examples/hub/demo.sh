#!/usr/bin/env bash
# A service that loads a Hub model only after verification, end to end on this
# machine: a local Hub on 127.0.0.1 (tests/local_hub.py, the one the test suite
# uses), `provenance hub push`, `provenance hub verify`, the service starting,
# then two attacks upstream and the service refusing to start.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/provenance" ] || ! "$VENV/bin/python" -c "import numpy" 2>/dev/null; then
  echo "==> setting up $VENV (one time)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e '.[numpy]'
fi
PY="$VENV/bin/python"
PROVENANCE="$VENV/bin/provenance"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/provenance-hub-demo.XXXXXX")
HUB_PID=
cleanup() { [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "start a local Hub on 127.0.0.1 (a stand-in for huggingface.co)"
"$PY" tests/local_hub.py --root "$WORK/hub" > "$WORK/hub.json" &
HUB_PID=$!
for _ in $(seq 50); do [ -s "$WORK/hub.json" ] && break; sleep 0.1; done
eval "$("$PY" -c 'import json,shlex,sys
for k, v in json.load(open(sys.argv[1]))["env"].items(): print(f"export {k}={shlex.quote(v)}")' "$WORK/hub.json")"
export HF_HUB_CACHE="$WORK/cache"
echo "HF_ENDPOINT=$HF_ENDPOINT"

step "make a tiny model and a signing key"
"$PY" examples/make_tiny_model.py "$WORK/tiny-model"
"$PY" - "$WORK" <<'PYEOF'
import sys
from pathlib import Path
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

work = Path(sys.argv[1])
key = ec.generate_private_key(ec.SECP256R1())
(work / "key.pem").write_bytes(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
(work / "key.pub").write_bytes(key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
PYEOF
cat > "$WORK/policy.yaml" <<YAML
version: 1
signers:
  - key: $WORK/key.pub
files:
  formats:
    deny: [pickle]
YAML

step "provenance hub push tiny-model acme/tiny --key key.pem (signed, one commit)"
"$PROVENANCE" hub push "$WORK/tiny-model" acme/tiny --key "$WORK/key.pem"

step "provenance hub verify acme/tiny --policy policy.yaml"
"$PROVENANCE" hub verify acme/tiny --policy "$WORK/policy.yaml"

step "the service starts: verified first, then loaded from the verified bytes"
"$PY" examples/hub/service.py acme/tiny --policy "$WORK/policy.yaml"

step "the service starts again with no network: --offline, from the cache"
"$PY" examples/hub/service.py acme/tiny --policy "$WORK/policy.yaml" --offline

step "attack 1: someone adds code upstream that the signature does not cover"
"$PY" - <<'PYEOF'
import os
from huggingface_hub import HfApi
HfApi().upload_file(path_or_fileobj=b"import os\nos.system('id')\n",
                    path_in_repo="modeling_evil.py", repo_id="acme/tiny")
PYEOF
if "$PY" examples/hub/service.py acme/tiny --policy "$WORK/policy.yaml"; then
  echo "the service should have refused to start" >&2; exit 1
fi

step "the maintainer pushes the signed model again (what the folder lacks is deleted)"
"$PROVENANCE" hub push "$WORK/tiny-model" acme/tiny --key "$WORK/key.pem"
"$PY" examples/hub/service.py acme/tiny --policy "$WORK/policy.yaml"

step "attack 2: a blob in the local cache is changed"
blob=$("$PY" -c 'import pathlib,sys; print(sorted(pathlib.Path(sys.argv[1]).glob("models--acme--tiny/snapshots/*/config.json"))[-1].resolve())' "$HF_HUB_CACHE")
echo '{"hidden_size": 9}' > "$blob"
if "$PY" examples/hub/service.py acme/tiny --policy "$WORK/policy.yaml" --offline; then
  echo "the service should have refused to start" >&2; exit 1
fi

step "done: the service loaded only what verified"
