"""The Hugging Face Hub: sign, publish, fetch and verify models by repository and revision.

The Hub offers no model signatures, and ``huggingface_hub`` does not check
what it downloads. Here a repository's ``model.sig`` (an OMS bundle, as
everywhere in this tool) is checked the way a loader needs it:

* :func:`verify` resolves a branch or tag to the commit it names now, reads
  the signature at that commit and, **before any model file is
  downloaded**, compares what the signature lists with the Hub's own
  listing of that commit: a file the signature does not cover, a signed
  file that is missing, an LFS sha256 the signature contradicts fail there.
  That comparison only refuses early; the verdict always comes from hashing
  the bytes on disk, in the cache, in place (the cache's links into its own
  ``blobs/`` are followed, nothing else: see
  :mod:`provenance._internal.hfcache`).
* :func:`push` signs a local folder and uploads it with its signature in
  one commit; :func:`sign` signs what a branch holds on the Hub and commits
  the signature on top of exactly that commit. Both pin ``parent_commit``,
  so a branch that moved meanwhile fails the commit instead of pairing a
  signature with files it never saw.

Where the files came from travels inside the signed statement, as a
``huggingface`` field of the OMS predicate (:data:`RECORD_FIELD`), not in a
separate attestation: it is then covered by the very signature that covers
the files, needs no second file and no second signer, and OMS v1.0
verifiers (``model-signing``) ignore a predicate field they do not know. A
signature cannot name the commit that will hold it, so :func:`push` records
the commit it builds on (``parentCommit``) and :func:`sign` the commit whose
files it signed (``commit``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, ProvenanceError, UsageError, VerificationError
from provenance.findings import Finding, errors, first_error_summary

if TYPE_CHECKING:
    from provenance.manifest import Manifest
    from provenance.policy import Decision, Policy
    from provenance.signature import SignResult
    from provenance.signing import Signer, Verifier
    from provenance.verification import VerificationReport

__all__ = [
    "RECORD_FIELD",
    "HubRecord",
    "HubVerification",
    "PushResult",
    "Snapshot",
    "fetch",
    "push",
    "resolve",
    "sign",
    "verify",
]
# Helpers the loaders, lineage and policy code share (importable, not the API):
# check_repo_id, one_of, record_of, record_findings, remember, parse_reference,
# cached_snapshot, claimed_manifest, default_cache, HubReference.

#: The OMS predicate field that says where on the Hub the signed files came from.
RECORD_FIELD = "huggingface"

#: The repository's files that are about the model rather than of it.
SIGNATURE = "model.sig"
ATTESTATIONS = "model.intoto.jsonl"
COSIGNATURES = "model.sig.d/"

_COMMIT = re.compile(r"[0-9a-f]{40}")
_COSIGNATURE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}\.sig")
#: More co-signatures than this in a repository are refused, not downloaded.
MAX_COSIGNATURES = 64
_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"{_REPO_PART}(?:/{_REPO_PART})?")
_REVISION = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class HubRecord:
    """Where on the Hub a signature's files came from, as its statement says."""

    repository: str
    #: The commit whose files were signed (:func:`sign`).
    commit: str | None = None
    #: The branch the signature was made for.
    revision: str | None = None
    #: The commit the signed upload was built on (:func:`push`); the commit
    #: that holds the upload is its child.
    parent_commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"repository": self.repository}
        if self.revision is not None:
            out["revision"] = self.revision
        if self.commit is not None:
            out["commit"] = self.commit
        if self.parent_commit is not None:
            out["parentCommit"] = self.parent_commit
        return out

    @classmethod
    def from_json(cls, data: Any) -> HubRecord | None:
        """The record of a signed predicate field, or None when it is absent or malformed."""
        if not isinstance(data, Mapping) or not isinstance(data.get("repository"), str):
            return None

        def text(key: str, pattern: re.Pattern[str] | None = None) -> str | None:
            value = data.get(key)
            if not isinstance(value, str) or (pattern and not pattern.fullmatch(value)):
                return None
            return value

        return cls(
            data["repository"],
            text("commit", _COMMIT),
            text("revision"),
            text("parentCommit", _COMMIT),
        )


@dataclass(frozen=True)
class Snapshot:
    """A repository's files at one commit, in the local cache, ready to verify."""

    repo_id: str
    revision: str
    commit: str
    path: Path
    offline: bool
    #: What comparing the signature with the Hub's listing found (empty offline).
    findings: tuple[Finding, ...] = ()
    #: Files downloaded (or found in the cache) for verification.
    files: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not errors(self.findings)

    @property
    def signature_path(self) -> Path:
        return self.path / SIGNATURE

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "snapshot": str(self.path),
            "offline": self.offline,
        }


@dataclass(frozen=True)
class HubVerification:
    """One repository revision checked: the pre-check, then the bytes on disk."""

    snapshot: Snapshot
    report: VerificationReport | None = None
    decision: Decision | None = None
    #: Where the signed statement says its files came from (None: it says nothing).
    record: HubRecord | None = None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        if errors(self.findings):
            return False
        if self.decision is not None:
            return self.decision.allowed
        return self.report is not None and self.report.ok

    @property
    def root_digest(self) -> str | None:
        if self.decision is not None:
            return self.decision.root_digest
        return self.report.root_digest if self.report is not None else None

    def all_findings(self) -> tuple[Finding, ...]:
        """The Hub's findings, then the verification's."""
        inner = self.report.findings if self.report is not None else ()
        return (*self.findings, *inner)

    def raise_for_failure(self) -> None:
        if self.ok:
            return
        if self.decision is not None and not errors(self.findings):
            self.decision.raise_for_denial()
        errs = errors(self.all_findings())
        if not errs:
            raise VerificationError("the repository was not verified")
        lead = "model does not match its signature: " if errs[0].code.startswith("file-") else ""
        raise VerificationError(
            first_error_summary(errs, lead),
            details=[f.message for f in errs],
            code=errs[0].code,
            hint=errs[0].hint,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, **self.snapshot.to_json()}
        out["root_digest"] = self.root_digest
        out["signed_record"] = self.record.to_json() if self.record is not None else None
        out["findings"] = [f.to_json() for f in self.findings]
        if self.report is not None:
            out["verification"] = self.report.to_json()
        if self.decision is not None:
            out["decision"] = self.decision.to_json()
        return out


