"""A policy's ``pipeline:`` section: the model must be the verified pipeline's final product."""

from __future__ import annotations

import pytest
from test_pipeline import Pipeline

import provenance
from provenance.policy import PolicyError, describe, evaluate, load
from provenance.signing import KeySigner


@pytest.fixture
def released(tmp_path, monkeypatch, p384, p256, ed25519_key) -> Pipeline:
    """The toy pipeline run to the end, its release signed by bob."""
    monkeypatch.chdir(tmp_path)
    toy = Pipeline(tmp_path, p384, p256, ed25519_key)
    toy.sign_layout()
    toy.run_all()
    provenance.sign(tmp_path / "release", KeySigner.from_file(ed25519_key.private))
    return toy


def policy(toy: Pipeline, model: str = "{step: package, path: release}", **extra: str):
    text = (
        "version: 1\n"
        f"signers: [{{key: '{toy.bob.public}'}}]\n"
        "pipeline:\n"
        "  layout: root.layout\n"
        f"  layout_keys: ['{toy.owner.public}']\n"
        "  links: links\n"
        f"  model: {model}\n"
    )
    text += "".join(f"  {k}: {v}\n" for k, v in extra.items())
    path = toy.root / "policy.yaml"
    path.write_text(text)
    return load(path)


def resign(toy: Pipeline) -> None:
    provenance.sign(toy.root / "release", KeySigner.from_file(toy.bob.private))


def errors(decision):
    return [r for r in decision.reasons if r.severity == "error"]


def test_the_pipelines_product_is_allowed(released):
    decision = evaluate(policy(released), released.root / "release")
    assert decision.allowed, [r.message for r in decision.reasons]
    held = {r.rule: r for r in decision.rules}
    assert held["pipeline"].held
    assert "4 step(s) verified; the model is the products of step 'package'" in (
        held["pipeline"].summary
    )
    # The default step is the layout's last one.
    assert evaluate(policy(released, "{path: release}"), released.root / "release").allowed


def test_a_model_changed_after_packaging_is_denied(released):
    (released.root / "release" / "README.md").write_text("# a different card\n")
    resign(released)  # signed again: the signature alone would pass
    decision = evaluate(policy(released), released.root / "release")
    assert not decision.allowed
    (reason,) = errors(decision)
    assert reason.code == "pipeline-file-differs" and reason.rule == "pipeline.model"
    assert reason.subject == "README.md"
    assert "'README.md' of the model differs from 'release/README.md' of step 'package'" in (
        reason.message
    )


def test_files_the_pipeline_did_not_produce_or_the_model_lacks(released):
    (released.root / "release" / "extra.bin").write_bytes(b"smuggled")
    (released.root / "release" / "README.md").unlink()
    resign(released)
    found = {r.code: r for r in errors(evaluate(policy(released), released.root / "release"))}
    assert set(found) == {"pipeline-file-missing", "pipeline-file-extra"}
    assert found["pipeline-file-missing"].subject == "extra.bin"
    assert "'release/README.md', which the model lacks" in found["pipeline-file-extra"].message


def test_a_broken_pipeline_is_denied_with_its_reason(released):
    released.link("evaluate", released.alice).unlink()
    decision = evaluate(policy(released), released.root / "release")
    assert not decision.allowed
    (reason,) = errors(decision)
    assert reason.code == "link-missing" and reason.rule == "pipeline"
    assert "step 'evaluate' has no link" in reason.message


def test_a_model_hashed_otherwise_cannot_be_tied(released):
    provenance.sign(
        released.root / "release", KeySigner.from_file(released.bob.private), algorithm="blake3"
    )
    (reason,) = errors(evaluate(policy(released), released.root / "release"))
    assert reason.code == "pipeline-digest-mismatch"
    assert "signed with sha256 files" in reason.message


def test_missing_links_folder_is_a_reason(released):
    pol = policy(released)
    (released.root / "links").rename(released.root / "elsewhere")
    (reason,) = errors(evaluate(pol, released.root / "release"))
    assert reason.code == "pipeline-unreadable" and "links folder" in reason.message


def test_policy_checks_and_describes_the_section(released):
    pol = policy(released)
    assert pol.pipeline is not None and pol.pipeline.layout == released.root / "root.layout"
    assert any("verified in-toto pipeline" in line for line in describe(pol))
    with pytest.raises(PolicyError, match="unknown key 'stpe'"):
        policy(released, "{stpe: package}")
    (released.root / "policy.yaml").write_text(
        f"version: 1\nsigners: [{{key: '{released.bob.public}'}}]\n"
        "pipeline: {layout: root.layout, links: links}\n"
    )
    with pytest.raises(PolicyError, match="layout_keys"):
        load(released.root / "policy.yaml")
