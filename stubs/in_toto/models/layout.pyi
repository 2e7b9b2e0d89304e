from typing import Any

class Step:
    name: str
    pubkeys: list[str]
    threshold: int
    expected_command: list[str]
    expected_materials: list[list[str]]
    expected_products: list[list[str]]

class Inspection:
    name: str
    run: list[str]
    expected_materials: list[list[str]]
    expected_products: list[list[str]]

class Layout:
    type_: str
    steps: list[Step]
    inspect: list[Inspection]
    keys: dict[str, dict[str, Any]]
    expires: str
    readme: str
    def __init__(self, **kwargs: Any) -> None: ...
    @staticmethod
    def read(data: dict[str, Any]) -> Layout: ...
    def validate(self) -> None: ...