@dataclass(frozen=True)
class PushResult:
    """A signature committed to the Hub, with the commit that holds it."""

    repo_id: str
    revision: str
    #: The new commit (holds the signature).
    commit: str
    #: The commit it was made on top of (pinned: the commit failed if the branch moved).
    parent_commit: str
    signed: SignResult
    record: HubRecord
    uploaded: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    commit_url: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.signed.warnings

    def to_json(self) -> dict[str, Any]:
        m = self.signed.manifest
        return {
            "ok": True,
            "repository": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "parent_commit": self.parent_commit,
            "signed_commit": self.record.commit,
            "signed_record": self.record.to_json(),
            "root_digest": m.root_digest,
            "files": len(m.files),
            "signer": self.signed.signer.to_json() if self.signed.signer is not None else None,
            "uploaded": list(self.uploaded),
            "deleted": list(self.deleted),
            "commit_url": self.commit_url,
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------- the client


@dataclass(frozen=True)
class _Hub:
    """One endpoint, token and cache, as every call here takes them."""

    endpoint: str | None
    token: str | None
    cache_dir: str | None

    def api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token)

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache()

    def repo_folder(self, repo_id: str) -> Path:
        return self.cache / ("models--" + repo_id.replace("/", "--"))

    def shown(self) -> str:
        return self.endpoint or "https://huggingface.co"


def env_offline() -> bool:
    """``HF_HUB_OFFLINE`` as ``huggingface_hub`` reads it, but now, not at its import."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def default_cache() -> Path:
    """The cache the client would use, from the environment as it is now.

    ``huggingface_hub`` reads ``HF_HUB_CACHE`` once, at import; a service
    that sets it later (or a test) must still get the cache it named.
    """
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _hub(endpoint: str | None, token: str | None, cache_dir: str | os.PathLike[str] | None) -> _Hub:
    """The settings of one call: given ones first, then the environment as it is now."""
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    cache = os.fspath(cache_dir) if cache_dir is not None else os.fspath(default_cache())
    return _Hub(endpoint.rstrip("/") if endpoint else None, token, cache)


def check_repo_id(repo_id: str) -> str:
    """``org/name`` as the Hub spells it; anything else is a usage error, before any request."""
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or "--" in repo_id:
        raise UsageError(
            f"'{repo_id}' is not a Hub repository id (ORG/NAME: letters, digits, '.', '_', '-')"
        )
    if ".." in repo_id:
        raise UsageError(f"'{repo_id}' is not a Hub repository id ('..' is not allowed)")
    return repo_id


def _check_revision(revision: str) -> str:
    if not isinstance(revision, str) or not _REVISION.fullmatch(revision) or ".." in revision:
        raise UsageError(f"'{revision}' is not a branch, tag or commit id")
    return revision


@contextmanager
def _hub_errors(
    hub: _Hub, repo_id: str, revision: str | None = None, *, reading: bool = False
) -> Iterator[None]:
    """The client's exceptions as this tool's, each with one line that says what to do.

    ``reading``: the call fetches for a verification, which could use the
    cache instead; the unreachable-Hub message says so.
    """
    from huggingface_hub import errors as hf

    at = f"{repo_id}@{revision}" if revision else repo_id
    instead = "; verifying with --offline reads the cache instead" if reading else ""
    try:
        yield
    except ProvenanceError:
        raise
    except hf.RevisionNotFoundError:
        raise InputError(
            f"repository '{repo_id}' has no revision '{revision}' on {hub.shown()}",
            code="hub-revision-not-found",
        ) from None
    except hf.RepositoryNotFoundError:
        raise InputError(
            f"no repository '{repo_id}' on {hub.shown()} ({_private_hint(hub)})",
            code="hub-repo-not-found",
        ) from None
    except hf.OfflineModeIsEnabled:
        raise InputError(
            f"HF_HUB_OFFLINE is set, and {at} needs the Hub; unset it"
            + (", or verify with --offline" if reading else ""),
            code="hub-offline",
        ) from None
    except hf.LocalEntryNotFoundError:
        raise InputError(
            f"'{at}' is not in the local cache {hub.cache}; fetch it online once "
            "(verify without --offline)",
            code="hub-not-cached",
        ) from None
    except hf.HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 412:
            raise InputError(
                f"branch '{revision}' of {repo_id} moved while signing; nothing was committed. "
                "Sign again to cover what it holds now",
                code="hub-branch-moved",
            ) from None
        if status in (401, 403):
            raise InputError(
                f"the Hub refused access to {repo_id} ({status}): {_token_hint(hub)}",
                code="hub-unauthorized",
            ) from None
        said = " ".join(str(e).replace("\\n", " ").split())
        raise InputError(f"the Hub answered for {at}: {said}", code="hub-error") from None
    except ValueError as e:
        # The client refuses a path it will not write (a name from the Hub with
        # "..", a .cache/ folder): bad input, said as such, never a traceback.
        raise InputError(
            f"the Hub's files of {at} cannot be fetched: {e}", code="hub-error"
        ) from None
    except OSError as e:  # the client's connection errors derive from OSError
        raise InputError(
            f"cannot reach {hub.shown()} for {at}: {e}{instead}", code="hub-unreachable"
        ) from None
    except Exception as e:
        # httpx's transport errors are not OSErrors.
        if type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
            raise InputError(
                f"cannot reach {hub.shown()} for {at}: {e}{instead}", code="hub-unreachable"
            ) from None
        raise


def _has_token(hub: _Hub) -> bool:
    if hub.token:
        return True
    from huggingface_hub import get_token

    return bool(get_token())


def _private_hint(hub: _Hub) -> str:
    if _has_token(hub):
        return "or it is private, and the token given cannot read it"
    return "or it is private: no token was given; set HF_TOKEN or run `hf auth login`"


def _token_hint(hub: _Hub) -> str:
    if _has_token(hub):
        return "the token given may not do this; give one that may write to it (HF_TOKEN)"
    return "no token was given; set HF_TOKEN or run `hf auth login`"


# ---------------------------------------------------------------- resolving and fetching


@dataclass(frozen=True)
class _Listing:
    commit: str
    #: path -> (size, LFS sha256 or None, git blob id or None)
    files: dict[str, tuple[int | None, str | None, str | None]]


def _listing(hub: _Hub, repo_id: str, revision: str, *, reading: bool = False) -> _Listing:
    with _hub_errors(hub, repo_id, revision, reading=reading):
        info = hub.api().model_info(repo_id, revision=revision, files_metadata=True)
    commit = getattr(info, "sha", None)
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit):
        raise InputError(f"the Hub named no commit for {repo_id}@{revision}", code="hub-error")
    files: dict[str, tuple[int | None, str | None, str | None]] = {}
    for sibling in info.siblings or ():
        lfs = getattr(sibling, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        blob = getattr(sibling, "blob_id", None)
        files[sibling.rfilename] = (
            getattr(sibling, "size", None),
            sha if isinstance(sha, str) else None,
            blob if isinstance(blob, str) else None,
        )
    return _Listing(commit, files)


def resolve(
    repo_id: str,
    revision: str = "main",
    *,
    offline: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The commit id ``revision`` (a branch, tag or commit) names: asked of the Hub, or
    read from the cache's ``refs/`` when ``offline``."""
    hub = _hub(endpoint, token, cache_dir)
    check_repo_id(repo_id)
    _check_revision(revision)
    if offline:
        return _cached_commit(hub, repo_id, revision)
    return _listing(hub, repo_id, revision).commit


