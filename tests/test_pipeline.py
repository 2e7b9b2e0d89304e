"""Pipelines: a four-step toy pipeline recorded with in-toto and verified against its layout.

Everything is real: keys from conftest, commands that write files
(``python -c``), links and layouts made and verified by the ``in-toto``
library. Each attack the issue lists is rejected, and the reason names the
step, the rule (or threshold) and the file.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_fails, run_cli

from provenance import pipeline
from provenance.errors import InputError, UsageError

PY = sys.executable
IN_TOTO_VERIFY = Path(sys.executable).with_name("in-toto-verify")

# What each step does (run in the pipeline's folder).
PREPARE = (
    "import os; os.makedirs('data', exist_ok=True); "
    "rows = open('raw/rows.csv').read().splitlines(); "
    "open('data/train.csv', 'w').write('\\n'.join(rows[:3])); "
    "open('data/test.csv', 'w').write('\\n'.join(rows[3:]))"
)
TRAIN = (
    "import os, hashlib; os.makedirs('model', exist_ok=True); "
    "d = open('data/train.csv', 'rb').read(); "
    "open('model/weights.bin', 'wb').write(hashlib.sha256(d).digest() * 64); "
    "open('model/config.json', 'w').write('{\"layers\": 2}')"
)
EVALUATE = (
    "import os; os.makedirs('eval', exist_ok=True); "
    "n = len(open('data/test.csv').read().splitlines()); "
    "w = open('model/weights.bin', 'rb').read(); "
    "open('eval/metrics.json', 'w').write('{\"accuracy\": %.2f}' % (w[0] / 255))"
)
PACKAGE = (
    "import os, shutil; os.makedirs('release', exist_ok=True); "
    "[shutil.copy('model/' + f, 'release/' + f) for f in os.listdir('model')]; "
    "open('release/README.md', 'w').write('# toy model\\n' + open('eval/metrics.json').read())"
)
STEPS = {
    "prepare-data": (PREPARE, ["raw"], ["data"]),
    "train": (TRAIN, ["data"], ["model"]),
    "evaluate": (EVALUATE, ["model", "data"], ["eval"]),
    "package": (PACKAGE, ["model", "eval"], ["release"]),
}


class Pipeline:
    """A pipeline folder: raw data, keys, a signed layout, links after each step."""

    def __init__(self, root: Path, owner, alice, bob) -> None:
        self.root, self.owner, self.alice, self.bob = root, owner, alice, bob
        self.links = root / "links"
        self.layout = root / "root.layout"
        (root / "raw").mkdir()
        (root / "raw" / "rows.csv").write_text("1,2\n3,4\n5,6\n7,8\n9,10\n")
        # Two functionaries: alice prepares and evaluates, bob trains and packages.
        self.who = {"prepare-data": alice, "train": bob, "evaluate": alice, "package": bob}

    def sign_layout(self, **kwargs) -> Path:
        keys = {step: [kp.public] for step, kp in self.who.items()}
        keys.update(kwargs.pop("functionaries", {}))
        layout = pipeline.starter_layout(keys, **kwargs)
        plain = self.root / "root.layout.json"
        if plain.exists():
            plain.unlink()
        pipeline.write_layout(layout, plain)
        pipeline.sign_layout(plain, pipeline.key_signer(self.owner.private))
        return self.layout

    def run(self, step: str, signer=None, *, code: str | None = None, **kwargs):
        script, materials, products = STEPS[step]
        key = signer or self.who[step]
        return pipeline.run_step(
            step,
            [PY, "-c", code or script],
            signer=pipeline.key_signer(key.private),
            materials=kwargs.pop("materials", materials),
            products=kwargs.pop("products", products),
            links_dir=self.links,
            base_path=self.root,
            **kwargs,
        )

    def run_all(self, *, until: str | None = None) -> None:
        for step in STEPS:
            self.run(step)
            if step == until:
                return

    def verify(self, *keys) -> pipeline.PipelineReport:
        return pipeline.verify_pipeline(
            self.layout, [k.public for k in keys] or [self.owner.public], self.links
        )

    def link(self, step: str, key) -> Path:
        keyid = pipeline.public_key_dict(key.public)["keyid"]
        return self.links / pipeline.link_name(step, keyid)


@pytest.fixture
def toy(tmp_path, monkeypatch, p384, p256, ed25519_key) -> Pipeline:
    monkeypatch.chdir(tmp_path)  # the steps' commands write relative paths
    return Pipeline(tmp_path, p384, p256, ed25519_key)


def only_error(report: pipeline.PipelineReport):
    errors = report.errors
    assert len(errors) == 1, [f.message for f in report.findings]
    return errors[0]


# ---------------------------------------------------------------- the chain verifies


def test_four_steps_by_two_functionaries_verify(toy):
    toy.sign_layout()
    toy.run_all()
    report = toy.verify()
    assert report.ok, [f.message for f in report.findings]
    assert [s.name for s in report.steps] == list(pipeline.DEFAULT_STEPS)
    alice = pipeline.public_key_dict(toy.alice.public)["keyid"]
    bob = pipeline.public_key_dict(toy.bob.public)["keyid"]
    assert {s.name: s.signed_by for s in report.steps} == {
        "prepare-data": (alice,),
        "train": (bob,),
        "evaluate": (alice,),
        "package": (bob,),
    }
    package = report.step("package")
    assert package is not None and package.exit_code == 0
    assert set(package.products) == {
        "release/weights.bin",
        "release/config.json",
        "release/README.md",
    }
    assert sorted(os.listdir(toy.links)) == sorted(
        pipeline.link_name(step, pipeline.public_key_dict(k.public)["keyid"])
        for step, k in toy.who.items()
    )


def test_links_are_in_totos_own(toy):
    """The link is an in-toto DSSE envelope, and in-toto's own CLI verifies the chain."""
    toy.sign_layout()
    toy.run_all()
    envelope = json.loads(toy.link("train", toy.bob).read_bytes())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    link = json.loads(base64.b64decode(envelope["payload"]))
    assert link["_type"] == "link" and link["name"] == "train"
    assert link["command"] == [PY, "-c", TRAIN]
    assert link["byproducts"] == {"return-value": 0, "stderr": "", "stdout": ""}
    assert set(link["materials"]) == {"data/train.csv", "data/test.csv"}
    digest = link["products"]["model/config.json"]["sha256"]
    import hashlib

    assert digest == hashlib.sha256((toy.root / "model" / "config.json").read_bytes()).hexdigest()
    if not IN_TOTO_VERIFY.exists():
        pytest.skip("in-toto-verify not installed beside this Python")
    proc = subprocess.run(
        [
            IN_TOTO_VERIFY,
            "-l",
            toy.layout,
            "--verification-keys",
            toy.owner.public,
            "--link-dir",
            toy.links,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_record_streams_uses_in_totos_runner(toy):
    toy.sign_layout()
    result = toy.run("prepare-data", code=PREPARE + "; print('prepared')", record_streams=True)
    assert result.streams_recorded
    link = json.loads(base64.b64decode(json.loads(result.link_path.read_bytes())["payload"]))
    assert link["byproducts"]["stdout"] == "prepared\n"
    assert link["byproducts"]["return-value"] == 0


def test_large_tree_is_recorded_by_the_engine(toy):
    """Hundreds of files in nested folders: every one recorded, keyed as in-toto keys it."""
    raw = toy.root / "raw"
    for i in range(300):
        sub = raw / f"shard-{i % 7}"
        sub.mkdir(exist_ok=True)
        (sub / f"part-{i:04d}.txt").write_text(f"row {i}\n" * (i % 5 + 1))
    (raw / "__pycache__").mkdir()
    (raw / "__pycache__" / "x.pyc").write_bytes(b"left out")
    recorded = pipeline.record_artifacts(["raw", "./raw/rows.csv"], base=toy.root)
    assert len(recorded.artifacts) == 301
    assert "raw/shard-3/part-0003.txt" in recorded.artifacts
    assert not any("__pycache__" in k for k in recorded.artifacts)
    # The same keys and digests in-toto's own recorder makes.
    from in_toto.runlib import record_artifacts_as_dict

    theirs = record_artifacts_as_dict(
        ["raw"], base_path=str(toy.root), exclude_patterns=["*.pyc", "__pycache__"]
    )
    assert {k: v["sha256"] for k, v in theirs.items()} == recorded.artifacts


# ---------------------------------------------------------------- the attacks


def test_step_signed_by_a_key_the_layout_does_not_list(toy, other_key):
    toy.sign_layout()
    toy.run_all(until="prepare-data")
    toy.run("train", signer=other_key)  # mallory trains instead of bob
    toy.run("evaluate")
    toy.run("package")
    finding = only_error(toy.verify())
    assert finding.code == "link-missing"
    mallory = pipeline.public_key_dict(other_key.public)["keyid"]
    assert "step 'train'" in finding.message
    assert f"train.{mallory[:8]}.link is signed by key {mallory[:16]}" in finding.message
    assert "which the layout does not list" in finding.message


def test_key_listed_for_another_step_only(toy):
    toy.sign_layout()
    toy.run_all(until="prepare-data")
    toy.run("train", signer=toy.alice)  # alice may prepare and evaluate, not train
    finding = next(f for f in toy.verify().errors if f.code == "link-missing")
    assert "lists for prepare-data, evaluate but not for 'train'" in finding.message


def test_product_modified_between_steps(toy):
    toy.sign_layout()
    toy.run_all(until="prepare-data")
    (toy.root / "data" / "train.csv").write_text("1,2\n3,4\n5,666\n")  # poisoned after the fact
    toy.run("train")
    toy.run("evaluate")
    toy.run("package")
    report = toy.verify()
    assert {s.name: s.ok for s in report.steps} == {
        "prepare-data": True,
        "train": False,
        "evaluate": False,  # in-toto stopped at train: never shown as verified
        "package": False,
    }
    assert [s.name for s in report.steps if s.checked] == ["prepare-data", "train"]
    finding = only_error(report)
    assert finding.code == "artifact-rule"
    assert finding.path == "data/train.csv"
    assert finding.message.startswith("step 'train' materials: rule 'DISALLOW *' refuses")
    assert "material 'data/train.csv', which differs from the product step 'prepare-data'" in (
        finding.message
    )


def test_missing_step(toy):
    toy.sign_layout()
    toy.run_all()
    toy.link("evaluate", toy.alice).unlink()
    finding = only_error(toy.verify())
    assert finding.code == "link-missing"
    alice = pipeline.public_key_dict(toy.alice.public)["keyid"]
    assert "step 'evaluate' has no link" in finding.message
    assert finding.path == f"evaluate.{alice[:8]}.link"


def test_expired_layout(toy):
    toy.sign_layout(expires=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    toy.run_all()
    finding = only_error(toy.verify())
    assert finding.code == "layout-expired"
    assert "expired at 2024-01-01T00:00:00Z" in finding.message
    assert finding.path == str(toy.layout)


def test_layout_changed_after_signing(toy):
    toy.sign_layout()
    toy.run_all()
    envelope = json.loads(toy.layout.read_bytes())
    layout = json.loads(base64.b64decode(envelope["payload"]))
    layout["steps"][1]["expected_materials"] = [["ALLOW", "*"]]  # let anything into training
    envelope["payload"] = base64.b64encode(json.dumps(layout).encode()).decode()
    toy.layout.write_text(json.dumps(envelope))
    finding = only_error(toy.verify())
    assert finding.code == "layout-signature"
    assert "changed after it was signed" in finding.message
    assert report_steps_empty(toy)


def report_steps_empty(toy) -> bool:
    return toy.verify().steps == ()


def test_layout_signed_by_someone_else(toy, other_key):
    toy.sign_layout()
    toy.run_all()
    finding = only_error(toy.verify(other_key))
    assert finding.code == "layout-signature"
    owner = pipeline.public_key_dict(toy.owner.public)["keyid"]
    mallory = pipeline.public_key_dict(other_key.public)["keyid"]
    assert f"not signed by key {mallory[:16]} (it is signed by {owner[:16]})" in finding.message


def test_material_that_was_not_the_previous_steps_product(toy):
    toy.sign_layout()
    toy.run_all(until="train")
    (toy.root / "data" / "extra.csv").write_text("smuggled\n")  # nobody produced it
    toy.run("evaluate")
    toy.run("package")
    finding = only_error(toy.verify())
    assert finding.code == "artifact-rule"
    assert finding.path == "data/extra.csv"
    assert "step 'evaluate' materials: rule 'DISALLOW *'" in finding.message
    assert "'data/extra.csv', which is not among the products of step 'prepare-data'" in (
        finding.message
    )


def test_release_that_is_not_trainings_model(toy):
    toy.sign_layout()
    toy.run_all(until="evaluate")
    toy.run("package", code=PACKAGE + "; open('release/weights.bin', 'ab').write(b'backdoor')")
    finding = only_error(toy.verify())
    assert "step 'package' products" in finding.message
    assert "'release/weights.bin', which differs from the product step 'train' recorded as " in (
        finding.message
    )
    assert "'model/weights.bin'" in finding.message


def test_threshold_of_two_met_by_one(toy, other_key):
    """train needs bob and carol; bob's link copied under carol's name counts once."""
    toy.sign_layout(
        functionaries={"train": [toy.bob.public, other_key.public]}, thresholds={"train": 2}
    )
    toy.run_all()
    carol = pipeline.public_key_dict(other_key.public)["keyid"]
    bob = pipeline.public_key_dict(toy.bob.public)["keyid"]
    finding = only_error(toy.verify())
    assert finding.code == "link-missing"
    assert "step 'train' needs links from 2 functionaries" in finding.message
    shutil.copy(toy.link("train", toy.bob), toy.link("train", other_key))
    finding = only_error(toy.verify())
    # The copy does not verify, so in-toto never sees it: one link for a threshold of two.
    assert finding.code == "link-missing"
    assert "step 'train' needs links from 2 functionaries" in finding.message
    assert f"train.{carol[:8]}.link is named for key {carol[:16]} but signed by {bob[:16]}" in (
        finding.message
    )
    # carol really signs: the threshold is met.
    toy.run("train", signer=other_key)
    assert toy.verify().ok


def test_failed_step_is_recorded_and_refused(toy):
    toy.sign_layout()
    toy.run_all(until="prepare-data")
    result = toy.run("train", code=TRAIN + "; raise SystemExit(3)")
    assert result.exit_code == 3 and not result.ok
    assert result.link_path.exists()  # the failure is evidence too
    toy.run("evaluate")
    toy.run("package")
    finding = only_error(toy.verify())
    assert finding.code == "step-failed"
    assert "step 'train': its command exited with 3" in finding.message


# ---------------------------------------------------------------- hostile input


def test_a_link_that_is_a_symlink_or_fifo_is_not_read(toy):
    toy.sign_layout()
    toy.run_all()
    link = toy.link("train", toy.bob)
    saved = toy.root / "saved.link"
    link.rename(saved)
    link.symlink_to(saved)
    finding = only_error(toy.verify())
    assert finding.code == "link-missing"
    assert "symbolic link" in finding.message
    link.unlink()
    os.mkfifo(link)  # reading it would hang
    finding = only_error(toy.verify())
    assert "a FIFO" in finding.message


def test_an_oversized_link_is_not_read(toy):
    toy.sign_layout()
    toy.run_all()
    report = pipeline.verify_pipeline(toy.layout, [toy.owner.public], toy.links, max_link_bytes=200)
    assert report.errors[0].code == "link-missing"
    assert "larger than" in report.errors[0].message


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"payloadType": "x", "payload": "", "signatures": []}',
        b'{"signed": {"_type": "layout"}, "signatures": [{}]}',
        b"\xff" * 10,
    ],
)
def test_garbage_layout_is_a_finding_not_a_traceback(toy, content):
    toy.layout.write_bytes(content)
    toy.links.mkdir()
    report = toy.verify()
    assert not report.ok
    assert report.errors[0].code in ("layout-malformed", "layout-signature")


