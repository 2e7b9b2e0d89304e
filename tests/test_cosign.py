"""Co-signatures: more bundles beside a signature, in ``<signature>.d/<name>.sig``.

Layout, names, what ``sign --cosign`` refuses, what ``read_signatures``
returns for every kind of entry (never following a link, never blocking on
a FIFO), the warning when a co-signature covers another statement than its
signature, and that ``model.sig`` stays what ``model-signing`` verifies
while co-signatures sit beside it. Real keys, real models, real files.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_model, run_cli, within
from test_output_contract import schema_errors

import provenance
from provenance.bundle import (
    MAX_COSIGNATURES,
    Bundle,
    cosignature_dir,
    cosignature_path,
    read_signatures,
)
from provenance.errors import InputError, UsageError
from provenance.hashing import hash_tree
from provenance.manifest import DEFAULT_IGNORE_PATHS, Serialization
from provenance.signature import COSIGNATURE_WARNING_LEAD, _cosignature_name
from provenance.signing import (
    CertificateSigner,
    CertificateVerifier,
    KeySigner,
    KeyVerifier,
    SignerInfo,
)

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")
needs_model_signing = pytest.mark.skipif(
    not MODEL_SIGNING.exists(), reason=f"model-signing CLI not found at {MODEL_SIGNING}"
)

#: The default ignore list before co-signatures existed.
OLD_DEFAULTS = tuple(p for p in DEFAULT_IGNORE_PATHS if p != "model.sig.d")


def fingerprint(key) -> str:
    return KeySigner.from_file(key.private).describe().key_fingerprint


def statement(path: Path) -> bytes:
    return base64.b64decode(json.loads(path.read_bytes())["dsseEnvelope"]["payload"])


def ignore_list(path: Path) -> list[str]:
    return json.loads(statement(path))["predicate"]["serialization"]["ignore_paths"]


def cosign(model: Path, key, cosign_name: str | None = None, **kw) -> provenance.SignResult:
    signer = KeySigner.from_file(key.private)
    return provenance.sign(model, signer, cosign=cosign_name or True, **kw)


def model_signing_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODEL_SIGNING), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def old_style_signature(model: Path, key, signature: Path | None = None) -> Path:
    """A signature as made before model.sig.d was a default ignore (and nothing else differs)."""
    signature = signature or model / "model.sig"
    ignores = list(OLD_DEFAULTS)
    if signature.parent != model:
        ignores.append(signature.relative_to(model).as_posix())
    manifest, _ = hash_tree(model, Serialization(ignore_paths=tuple(ignores)))
    bundle = KeySigner.from_file(key.private).sign(manifest.statement_bytes())
    signature.write_bytes(bundle.to_bytes())
    assert "model.sig.d" not in ignore_list(signature)
    return signature


# ---------------------------------------------------------------- layout and names


def test_cosignature_goes_into_the_d_folder_over_the_same_statement(model, p256, p384):
    primary = provenance.sign(model, KeySigner.from_file(p256.private))
    result = cosign(model, p384)
    expected = model / "model.sig.d" / f"{fingerprint(p384)[:16]}.sig"
    assert result.signature_path == expected == cosignature_path(model / "model.sig", expected.stem)
    assert cosignature_dir(model / "model.sig") == model / "model.sig.d"
    assert statement(expected) == statement(model / "model.sig")  # bytes, not just digests
    assert result.manifest.root_digest == primary.manifest.root_digest
    assert not result.warnings
    assert "model.sig.d" in ignore_list(model / "model.sig")
    # A complete OMS bundle: it verifies on its own, against its own signer.
    alone = provenance.verify(model, KeyVerifier.from_files(p384.public), signature_path=expected)
    assert alone.root_digest == primary.manifest.root_digest
    assert stat.S_IMODE((model / "model.sig.d").stat().st_mode) == 0o755
    assert stat.S_IMODE(expected.stat().st_mode) == 0o644


def test_folder_mode_ignores_the_umask(model, p256):
    old = os.umask(0o077)
    try:
        cosign(model, p256)
    finally:
        os.umask(old)
    assert stat.S_IMODE((model / "model.sig.d").stat().st_mode) == 0o755


def test_single_file_model_puts_its_folder_beside_the_signature(tmp_path, p256, p384):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(3000))
    provenance.sign(weights, KeySigner.from_file(p256.private))
    result = cosign(weights, p384, cosign_name="bob")
    assert result.signature_path == tmp_path / "weights.bin.sig.d" / "bob.sig"
    assert statement(result.signature_path) == statement(tmp_path / "weights.bin.sig")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "weights.bin",
        "weights.bin.sig",
        "weights.bin.sig.d",
    ]


def test_signature_elsewhere_has_its_folder_elsewhere(model, tmp_path, p256, p384):
    sig = tmp_path / "release" / "my.sig"
    sig.parent.mkdir()
    provenance.sign(model, KeySigner.from_file(p256.private), signature_path=sig)
    result = cosign(model, p384, signature_path=sig, cosign_name="bob")
    assert result.signature_path == tmp_path / "release" / "my.sig.d" / "bob.sig"
    assert not (model / "model.sig.d").exists() and not result.warnings


def test_signature_inside_the_model_at_another_path(model, p256, p384):
    """Its .d folder is left out of the statement as the signature itself is."""
    sig = model / "sigs" / "main.sig"
    sig.parent.mkdir()
    provenance.sign(model, KeySigner.from_file(p256.private), signature_path=sig)
    assert {"sigs/main.sig", "sigs/main.sig.d"} <= set(ignore_list(sig))
    result = cosign(model, p384, signature_path=sig, cosign_name="bob")
    assert result.signature_path == model / "sigs" / "main.sig.d" / "bob.sig"
    assert statement(result.signature_path) == statement(sig) and not result.warnings
    ok = provenance.verify(model, KeyVerifier.from_files(p256.public), signature_path=sig)
    assert not ok.unsigned_files_ignored


def test_names_from_the_signer(model, p256, pki):
    key = cosign(model, p256)
    assert key.signature_path.name == f"{fingerprint(p256)[:16]}.sig"
    leaf = KeySigner.from_file(pki.leaf_key)
    signer = CertificateSigner.from_files(leaf, pki.leaf, [pki.intermediate])
    cert = provenance.sign(model, signer, cosign=True)
    assert cert.signature_path.name == f"{leaf.describe().key_fingerprint[:16]}.sig"
    verifier = CertificateVerifier.from_files([pki.root])
    provenance.verify(model, verifier, signature_path=cert.signature_path)


@pytest.mark.parametrize(
    ("identity", "name"),
    [
        ("alice@example.com", "alice_example.com"),
        (".hidden@example.com", "_.hidden_example.com"),
        ("https://github.com/o/r/.github/workflows/x.yml@refs/heads/main",
         "https_github.com_o_r_.github_workflows_x.yml_refs_heads_main"),
        ("\u00e9l\u00e8ve@\u00e9cole.fr", "_l_ve_cole.fr"),
    ],
)  # fmt: skip
def test_keyless_names_are_the_identity_in_file_name_letters(identity, name):
    info = SignerInfo(kind="keyless", description="x", identity=identity, issuer="https://i")
    assert _cosignature_name(info) == name
    cosignature_path("model.sig", name)  # a valid name


def test_long_keyless_names_are_cut_and_kept_apart():
    base = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/"
    names = [
        _cosignature_name(SignerInfo(kind="keyless", description="x", identity=base + branch))
        for branch in ("main", "dev")
    ]
    assert all(len(n) == 64 for n in names) and names[0] != names[1]
    assert names[0][:55] == names[1][:55]
    for n in names:
        cosignature_path("model.sig", n)


def test_keyless_cosignature_is_named_after_the_identity(local_sigstore, tmp_path):
    model = make_model(tmp_path / "m")
    token = local_sigstore.mint_token("carol@example.com")
    args = ("--sigstore", "--identity-token", token, "--trust-config")
    result = run_cli("sign", model, *args, local_sigstore.trust_config_path, "--cosign", "--json")
    assert result.exit_code == 0, result.output + (result.stderr or "")
    data = json.loads(result.stdout)
    assert data["signature"] == str(model / "model.sig.d" / "carol_example.com.sig")


@pytest.mark.parametrize(
    "name",
    ["", ".x", "..", "a/b", "../x", "a b", "\u00e9", "a\n", "x" * 65, "a\\b", "a:b", "*"],
)
def test_bad_names_are_refused_before_anything_is_hashed(model, p256, name):
    with pytest.raises(UsageError) as info:
        provenance.sign(model, KeySigner.from_file(p256.private), cosign=name)
    assert info.value.code == "cosignature-name-invalid"
    assert not (model / "model.sig.d").exists() and not (model / "model.sig").exists()


@pytest.mark.parametrize("name", ["a", "A-z_0.9", "x" * 64, "-", "_x", "release.v1"])
def test_good_names(model, p256, name):
    result = provenance.sign(model, KeySigner.from_file(p256.private), cosign=name)
    assert result.signature_path == model / "model.sig.d" / f"{name}.sig"


def test_cli_checks_the_name_before_loading_the_key(model, tmp_path):
    missing_key = tmp_path / "nope.pem"  # loading it would be exit 3
    result = run_cli("sign", model, "--key", missing_key, "--cosign", "--cosign-name", ".x")
    assert result.exit_code == 2, result.output
    assert "co-signature name" in result.stderr


def test_cli_options_that_go_with_cosign(model, p256):
    for extra in (["--force"], ["--cosign-name", "bob"]):
        result = run_cli("sign", model, "--key", p256.private, *extra)
        assert result.exit_code == 2, result.output
        assert "go with --cosign" in result.stderr
    assert not (model / "model.sig").exists()
    with pytest.raises(UsageError):
        provenance.sign(model, KeySigner.from_file(p256.private), overwrite=True)


def test_cli_json_output_keeps_its_contract(model, p256, p384):
    run_cli("sign", model, "--key", p256.private)
    result = run_cli("sign", model, "--key", p384.private, "--cosign", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert not schema_errors("cli-sign.schema.json", data)
    assert data["signature"] == str(model / "model.sig.d" / f"{fingerprint(p384)[:16]}.sig")
    assert data["warnings"] == []


# ---------------------------------------------------------------- overwriting and refusals


def test_an_existing_cosignature_is_replaced_only_when_asked(model, p256):
    provenance.sign(model, KeySigner.from_file(p256.private))
    first = cosign(model, p256, cosign_name="alice").signature_path
    before = first.read_bytes()
    with pytest.raises(InputError) as info:
        cosign(model, p256, cosign_name="alice")
    assert info.value.code == "cosignature-exists"
    assert first.read_bytes() == before

    result = run_cli("sign", model, "--key", p256.private, "--cosign", "--cosign-name", "alice")
    assert result.exit_code == 3, result.output
    assert "already exists" in result.stderr and "--force" in result.stderr

    forced = run_cli(
        "sign", model, "--key", p256.private, "--cosign", "--cosign-name", "alice", "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert first.read_bytes() != before  # ECDSA: a new signature
    assert Bundle.read(first).envelope.payload == statement(model / "model.sig")
    assert sorted(p.name for p in first.parent.iterdir()) == ["alice.sig"]  # no temp files


def test_overwrite_never_replaces_what_is_not_a_signature(model, p256):
    folder = model / "model.sig.d"
    folder.mkdir()
    (folder / "notes.sig").write_text("my notes")
    with pytest.raises(InputError) as info:
        cosign(model, p256, cosign_name="notes", overwrite=True)
    assert info.value.code == "output-refused"
    assert (folder / "notes.sig").read_text() == "my notes"


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_overwrite_never_writes_through_a_link_or_into_a_fifo(model, tmp_path, p256, kind):
    folder = model / "model.sig.d"
    folder.mkdir()
    target = folder / "x.sig"
    outside = tmp_path / "outside.sig"
    provenance.sign(model, KeySigner.from_file(p256.private), signature_path=outside)
    before = outside.read_bytes()
    if kind == "link":
        target.symlink_to(outside)
    else:
        os.mkfifo(target)
    with pytest.raises(InputError) as info:
        within(30, lambda: cosign(model, p256, cosign_name="x", overwrite=True))
    assert info.value.code == "output-refused"
    assert outside.read_bytes() == before
    assert target.is_symlink() if kind == "link" else stat.S_ISFIFO(target.lstat().st_mode)


@pytest.mark.parametrize("kind", ["link", "file", "dangling"])
def test_a_d_folder_that_is_not_a_folder_is_refused(model, tmp_path, p256, kind):
    d = model / "model.sig.d"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "link":
        d.symlink_to(elsewhere)
    elif kind == "dangling":
        d.symlink_to(tmp_path / "nothing")
    else:
        d.write_text("x")
    with pytest.raises(InputError) as info:
        cosign(model, p256)
    assert info.value.code == "output-refused"
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "nothing").exists()


def test_the_signature_beside_must_be_a_signature(model, p256):
    """Naming a model file as the signature would leave it out of the statement: refused."""
    with pytest.raises(InputError) as info:
        cosign(model, p256, signature_path=model / "config.json")
    assert info.value.code == "output-refused"
    assert not (model / "config.json.d").exists()
    with pytest.raises(InputError):
        cosign(model, p256, signature_path=model / "weights")  # a folder
    (model / "link.sig").symlink_to(model / "a.txt")
    with pytest.raises(InputError):
        cosign(model, p256, signature_path=model / "link.sig")


def test_nothing_is_left_behind_when_signing_fails(model, p256):
    (model / "leaked.pem").write_bytes(p256.private.read_bytes())
    with pytest.raises(InputError) as info:
        cosign(model, p256)
    assert info.value.code == "private-key-in-model"
    assert not (model / "model.sig.d").exists()


def test_a_missing_signature_folder_is_refused_before_hashing(model, tmp_path, p256):
    with pytest.raises(InputError) as info:
        cosign(model, p256, signature_path=tmp_path / "no" / "such.sig")
    assert info.value.code == "not-found"


# ---------------------------------------------------------------- the statement-differs warning


def test_no_warning_over_the_same_statement_and_one_without_a_signature(model, p256):
    lonely = cosign(model, p256)
    assert len(lonely.warnings) == 1 and "no signature at" in lonely.warnings[0]
    provenance.sign(model, KeySigner.from_file(p256.private))
    assert not cosign(model, p256, overwrite=True).warnings


def test_warning_when_the_model_changed_since_it_was_signed(model, p256, p384):
    provenance.sign(model, KeySigner.from_file(p256.private))
    (model / "config.json").write_text('{"hidden_size": 16}\n')
    result = cosign(model, p384)
    (warning,) = result.warnings
    assert warning.startswith(COSIGNATURE_WARNING_LEAD)
    assert "other model contents" in warning and "model.sig" in warning
    assert result.signature_path.is_file()  # written regardless

    cli = run_cli("sign", model, "--key", p384.private, "--cosign", "--force")
    assert cli.exit_code == 0, cli.output
    assert COSIGNATURE_WARNING_LEAD in cli.stderr and "hint:" in cli.stderr


def test_warning_when_the_hashing_settings_differ(model, p256, p384):
    provenance.sign(model, KeySigner.from_file(p256.private), method="shards", shard_size=1000)
    (warning,) = cosign(model, p384).warnings
    assert warning.startswith(COSIGNATURE_WARNING_LEAD) and "hashing settings" in warning


def test_warning_for_a_signature_made_before_cosignatures(model, p256, p384):
    old_style_signature(model, p256)
    (warning,) = cosign(model, p384).warnings
    assert warning.startswith(COSIGNATURE_WARNING_LEAD)
    assert "ignore list" in warning and "model.sig.d" in warning


def test_warning_when_the_signature_cannot_be_read(model, p256):
    (model / "model.sig").write_text(
        '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}'
    )
    (warning,) = cosign(model, p256).warnings
    assert "could not be read" in warning


def test_warning_when_the_d_folder_holds_more_than_cosignatures(model, p256):
    (model / "model.sig.d").mkdir()
    (model / "model.sig.d" / "payload.py").write_text("import os\n")
    (warning,) = provenance.sign(model, KeySigner.from_file(p256.private)).warnings
    assert "'model.sig.d'" in warning and "payload.py" in warning


# ---------------------------------------------------------------- read_signatures


@pytest.fixture
def cosigned(model, p256, p384, p521) -> Path:
    """A model with a signature and three co-signatures (b, a, c by name)."""
    provenance.sign(model, KeySigner.from_file(p256.private))
    for name, key in (("b", p384), ("a", p521), ("c", p256)):
        cosign(model, key, cosign_name=name)
    return model


def test_read_signatures_primary_first_then_by_name(cosigned):
    sig = cosigned / "model.sig"
    entries = read_signatures(sig)
    d = cosigned / "model.sig.d"
    assert [p for p, _ in entries] == [sig, d / "a.sig", d / "b.sig", d / "c.sig"]
    assert all(isinstance(b, Bundle) for _, b in entries)
    assert len({b.envelope.payload for _, b in entries}) == 1
    assert read_signatures(sig, cosignatures=False) == entries[:1]


def test_read_signatures_without_a_folder_or_a_signature(model, p256):
    sig = model / "model.sig"
    ((path, missing),) = read_signatures(sig)
    assert path == sig and isinstance(missing, InputError)
    assert missing.code == "signature-missing"
    cosign(model, p256, cosign_name="only")
    entries = read_signatures(sig)
    assert isinstance(entries[0][1], InputError)
    assert entries[1][0] == model / "model.sig.d" / "only.sig"
    assert isinstance(entries[1][1], Bundle)


def test_damaged_cosignatures_are_error_entries_and_the_rest_is_read(cosigned, tmp_path):
    d = cosigned / "model.sig.d"
    (d / "a.sig").write_bytes(b'{"mediaType": "nope"')
    (d / "big.sig").write_bytes(b"")
    os.truncate(d / "big.sig", 41 << 20)  # sparse: over the cap, never read
    (d / "empty.sig").write_bytes(b"")
    (d / "README.md").write_text("not a co-signature")  # no .sig: passed over
    entries = dict(read_signatures(cosigned / "model.sig"))
    assert set(entries) == {
        cosigned / "model.sig",
        *(d / f"{n}.sig" for n in ("a", "b", "big", "c", "empty")),
    }
    for name, code in (("a", "bad-input"), ("big", "too-large"), ("empty", "bundle-malformed")):
        error = entries[d / f"{name}.sig"]
        assert isinstance(error, InputError), name
        assert error.code == code and str(d / f"{name}.sig") in str(error), (name, str(error))
    assert isinstance(entries[d / "b.sig"], Bundle) and isinstance(entries[d / "c.sig"], Bundle)


def test_links_fifos_sockets_and_folders_are_skipped_never_read(cosigned, tmp_path):
    d = cosigned / "model.sig.d"
    real = tmp_path / "real.sig"
    real.write_bytes((d / "b.sig").read_bytes())  # a valid bundle: a link to it is still skipped
    (d / "link.sig").symlink_to(real)
    (d / "dangling.sig").symlink_to(tmp_path / "nothing")
    os.mkfifo(d / "fifo.sig")
    (d / "folder.sig").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    short = Path(f"/tmp/cosign-{os.getpid()}-{id(sock)}.sock")  # AF_UNIX paths are short
    try:
        sock.bind(str(short))
        os.rename(short, d / "sock.sig")
        entries = dict(within(30, lambda: read_signatures(cosigned / "model.sig")))
    finally:
        sock.close()
        short.unlink(missing_ok=True)
    for name, kind in (
        ("link", "symbolic link"),
        ("dangling", "symbolic link"),
        ("fifo", "FIFO"),
        ("folder", "folder"),
        ("sock", "socket"),
    ):
        error = entries[d / f"{name}.sig"]
        assert isinstance(error, InputError), name
        assert kind in str(error) and "skipped" in str(error), str(error)
    assert sum(isinstance(v, Bundle) for v in entries.values()) == 4  # primary, a, b, c


def test_a_linked_folder_is_refused_as_one_entry(model, tmp_path, p256):
    provenance.sign(model, KeySigner.from_file(p256.private))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cosign(model, p256, signature_path=elsewhere / "x", cosign_name="a")  # a real bundle there
    (model / "model.sig.d").symlink_to(elsewhere / "x.d")
    entries = read_signatures(model / "model.sig")
    assert len(entries) == 2
    path, error = entries[1]
    assert path == model / "model.sig.d" and isinstance(error, InputError)
    assert "symbolic link" in str(error) and error.code == "cosignature-folder-refused"


def test_a_file_or_fifo_where_the_folder_belongs(model, p256):
    provenance.sign(model, KeySigner.from_file(p256.private))
    os.mkfifo(model / "model.sig.d")
    (_, error) = within(30, lambda: read_signatures(model / "model.sig"))[1]
    assert isinstance(error, InputError) and "FIFO" in str(error)


def test_at_most_64_cosignatures_are_read(model, p256):
    provenance.sign(model, KeySigner.from_file(p256.private))
    one = cosign(model, p256, cosign_name="c00").signature_path.read_bytes()
    d = model / "model.sig.d"
    for i in range(1, MAX_COSIGNATURES):
        (d / f"c{i:02}.sig").write_bytes(one)
    entries = read_signatures(model / "model.sig")
    assert len(entries) == 1 + MAX_COSIGNATURES
    assert all(isinstance(b, Bundle) for _, b in entries)

    (d / "c64.sig").write_bytes(one)
    entries = read_signatures(model / "model.sig")
    assert len(entries) == 2 and isinstance(entries[0][1], Bundle)
    path, error = entries[1]
    assert path == d and isinstance(error, InputError)
    assert error.code == "too-many-cosignatures" and "64" in str(error)


def test_a_folder_of_many_other_files_is_not_listed_to_the_end(model, p256):
    provenance.sign(model, KeySigner.from_file(p256.private))
    d = model / "model.sig.d"
    d.mkdir()
    for i in range(5000):
        (d / f"junk{i}").touch()
    (_, error) = read_signatures(model / "model.sig")[1]
    assert isinstance(error, InputError) and error.code == "too-many-cosignatures"


def test_a_signature_path_naming_no_file(tmp_path):
    with pytest.raises(UsageError):
        cosignature_dir(tmp_path / "..")
    entries = read_signatures(tmp_path / "..")
    assert [type(e) for _, e in entries] == [InputError, InputError]


# ---------------------------------------------------------------- verify and model-signing


def test_verify_leaves_the_cosignatures_out(cosigned, p256):
    ok = run_cli("verify", cosigned, "--key", p256.public, "--json")
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["unsigned_files_ignored"] == []
    assert not [f for f in data["findings"] if "model.sig.d" in json.dumps(f)]


def test_verify_leaves_them_out_for_a_signature_made_before_cosignatures(model, p256, p384):
    """DEFAULT_IGNORE_PATHS apply whatever the signature's own ignore list says."""
    old_style_signature(model, p256)
    cosign(model, p384, cosign_name="bob")
    result = provenance.verify(model, KeyVerifier.from_files(p256.public))
    assert not result.unsigned_files_ignored and not result.warnings
    ok = run_cli("verify", model, "--key", p256.public)
    assert ok.exit_code == 0, ok.output