def _cached_commit(hub: _Hub, repo_id: str, revision: str) -> str:
    from provenance._internal.fsutil import read_limited

    repo = hub.repo_folder(repo_id)
    if _COMMIT.fullmatch(revision):
        commit = revision
    else:
        ref = repo / "refs" / revision
        try:
            commit = read_limited(ref, "cache ref", 256).decode("ascii", "replace").strip()
        except InputError:
            raise InputError(
                f"'{repo_id}@{revision}' is not in the local cache {hub.cache}; fetch it "
                "online once (verify without --offline)",
                code="hub-not-cached",
            ) from None
        if not _COMMIT.fullmatch(commit):
            raise InputError(f"cache ref '{ref}' holds no commit id", code="hub-not-cached")
    if not (repo / "snapshots" / commit).is_dir():
        raise InputError(
            f"commit {commit} of '{repo_id}' is not in the local cache {hub.cache}; fetch it "
            "online once (verify without --offline)",
            code="hub-not-cached",
        )
    return commit


def _about_the_model(name: str) -> bool:
    """The signature, its co-signatures and the attestations: read, not signed.

    A co-signature is ``model.sig.d/NAME.sig`` with a plain NAME, as
    :func:`provenance.bundle.cosignature_path` names them; anything else
    under ``model.sig.d/`` is neither read nor downloaded.
    """
    if name in (SIGNATURE, ATTESTATIONS):
        return True
    rest = name[len(COSIGNATURES) :] if name.startswith(COSIGNATURES) else ""
    return bool(_COSIGNATURE_NAME.fullmatch(rest))


def _download(hub: _Hub, repo_id: str, commit: str, names: Iterable[str]) -> Path:
    """Each file at ``commit`` into the cache (the client's layout); the snapshot folder."""
    from huggingface_hub import hf_hub_download

    def one(name: str) -> Path:
        with _hub_errors(hub, repo_id, commit):
            got = hf_hub_download(
                repo_id,
                name,
                revision=commit,
                cache_dir=hub.cache_dir,
                endpoint=hub.endpoint,
                token=hub.token,
            )
        return Path(got).parents[len(Path(name).parts) - 1]

    names = list(names)
    folder = hub.repo_folder(repo_id) / "snapshots" / commit
    if len(names) <= 1:
        return one(names[0]) if names else folder
    from concurrent.futures import ThreadPoolExecutor

    # Several at once, as the client's own snapshot_download does: a sharded
    # model is many large files, each one connection.
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        folders = list(pool.map(one, names))
    return folders[-1]


def claimed_manifest(snapshot: str | os.PathLike[str]) -> Manifest | None:
    """What the ``model.sig`` of a cached snapshot lists, read but not verified (or None).

    For checking that a snapshot is whole before its digest is recorded:
    a claim can only make that check fail, never pass a model.
    """
    return _unverified_manifest(Path(snapshot) / SIGNATURE)


def _unverified_manifest(path: Path) -> Manifest | None:
    """The statement a bundle claims, parsed but not verified: for refusing early only."""
    from provenance.bundle import Bundle
    from provenance.intoto import Statement
    from provenance.manifest import Manifest

    try:
        bundle = Bundle.read(path)
        return Manifest.from_statement(Statement.parse(bundle.envelope.payload))
    except (ProvenanceError, AttributeError):
        return None