def test_garbage_link_is_a_finding(toy):
    toy.sign_layout()
    toy.run_all()
    toy.link("evaluate", toy.alice).write_text('{"payloadType": "application/vnd.in-toto+json"}')
    finding = only_error(toy.verify())
    assert "evaluate" in finding.message and "not an in-toto link" in finding.message


def test_missing_inputs_raise(toy):
    with pytest.raises(InputError, match="does not exist"):
        pipeline.verify_pipeline(toy.root / "nope.layout", [toy.owner.public], toy.root)
    toy.sign_layout()
    with pytest.raises(InputError, match="links folder"):
        pipeline.verify_pipeline(toy.layout, [toy.owner.public], toy.root / "nope")
    with pytest.raises(InputError, match="private key"):
        pipeline.verify_pipeline(toy.layout, [toy.owner.private], toy.root)


def test_inspections_do_not_run_unless_asked(toy):
    layout = pipeline.starter_layout({s: [k.public] for s, k in toy.who.items()})
    marker = toy.root / "ran"
    layout["inspect"] = [
        {
            "_type": "inspection",
            "name": "touch",
            "run": [PY, "-c", f"open({str(marker)!r}, 'w')"],
            "expected_materials": [],
            "expected_products": [],
        }
    ]
    signed = pipeline.sign_layout(layout, pipeline.key_signer(toy.owner.private), output=toy.layout)
    assert any("inspections" in w for w in signed.warnings)
    toy.run_all()
    finding = only_error(toy.verify())
    assert finding.code == "layout-inspections"
    assert not marker.exists()
    report = pipeline.verify_pipeline(
        toy.layout, [toy.owner.public], toy.links, run_inspections=True
    )
    assert report.ok, [f.message for f in report.findings]
    assert marker.exists()