def test_verify_leaves_them_out_beside_an_older_signature_at_another_path(model, p256, p384):
    sig = model / "sigs" / "main.sig"
    sig.parent.mkdir()
    old_style_signature(model, p256, signature=sig)
    assert "sigs/main.sig.d" not in ignore_list(sig)
    cosign(model, p384, signature_path=sig, cosign_name="bob")
    ok = run_cli("verify", model, "--key", p256.public, "--signature", sig)
    assert ok.exit_code == 0, ok.output + (ok.stderr or "")


def test_other_files_under_model_sig_d_are_not_model_files_either(cosigned, p256):
    (cosigned / "model.sig.d" / "README.md").write_text("who signed what")
    assert provenance.verify(cosigned, KeyVerifier.from_files(p256.public))


@needs_model_signing
def test_model_signing_verifies_model_sig_beside_cosignatures(cosigned, p256, p384):
    ms = model_signing_cli(
        "verify", "key", cosigned, "--public_key", p256.public,
        "--signature", cosigned / "model.sig",
    )  # fmt: skip
    assert ms.returncode == 0, ms.stderr + ms.stdout
    # A co-signature is an OMS bundle model-signing verifies too.
    ms = model_signing_cli(
        "verify", "key", cosigned, "--public_key", p384.public,
        "--signature", cosigned / "model.sig.d" / "b.sig",
    )  # fmt: skip
    assert ms.returncode == 0, ms.stderr + ms.stdout


@needs_model_signing
def test_model_signing_sees_cosignatures_beside_an_older_signature(model, p256, p384):
    """The limit of compatibility: model-signing repeats only the recorded ignore list.

    A signature made before co-signatures does not list model.sig.d, so
    model-signing counts the co-signatures as files the signature lacks;
    signing the model again (then co-signing again) fixes it.
    """
    old_style_signature(model, p256)
    ms = model_signing_cli(
        "verify", "key", model, "--public_key", p256.public, "--signature", model / "model.sig"
    )
    assert ms.returncode == 0, ms.stderr + ms.stdout
    cosign(model, p384, cosign_name="bob")
    ms = model_signing_cli(
        "verify", "key", model, "--public_key", p256.public, "--signature", model / "model.sig"
    )
    assert ms.returncode != 0
    assert "model.sig.d" in ms.stderr + ms.stdout