def _precheck(
    repo_id: str,
    commit: str,
    listing: _Listing,
    manifest: Manifest,
    may_be_unsigned: Callable[[str], bool],
) -> list[Finding]:
    """What the Hub's listing of ``commit`` already says against the signature.

    Only refusals come from here (the signature is not verified yet, and
    the listing is the Hub's word): acceptance is the hashing's alone.
    """
    from provenance.hashing import DEFAULT_IGNORE_PATTERNS, Ignore
    from provenance.manifest import DEFAULT_IGNORE_PATHS

    at = f"{repo_id}@{commit[:12]}"
    out: list[Finding] = []
    signed = set(manifest.files)
    if signed == {"."}:
        return [
            Finding(
                "kind-mismatch",
                f"the signature in {at} is for a single file; a repository is a folder",
            )
        ]
    ignore = Ignore(
        [*manifest.serialization.ignore_paths, *DEFAULT_IGNORE_PATHS], DEFAULT_IGNORE_PATTERNS
    )
    for name in listing.files:
        if name in signed or _about_the_model(name):
            continue
        by = _hidden_by(ignore, name)
        if by is not None:
            out.extend(_left_out(name, by, at))
            continue
        if may_be_unsigned(name):
            continue
        out.append(
            Finding(
                "file-unsigned",
                f"'{name}' is in {at} but the signature does not cover it",
                name,
            )
        )
    for name in manifest.files:
        if name not in listing.files:
            out.append(Finding("file-missing", f"signed file '{name}' is not in {at}", name))
    s = manifest.serialization
    if s.method == "files" and s.hash_type == "sha256":
        for r in manifest.resources:
            lfs = listing.files.get(r.name, (None, None, None))[1]
            if lfs is not None and lfs.lower() != r.digest.hex():
                out.append(
                    Finding(
                        "hub-lfs-mismatch",
                        f"the Hub's LFS sha256 of '{r.name}' in {at} is {lfs[:16]}..., the "
                        f"signature says {r.digest.hex()[:16]}...; nothing was downloaded",
                        r.name,
                    )
                )
    return out


def _hidden(ignore: Any, name: str) -> bool:
    """Whether ``name`` or a folder above it is hidden by the signature's ignore rules."""
    return _hidden_by(ignore, name) is not None


def _hidden_by(ignore: Any, name: str) -> str | None:
    """The exact path or pattern that hides ``name`` (or a folder above it), or None."""
    parts = name.split("/")
    for i in range(len(parts)):
        by = ignore.match("/".join(parts[: i + 1]), parts[i])
        if by is not None:
            return str(by)
    return None


def _left_out(name: str, by: str, at: str) -> list[Finding]:
    """What a local verification says of a file left out by default, said of the Hub's.

    Such a file is not downloaded (nothing loads it from the snapshot), but
    bytecode and notebook checkpoints in a repository are worth a warning:
    a checkout of the repository would run them.
    """
    from provenance.hashing import BYTECODE_PATTERNS, DEFAULT_IGNORE_PATTERNS

    if by in BYTECODE_PATTERNS:
        return [
            Finding(
                "bytecode-unsigned",
                f"'{name}' in {at} is Python bytecode the signature does not cover (not "
                "downloaded); Python may run it instead of the signed source in a checkout",
                name,
                "warning",
            )
        ]
    if by == ".ipynb_checkpoints":
        return [
            Finding(
                "default-ignored",
                f"'{name}' in {at} is left out by default and not covered by the signature "
                "(not downloaded); it may hold code a notebook server runs",
                name,
                "warning",
            )
        ]
    if by in DEFAULT_IGNORE_PATTERNS and name != ".gitattributes":
        return [
            Finding(
                "default-ignored",
                f"'{name}' in {at} is left out by default and not covered by the signature "
                "(not downloaded)",
                name,
                "info",
            )
        ]
    return []


def fetch(
    repo_id: str,
    revision: str = "main",
    *,
    offline: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    policy: Policy | None = None,
    verifier: Verifier | None = None,
) -> Snapshot:
    """Resolve ``revision``, pre-check the signature against the Hub, download into the cache.

    Online: the Hub's listing of the commit, then ``model.sig`` (and any
    co-signatures and attestations), then :func:`_precheck`; only when it
    found nothing wrong are the signed files downloaded (each at the
    resolved commit, so a branch moving meanwhile cannot mix commits).
    Offline: the cached snapshot of the commit ``revision`` names in the
    cache, as it is. Either way nothing is verified here: :func:`verify`
    (or :func:`provenance.loaders.hub.snapshot`) hashes the snapshot.

    With a loaded ``policy`` or a ``verifier``, the downloaded signature is
    checked as the verification will check it before any file is fetched
    (an untrusted signer stops the fetch there), and the policy's
    ``files.allow_unsigned`` names files that may be present unsigned: the
    pre-check lets them be, and they are downloaded, so the verdict sees them.
    """
    check_repo_id(repo_id)
    _check_revision(revision)
    trust, may_be_unsigned = _precheck_rules(policy, verifier)
    hub = _hub(endpoint, token, cache_dir)
    if offline or env_offline():
        commit = _cached_commit(hub, repo_id, revision)
        return Snapshot(
            repo_id, revision, commit, hub.repo_folder(repo_id) / "snapshots" / commit, offline=True
        )
    from provenance.bundle import MAX_BUNDLE_BYTES

    listing = _listing(hub, repo_id, revision, reading=True)
    commit = listing.commit
    at = f"{repo_id}@{commit[:12]}"
    folder = hub.repo_folder(repo_id) / "snapshots" / commit
    if SIGNATURE not in listing.files:
        finding = Finding(
            "signature-missing",
            f"{at} holds no {SIGNATURE}: the signature was deleted upstream, or the "
            "repository was never signed (provenance hub sign)",
            SIGNATURE,
        )
        return Snapshot(repo_id, revision, commit, folder, False, (finding,))

    def stop(found: list[Finding], got: Iterable[str] = ()) -> Snapshot:
        return Snapshot(repo_id, revision, commit, folder, False, tuple(found), tuple(got))

    # 1. The signature alone, bounded, then what the listing already says against it.
    size = listing.files[SIGNATURE][0]
    if size is not None and size > MAX_BUNDLE_BYTES:
        return stop([_too_large(SIGNATURE, size, at)])
    folder = _download(hub, repo_id, commit, [SIGNATURE])
    manifest = _unverified_manifest(folder / SIGNATURE)
    allowed = may_be_unsigned or (lambda _name: False)
    findings: list[Finding] = []
    if manifest is not None:
        findings = _precheck(repo_id, commit, listing, manifest, allowed)
    if errors(findings):
        return stop(findings, [SIGNATURE])
    # 2. Co-signatures and attestations (bounded in number and size), then the signer.
    about = sorted(n for n in listing.files if _about_the_model(n) and n != SIGNATURE)
    cosignatures = [n for n in about if n.startswith(COSIGNATURES)]
    if len(cosignatures) > MAX_COSIGNATURES:
        return stop(
            [
                Finding(
                    "signature-invalid",
                    f"{at} holds {len(cosignatures)} co-signatures in {COSIGNATURES}, more "
                    f"than the {MAX_COSIGNATURES} this tool reads",
                )
            ],
            [SIGNATURE],
        )
    for name in about:
        size = listing.files[name][0]
        if size is not None and size > MAX_BUNDLE_BYTES:
            return stop([_too_large(name, size, at)], [SIGNATURE])
    if about:
        _download(hub, repo_id, commit, about)
    about.insert(0, SIGNATURE)
    if trust is not None:
        findings += trust(folder / SIGNATURE)
        if errors(findings):
            return stop(findings, about)
    # 3. Only now the files themselves, at the commit resolved.
    wanted = [n for n in manifest.files if n in listing.files] if manifest is not None else []
    signed = set(wanted)
    wanted += [
        n for n in listing.files if n not in signed and not _about_the_model(n) and allowed(n)
    ]
    if wanted:
        folder = _download(hub, repo_id, commit, wanted)
    return stop(findings, [*about, *wanted])


