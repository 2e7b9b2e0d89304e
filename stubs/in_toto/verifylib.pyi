from collections.abc import Mapping
from typing import Any

from in_toto.models.layout import Layout
from in_toto.models.link import Link
from in_toto.models.metadata import Metadata

RULE_TRACE: dict[str, Any]

def in_toto_verify(
    metadata: Metadata,
    layout_key_dict: Mapping[str, Mapping[str, Any]],
    link_dir_path: str = ...,
    substitution_parameters: Mapping[str, str] | None = ...,
    step_name: str = ...,
    persist_inspection_links: bool = ...,
    inspect_timeout: float = ...,
) -> Link: ...
def verify_metadata_signatures(
    metadata: Metadata, keys_dict: Mapping[str, Mapping[str, Any]]
) -> None: ...
def verify_layout_expiration(layout: Layout) -> None: ...
def load_links_for_layout(layout: Layout, link_dir_path: str) -> dict[str, dict[str, Metadata]]: ...
def verify_link_signature_thresholds(
    layout: Layout, steps_metadata: Mapping[str, Mapping[str, Metadata]]
) -> dict[str, dict[str, Metadata]]: ...
