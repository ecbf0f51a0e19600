from __future__ import annotations


class ConfigError(ValueError):
    """A study setting the engine cannot work with; `field` is a dotted path into the study."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