def _too_large(name: str, size: int, at: str) -> Finding:
    return Finding(
        "signature-invalid",
        f"'{name}' in {at} is {size} bytes, more than a signature this tool reads",
        name,
    )


def remember(snapshot: Snapshot) -> None:
    """Record ``revision -> commit`` in the cache's ``refs/``, as the client does.

    Called only once the snapshot verified: a later ``--offline`` (and the
    client's own ``local_files_only``) then finds the verified commit, never
    one that was refused.
    """
    if snapshot.offline:
        return
    rev, commit = snapshot.revision, snapshot.commit
    if _COMMIT.fullmatch(rev) or commit.startswith(rev):
        return  # a commit id (or a prefix of it) is not a ref
    ref = snapshot.path.parent.parent / "refs" / rev
    try:
        ref.parent.mkdir(parents=True, exist_ok=True)
        if ref.is_symlink():
            return  # not the client's: leave it, and do not write through it
        tmp = ref.with_name(ref.name + f".{os.getpid()}.tmp")
        tmp.write_text(commit)
        os.replace(tmp, ref)
    except OSError:
        return  # a read-only cache: verification does not depend on the ref


def record_of(payload: bytes) -> HubRecord | None:
    """The Hub origin a signed statement records (its predicate's ``huggingface`` field)."""
    from provenance.intoto import Statement

    try:
        stmt = Statement.parse(payload)
    except ProvenanceError:
        return None
    return HubRecord.from_json(stmt.predicate.get(RECORD_FIELD))


def record_findings(
    snapshot: Snapshot, record: HubRecord | None, signed_for: str | None = None
) -> list[Finding]:
    """What the verified statement says of its origin, against what was fetched.

    A signature made for another repository is an error: a trusted signer's
    *other* model (an old release, a debug build) put in this repository's
    place would verify otherwise. A mirror names the repository it mirrors
    (``signed_for``). A commit other than the recorded one is not a finding:
    the signature lives in a later commit by construction, and any change to
    the files since is caught by the files themselves.
    """
    at = f"{snapshot.repo_id}@{snapshot.commit[:12]}"
    if record is None:
        return [
            Finding(
                "hub-origin-unrecorded",
                "the signature does not say which repository and commit it was made for "
                "(made by `provenance sign` or model-signing, not `provenance hub`)",
                severity="info",
            )
        ]
    out = []
    expected = signed_for or snapshot.repo_id
    if record.repository != expected:
        mirror = "" if signed_for else f"; if {snapshot.repo_id} mirrors it, say so: --signed-for"
        out.append(
            Finding(
                "hub-repository-differs",
                f"the signature was made for repository '{record.repository}', not "
                f"'{expected}' ({at} holds a model signed for another repository){mirror}"
                + (f" {record.repository}" if mirror else ""),
            )
        )
    rev = snapshot.revision
    if record.revision and rev != record.revision and not snapshot.commit.startswith(rev):
        out.append(
            Finding(
                "hub-revision-differs",
                f"the signature was made for revision '{record.revision}'; it was verified at "
                f"'{rev}'",
                severity="info",
            )
        )
    return out


def _precheck_rules(
    policy: Policy | None, verifier: Verifier | None
) -> tuple[Callable[[Path], list[Finding]] | None, Callable[[str], bool] | None]:
    """How :func:`fetch` checks a signature alone, and which unsigned files may be present.

    The signature is checked as the final verification will check it, so
    an untrusted signer is refused before any weight is downloaded; a
    policy's ``files`` rules say which unsigned files may be present.
    """
    from provenance.bundle import Bundle

    if policy is not None:
        from provenance.policy._evaluate import signature_reasons, unsigned_allowed

        rules = policy

        def by_policy(sig: Path) -> list[Finding]:
            return [
                Finding(r.code, r.message, r.subject, r.severity)
                for r in signature_reasons(rules, sig)
                if r.severity == "error"
            ]

        return by_policy, lambda name: unsigned_allowed(rules, name)
    if verifier is None:
        return None, None
    checker = verifier

    def by_verifier(sig: Path) -> list[Finding]:
        from provenance.verification import _refusal

        try:
            checker.verify(Bundle.read(sig))
        except VerificationError as e:
            return _refusal(e)
        except InputError as e:
            return [Finding(e.code, str(e), SIGNATURE)]
        return []

    return by_verifier, None