# ---------------------------------------------------------------- recording


def test_materials_are_refused_when_unsafe(toy, tmp_path_factory):
    toy.sign_layout()
    signer = pipeline.key_signer(toy.alice.private)
    os.mkfifo(toy.root / "raw" / "pipe")
    with pytest.raises(InputError, match="FIFO"):
        pipeline.run_step("prepare-data", [PY, "-c", PREPARE], signer=signer, materials=["raw"])
    os.unlink(toy.root / "raw" / "pipe")
    outside = tmp_path_factory.mktemp("outside")
    (toy.root / "raw" / "escape").symlink_to(outside)
    with pytest.raises(InputError, match="symbolic link"):
        pipeline.run_step("prepare-data", [PY, "-c", PREPARE], signer=signer, materials=["raw"])
    with pytest.raises(InputError, match="outside"):
        pipeline.record_artifacts(["raw"], base=toy.root, allow_symlinks=True)
    with pytest.raises(UsageError, match="outside the base folder"):
        pipeline.record_artifacts(["../x"], base=toy.root)
    assert not toy.links.exists() or not os.listdir(toy.links)  # nothing was signed


def test_commands_that_cannot_start(toy):
    signer = pipeline.key_signer(toy.alice.private)
    with pytest.raises(pipeline.CommandError) as e:
        pipeline.run_step("prepare-data", ["no-such-command-xyz"], signer=signer)
    assert e.value.exit_code == 127
    with pytest.raises(pipeline.CommandError) as e:
        pipeline.run_step(
            "prepare-data", [PY, "-c", "import time; time.sleep(5)"], signer=signer, timeout=0.2
        )
    assert e.value.exit_code == 4 and "no link was written" in str(e.value)
    with pytest.raises(UsageError, match="step name"):
        pipeline.run_step("../evil", [PY, "-c", "0"], signer=signer)


