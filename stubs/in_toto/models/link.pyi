from typing import Any

FILENAME_FORMAT: str
FILENAME_FORMAT_SHORT: str

class Link:
    type_: str
    name: str
    materials: dict[str, dict[str, str]]
    products: dict[str, dict[str, str]]
    byproducts: dict[str, Any]
    command: list[str]
    environment: dict[str, Any]
    def __init__(self, **kwargs: Any) -> None: ...
    @staticmethod
    def read(data: dict[str, Any]) -> Link: ...
    def validate(self) -> None: ...