def one_of(
    policy: Policy | str | os.PathLike[str] | None, verifier: Verifier | None
) -> Policy | None:
    """Exactly one of a policy (loaded here once, if a path) or a verifier."""
    if (policy is None) == (verifier is None):
        raise UsageError(
            "give exactly one of policy= (a policy file or Policy) or verifier= (a Verifier, "
            "e.g. KeyVerifier.from_files('key.pub'))"
        )
    if policy is None or not isinstance(policy, (str, os.PathLike)):
        return policy
    from provenance.policy import load

    return load(policy)


def verify(
    repo_id: str,
    revision: str = "main",
    *,
    verifier: Verifier | None = None,
    policy: Policy | str | os.PathLike[str] | None = None,
    offline: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    signed_for: str | None = None,
) -> HubVerification:
    """Verify a repository at ``revision``: what the cache holds of it, hashed in place.

    Give exactly one of ``verifier`` or ``policy`` (as
    :func:`provenance.open_verified`). Every finding is in the result;
    raises only for input nothing could be checked on (a repository or
    revision that does not exist, a Hub that cannot be reached, a cache
    without the revision when ``offline``). A signature made (by
    :func:`push` or :func:`sign`) for another repository fails, unless
    ``signed_for`` names it: the repository this one mirrors.
    """
    rules = one_of(policy, verifier)
    snap = fetch(
        repo_id,
        revision,
        offline=offline,
        endpoint=endpoint,
        token=token,
        cache_dir=cache_dir,
        policy=rules,
        verifier=verifier,
    )
    if not snap.ok:
        return HubVerification(snap, findings=snap.findings)
    if rules is not None:
        from provenance import policy as policies

        decision = policies.evaluate(rules, snap.path, progress=progress)
        verified = decision.report.verified if decision.report is not None else None
        record = record_of(verified.payload) if verified is not None else None
        notes = record_findings(snap, record, signed_for) if verified is not None else []
        result = HubVerification(
            snap, decision=decision, record=record, findings=(*snap.findings, *notes)
        )
        if result.ok:
            remember(snap)
        return result
    from provenance.verification import check_model

    try:
        report = check_model(snap.path, verifier, progress=progress)  # type: ignore[arg-type]
    except InputError as e:
        if e.code != "signature-missing":
            raise
        finding = Finding(
            "signature-missing",
            f"the cache holds no {SIGNATURE} for {repo_id}@{snap.commit[:12]}",
            SIGNATURE,
        )
        return HubVerification(snap, findings=(*snap.findings, finding))
    record = record_of(report.verified.payload) if report.verified is not None else None
    notes = record_findings(snap, record, signed_for) if report.verified is not None else []
    result = HubVerification(snap, report=report, record=record, findings=(*snap.findings, *notes))
    if result.ok:
        remember(snap)
    return result


# ---------------------------------------------------------------- publishing


def push(
    model_path: str | os.PathLike[str],
    repo_id: str,
    signer: Signer,
    *,
    revision: str = "main",
    create: bool = True,
    private: bool | None = None,
    message: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **hashing: Any,
) -> PushResult:
    """Sign the folder ``model_path`` and upload it with its signature in one commit.

    The commit is made on top of the branch's head as read before signing
    (``parent_commit``), which the signature records: a branch that moved
    meanwhile fails the commit. Files on the branch that the folder does not
    have are deleted in the same commit, so the revision holds exactly what
    was signed (Git keeps them in history); ``.gitattributes`` stays. The
    signature is written to ``model_path/model.sig`` as :func:`provenance.sign`
    writes it; ``model.intoto.jsonl`` goes along when present. ``hashing``
    takes :func:`provenance.sign`'s hashing options (``method``,
    ``algorithm``, ``shard_size``, ``ignore_paths``, ``allow_symlinks``).
    """
    import provenance

    check_repo_id(repo_id)
    _check_revision(revision)
    if _COMMIT.fullmatch(revision):
        raise UsageError("push commits to a branch; give its name, not a commit id")
    path = Path(model_path)
    if not path.is_dir():
        raise InputError(
            f"'{path}' is not a folder; a Hub repository is a folder of files", code="not-found"
        )
    _refuse_unpublishable(path, hashing)
    hub = _hub(endpoint, token, None)
    api = hub.api()
    listing = _branch_listing(hub, api, repo_id, revision, create=create, private=private)
    record = HubRecord(repo_id, revision=revision, parent_commit=listing.commit)
    signed = provenance.sign(
        path,
        signer,
        key_file=key_file,
        progress=progress,
        extra_predicate={RECORD_FIELD: record.to_json()},
        **hashing,
    )
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    names = list(signed.manifest.files)
    ops: list[Any] = [CommitOperationAdd(n, os.fspath(path / n)) for n in names]
    extra = [SIGNATURE]
    ops.append(CommitOperationAdd(SIGNATURE, os.fspath(signed.signature_path)))
    if (path / ATTESTATIONS).is_file():
        ops.append(CommitOperationAdd(ATTESTATIONS, os.fspath(path / ATTESTATIONS)))
        extra.append(ATTESTATIONS)
    uploaded = {*names, *extra}
    # What the branch holds beyond the upload goes, left-out litter (bytecode,
    # notebook checkpoints) too; only the Hub's own .gitattributes stays.
    deleted = sorted(n for n in listing.files if n not in uploaded and n != ".gitattributes")
    ops += [CommitOperationDelete(n) for n in deleted]
    root = signed.manifest.root_digest
    with _hub_errors(hub, repo_id, revision):
        info = api.create_commit(
            repo_id,
            ops,
            commit_message=message or f"Upload signed model (sha256:{root[:16]})",
            commit_description=f"Signed with provenance; root digest sha256:{root}.",
            revision=revision,
            parent_commit=listing.commit,
        )
    return PushResult(
        repo_id,
        revision,
        _oid(info),
        listing.commit,
        signed,
        record,
        tuple([*names, *extra]),
        tuple(deleted),
        getattr(info, "commit_url", None),
    )