def test_sigstore_and_certificates_are_refused_with_the_reason(toy, pki):
    from provenance.signing import CertificateSigner, KeySigner

    leaf = CertificateSigner.from_files(KeySigner.from_file(pki.leaf_key), pki.leaf, [])
    with pytest.raises(UsageError, match="by public key, not by certificate"):
        pipeline.run_step("train", [PY, "-c", "0"], signer=leaf)
    assert "Sigstore" in pipeline.SIGSTORE_UNSUPPORTED


def test_kms_uri_signs_links(toy):
    """A securesystemslib signer URI (file2:, as a KMS would be) signs a verified link."""
    toy.sign_layout()
    for step, key in toy.who.items():
        script, materials, products = STEPS[step]
        pipeline.run_step(
            step,
            [PY, "-c", script],
            signer=pipeline.kms_signer(f"file2:{key.private}", public_key=key.public),
            materials=materials,
            products=products,
            links_dir=toy.links,
        )
    assert toy.verify().ok


def test_a_second_owner_signs_the_same_layout(toy, other_key):
    toy.sign_layout()
    signed = pipeline.sign_layout(toy.layout, pipeline.key_signer(other_key.private))
    assert len(signed.signers) == 2 and signed.path == toy.layout
    toy.run_all()
    assert toy.verify(toy.owner, other_key).ok
    assert toy.verify(toy.owner).ok


