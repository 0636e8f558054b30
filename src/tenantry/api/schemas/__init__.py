"""Pydantic request/response models: <Noun>Create, <Noun>Update, <Noun>Out, Page[<Noun>Out].

Every text a client sends is one of three kinds, so bad characters are refused (422) before a
service sees them and never reach the database, a log line or a mail header:

- `SingleLine`: names, slugs, keys, emails, codes, tokens. Trimmed; no control characters at
  all (CR/LF in a tenant name would otherwise end up in a mail's Subject header).
- `MultiLine`: descriptions and notes. Trimmed; line breaks and tabs kept, other controls refused.
- `Password`: kept exactly as typed (never trimmed, NIST 800-63B), controls refused.

Free-form JSON (`JsonObject`: resource attributes, schemas) gets the same rules for its strings
and keys, and refuses non-finite numbers (PostgreSQL's jsonb cannot hold NUL, and a stored NaN
breaks every attribute filter of the tenant).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

T = TypeVar("T")

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators (they break lines, too).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same, minus tab, line feed and carriage return.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (line breaks, NUL, ...) are not allowed here")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL_MULTILINE.search(value):
        raise ValueError("control characters other than line breaks and tabs are not allowed")
    return value


def _json_value(value: Any, path: str = "") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path or 'value'}: NaN and Infinity are not JSON numbers")
    if isinstance(value, str):
        if _CONTROL_MULTILINE.search(value):
            raise ValueError(f"{path or 'value'}: control characters are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _CONTROL.search(key):
                raise ValueError(f"{path}{key!r}: control characters are not allowed in keys")
            _json_value(item, f"{path}{key}.")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _json_value(item, f"{path}{i}.")


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    _json_value(value)
    return value


SingleLine = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_single_line)]
MultiLine = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_multi_line)]
Password = Annotated[str, AfterValidator(_single_line)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, so `id`/`tenant_id` can never be mass-assigned.

    No model-wide trimming: `SingleLine`/`MultiLine` trim, passwords must stay as typed.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
