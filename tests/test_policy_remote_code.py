"""The policy's ``loading:`` section: whether verified loaders may run a model's own code.

Real policy files in tmp_path through the real loader, like test_policy_load.py:
the default refuses remote code, ``trust_remote_code: true`` allows it and says
so in ``describe``, and a misspelt or mistyped key is an error with its line
(the section is closed, so a typo cannot silently leave remote code refused or,
worse, be read as something else).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_policy_load import D1, problems, write

from provenance.policy._describe import describe, starter
from provenance.policy._load import load
from provenance.policy._model import LoadingRules

SIGNERS = f'signers: [{{fingerprint: "{D1}"}}]\n'


def test_remote_code_is_refused_by_default(tmp_path: Path) -> None:
    policy = load(write(tmp_path, "policy.yaml", "version: 1\n" + SIGNERS))
    assert policy.loading == LoadingRules(trust_remote_code=False)
    assert not any("trust_remote_code" in line for line in describe(policy))


def test_trust_remote_code_true_is_loaded_and_described(tmp_path: Path) -> None:
    text = "version: 1\n" + SIGNERS + "loading:\n  trust_remote_code: true\n"
    policy = load(write(tmp_path, "policy.yaml", text))
    assert policy.loading.trust_remote_code is True
    assert describe(policy)[-1] == (
        "Loaders may run the model's own Python code (trust_remote_code); "
        "every .py file of the model must be signed."
    )


def test_json_policy_and_an_explicit_false(tmp_path: Path) -> None:
    doc = f'{{"version": 1, "signers": [{{"fingerprint": "{D1}"}}], '
    doc += '"loading": {"trust_remote_code": false}}'
    policy = load(write(tmp_path, "policy.json", doc))
    assert policy.loading.trust_remote_code is False


def test_unknown_key_and_wrong_type_name_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # so messages name 'policy.yaml'
    here = tmp_path
    write(
        here,
        "policy.yaml",
        "version: 1\n" + SIGNERS + "loading:\n  trust_remote_cod: true\n",
    )
    assert problems("policy.yaml") == [
        "policy.yaml line 4: loading: unknown key 'trust_remote_cod' "
        "(did you mean 'trust_remote_code'?)"
    ]
    write(
        here,
        "policy.yaml",
        "version: 1\n" + SIGNERS + 'loading: {trust_remote_code: "yes"}\n',
    )
    assert problems("policy.yaml") == [
        "policy.yaml line 3: loading.trust_remote_code: expected true or false, "
        "got the string 'yes'"
    ]


def test_the_starter_mentions_the_section_commented_out() -> None:
    text = starter("key", key="release.pub")
    assert "# loading:\n#   trust_remote_code: false" in text
