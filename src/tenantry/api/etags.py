"""ETag / If-Match for optimistic concurrency on editable objects."""

from __future__ import annotations

from tenantry.errors import PreconditionFailed


def etag(version: int) -> str:
    return f'"v{version}"'


def parse_if_match(header: str | None) -> int | None:
    """`None` when absent or `*`; the version number otherwise; 412 for a tag we never issued."""
    if header is None or header.strip() == "*":
        return None
    tag = header.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    if not tag.startswith("v") or not tag[1:].isdigit():
        raise PreconditionFailed("If-Match does not match the current version")
    return int(tag[1:])
