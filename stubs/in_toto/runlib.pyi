from collections.abc import Sequence

from in_toto.models.metadata import Metadata
from securesystemslib.signer import Signer

def in_toto_run(
    name: str,
    material_list: Sequence[str] | None,
    product_list: Sequence[str] | None,
    link_cmd_args: Sequence[str],
    record_streams: bool = ...,
    gpg_keyid: str | None = ...,
    gpg_use_default: bool = ...,
    gpg_home: str | None = ...,
    exclude_patterns: Sequence[str] | None = ...,
    base_path: str | None = ...,
    compact_json: bool = ...,
    record_environment: bool = ...,
    normalize_line_endings: bool = ...,
    lstrip_paths: Sequence[str] | None = ...,
    metadata_directory: str | None = ...,
    use_dsse: bool = ...,
    timeout: float | None = ...,
    signer: Signer | None = ...,
) -> Metadata: ...