# ---------------------------------------------------------------- the CLI


def cli_pipeline(toy) -> None:
    """The four steps through `provenance run`, the layout through `provenance layout`."""
    args = []
    for step, kp in toy.who.items():
        args += ["--functionary", f"{step}={kp.public}"]
    out = run_cli("layout", "init", *args, "--output", toy.root / "root.layout.json")
    assert out.exit_code == 0, out.output
    out = run_cli("layout", "sign", toy.root / "root.layout.json", "--key", toy.owner.private)
    assert out.exit_code == 0, out.output + (out.stderr or "")
    for step, (script, materials, products) in STEPS.items():
        result = run_cli(
            "run",
            "--step",
            step,
            "--key",
            toy.who[step].private,
            "--links",
            toy.links,
            "--materials",
            *materials,
            "--products",
            *products,
            "--",
            PY,
            "-c",
            script,
        )
        assert result.exit_code == 0, result.output + (result.stderr or "")
        assert f"Recorded step '{step}'" in result.output


def test_cli_end_to_end(toy):
    cli_pipeline(toy)
    result = run_cli(
        "verify-pipeline",
        "--layout",
        toy.layout,
        "--layout-key",
        toy.owner.public,
        "--links",
        toy.links,
    )
    assert result.exit_code == 0, result.output + (result.stderr or "")
    assert "Verified: pipeline" in result.output
    assert "✓ train: signed by" in result.output
    (toy.root / "data" / "train.csv").write_text("tampered")
    toy.run("train")
    result = run_cli(
        "verify-pipeline",
        "--layout",
        toy.layout,
        "--layout-key",
        toy.owner.public,
        "--links",
        toy.links,
    )
    assert_fails(result, 1, "step 'train' materials", "data/train.csv", "DISALLOW *")