#: Names that hold credentials (any depth): a push would publish them.
_SECRET_NAMES = frozenset(
    {
        ".env",
        ".netrc",
        "_netrc",
        ".pypirc",
        ".npmrc",
        ".git-credentials",
        ".htpasswd",
        ".dockercfg",
        "credentials.json",
        "token",
    }
)
_SECRET_PATHS = (".aws/credentials", ".docker/config.json", ".kube/config", ".ssh/")


def _refuse_unpublishable(path: Path, hashing: Mapping[str, Any]) -> None:
    """Refuse, before anything is signed or sent, a folder the Hub must not receive.

    Credentials (``.env``, ``.netrc``, a ``token`` file ...) would be public
    the moment the commit lands; ``.cache/`` paths the client refuses to
    upload. The walk is :func:`provenance.sign`'s (same ignores), so what is
    checked is what would be signed and uploaded.
    """
    from provenance.hashing import DEFAULT_IGNORE_PATTERNS, Ignore, serialization_for, walk
    from provenance.manifest import DEFAULT_IGNORE_PATHS

    ser = serialization_for(path, ignore_paths=hashing.get("ignore_paths", ()))
    found = walk(
        path,
        ignore=Ignore(
            [*ser.ignore_paths, *DEFAULT_IGNORE_PATHS],
            [*DEFAULT_IGNORE_PATTERNS, *ser.ignore_patterns],
        ),
        links=_links_for(hashing),
    )
    for entry in found.files:
        name = entry.name
        parts = name.split("/")
        base = parts[-1]
        if ".cache" in parts[:-1]:
            raise InputError(
                f"'{name}' is under a .cache/ folder, which the Hub refuses; leave it out "
                f"(--ignore {name.split('.cache/')[0]}.cache) and push again",
                code="hub-path-refused",
            )
        secret = (
            base in _SECRET_NAMES
            or base.startswith(".env.")
            or any(name.startswith(p) or f"/{p}" in f"/{name}" for p in _SECRET_PATHS)
        )
        if secret:
            raise InputError(
                f"'{name}' looks like credentials, and a push would publish it; remove it or "
                f"leave it out (--ignore {name}); nothing was signed or uploaded",
                code="secret-in-model",
            )


def _links_for(hashing: Mapping[str, Any]) -> Any:
    from provenance.hashing import LinkPolicy

    return LinkPolicy(follow=bool(hashing.get("allow_symlinks")))


def _oid(info: Any) -> str:
    oid = getattr(info, "oid", None)
    if not isinstance(oid, str):
        raise InputError("the Hub did not say which commit it made", code="hub-error")
    return oid


def _branch_listing(
    hub: _Hub, api: Any, repo_id: str, revision: str, *, create: bool, private: bool | None
) -> _Listing:
    from huggingface_hub import errors as hf

    try:
        return _listing(hub, repo_id, revision)
    except InputError as e:
        if e.code == "hub-repo-not-found" and create:
            with _hub_errors(hub, repo_id):
                api.create_repo(repo_id, private=private, exist_ok=True)
        elif e.code != "hub-revision-not-found":
            raise
    try:
        return _listing(hub, repo_id, revision)
    except InputError as e:
        if e.code != "hub-revision-not-found":
            raise
    with _hub_errors(hub, repo_id, revision):
        try:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        except hf.HfHubHTTPError:
            raise
    return _listing(hub, repo_id, revision)


def sign(
    repo_id: str,
    signer: Signer,
    *,
    revision: str = "main",
    message: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **hashing: Any,
) -> PushResult:
    """Sign the files branch ``revision`` holds on the Hub, and commit the signature on top.

    The files are downloaded into the cache at the commit the branch names
    when asked, hashed there in place, and the signature (which records that
    commit) is committed with ``parent_commit`` pinned to it: if the branch
    moved meanwhile, the commit fails and nothing is written. An existing
    ``model.sig`` is replaced (its co-signatures and attestations are left
    as they are).
    """
    import provenance

    check_repo_id(repo_id)
    _check_revision(revision)
    if _COMMIT.fullmatch(revision):
        raise UsageError(
            "sign commits the signature to a branch; give the branch's name, not a commit id"
        )
    hub = _hub(endpoint, token, cache_dir)
    _require_branch(hub, repo_id, revision)
    listing = _listing(hub, repo_id, revision)
    commit = listing.commit
    names = sorted(n for n in listing.files if not _about_the_model(n))
    if not names:
        raise InputError(f"{repo_id}@{revision} holds no files to sign", code="hub-empty")
    folder = _download(hub, repo_id, commit, names)
    wrong = _not_as_recorded(folder, listing, names)
    if wrong:
        raise InputError(
            f"the bytes downloaded of '{wrong[0]}' ({repo_id}@{commit[:12]}) are not what the "
            "Hub records for it (its LFS sha256 or git blob id differs; the storage, a proxy "
            "or the local cache changed them); nothing was signed"
            + (f" (and {len(wrong) - 1} more file(s))" if len(wrong) > 1 else ""),
            code="hub-content-mismatch",
        )
    record = HubRecord(repo_id, commit=commit, revision=revision)
    with tempfile.TemporaryDirectory(prefix="provenance-hub-") as tmp:
        sig = Path(tmp) / SIGNATURE
        signed = provenance.sign(
            folder,
            signer,
            signature_path=sig,
            key_file=key_file,
            progress=progress,
            extra_predicate={RECORD_FIELD: record.to_json()},
            **hashing,
        )
        stray = sorted(set(signed.manifest.files) - set(listing.files))
        if stray:
            raise InputError(
                f"the cached snapshot of {repo_id}@{commit[:12]} holds '{stray[0]}', which "
                f"the Hub does not list at that commit; remove it from {folder}",
                code="hub-cache-stray",
            )
        from huggingface_hub import CommitOperationAdd

        root = signed.manifest.root_digest
        with _hub_errors(hub, repo_id, revision):
            info = hub.api().create_commit(
                repo_id,
                [CommitOperationAdd(SIGNATURE, os.fspath(sig))],
                commit_message=message or f"Sign {commit[:12]} (sha256:{root[:16]})",
                commit_description=(
                    f"Signature over the files of {commit}, made with provenance; "
                    f"root digest sha256:{root}."
                ),
                revision=revision,
                parent_commit=commit,
            )
        signed = _moved_signature(signed, folder)
    return PushResult(
        repo_id,
        revision,
        _oid(info),
        commit,
        signed,
        record,
        (SIGNATURE,),
        (),
        getattr(info, "commit_url", None),
    )


