"""A model service that loads a Hugging Face Hub model only after it verified.

At start-up it resolves the revision to a commit, checks the repository's
signature against the Hub's listing before downloading any weight, then
reads every signed file once, hashes it, and builds its tensors over those
very bytes. If anything fails the policy it exits non-zero with the reasons,
before any of the model is loaded. Then it answers ``GET /`` with what it
serves.

    python examples/hub/service.py ORG/NAME --revision main --policy policy.yaml

The Hub, cache and token come from the usual variables (``HF_ENDPOINT``,
``HF_HUB_CACHE``, ``HF_TOKEN``); ``--offline`` uses only the cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from provenance.errors import ProvenanceError
from provenance.loaders import hub
from provenance.loaders.safetensors import tensors_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo_id")
    parser.add_argument("--revision", default="main")
    parser.add_argument("--policy", required=True)
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="0: verify and load, then exit")
    args = parser.parse_args()

    try:
        model = hub.snapshot(args.repo_id, args.revision, policy=args.policy, offline=args.offline)
    except ProvenanceError as e:
        print(f"refusing to start: {e}", file=sys.stderr)
        for detail in getattr(e, "details", [])[1:]:
            print(f"  also: {detail}", file=sys.stderr)
        return 1
    with model:
        weights = [n for n in model.files if n.endswith(".safetensors")]
        tensors = tensors_of(model, weights)  # numpy arrays over the verified bytes
        info = {
            "repository": model.origin.repo_id,
            "revision": model.origin.revision,
            "commit": model.origin.commit,
            "root_digest": model.root_digest,
            "tensors": {k: list(v.shape) for k, v in tensors.items()},
        }
    print("serving " + json.dumps(info), flush=True)
    if not args.port:
        return 0

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(info).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