def test_cli_run_usage(toy):
    result = run_cli("run", "--step", "x", "--key", toy.alice.private, PY, "-c", "0")
    assert result.exit_code == 2 and "after --" in result.output + (result.stderr or "")
    result = run_cli("run", "--step", "x", "--sigstore", "--", PY, "-c", "0")
    assert_fails(result, 2, "Sigstore keyless")
    result = run_cli("run", "--step", "x", "--key", toy.alice.private, "--", "no-such-cmd-xyz")
    assert_fails(result, 127, "command not found")
    result = run_cli(
        "run",
        "--step",
        "x",
        "--key",
        toy.alice.private,
        "--links",
        toy.links,
        "--",
        PY,
        "-c",
        "raise SystemExit(5)",
    )
    assert_fails(result, 4, "exited with 5", "the link records it")


@pytest.mark.skipif(shutil.which("bash") is None, reason="the example is a bash script")
def test_the_example_runs_end_to_end():
    """examples/pipeline/run.sh: four steps, two functionaries, verified; the attack refused."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent)}
    proc = subprocess.run(
        ["bash", root / "examples" / "pipeline" / "run.sh"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Verified: pipeline root.layout (4 steps" in out
    assert "Allowed by policy policy.yaml" in out
    assert "step 'train' materials: rule 'DISALLOW *' refuses material 'data/train.csv'" in out


# ---------------------------------------------------------------- hostile links and layouts


def _envelope(signable, key_pair, keyid=None):
    """A DSSE envelope over an in-toto object, signed as a functionary could."""
    from cryptography.hazmat.primitives import serialization
    from in_toto.models.metadata import Envelope
    from securesystemslib.signer import CryptoSigner, SSlibKey

    key = serialization.load_pem_private_key(key_pair.private.read_bytes(), None)
    signer = CryptoSigner(key, SSlibKey.from_crypto(key.public_key(), keyid=keyid))
    env = Envelope.from_signable(signable)
    env.create_signature(signer)
    return json.dumps(env.to_dict())


def test_a_sublayout_never_reaches_in_toto(toy, tmp_path):
    """A functionary's 'link' that is a layout would run its inspections: refused unread."""
    from in_toto.models.layout import Layout

    pwned = tmp_path / "pwned"
    toy.sign_layout()
    toy.run_all()
    sub = Layout.read(
        {
            "_type": "layout",
            "expires": "2099-01-01T00:00:00Z",
            "keys": {},
            "steps": [],
            "inspect": [
                {
                    "_type": "inspection",
                    "name": "x",
                    "run": [PY, "-c", f"open({str(pwned)!r}, 'w').write('ran')"],
                    "expected_materials": [],
                    "expected_products": [],
                }
            ],
        }
    )
    toy.link("prepare-data", toy.alice).write_text(_envelope(sub, toy.alice))
    report = toy.verify()
    assert not report.ok and not pwned.exists()
    assert any(f.code == "sublayout-refused" for f in report.errors)