def _require_branch(hub: _Hub, repo_id: str, revision: str) -> None:
    """A signature is committed to a branch: a tag (or anything else) is refused up front."""
    with _hub_errors(hub, repo_id, revision):
        refs = hub.api().list_repo_refs(repo_id)
    if any(b.name == revision for b in refs.branches):
        return
    if any(t.name == revision for t in refs.tags):
        raise UsageError(
            f"'{revision}' is a tag of {repo_id}; a signature is committed to a branch, so "
            "give the branch that holds the files (a tag cannot take a new commit)"
        )
    raise InputError(
        f"repository '{repo_id}' has no branch '{revision}' on {hub.shown()}",
        code="hub-revision-not-found",
    )


def _not_as_recorded(folder: Path, listing: _Listing, names: Iterable[str]) -> list[str]:
    """Downloaded files whose bytes are not the Hub's own content address of them.

    Whatever the hashing method to be signed: an LFS file's sha256, a regular
    file's git blob id (``sha1("blob <size>\\0" + bytes)``), and every size.
    The client checks none of these when it downloads, and the cache may
    already hold bytes someone changed; a signature over them would vouch
    for what the Hub never held.
    """
    import hashlib

    from provenance._internal.fsutil import read_limited
    from provenance.hashing import hash_digests, walk
    from provenance.manifest import Serialization

    entries = {e.name: e for e in walk(folder).files}
    wrong: list[str] = []
    lfs = []
    for name in names:
        size, sha, blob = listing.files[name]
        entry = entries.get(name)
        if entry is None or (size is not None and entry.size != size):
            wrong.append(name)
        elif sha is not None:
            lfs.append(entry)
        elif blob is not None:
            data = read_limited(entry.path, "file", _MAX_REGULAR_BYTES)
            head = b"blob %d\0" % len(data)
            if hashlib.sha1(head + data, usedforsecurity=False).hexdigest() != blob.lower():
                wrong.append(name)
    if lfs:
        got, digests = hash_digests(lfs, Serialization(method="files", hash_type="sha256"))
        wrong += [
            n
            for n, d in zip(got, digests, strict=True)
            if d.hex() != (listing.files[n][1] or "").lower()
        ]
    return sorted(wrong)


#: A file the Hub stores in git rather than LFS is small (the Hub moves
#: anything over 10 MB to LFS); a larger "regular" file is refused unread.
_MAX_REGULAR_BYTES = 64 << 20


def _moved_signature(signed: SignResult, folder: Path) -> SignResult:
    """The result, naming the signature as it now is: in the repository, not a temp file."""
    import dataclasses

    return dataclasses.replace(signed, signature_path=Path(SIGNATURE))


# ---------------------------------------------------------------- lineage: hf:// references

#: ``hf://ORG/NAME@REVISION``, optionally ``@sha256:ROOT``: a model on the Hub by commit.
_HF_URI = re.compile(
    rf"hf://(?P<repo>{_REPO_PART}/{_REPO_PART})"
    r"(?:@(?P<rev>[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*?))?"
    r"(?:@sha256:(?P<hex>[0-9a-fA-F]{64}))?"
)


@dataclass(frozen=True)
class HubReference:
    """A Hub model named in lineage: repository, revision (or commit), maybe its digest."""

    repo_id: str
    revision: str | None
    sha256: str | None

    @property
    def commit(self) -> str | None:
        return self.revision if self.revision and _COMMIT.fullmatch(self.revision) else None


def parse_reference(text: str) -> HubReference | None:
    """``hf://ORG/NAME[@REV][@sha256:HEX]`` parsed, or None for anything else."""
    m = _HF_URI.fullmatch(text)
    if m is None or "--" in m.group("repo") or ".." in m.group("repo"):
        return None
    rev = m.group("rev")
    if rev is not None and ".." in rev:
        return None
    return HubReference(m.group("repo"), rev, m.group("hex").lower() if m.group("hex") else None)


def cached_snapshot(
    repo_id: str, revision: str, *, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[str, Path]:
    """The commit ``revision`` names in the local cache, and its snapshot folder (no network)."""
    hub = _hub(None, None, cache_dir)
    commit = _cached_commit(hub, check_repo_id(repo_id), _check_revision(revision))
    return commit, hub.repo_folder(repo_id) / "snapshots" / commit
