"""Notes (Markdown) on studies and trials and tags on trials: their limits, checked the
same way on a PATCH body and on an imported document.

- notes: at most `NOTES_MAX_BYTES` of UTF-8 (64 KiB); "" is no note.
- tags: at most `MAX_TAGS`; each trimmed, then 1 to `TAG_MAX_CHARS` characters, without
  commas (the CSV export joins them with commas) or control characters; duplicates after
  trimming are dropped, the first one kept.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

NOTES_MAX_BYTES = 64 * 1024
MAX_TAGS = 32
TAG_MAX_CHARS = 64
# Characters of a trial's note that a trials listing carries (`notes_excerpt`).
EXCERPT_CHARS = 160


def check_notes(text: str) -> str:
    if "\x00" in text:
        raise ValueError("holds a NUL character, which notes cannot store")
    size = len(text.encode("utf-8"))
    if size > NOTES_MAX_BYTES:
        raise ValueError(
            f"is {size} bytes of UTF-8; notes hold at most {NOTES_MAX_BYTES} bytes (64 KiB)"
        )
    return text


def check_tag(tag: str) -> str:
    tag = tag.strip()
    if not tag:
        raise ValueError("a tag is 1 to 64 characters (this one is empty once trimmed)")
    if len(tag) > TAG_MAX_CHARS:
        raise ValueError(f"a tag is 1 to {TAG_MAX_CHARS} characters (this one is {len(tag)})")
    if "," in tag:
        raise ValueError("a tag holds no commas")
    if any(unicodedata.category(c) == "Cc" for c in tag):
        raise ValueError("a tag holds no control characters")
    return tag


def dedupe_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Notes = Annotated[
    str,
    AfterValidator(check_notes),
    Field(description='Markdown, at most 64 KiB of UTF-8; "" removes the note.'),
]
Tag = Annotated[str, AfterValidator(check_tag)]
Tags = Annotated[
    list[Tag],
    Field(
        max_length=MAX_TAGS,
        description="At most 32; each trimmed, 1-64 characters, no commas or control "
        "characters; duplicates dropped. Replaces the trial's tags.",
    ),
    AfterValidator(dedupe_tags),
]
