"""The local Hub (local_hub.py) against the real ``huggingface_hub`` client.

Other tests trust this server to behave like huggingface.co for the calls the
client makes, so each behaviour they rely on is pinned here with the real
client: uploads, repo info, the cache layout downloads produce, revisions,
error mapping, offline reads, and the server-side tampering hooks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from local_hub import GITATTRIBUTES, LocalHub, git_blob_id, lfs_pointer

# The client's own LFS PUT (``data=fileobj``) trips this httpx2 deprecation.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

REPO = "acme/tiny"
CONFIG = b'{"model_type": "tiny", "hidden_size": 8}\n'


def _safetensors(n_floats: int) -> bytes:
    """A real safetensors file (one F32 tensor), so header reads by Range can be checked."""
    header = json.dumps(
        {"weight": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    data = (bytes(range(251)) * (4 * n_floats // 251 + 1))[: 4 * n_floats]
    return struct.pack("<Q", len(header)) + header + data


WEIGHTS = _safetensors(512 * 1024)  # 2 MiB of data: LFS by size and by name
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()


def _tampered(data: bytes) -> bytes:
    """Same length, different bytes (the client accepts it: sizes match)."""
    return data[:-4] + bytes(b ^ 0xFF for b in data[-4:])


@pytest.fixture
def api(local_hub: LocalHub) -> HfApi:
    return HfApi(endpoint=local_hub.endpoint, token=local_hub.token)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture
def model(api: HfApi, tmp_path: Path) -> str:
    """A repo with a regular config.json and an LFS model.safetensors, in one commit."""
    api.create_repo(REPO)
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_bytes(CONFIG)
    (src / "model.safetensors").write_bytes(WEIGHTS)
    return api.upload_folder(repo_id=REPO, folder_path=src, commit_message="Add model").oid


def _download(hub: LocalHub, cache: Path, filename: str, **kwargs: object) -> Path:
    return Path(
        hf_hub_download(
            REPO, filename, cache_dir=cache, endpoint=hub.endpoint, token=hub.token, **kwargs
        )
    )


# ---------------------------------------------------------------- repos and uploads


def test_create_repo(local_hub: LocalHub, api: HfApi) -> None:
    url = api.create_repo(REPO)
    assert (url.repo_id, url.endpoint) == (REPO, local_hub.endpoint)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(REPO)
    assert err.value.response.status_code == 409
    assert api.create_repo(REPO, exist_ok=True).repo_id == REPO
    assert api.create_repo("no-namespace").repo_id == "local-user/no-namespace"
    assert api.repo_exists(REPO) and not api.repo_exists("acme/other")
    # Like the Hub: main starts with an initial commit holding .gitattributes.
    (initial,) = api.list_repo_commits(REPO)
    assert initial.title == "initial commit"
    assert local_hub.files(REPO) == {".gitattributes": GITATTRIBUTES}
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=local_hub.endpoint, token=False).create_repo("acme/anon")
    assert err.value.response.status_code == 401


def test_upload_folder_is_one_commit_regular_and_lfs(
    local_hub: LocalHub, api: HfApi, model: str
) -> None:
    assert local_hub.head(REPO) == model
    assert api.list_repo_commits(REPO)[0].commit_id == model
    assert local_hub.files(REPO) == {
        ".gitattributes": GITATTRIBUTES,
        "config.json": CONFIG,
        "model.safetensors": WEIGHTS,
    }
    assert not local_hub.entry(REPO, "config.json").lfs
    assert local_hub.entry(REPO, "model.safetensors").lfs
    calls = [r for r in local_hub.requests if r[0] in ("POST", "PUT")]
    assert calls == [
        ("POST", "/api/repos/create"),
        ("POST", f"/api/models/{REPO}/preupload/main"),
        ("POST", f"/{REPO}.git/info/lfs/objects/batch"),
        ("PUT", f"/__lfs__/{WEIGHTS_SHA}"),  # only the LFS file is PUT, config goes inline
        ("POST", f"/{REPO}.git/info/lfs/objects/verify"),
        ("POST", f"/api/models/{REPO}/commit/main"),
    ]


def test_model_info_reports_blob_ids_sizes_and_sha256(api: HfApi, model: str) -> None:
    info = api.model_info(REPO, files_metadata=True)
    assert info.id == REPO and info.sha == model
    files = {s.rfilename: s for s in info.siblings or []}
    assert set(files) == {".gitattributes", "config.json", "model.safetensors"}
    config, weights = files["config.json"], files["model.safetensors"]
    assert (config.size, config.blob_id, config.lfs) == (len(CONFIG), git_blob_id(CONFIG), None)
    assert weights.size == len(WEIGHTS)
    assert weights.lfs is not None
    pointer = lfs_pointer(WEIGHTS_SHA, len(WEIGHTS))
    assert (weights.lfs.sha256, weights.lfs.size) == (WEIGHTS_SHA, len(WEIGHTS))
    assert weights.lfs.pointer_size == len(pointer)
    assert weights.blob_id == git_blob_id(pointer)  # the Hub reports the pointer's git id
    assert all(s.size is None for s in api.model_info(REPO).siblings or [])
    meta = api.get_safetensors_metadata(REPO)  # two Range reads of the header
    assert meta.files_metadata["model.safetensors"].tensors["weight"].shape == [512 * 1024]


def test_commit_operations(local_hub: LocalHub, api: HfApi, model: str) -> None:
    api.create_commit(
        REPO,
        [
            CommitOperationAdd("nested/a.txt", b"a"),
            CommitOperationAdd("nested/deeper/b.bin", io.BytesIO(b"b" * 10)),  # a buffer, LFS
            CommitOperationCopy("model.safetensors", "copy.safetensors"),  # lfsFile without size
            CommitOperationCopy("config.json", "copy.json"),  # downloaded and re-sent inline
        ],
        commit_message="More",
    )
    assert local_hub.entry(REPO, "nested/deeper/b.bin").lfs
    assert local_hub.files(REPO)["copy.safetensors"] == WEIGHTS
    api.create_commit(
        REPO,
        [CommitOperationDelete("nested/"), CommitOperationDelete("copy.json")],
        commit_message="Less",
    )
    assert set(local_hub.files(REPO)) == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "copy.safetensors",
    }
    with pytest.raises(RemoteEntryNotFoundError, match="doesn't exist"):
        api.delete_file("missing.txt", REPO)


def test_stale_parent_commit_is_refused(local_hub: LocalHub, api: HfApi, model: str) -> None:
    newer = local_hub.commit(REPO, {"README.md": b"# hi\n"}, message="Someone else")
    with pytest.raises(HfHubHTTPError, match="A commit has happened since") as err:
        api.create_commit(
            REPO,
            [CommitOperationAdd("x.txt", b"x")],
            commit_message="Mine",
            parent_commit=model,
        )
    assert err.value.response.status_code == 412
    assert local_hub.head(REPO) == newer
    done = api.create_commit(
        REPO, [CommitOperationAdd("x.txt", b"x")], commit_message="Mine", parent_commit=newer[:7]
    )
    assert api.list_repo_commits(REPO)[1].commit_id == newer
    assert local_hub.head(REPO) == done.oid


def test_lfs_upload_checks_the_bytes(local_hub: LocalHub, model: str) -> None:
    data = b"some weights" * 1000
    oid = hashlib.sha256(data).hexdigest()
    auth = {"Authorization": f"Bearer {local_hub.token}"}

    def call(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(url, body, headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    batch_url = f"{local_hub.endpoint}/{REPO}.git/info/lfs/objects/batch"

    def batch(headers: dict) -> tuple[int, dict]:
        payload = {
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{"oid": oid, "size": len(data)}],
        }
        status, body = call("POST", batch_url, json.dumps(payload).encode(), headers)
        return status, json.loads(body)

    assert batch({})[0] == 401
    status, answer = batch(auth)
    assert status == 200 and answer["transfer"] == "basic"
    href = answer["objects"][0]["actions"]["upload"]["href"]
    assert call("PUT", href, data[:-1] + b"X")[0] == 400  # wrong sha256
    assert call("PUT", href, data + b"X")[0] == 400  # wrong size
    assert call("PUT", href.replace("sig=", "sig=0"))[0] == 403  # not the URL it signed
    assert call("PUT", href, data)[0] == 200
    assert "actions" not in batch(auth)[1]["objects"][0]  # already stored: nothing to do
    # ... and the weight file of `model` was stored before, so it needs no upload either.
    assert (local_hub.root / "objects" / WEIGHTS_SHA).read_bytes() == WEIGHTS


def test_datasets(local_hub: LocalHub, api: HfApi, cache: Path) -> None:
    api.create_repo("acme/data", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"a,b\n1,2\n",
        path_in_repo="train.csv",
        repo_id="acme/data",
        repo_type="dataset",
    )
    assert api.dataset_info("acme/data").sha == local_hub.head("acme/data", repo_type="dataset")
    path = hf_hub_download(
        "acme/data", "train.csv", repo_type="dataset", cache_dir=cache, endpoint=local_hub.endpoint
    )
    assert Path(path).read_bytes() == b"a,b\n1,2\n"
    assert "/datasets--acme--data/" in path
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("acme/data")  # a dataset is not a model


# ---------------------------------------------------------------- downloads and the cache


def test_hf_hub_download_makes_the_real_cache_layout(
    local_hub: LocalHub, cache: Path, model: str
) -> None:
    config = _download(local_hub, cache, "config.json")
    weights = _download(local_hub, cache, "model.safetensors")
    repo = cache / "models--acme--tiny"
    assert config == repo / "snapshots" / model / "config.json"
    assert os.readlink(config) == f"../../blobs/{git_blob_id(CONFIG)}"  # regular: the git id
    assert os.readlink(weights) == f"../../blobs/{WEIGHTS_SHA}"  # LFS: the sha256
    assert (config.read_bytes(), weights.read_bytes()) == (CONFIG, WEIGHTS)
    assert (repo / "refs" / "main").read_text() == model
    head = get_hf_file_metadata(hf_hub_url(REPO, "model.safetensors", endpoint=local_hub.endpoint))
    assert (head.commit_hash, head.etag, head.size) == (model, WEIGHTS_SHA, len(WEIGHTS))


def test_snapshot_download(local_hub: LocalHub, cache: Path, model: str) -> None:
    folder = Path(
        snapshot_download(REPO, cache_dir=cache, endpoint=local_hub.endpoint, token=local_hub.token)
    )
    assert folder == cache / "models--acme--tiny" / "snapshots" / model
    links = {p.name: os.readlink(p) for p in folder.iterdir()}
    assert links == {
        ".gitattributes": f"../../blobs/{git_blob_id(GITATTRIBUTES)}",
        "config.json": f"../../blobs/{git_blob_id(CONFIG)}",
        "model.safetensors": f"../../blobs/{WEIGHTS_SHA}",
    }
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder.parent.parent / "refs" / "main").read_text() == model
    assert ("GET", f"/api/models/{REPO}/tree/{model}") in local_hub.requests


def test_only_the_files_asked_for_are_fetched(local_hub: LocalHub, cache: Path, model: str) -> None:
    local_hub.requests.clear()
    _download(local_hub, cache, "config.json")
    assert not [p for _, p in local_hub.requests if p.endswith("/model.safetensors")]
    snapshot_download(
        REPO,
        cache_dir=cache,
        endpoint=local_hub.endpoint,
        allow_patterns=["*.json"],
    )
    assert not [p for _, p in local_hub.requests if "/resolve/" in p and p.endswith(".safetensors")]


def test_revisions_branch_tag_and_commit(
    local_hub: LocalHub, api: HfApi, cache: Path, model: str
) -> None:
    api.create_tag(REPO, tag="v1", revision=model)
    api.create_branch(REPO, branch="dev")
    with pytest.raises(HfHubHTTPError):
        api.create_branch(REPO, branch="dev")
    api.create_branch(REPO, branch="dev", exist_ok=True)
    new = b'{"model_type": "tiny", "hidden_size": 16}\n'
    dev = api.upload_file(
        path_or_fileobj=new, path_in_repo="config.json", repo_id=REPO, revision="dev"
    )
    refs = api.list_repo_refs(REPO)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": model, "dev": dev.oid}
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": model}
    assert _download(local_hub, cache, "config.json", revision="dev").read_bytes() == new
    assert _download(local_hub, cache, "config.json", revision="v1").read_bytes() == CONFIG
    assert _download(local_hub, cache, "config.json", revision=model).read_bytes() == CONFIG
    assert _download(local_hub, cache, "config.json").read_bytes() == CONFIG
    refs_dir = cache / "models--acme--tiny" / "refs"
    assert {p.name: p.read_text() for p in refs_dir.iterdir()} == {
        "main": model,
        "dev": dev.oid,
        "v1": model,
    }
    assert api.model_info(REPO, revision="dev").sha == dev.oid
    assert api.model_info(REPO, revision=model[:10]).sha == model  # short ids resolve too
    assert [c.title for c in api.list_repo_commits(REPO, revision="dev")] == [
        "Upload config.json with huggingface_hub",
        "Add model",
        "initial commit",
    ]


def test_tree_listing_and_paths_info(local_hub: LocalHub, api: HfApi, model: str) -> None:
    later = local_hub.commit(REPO, {"sub/dir/x.txt": b"x", "sub/y.bin": b"y"}, message="Nested")
    top = {f.path: type(f).__name__ for f in api.list_repo_tree(REPO)}
    assert top == {
        ".gitattributes": "RepoFile",
        "config.json": "RepoFile",
        "model.safetensors": "RepoFile",
        "sub": "RepoFolder",
    }
    everything = {f.path for f in api.list_repo_tree(REPO, recursive=True)}
    assert {"sub", "sub/dir", "sub/dir/x.txt", "sub/y.bin"} <= everything
    assert {f.path for f in api.list_repo_tree(REPO, "sub")} == {"sub/dir", "sub/y.bin"}
    expanded = {f.path: f for f in api.list_repo_tree(REPO, expand=True)}
    assert expanded["config.json"].last_commit.oid == model
    assert expanded["sub"].last_commit.oid == later
    weights = expanded["model.safetensors"]
    assert (weights.lfs.sha256, weights.blob_id) == (
        WEIGHTS_SHA,
        local_hub.entry(REPO, "model.safetensors").blob_id,
    )
    info = api.get_paths_info(REPO, ["config.json", "sub", "nope"], revision=model)
    assert [f.path for f in info] == ["config.json"]  # `sub` is not in that older commit
    assert api.file_exists(REPO, "sub/y.bin") and not api.file_exists(REPO, "sub/z.bin")
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(REPO, "nowhere"))


# ---------------------------------------------------------------- errors and offline use


def test_errors_map_to_client_exceptions(
    local_hub: LocalHub, api: HfApi, cache: Path, model: str
) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("acme/missing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="no-such-branch")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme/missing", "config.json", cache_dir=cache, endpoint=local_hub.endpoint)
    with pytest.raises(RevisionNotFoundError):
        _download(local_hub, cache, "config.json", revision="no-such-branch")
    with pytest.raises(RemoteEntryNotFoundError) as err:
        _download(local_hub, cache, "missing.json")
    assert isinstance(err.value, EntryNotFoundError)
    assert (cache / "models--acme--tiny" / ".no_exist" / model / "missing.json").exists()
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(REPO, revision="nope", cache_dir=cache, endpoint=local_hub.endpoint)
    api.create_repo("acme/secret", private=True)
    assert api.model_info("acme/secret").private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=local_hub.endpoint, token=False).model_info("acme/secret")


def test_local_files_only_reads_the_cache(local_hub: LocalHub, cache: Path, model: str) -> None:
    snapshot_download(REPO, cache_dir=cache, endpoint=local_hub.endpoint)
    local_hub.requests.clear()
    assert _download(local_hub, cache, "config.json", local_files_only=True).read_bytes() == CONFIG
    folder = snapshot_download(
        REPO, cache_dir=cache, endpoint=local_hub.endpoint, local_files_only=True
    )
    assert Path(folder).name == model
    with pytest.raises(LocalEntryNotFoundError):
        _download(local_hub, cache, "config.json", revision="other", local_files_only=True)
    assert local_hub.requests == []


def test_offline_subprocess_reads_the_cache(local_hub: LocalHub, cache: Path, model: str) -> None:
    snapshot_download(REPO, cache_dir=cache, endpoint=local_hub.endpoint)
    local_hub.requests.clear()
    script = (
        "import json, sys\n"
        "from huggingface_hub import hf_hub_download, snapshot_download\n"
        "repo = sys.argv[1]\n"
        "print(json.dumps([snapshot_download(repo), hf_hub_download(repo, 'config.json')]))\n"
    )
    env = {**os.environ, **local_hub.env(cache, offline=True)}
    out = subprocess.run(
        [sys.executable, "-c", script, REPO], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    folder, config = json.loads(out.stdout.splitlines()[-1])
    assert Path(folder) == cache / "models--acme--tiny" / "snapshots" / model
    assert Path(config).read_bytes() == CONFIG
    assert local_hub.requests == []


def test_xet_only_matters_for_uploads(local_hub: LocalHub, cache: Path, model: str) -> None:
    """hf_xet is installed: downloads still use plain HTTP, but uploads need HF_HUB_DISABLE_XET."""
    script = (
        "import sys\n"
        "from huggingface_hub import HfApi, snapshot_download\n"
        "repo = sys.argv[1]\n"
        "snapshot_download(repo)\n"
        "HfApi().upload_file(path_or_fileobj=b'w' * 10, path_in_repo='w.bin', repo_id=repo)\n"
    )
    env = {**os.environ, **local_hub.env(cache)}
    env.pop("HF_HUB_DISABLE_XET")
    out = subprocess.run(
        [sys.executable, "-c", script, REPO], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert f"/api/models/{REPO}/xet-write-token/main" in out.stderr
    assert (cache / "models--acme--tiny" / "snapshots" / model / "model.safetensors").exists()
    xet = [p for _, p in local_hub.requests if "xet" in p]
    assert xet == [f"/api/models/{REPO}/xet-write-token/main"]


# ---------------------------------------------------------------- tampering hooks


def test_set_lfs_sha256_makes_the_metadata_lie(
    local_hub: LocalHub, api: HfApi, cache: Path, model: str
) -> None:
    lie = hashlib.sha256(b"something else").hexdigest()
    local_hub.set_lfs_sha256(REPO, "model.safetensors", lie)
    weights = next(s for s in api.model_info(REPO, files_metadata=True).siblings or [] if s.lfs)
    assert weights.lfs is not None and weights.lfs.sha256 == lie
    assert weights.blob_id == git_blob_id(lfs_pointer(lie, len(WEIGHTS)))
    (listed,) = [f for f in api.list_repo_tree(REPO) if f.path == "model.safetensors"]
    assert listed.lfs.sha256 == lie
    head = get_hf_file_metadata(hf_hub_url(REPO, "model.safetensors", endpoint=local_hub.endpoint))
    assert head.etag == lie
    path = _download(local_hub, cache, "model.safetensors")
    assert os.readlink(path) == f"../../blobs/{lie}"  # the client names the blob by the lie...
    assert path.read_bytes() == WEIGHTS  # ...and never checks it: the bytes are the real ones
    with pytest.raises(ValueError, match="not an LFS file"):
        local_hub.set_lfs_sha256(REPO, "config.json", lie)


def test_replace_blob_bytes_serves_other_bytes(
    local_hub: LocalHub, api: HfApi, cache: Path, model: str
) -> None:
    before = api.model_info(REPO, files_metadata=True).siblings
    local_hub.replace_blob_bytes(REPO, "model.safetensors", _tampered(WEIGHTS))
    local_hub.replace_blob_bytes(REPO, "config.json", _tampered(CONFIG))
    assert api.model_info(REPO, files_metadata=True).siblings == before
    folder = Path(snapshot_download(REPO, cache_dir=cache, endpoint=local_hub.endpoint))
    assert (folder / "model.safetensors").read_bytes() == _tampered(WEIGHTS)
    assert (folder / "config.json").read_bytes() == _tampered(CONFIG)
    assert os.readlink(folder / "config.json") == f"../../blobs/{git_blob_id(CONFIG)}"
    assert local_hub.files(REPO)["config.json"] == _tampered(CONFIG)


def test_server_side_commit_and_set_ref(
    local_hub: LocalHub, api: HfApi, cache: Path, model: str
) -> None:
    evil = local_hub.commit(
        REPO,
        {"model.safetensors": b"not weights", "extra.py": b"print(1)\n"},
        delete=["config.json"],
        message="Swap",
        lfs=["model.safetensors"],
    )
    assert local_hub.entry(REPO, "model.safetensors").lfs
    assert not local_hub.entry(REPO, "extra.py").lfs
    assert api.model_info(REPO).sha == evil
    assert set(local_hub.files(REPO)) == {".gitattributes", "model.safetensors", "extra.py"}
    assert local_hub.files(REPO, model)["config.json"] == CONFIG
    local_hub.set_ref(REPO, "main", model)  # a force-push back
    assert api.model_info(REPO).sha == model == local_hub.resolve(REPO, "main")
    local_hub.set_ref(REPO, "v0", evil, tag=True)
    assert _download(local_hub, cache, "extra.py", revision="v0").read_bytes() == b"print(1)\n"
    with pytest.raises(KeyError):
        local_hub.commit(REPO, delete=["never-there.txt"])


# ---------------------------------------------------------------- standalone mode


def test_main_serves_and_keeps_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
    # Other test modules run offline (test_loaders_transformers sets it at import).
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    script = Path(__file__).with_name("local_hub.py")

    def serve() -> tuple[subprocess.Popen[str], dict]:
        proc = subprocess.Popen(
            [sys.executable, str(script), "--root", str(tmp_path / "hub")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        return proc, json.loads(proc.stdout.readline())

    proc, line = serve()
    try:
        assert line["env"]["HF_ENDPOINT"] == line["endpoint"]
        HfApi(endpoint=line["endpoint"], token=line["token"]).create_repo(REPO)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    proc, line = serve()
    try:
        assert HfApi(endpoint=line["endpoint"]).model_info(REPO).id == REPO
    finally:
        proc.terminate()
        proc.wait(timeout=10)