def test_two_links_of_a_step_that_disagree_are_refused(toy, other_key, tmp_path):
    """Threshold one, two listed functionaries: a second link cannot claim other products."""
    toy.sign_layout(functionaries={"package": [toy.bob.public, other_key.public]})
    toy.run_all()
    (toy.root / "release" / "weights.bin").write_bytes(b"trojan")
    toy.run("package", signer=other_key, code="pass")  # records the trojaned release
    report = toy.verify()
    assert not report.ok
    assert any(f.code == "threshold-disagreement" for f in report.errors), report.findings


def test_a_link_replayed_under_another_step_is_refused(toy):
    toy.sign_layout()
    toy.run_all()
    toy.run("evaluate", signer=toy.alice, code=PREPARE, materials=["raw"], products=["data"])
    shutil.copy(toy.link("evaluate", toy.alice), toy.link("prepare-data", toy.alice))
    report = toy.verify()
    assert not report.ok
    assert any(f.code == "link-step-mismatch" for f in report.errors)


def test_one_key_under_two_ids_does_not_meet_a_threshold(toy):
    toy.sign_layout()
    plain = json.loads((toy.root / "root.layout.json").read_text())
    train = next(s for s in plain["steps"] if s["name"] == "train")
    bob = train["pubkeys"][0]
    fake = "deadbeef" + bob[8:]
    plain["keys"][fake] = {**plain["keys"][bob], "keyid": fake}
    train["pubkeys"].append(fake)
    train["threshold"] = 2
    (toy.root / "root.layout.json").write_text(json.dumps(plain))
    pipeline.sign_layout(toy.root / "root.layout.json", pipeline.key_signer(toy.owner.private))
    toy.run_all()
    report = toy.verify()
    assert not report.ok
    assert {"layout-key-id", "layout-key-twice"} & {f.code for f in report.errors}


def test_a_step_with_no_valid_link_never_verifies(toy):
    """0 must mean every step verified: a report with a step short of its links is not ok."""
    toy.sign_layout()
    toy.run_all()
    toy.link("package", toy.bob).write_text("{}")
    report = toy.verify()
    assert not report.ok
    assert not report.step("package").ok


def test_signing_the_plain_file_again_keeps_a_co_owner(toy, p521):
    toy.sign_layout()
    pipeline.sign_layout(toy.layout, pipeline.key_signer(p521.private))  # a second owner
    with pytest.raises(InputError) as e:
        pipeline.sign_layout(toy.root / "root.layout.json", pipeline.key_signer(toy.owner.private))
    assert e.value.code == "layout-signed-by-others"
    toy.run_all()
    assert toy.verify(toy.owner, p521).ok


@pytest.mark.parametrize("value", ["0", None, True])
def test_a_return_value_that_is_not_an_integer_fails(toy, value):
    from in_toto.models.link import Link
    from in_toto.models.metadata import Envelope

    toy.sign_layout()
    toy.run_all()
    path = toy.link("train", toy.bob)
    link = Envelope.from_dict(json.loads(path.read_text())).get_payload()
    assert isinstance(link, Link)
    link.byproducts["return-value"] = value
    path.write_text(_envelope(link, toy.bob))
    report = toy.verify()
    assert not report.ok and any(f.code == "step-failed" for f in report.errors)


def test_a_kms_file_uri_naming_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as e:
        pipeline.kms_signer(f"file2:{fifo}")
    assert e.value.code == "not-regular"


def test_a_link_for_a_step_the_layout_lacks_is_a_warning(toy):
    toy.sign_layout()
    toy.run_all(until="train")
    pipeline.run_step(
        "evalute",
        [PY, "-c", EVALUATE],
        signer=pipeline.key_signer(toy.alice.private),
        materials=["model", "data"],
        products=["eval"],
        links_dir=toy.links,
        base_path=toy.root,
    )
    report = toy.verify()
    warned = [f for f in report.findings if f.code == "link-unknown-step"]
    assert warned and "did you mean 'evaluate'" in warned[0].message
