"""A local Hugging Face Hub on 127.0.0.1, so Hub downloads and uploads are tested for real.

No machine that builds or tests provenance reaches huggingface.co, and mocking
``huggingface_hub`` would test nothing but the mock. This serves, on one
loopback port, the endpoints the *unmodified* ``huggingface_hub`` 2.x client
calls (checked against 2.4.0), for model, dataset and space repositories:

- repositories: ``POST /api/repos/create`` (409 if it exists), ``DELETE
  /api/repos/delete``, ``PUT /api/{type}s/{repo}/settings`` (``private``),
  ``GET /api/{type}s`` (a plain listing), ``GET /api/whoami-v2``;
- repo info: ``GET /api/{type}s/{repo}[/revision/{rev}][?blobs=true]`` with
  ``sha`` and ``siblings`` (``blobId``, ``size``, ``lfs``);
- listings: ``GET .../tree/{rev}[/{path}]?recursive=&expand=`` (with
  ``lastCommit`` when expanded), ``POST .../paths-info/{rev}``, ``GET
  .../refs``, ``GET .../commits/{rev}``;
- refs: ``POST``/``DELETE .../branch/{name}``, ``POST .../tag/{rev}``,
  ``DELETE .../tag/{name}``;
- files: ``HEAD`` and ``GET /[{type}s/]{repo}/resolve/{rev}/{path}`` with
  ``X-Repo-Commit``, a quoted ``ETag`` (the git blob id of a regular file, the
  sha256 of an LFS file, plus ``X-Linked-Etag`` / ``X-Linked-Size`` for LFS),
  ``Content-Length`` and single ``Range`` requests (206 / 416). LFS files are
  served directly (no redirect to a CDN);
- uploads: ``POST .../preupload/{rev}`` (``lfs`` for files over 1 MiB or named
  ``*.safetensors .bin .pt .pth .gguf .onnx .h5 .msgpack .npz .npy``, else
  ``regular``), the LFS batch API ``POST /[{type}s/]{repo}.git/info/lfs/objects/batch``
  (``basic`` transfer only; no actions for an object already stored), the
  ``PUT`` its upload action names (a signed URL, like S3's: no token needed,
  400 unless the bytes' sha256 and size are the announced ones), the verify
  action, and ``POST .../commit/{rev}`` reading the NDJSON body (``header``,
  ``file``, ``lfsFile``, ``deletedFile``, ``deletedFolder``). A ``parentCommit``
  that is not the branch head gets 412 "A commit has happened since. Please
  refresh and try again.", as on the real Hub;
- ``POST /api/validate-yaml`` (accepts everything) and ``GET
  /api/agent-harnesses`` (an empty registry, see below).

Errors carry the ``X-Error-Code`` / ``X-Error-Message`` headers the client maps
to ``RepositoryNotFoundError``, ``RevisionNotFoundError`` and
``RemoteEntryNotFoundError`` (``utils/_http.py``). Any ``Authorization: Bearer``
token is accepted; writes without one get 401, and so do reads of a private
repository (with ``X-Error-Code: RepoNotFound``, like the Hub).

Commits are real: each is its parent plus a full tree ``{path: blob}``, with a
40-hex id. Like the Hub, a new repository's ``main`` starts with an "initial
commit" holding a ``.gitattributes`` that marks the LFS extensions above (pass
``LocalHub(root, gitattributes=False)`` for an empty initial tree). Blob ids
are git's: ``sha1(b"blob %d\\0" % len + data)`` of a regular file, and of the
LFS *pointer file* for an LFS file (which is what the Hub reports). Bytes are
stored once each on disk under ``root/objects/<sha256>``; the metadata is kept
in memory and in ``root/state.json``, so ``--root`` can be reused.

Not served: Xet storage, pull requests (``create_pr``), discussions, multipart
LFS uploads, ``super_squash_history``, cross-repo LFS duplication, Spaces
runtime and anything else not listed.

What the client needs
---------------------
``HF_HUB_DISABLE_XET=1``. With ``hf_xet`` installed, 2.4.0 uploads every LFS
file through Xet unconditionally (``_commit_api._upload_files`` never asks the
server; only ``io.BufferedIOBase`` sources fall back to LFS), so without it an
upload fails at once with a 400 from ``.../xet-write-token/{rev}``. Downloads
only use Xet when a ``HEAD`` carries ``X-Xet-Hash``, which this server never
sends, so they stay plain HTTP either way.

``HF_HUB_DISABLE_TELEMETRY=1``. Otherwise the first request of a process
fetches ``{constants.ENDPOINT}/api/agent-harnesses`` to build the user agent
(served here; but in-process ``constants.ENDPOINT`` is still huggingface.co).

The client reads its settings once, at import (``huggingface_hub.constants``):
in-process, pass ``endpoint=``, ``token=`` and ``cache_dir=`` explicitly and
patch ``constants.HF_HUB_DISABLE_XET`` / ``HF_HUB_DISABLE_TELEMETRY`` /
``HF_HUB_OFFLINE`` (the ``local_hub`` fixture in ``conftest.py`` does that,
and fails the test if the server hit an internal error). A subprocess needs
``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_CACHE`` (or ``HF_HOME``),
``HF_HUB_DISABLE_XET=1``, ``HF_HUB_DISABLE_TELEMETRY=1`` and ``HF_HUB_OFFLINE``
(``1`` for an offline run, else ``0``): ``LocalHub.env(cache_dir)`` returns
them (plus quiet progress bars and no update check).

Tests can change the Hub behind the client's back: ``commit`` (creates the
repo and branch if needed), ``set_ref`` (a force-push), ``set_lfs_sha256``
(the metadata lies) and ``replace_blob_bytes`` (storage serves other bytes),
read it back with ``head``, ``resolve``, ``files`` (the bytes as served) and
``entry``, and inspect ``requests``: the ``(method, path)`` of every request
served, path percent-decoded and without its query string. Unknown repos,
revisions or paths are ``KeyError`` there.

Standalone: ``python tests/local_hub.py --root DIR [--port N]`` serves until
killed and prints one JSON line: ``{"endpoint", "token", "root", "env"}``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

#: Any non-empty bearer token works; this one is handy for tests and examples.
DEFAULT_TOKEN = "hf_localhub_test_token_0000000000000"
#: The account every token belongs to (the default namespace of new repositories).
DEFAULT_USER = "local-user"
#: Above this size a file is uploaded through LFS.
LFS_THRESHOLD = 1024 * 1024
#: Files with these suffixes always go through LFS (as the Hub's default ``.gitattributes``).
LFS_SUFFIXES = frozenset(
    {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5", ".msgpack", ".npz", ".npy"}
)
REPO_TYPES = ("model", "dataset", "space")
#: Path prefix of each repository type in download and git URLs.
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
#: Words after a one-part repo id in ``/api/...`` URLs (so ``/api/models/gpt2/tree/main`` parses).
_API_SUBPATHS = frozenset(
    {
        "revision",
        "tree",
        "paths-info",
        "preupload",
        "commit",
        "commits",
        "refs",
        "branch",
        "tag",
        "settings",
        "xet-read-token",
        "xet-write-token",
        "discussions",
        "lfs-files",
    }
)
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SHORT_SHA = re.compile(r"[0-9a-f]{7,40}")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 1024 * 1024
_LFS_JSON = "application/vnd.git-lfs+json"
GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in sorted(LFS_SUFFIXES)
).encode()


def git_blob_id(data: bytes) -> str:
    """Git's object id of a blob, which the Hub reports as ``blobId`` / ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file committed in place of an LFS file's content."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def is_lfs_path(path: str, size: int) -> bool:
    """This server's ``preupload`` rule: big files and weight formats go through LFS."""
    return size > LFS_THRESHOLD or Path(path).suffix.lower() in LFS_SUFFIXES


def _now() -> str:
    """The Hub's timestamp format (``parse_datetime`` accepts only this one)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HubError(Exception):
    """An HTTP error answer, with the headers ``hf_raise_for_status`` maps to exceptions."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        #: More fields for the JSON body (a 409 on create carries the repo's ``url``).
        self.extra = extra or {}


def _repo_not_found(status: int = 404) -> HubError:
    return HubError(status, "Repository not found", "RepoNotFound")


@dataclass(frozen=True)
class Entry:
    """One file of a commit's tree, as the Hub describes it, and where its bytes are.

    ``sha256``, ``size`` and ``blob_id`` are the *metadata* (what repo info,
    tree listings and ETags report); ``stored`` names the bytes actually served.
    They agree unless a test tampered with one of them.
    """

    sha256: str
    size: int
    blob_id: str
    lfs: bool
    stored: str

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id

    def to_json(self) -> list[Any]:
        return [self.sha256, self.size, self.blob_id, self.lfs, self.stored]

    @classmethod
    def from_json(cls, data: list[Any]) -> Entry:
        return cls(*data)


@dataclass
class Commit:
    oid: str
    parent: str | None
    tree: dict[str, Entry]
    title: str
    message: str
    author: str
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)


class LocalHub:
    """A Hugging Face Hub on a loopback port; see the module docstring for what it serves.

    Use as a context manager (or ``start`` / ``stop``). ``endpoint`` is the base
    URL to give the client, ``token`` a token it accepts.
    """

    def __init__(self, root: Path, *, gitattributes: bool = True, user: str = DEFAULT_USER) -> None:
        self.root = Path(root)
        self.gitattributes = gitattributes
        self.user = user
        self.token = DEFAULT_TOKEN
        self.endpoint = ""
        #: ``(method, path)`` of every request, path percent-decoded and without its query.
        self.requests: list[tuple[str, str]] = []
        #: Unexpected server-side exceptions (answered as 400 so the client does not retry).
        self.errors: list[str] = []
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._secret = secrets.token_bytes(32)
        self._server: _Server | None = None
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self._load()

    # ------------------------------------------------------------ lifecycle

    def start(self, port: int = 0, host: str = "127.0.0.1") -> LocalHub:
        server = _Server((host, port), _Handler)
        server.hub = self
        self._server = server
        self.endpoint = f"http://{host}:{server.server_address[1]}"
        threading.Thread(
            target=server.serve_forever, args=(0.05,), name="local-hub", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, cache_dir: Path | str, *, offline: bool = False) -> dict[str, str]:
        """The environment variables a ``huggingface_hub`` subprocess needs to use this Hub."""
        env = {
            "HF_ENDPOINT": self.endpoint,
            "HF_TOKEN": self.token,
            "HF_HUB_CACHE": str(cache_dir),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            # "0", not unset: it also wins over a TRANSFORMERS_OFFLINE the caller may have.
            "HF_HUB_OFFLINE": "1" if offline else "0",
        }
        return env

    def repo_url(self, repo_id: str, repo_type: str = "model") -> str:
        return f"{self.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"

    # ------------------------------------------------------------ server-side changes (no HTTP)

    def create_repo(
        self,
        repo_id: str,
        *,
        repo_type: str = "model",
        private: bool = False,
        exist_ok: bool = True,
    ) -> str:
        """Create a repository with its initial commit on ``main``; returns its URL."""
        if repo_type not in REPO_TYPES:
            raise ValueError(f"unknown repo type {repo_type!r}")
        if "/" not in repo_id:
            repo_id = f"{self.user}/{repo_id}"
        with self._lock:
            key = (repo_type, repo_id)
            if key in self._repos:
                if not exist_ok:
                    raise FileExistsError(f"{repo_type} repo {repo_id} exists")
                return self.repo_url(repo_id, repo_type)
            repo = Repo(repo_type, repo_id, private, _now())
            tree = {}
            if self.gitattributes:
                tree[".gitattributes"] = self._store_entry(GITATTRIBUTES, lfs=False)
            oid = self._new_commit(repo, None, tree, "initial commit", "", author="system")
            repo.branches["main"] = oid
            self._repos[key] = repo
            self._save()
        return self.repo_url(repo_id, repo_type)

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes] | None = None,
        delete: Iterable[str] = (),
        branch: str = "main",
        message: str = "Server-side commit",
        lfs: Iterable[str] | None = None,
        *,
        repo_type: str = "model",
    ) -> str:
        """Commit on the server, bypassing HTTP; returns the new commit id.

        Creates the repository if needed, and ``branch`` from ``main`` if it does
        not exist. ``lfs`` lists the paths stored as LFS files (default: this
        server's preupload rule). ``delete`` names files, or folders ending in
        ``/``; a missing one is a ``KeyError``.
        """
        files = files or {}
        lfs_paths = set(lfs) if lfs is not None else None
        with self._lock:
            repo = self._get_repo_or_create(repo_id, repo_type)
            if branch not in repo.branches:
                repo.branches[branch] = repo.branches["main"]
            parent = repo.commits[repo.branches[branch]]
            tree = dict(parent.tree)
            for path in delete:
                if not self._delete_path(tree, path, folder=path.endswith("/")):
                    raise KeyError(f"{path!r} is not in {repo_id}@{branch}")
            for path, data in files.items():
                as_lfs = is_lfs_path(path, len(data)) if lfs_paths is None else path in lfs_paths
                tree[path] = self._store_entry(data, lfs=as_lfs)
            title, _, body = message.partition("\n")
            oid = self._new_commit(repo, parent.oid, tree, title, body.strip(), author=self.user)
            repo.branches[branch] = oid
            self._save()
            return oid

    def head(self, repo_id: str, branch: str = "main", *, repo_type: str = "model") -> str:
        """The commit a branch points to."""
        with self._lock:
            return self._repo(repo_id, repo_type).branches[branch]

    def resolve(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        """The commit id a branch, tag or (short) commit id names."""
        with self._lock:
            return self._at(repo_id, revision, repo_type).oid

    def files(
        self, repo_id: str, revision: str = "main", *, repo_type: str = "model"
    ) -> dict[str, bytes]:
        """Every file of a revision, as served (tampered bytes included)."""
        with self._lock:
            commit = self._at(repo_id, revision, repo_type)
            return {p: self._object(e.stored).read_bytes() for p, e in sorted(commit.tree.items())}

    def entry(
        self, repo_id: str, path: str, revision: str = "main", *, repo_type: str = "model"
    ) -> Entry:
        """The metadata of one file at a revision."""
        with self._lock:
            return self._at(repo_id, revision, repo_type).tree[path]

    def set_lfs_sha256(
        self,
        repo_id: str,
        path: str,
        sha256_hex: str,
        revision: str = "main",
        *,
        repo_type: str = "model",
    ) -> None:
        """Make the Hub's metadata lie: report ``sha256_hex`` for an LFS file from now on.

        Repo info, tree listings, ETag and X-Linked-Etag of that commit (and of
        commits made on top of it) name this sha256, and the blob id becomes that
        of the matching pointer file; the bytes served do not change.
        """
        if not _HEX64.fullmatch(sha256_hex):
            raise ValueError("sha256_hex must be 64 lowercase hex digits")
        with self._lock:
            commit = self._at(repo_id, revision, repo_type)
            old = commit.tree[path]
            if not old.lfs:
                raise ValueError(f"{path!r} is not an LFS file")
            pointer = lfs_pointer(sha256_hex, old.size)
            commit.tree[path] = replace(old, sha256=sha256_hex, blob_id=git_blob_id(pointer))
            self._save()

    def replace_blob_bytes(
        self,
        repo_id: str,
        path: str,
        data: bytes,
        revision: str = "main",
        *,
        repo_type: str = "model",
    ) -> None:
        """Tamper with storage: serve ``data`` for that file while every piece of metadata stays.

        ``HEAD`` keeps announcing the old size, so give ``data`` the same length if
        the client is meant to accept the download.
        """
        with self._lock:
            commit = self._at(repo_id, revision, repo_type)
            old = commit.tree[path]
            commit.tree[path] = replace(old, stored=self._store_bytes(data))
            self._save()

    def set_ref(
        self,
        repo_id: str,
        ref: str,
        commit_oid: str,
        *,
        tag: bool = False,
        repo_type: str = "model",
    ) -> None:
        """Point a branch (or a tag) at any commit of the repository, as a force-push would."""
        with self._lock:
            repo = self._repo(repo_id, repo_type)
            if commit_oid not in repo.commits:
                raise KeyError(f"no commit {commit_oid} in {repo_id}")
            (repo.tags if tag else repo.branches)[ref] = commit_oid
            self._save()

    # ------------------------------------------------------------ storage

    def _object(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def _store_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self._object(sha)
        if not target.exists():
            tmp = self.root / "tmp" / uuid.uuid4().hex
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return sha

    def _store_entry(self, data: bytes, *, lfs: bool) -> Entry:
        sha = self._store_bytes(data)
        blob_id = git_blob_id(lfs_pointer(sha, len(data)) if lfs else data)
        return Entry(sha, len(data), blob_id, lfs, sha)

    def _lfs_entry(self, sha256: str, size: int | None) -> Entry:
        """An LFS file whose bytes were uploaded beforehand (PUT)."""
        obj = self._object(sha256)
        if not _HEX64.fullmatch(sha256) or not obj.is_file():
            raise HubError(
                400, f"Your push was rejected because the LFS object {sha256} was not uploaded"
            )
        actual = obj.stat().st_size
        if size is not None and size != actual:
            raise HubError(400, f"LFS object {sha256} has size {actual}, not {size}")
        return Entry(sha256, actual, git_blob_id(lfs_pointer(sha256, actual)), True, sha256)

    @staticmethod
    def _delete_path(tree: dict[str, Entry], path: str, *, folder: bool) -> bool:
        path = path.strip("/")
        if not folder:
            return tree.pop(path, None) is not None
        doomed = [p for p in tree if p.startswith(path + "/")] if path else list(tree)
        for p in doomed:
            del tree[p]
        return bool(doomed)

    def _new_commit(
        self,
        repo: Repo,
        parent: str | None,
        tree: dict[str, Entry],
        title: str,
        message: str,
        *,
        author: str,
    ) -> str:
        date = _now()
        seed = json.dumps(
            [
                repo.repo_type,
                repo.repo_id,
                parent,
                sorted((p, e.blob_id) for p, e in tree.items()),
                title,
                message,
                date,
                uuid.uuid4().hex,
            ]
        )
        oid = hashlib.sha1(seed.encode()).hexdigest()
        repo.commits[oid] = Commit(oid, parent, tree, title, message, author, date)
        return oid

    def _save(self) -> None:
        """Persist the metadata so a ``--root`` can be served again."""
        state = {
            "secret": self._secret.hex(),
            "repos": [
                {
                    "type": r.repo_type,
                    "id": r.repo_id,
                    "private": r.private,
                    "created_at": r.created_at,
                    "branches": r.branches,
                    "tags": r.tags,
                    "commits": [
                        {
                            "oid": c.oid,
                            "parent": c.parent,
                            "title": c.title,
                            "message": c.message,
                            "author": c.author,
                            "date": c.date,
                            "tree": {p: e.to_json() for p, e in c.tree.items()},
                        }
                        for c in r.commits.values()
                    ],
                }
                for r in self._repos.values()
            ],
        }
        tmp = self.root / "tmp" / f"state-{uuid.uuid4().hex}.json"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.root / "state.json")

    def _load(self) -> None:
        path = self.root / "state.json"
        if not path.is_file():
            return
        state = json.loads(path.read_text())
        self._secret = bytes.fromhex(state["secret"])
        for r in state["repos"]:
            repo = Repo(r["type"], r["id"], r["private"], r["created_at"], r["branches"], r["tags"])
            for c in r["commits"]:
                tree = {p: Entry.from_json(e) for p, e in c["tree"].items()}
                repo.commits[c["oid"]] = Commit(
                    c["oid"], c["parent"], tree, c["title"], c["message"], c["author"], c["date"]
                )
            self._repos[(repo.repo_type, repo.repo_id)] = repo

    # ------------------------------------------------------------ lookups

    def _repo(self, repo_id: str, repo_type: str) -> Repo:
        try:
            return self._repos[(repo_type, repo_id)]
        except KeyError:
            raise KeyError(f"no {repo_type} repo {repo_id!r}") from None

    def _at(self, repo_id: str, revision: str, repo_type: str) -> Commit:
        """The commit a revision names, for the Python API (``KeyError`` if none)."""
        try:
            return self._resolve(self._repo(repo_id, repo_type), revision)
        except HubError as e:
            raise KeyError(f"{e.message} in {repo_id}") from None

    def _get_repo_or_create(self, repo_id: str, repo_type: str) -> Repo:
        if (repo_type, repo_id) not in self._repos:
            self.create_repo(repo_id, repo_type=repo_type)
        return self._repos[(repo_type, repo_id)]

    def _resolve(self, repo: Repo, revision: str) -> Commit:
        """A branch, tag, full or unique short commit id; else RevisionNotFound."""
        for prefix, refs in (("refs/heads/", repo.branches), ("refs/tags/", repo.tags)):
            if revision.startswith(prefix) and revision[len(prefix) :] in refs:
                return repo.commits[refs[revision[len(prefix) :]]]
        if revision in repo.branches:
            return repo.commits[repo.branches[revision]]
        if revision in repo.tags:
            return repo.commits[repo.tags[revision]]
        rev = revision.lower()
        if rev in repo.commits:
            return repo.commits[rev]
        if _SHORT_SHA.fullmatch(rev):
            found = [c for oid, c in repo.commits.items() if oid.startswith(rev)]
            if len(found) == 1:
                return found[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _visible_repo(self, repo_type: str, repo_id: str, token: str | None) -> Repo:
        """The repository if this caller may read it (private ones need a token)."""
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _repo_not_found(401 if token is None else 404)
        if repo.private and token is None:
            raise _repo_not_found(401)
        return repo

    def _last_commit(self, repo: Repo, commit: Commit, path: str, folder: bool) -> Commit:
        """The newest commit, from ``commit`` back, that changed ``path``."""

        def state(c: Commit) -> Any:
            if folder:
                return sorted((p, e) for p, e in c.tree.items() if p.startswith(path + "/"))
            return c.tree.get(path)

        current, mine = commit, state(commit)
        while current.parent is not None:
            parent = repo.commits[current.parent]
            if state(parent) != mine:
                break
            current = parent
        return current

    # ------------------------------------------------------------ JSON shapes

    def _repo_json(self, repo: Repo, commit: Commit, blobs: bool) -> dict[str, Any]:
        siblings = []
        for path, e in sorted(commit.tree.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib["blobId"] = e.blob_id
                sib["size"] = e.size
                if e.lfs:
                    sib["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": e.pointer_size}
            siblings.append(sib)
        namespace = repo.repo_id.split("/")[0]
        info: dict[str, Any] = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": namespace,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.tree.values()),
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info

    def _tree_json(
        self, repo: Repo, commit: Commit, path: str, *, expand: bool, folder: bool | None = None
    ) -> dict[str, Any]:
        """One ``/tree`` or ``/paths-info`` item: a file, or the folder ``path``."""
        entry = commit.tree.get(path) if not folder else None
        if entry is not None:
            item: dict[str, Any] = {
                "type": "file",
                "oid": entry.blob_id,
                "size": entry.size,
                "path": path,
            }
            if entry.lfs:
                item["lfs"] = {
                    "oid": entry.sha256,
                    "size": entry.size,
                    "pointerSize": entry.pointer_size,
                }
        else:
            below = sorted(
                (p, e.blob_id) for p, e in commit.tree.items() if p.startswith(path + "/")
            )
            tree_id = hashlib.sha1(json.dumps(below).encode()).hexdigest()
            item = {"type": "directory", "oid": tree_id, "size": 0, "path": path}
        if expand:
            last = self._last_commit(repo, commit, path, folder=entry is None)
            item["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return item

    def _list_tree(
        self, repo: Repo, commit: Commit, path: str, *, recursive: bool, expand: bool
    ) -> list[dict[str, Any]]:
        path = path.strip("/")
        prefix = f"{path}/" if path else ""
        files = [p for p in commit.tree if p.startswith(prefix)]
        if path and not files:
            raise HubError(404, f"{path} does not exist on {commit.oid}", "EntryNotFound")
        names: dict[str, bool] = {}  # path -> is a folder
        for p in files:
            parts = p[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, min(depth, len(parts)) + 1):
                sub = prefix + "/".join(parts[:i])
                names[sub] = i < len(parts)
        return [
            self._tree_json(repo, commit, name, expand=expand, folder=is_dir)
            for name, is_dir in sorted(names.items())
        ]

    # ------------------------------------------------------------ HTTP operations

    def _create_repo_http(self, body: dict[str, Any], base: str) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise HubError(400, "Invalid repo name")
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type}")
        repo_id = f"{body.get('organization') or self.user}/{name}"
        private = body.get("visibility", "private" if body.get("private") else "public") != "public"
        url = f"{base}/{URL_PREFIXES[repo_type]}{repo_id}"
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                raise HubError(
                    409, f"You already created this {repo_type} repo", extra={"url": url}
                )
            self.create_repo(repo_id, repo_type=repo_type, private=private)
        return {"url": url, "name": repo_id, "id": repo_id}

    def _delete_repo_http(self, body: dict[str, Any]) -> None:
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self.user}/{body.get('name')}"
        with self._lock:
            if self._repos.pop((repo_type, repo_id), None) is None:
                raise _repo_not_found()
            self._save()

    def _preupload(self, repo: Repo, revision: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            commit = self._resolve(repo, revision)
            gitignore = body.get("gitIgnore")
            if gitignore is None and ".gitignore" in commit.tree:
                gitignore = self._object(commit.tree[".gitignore"].stored).read_text(
                    "utf-8", "replace"
                )
            patterns = [
                ln.strip()
                for ln in (gitignore or "").splitlines()
                if ln.strip() and not ln.startswith("#")
            ]
            out = []
            for f in body.get("files") or []:
                path, size = f.get("path"), f.get("size")
                if not isinstance(path, str) or not isinstance(size, int):
                    raise HubError(400, "each file needs a path and a size")
                mode = "lfs" if is_lfs_path(path, size) else "regular"
                old = commit.tree.get(path)
                ignored = any(fnmatch(path, p) or fnmatch(Path(path).name, p) for p in patterns)
                out.append(
                    {
                        "path": path,
                        "uploadMode": mode,
                        "shouldIgnore": ignored,
                        "oid": None if old is None else (old.sha256 if old.lfs else old.blob_id),
                    }
                )
            return {"files": out, "commitOid": commit.oid}

    def _commit_http(
        self, repo: Repo, revision: str, body: bytes, base: str, create_pr: bool
    ) -> dict[str, Any]:
        if create_pr:
            raise HubError(400, "LocalHub does not implement pull requests (create_pr)")
        try:
            lines = [json.loads(ln) for ln in body.splitlines() if ln.strip()]
        except json.JSONDecodeError as e:
            raise HubError(400, f"Invalid NDJSON commit payload: {e}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        header = lines[0].get("value") or {}
        summary = header.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise HubError(400, "Commit summary is required")
        with self._lock:
            if revision not in repo.branches:
                self._resolve(repo, revision)  # RevisionNotFound if it names nothing
                raise HubError(400, f"Cannot commit to {revision}: not a branch")
            head = repo.branches[revision]
            parent_commit = header.get("parentCommit")
            if parent_commit is not None and not (
                isinstance(parent_commit, str)
                and len(parent_commit) >= 5
                and head.startswith(parent_commit.lower())
            ):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(repo.commits[head].tree)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                path = value.get("path")
                if not isinstance(path, str) or not path or ".." in path.split("/"):
                    raise HubError(400, f"Invalid path in {key} operation: {path!r}")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                    data = base64.b64decode(value.get("content", ""), validate=True)
                    tree[path] = self._store_entry(data, lfs=False)
                elif key == "lfsFile":
                    if value.get("algo", "sha256") != "sha256":
                        raise HubError(400, f"Unsupported LFS algo {value.get('algo')!r}")
                    tree[path] = self._lfs_entry(str(value.get("oid")), value.get("size"))
                elif key in ("deletedFile", "deletedFolder"):
                    if not self._delete_path(tree, path, folder=key == "deletedFolder"):
                        raise HubError(
                            404, f"A file with this name doesn't exist: {path}", "EntryNotFound"
                        )
                else:
                    raise HubError(400, f"Unsupported commit operation {key!r}")
            oid = self._new_commit(
                repo, head, tree, summary.strip(), header.get("description") or "", author=self.user
            )
            repo.branches[revision] = oid
            self._save()
        return {
            "success": True,
            "commitOid": oid,
            "commitUrl": f"{base}/{URL_PREFIXES[repo.repo_type]}{repo.repo_id}/commit/{oid}",
            "hookOutput": "",
            "pullRequestUrl": None,
        }

    def _refs_json(self, repo: Repo) -> dict[str, Any]:
        with self._lock:
            return {
                "branches": [
                    {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
                    for n, c in sorted(repo.branches.items())
                ],
                "converts": [],
                "tags": [
                    {"name": n, "ref": f"refs/tags/{n}", "targetCommit": c}
                    for n, c in sorted(repo.tags.items())
                ],
                "pullRequests": [],
            }

    def _commits_json(self, repo: Repo, revision: str) -> list[dict[str, Any]]:
        with self._lock:
            commit: Commit | None = self._resolve(repo, revision)
            out = []
            while commit is not None:
                out.append(
                    {
                        "id": commit.oid,
                        "title": commit.title,
                        "message": commit.message,
                        "authors": [{"user": commit.author, "avatar": ""}],
                        "date": commit.date,
                    }
                )
                commit = repo.commits[commit.parent] if commit.parent else None
            return out

    def _create_ref(self, repo: Repo, kind: str, name: str, revision: str) -> None:
        if not name or name.startswith("refs/") or ".." in name:
            raise HubError(400, f"Invalid {kind} name {name!r}")
        with self._lock:
            target = self._resolve(repo, revision).oid
            refs = repo.branches if kind == "branch" else repo.tags
            if name in refs:
                raise HubError(409, f"Reference already exists: refs/{kind}s/{name}")
            refs[name] = target
            self._save()

    def _delete_ref(self, repo: Repo, kind: str, name: str) -> None:
        with self._lock:
            refs = repo.branches if kind == "branch" else repo.tags
            if name not in refs:
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            if kind == "branch" and name == "main":
                raise HubError(403, "You cannot delete the default branch")
            del refs[name]
            self._save()

    def _lfs_batch(self, repo: Repo, body: dict[str, Any], base: str) -> dict[str, Any]:
        operation = body.get("operation")
        transfers = body.get("transfers") or ["basic"]
        if "basic" not in transfers:
            raise HubError(400, "LocalHub only speaks the 'basic' LFS transfer")
        git = f"{base}/{URL_PREFIXES[repo.repo_type]}{repo.repo_id}.git/info/lfs/objects"
        objects = []
        for obj in body.get("objects") or []:
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not _HEX64.fullmatch(oid) or not isinstance(size, int):
                raise HubError(400, f"Invalid LFS object {obj!r}")
            stored = self._object(oid)
            present = stored.is_file() and stored.stat().st_size == size
            item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            sig = self._sign(oid, size)
            if operation == "upload":
                if not present:
                    item["actions"] = {
                        "upload": {"href": f"{base}/__lfs__/{oid}?size={size}&sig={sig}"},
                        "verify": {"href": f"{git}/verify"},
                    }
            elif operation == "download":
                if present:
                    href = f"{base}/__lfs__/{oid}?size={size}&sig={sig}"
                    item["actions"] = {"download": {"href": href}}
                else:
                    item["error"] = {"code": 404, "message": "Object does not exist"}
            else:
                raise HubError(400, f"Unknown LFS operation {operation!r}")
            objects.append(item)
        return {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def _sign(self, oid: str, size: int) -> str:
        return hmac.new(self._secret, f"{oid}:{size}".encode(), hashlib.sha256).hexdigest()

    def _check_signature(self, oid: str, query: dict[str, list[str]]) -> int:
        try:
            size = int(query["size"][0])
            sig = query["sig"][0]
        except (KeyError, ValueError):
            raise HubError(403, "Missing or malformed signature") from None
        if not _HEX64.fullmatch(oid) or not hmac.compare_digest(sig, self._sign(oid, size)):
            raise HubError(403, "Request signature does not match")
        return size

    def _receive_lfs(self, oid: str, size: int, chunks: Iterator[bytes]) -> None:
        """Store an uploaded LFS object if its sha256 and size are the announced ones."""
        tmp = self.root / "tmp" / uuid.uuid4().hex
        digest, got = hashlib.sha256(), 0
        try:
            with tmp.open("wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    got += len(chunk)
                    f.write(chunk)
            if got != size:
                raise HubError(400, f"Uploaded {got} bytes, but the LFS object is {size} bytes")
            if digest.hexdigest() != oid:
                raise HubError(400, f"Uploaded bytes have sha256 {digest.hexdigest()}, not {oid}")
            os.replace(tmp, self._object(oid))
        finally:
            tmp.unlink(missing_ok=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: LocalHub


class _Handler(BaseHTTPRequestHandler):
    """Routes Hub URLs to ``LocalHub``; HTTP/1.1 keep-alive, like the client expects."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        """Keep test output quiet."""

    # ------------------------------------------------------------ plumbing

    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def _base(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.hub.endpoint

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return value.strip() or None

    def _require_token(self) -> str:
        token = self._token()
        if token is None:
            raise HubError(401, "Invalid username or password.")
        return token

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body, piece by piece, whether sized or chunked."""
        self._body_state = "reading"
        yield from self._raw_body_chunks()
        self._body_state = "done"

    def _raw_body_chunks(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                while size:
                    chunk = self.rfile.read(min(size, _CHUNK))
                    if not chunk:
                        raise ConnectionError("client went away")
                    size -= len(chunk)
                    yield chunk
                self.rfile.readline(1024)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                chunk = self.rfile.read(min(left, _CHUNK))
                if not chunk:
                    raise ConnectionError("client went away")
                left -= len(chunk)
                yield chunk

    def _body(self) -> bytes:
        return b"".join(self._body_chunks())

    def _json_body(self) -> dict[str, Any]:
        raw = self._body()
        try:
            data = json.loads(raw or b"{}")
        except json.JSONDecodeError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from None
        if not isinstance(data, dict):
            raise HubError(400, "The JSON body must be an object")
        return data

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", uuid.uuid4().hex)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(
        self, obj: Any, status: int = 200, content_type: str = "application/json"
    ) -> None:
        self._send(status, json.dumps(obj).encode(), content_type)

    def _send_error(self, err: HubError) -> None:
        message = re.sub(r"[^\x20-\x7e]", "?", err.message)
        headers = {"X-Error-Message": message}
        if err.code:
            headers["X-Error-Code"] = err.code
        headers.update(err.headers)
        body = {"error": err.message, **err.extra}
        self._send(err.status, json.dumps(body).encode(), headers=headers)

    def _handle(self) -> None:
        raw_path, _, query_string = self.path.partition("?")
        self._body_state = "unread"
        self.hub.requests.append((self.command, unquote(raw_path)))
        query = parse_qs(query_string, keep_blank_values=True)
        try:
            self._route(raw_path, query)
        except HubError as err:
            self._drain()
            self._send_error(err)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            # Answered as 400, not 500, so the client fails at once instead of retrying for ~30 s.
            self.hub.errors.append(f"{self.command} {self.path}: {traceback.format_exc()}")
            self._drain()
            self._send_error(HubError(400, f"LocalHub internal error: {type(exc).__name__}: {exc}"))

    def _drain(self) -> None:
        """Read the request body if nobody did, so the connection stays usable."""
        if self._body_state == "unread":
            try:
                for _ in self._body_chunks():
                    pass
            except (ConnectionError, ValueError):
                self.close_connection = True
        elif self._body_state == "reading":
            self.close_connection = True  # half-read: the next request would start mid-body

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    # ------------------------------------------------------------ routing

    def _route(self, raw_path: str, query: dict[str, list[str]]) -> None:
        parts = [p for p in raw_path.split("/") if p]
        method = self.command
        if parts[:1] == ["api"]:
            self._route_api(method, parts[1:], query)
            return
        if parts[:1] == ["__lfs__"] and len(parts) == 2:
            self._route_lfs_object(method, parts[1], query)
            return
        repo_type = "model"
        if parts[:1] and parts[0] in ("datasets", "spaces"):
            repo_type, parts = parts[0][:-1], parts[1:]
        for i in (0, 1):
            if (
                len(parts) > i + 1
                and parts[i].endswith(".git")
                and parts[i + 1 : i + 4]
                == [
                    "info",
                    "lfs",
                    "objects",
                ]
            ):
                repo_id = "/".join(unquote(p) for p in [*parts[:i], parts[i][:-4]])
                self._route_lfs_api(method, repo_type, repo_id, parts[i + 4 :])
                return
        for i in (1, 2):
            if len(parts) > i + 2 and parts[i] == "resolve":
                repo_id = "/".join(unquote(p) for p in parts[:i])
                revision = unquote(parts[i + 1])
                filename = unquote("/".join(parts[i + 2 :]))
                self._resolve_file(repo_type, repo_id, revision, filename)
                return
        raise HubError(404, f"Not found: {raw_path}")

    def _route_api(self, method: str, parts: list[str], query: dict[str, list[str]]) -> None:
        hub = self.hub
        match (method, parts):
            case ("GET", ["whoami-v2"]):
                self._require_token()
                self._send_json(
                    {
                        "type": "user",
                        "id": hashlib.md5(hub.user.encode()).hexdigest()[:24],
                        "name": hub.user,
                        "fullname": "Local Hub User",
                        "orgs": [],
                        "auth": {
                            "type": "access_token",
                            "accessToken": {"displayName": "local-hub", "role": "write"},
                        },
                    }
                )
                return
            case ("GET", ["agent-harnesses"]):
                self._send_json({"standardEnvVars": [], "harnesses": {}})
                return
            case ("POST", ["validate-yaml"]):
                self._body()
                self._send_json({"errors": [], "warnings": []})
                return
            case ("POST", ["repos", "create"]):
                self._require_token()
                self._send_json(hub._create_repo_http(self._json_body(), self._base()))
                return
            case ("DELETE", ["repos", "delete"]):
                self._require_token()
                hub._delete_repo_http(self._json_body())
                self._send_json({})
                return
            case ("GET", [("models" | "datasets" | "spaces") as kind]):
                self._list_repos(kind[:-1], query)
                return
            case (_, [("models" | "datasets" | "spaces") as kind, *rest]) if rest:
                self._route_repo_api(method, kind[:-1], rest, query)
                return
        raise HubError(404, f"Not found: /api/{'/'.join(parts)}")

    def _list_repos(self, repo_type: str, query: dict[str, list[str]]) -> None:
        token = self._token()
        author = (query.get("author") or [""])[0]
        search = (query.get("search") or [""])[0].lower()
        with self.hub._lock:
            out = []
            for (t, rid), repo in sorted(self.hub._repos.items()):
                if t != repo_type or (repo.private and token is None):
                    continue
                if (author and rid.split("/")[0] != author) or search not in rid.lower():
                    continue
                head = repo.commits[repo.branches["main"]]
                info = self.hub._repo_json(repo, head, blobs=False)
                info.pop("siblings")
                out.append(info)
        self._send_json(out)

    def _split_repo_id(self, repo_type: str, rest: list[str]) -> tuple[str, list[str]]:
        """``ns/name`` or a one-part id, then the rest of the URL (as the client's own parser)."""
        names = [unquote(p) for p in rest]
        known = self.hub._repos
        if len(names) >= 2 and (repo_type, f"{names[0]}/{names[1]}") in known:
            return f"{names[0]}/{names[1]}", rest[2:]
        if (repo_type, names[0]) in known:
            return names[0], rest[1:]
        if len(names) >= 2 and names[1] not in _API_SUBPATHS:
            return f"{names[0]}/{names[1]}", rest[2:]
        return names[0], rest[1:]

    def _route_repo_api(
        self, method: str, repo_type: str, rest: list[str], query: dict[str, list[str]]
    ) -> None:
        hub = self.hub
        repo_id, sub = self._split_repo_id(repo_type, rest)
        token = self._token()
        writes = method in ("POST", "PUT", "DELETE") and sub[:1] != ["paths-info"]
        if writes:
            self._require_token()
        repo = hub._visible_repo(repo_type, repo_id, token)
        flag = _flag(query)
        match (method, [unquote(p) for p in sub], sub):
            case ("GET", [], _):
                with hub._lock:
                    commit = hub._resolve(repo, "main")
                    self._send_json(hub._repo_json(repo, commit, blobs=flag("blobs")))
            case ("GET", ["revision", revision], _):
                with hub._lock:
                    commit = hub._resolve(repo, revision)
                    self._send_json(hub._repo_json(repo, commit, blobs=flag("blobs")))
            case ("GET", ["tree", revision, *_], [_, _, *raw_path]):
                with hub._lock:
                    commit = hub._resolve(repo, revision)
                    items = hub._list_tree(
                        repo,
                        commit,
                        unquote("/".join(raw_path)),
                        recursive=flag("recursive"),
                        expand=flag("expand"),
                    )
                self._send_json(items)
            case ("POST", ["paths-info", revision], _):
                self._paths_info(repo, revision)
            case ("POST", ["preupload", revision], _):
                self._send_json(hub._preupload(repo, revision, self._json_body()))
            case ("POST", ["commit", revision], _):
                body = self._body()
                self._send_json(
                    hub._commit_http(
                        repo, revision, body, self._base(), create_pr=flag("create_pr")
                    )
                )
            case ("GET", ["commits", revision], _):
                self._send_json(hub._commits_json(repo, revision))
            case ("GET", ["refs"], _):
                self._send_json(hub._refs_json(repo))
            case ("POST", ["branch", name], _):
                start = self._json_body().get("startingPoint") or "main"
                hub._create_ref(repo, "branch", name, start)
                self._send_json({})
            case ("DELETE", ["branch", name], _):
                hub._delete_ref(repo, "branch", name)
                self._send_json({})
            case ("POST", ["tag", revision], _):
                tag = self._json_body().get("tag")
                hub._create_ref(repo, "tag", str(tag or ""), revision)
                self._send_json({})
            case ("DELETE", ["tag", name], _):
                hub._delete_ref(repo, "tag", name)
                self._send_json({})
            case ("PUT", ["settings"], _):
                settings = self._json_body()
                with hub._lock:
                    if "private" in settings:
                        repo.private = bool(settings["private"])
                    if "visibility" in settings:
                        repo.private = settings["visibility"] != "public"
                    hub._save()
                self._send_json({})
            case (_, [("xet-read-token" | "xet-write-token"), *_], _):
                raise HubError(
                    400, "LocalHub does not implement Xet storage: set HF_HUB_DISABLE_XET=1"
                )
            case _:
                raise HubError(404, f"Not found: {self.path}")

    def _paths_info(self, repo: Repo, revision: str) -> None:
        raw = self._body()
        if "json" in self.headers.get("Content-Type", ""):
            data = json.loads(raw or b"{}")
            paths, expand = data.get("paths") or [], bool(data.get("expand"))
        else:
            form = parse_qs(raw.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = (form.get("expand") or ["false"])[0].lower() in ("true", "1")
        hub = self.hub
        with hub._lock:
            commit = hub._resolve(repo, revision)
            out = []
            for path in paths:
                path = path.strip("/")
                if path in commit.tree:
                    out.append(hub._tree_json(repo, commit, path, expand=expand, folder=False))
                elif any(p.startswith(path + "/") for p in commit.tree):
                    out.append(hub._tree_json(repo, commit, path, expand=expand, folder=True))
        self._send_json(out)

    def _route_lfs_api(self, method: str, repo_type: str, repo_id: str, sub: list[str]) -> None:
        hub = self.hub
        body = self._json_body()
        if method != "POST" or sub not in (["batch"], ["verify"]):
            raise HubError(404, f"Not found: {self.path}")
        token = self._token()
        if sub == ["verify"] or body.get("operation") != "download":
            self._require_token()
        repo = hub._visible_repo(repo_type, repo_id, token)
        if sub == ["batch"]:
            self._send_json(hub._lfs_batch(repo, body, self._base()), content_type=_LFS_JSON)
            return
        oid, size = str(body.get("oid")), body.get("size")
        stored = hub._object(oid)
        if not _HEX64.fullmatch(oid) or not stored.is_file():
            raise HubError(404, f"LFS object {oid} not found")
        if stored.stat().st_size != size:
            raise HubError(400, f"LFS object {oid} has size {stored.stat().st_size}, not {size}")
        self._send_json({"message": "ok"}, content_type=_LFS_JSON)

    def _route_lfs_object(self, method: str, oid: str, query: dict[str, list[str]]) -> None:
        """The signed URLs the batch API hands out (S3's role on the real Hub)."""
        size = self.hub._check_signature(oid, query)
        if method == "PUT":
            self.hub._receive_lfs(oid, size, self._body_chunks())
            self._send(200, b"", "text/plain", {"ETag": f'"{oid}"'})
        elif method in ("GET", "HEAD"):
            path = self.hub._object(oid)
            if not path.is_file():
                raise HubError(404, "Object does not exist")
            self._send_file(path, path.stat().st_size, {"ETag": f'"{oid}"'})
        else:
            raise HubError(405, f"{method} not allowed here")

    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, filename: str) -> None:
        hub = self.hub
        if self.command not in ("GET", "HEAD"):
            raise HubError(405, f"{self.command} not allowed on /resolve/")
        with hub._lock:
            repo = hub._visible_repo(repo_type, repo_id, self._token())
            commit = hub._resolve(repo, revision)
            entry = commit.tree.get(filename)
            if entry is None:
                raise HubError(
                    404,
                    "Entry not found",
                    "EntryNotFound",
                    {"X-Repo-Commit": commit.oid},
                )
            path = hub._object(entry.stored)
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{entry.etag}"',
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(Path(filename).name)}",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        self._send_file(path, entry.size, headers)

    def _send_file(self, path: Path, announced: int, headers: dict[str, str]) -> None:
        """Serve stored bytes; HEAD announces the metadata size, GET sends the bytes or a Range."""
        actual = path.stat().st_size
        start, length, status = 0, actual, 200
        wanted = self.headers.get("Range")
        if wanted and self.command == "GET":
            match = _RANGE.fullmatch(wanted.strip())
            if match is None or match.groups() == ("", ""):
                raise HubError(
                    416, f"Invalid range {wanted!r}", headers={"Content-Range": f"bytes */{actual}"}
                )
            first, last = match.groups()
            if first:
                start = int(first)
                end = min(int(last), actual - 1) if last else actual - 1
            else:
                start, end = max(actual - int(last), 0), actual - 1
            if start >= actual or end < start:
                raise HubError(
                    416, "Range not satisfiable", headers={"Content-Range": f"bytes */{actual}"}
                )
            length, status = end - start + 1, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{actual}"
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(announced if self.command == "HEAD" else length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Request-Id", uuid.uuid4().hex)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        with path.open("rb") as f:
            f.seek(start)
            while length:
                chunk = f.read(min(length, _CHUNK))
                if not chunk:
                    break
                self.wfile.write(chunk)
                length -= len(chunk)


def _flag(query: dict[str, list[str]]) -> Callable[[str], bool]:
    """A reader of boolean query parameters (``true``, ``1``; absent is false)."""

    def read(name: str) -> bool:
        return (query.get(name) or ["false"])[0].lower() in ("true", "1", "yes")

    return read


def main(argv: list[str] | None = None) -> int:
    """Serve until killed, after printing one JSON line with the endpoint and a token."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="where blobs and state live")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-gitattributes", action="store_true", help="empty initial commits")
    args = parser.parse_args(argv)
    hub = LocalHub(args.root, gitattributes=not args.no_gitattributes)
    hub.start(port=args.port, host=args.host)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    line = {
        "endpoint": hub.endpoint,
        "token": hub.token,
        "root": str(args.root),
        "env": hub.env(args.root / "client-cache"),
    }
    print(json.dumps(line), flush=True)
    stop.wait()
    hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
