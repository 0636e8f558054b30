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

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictInt,
    StringConstraints,
)
from typing_extensions import TypeAliasType

T = TypeVar("T")

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators (they break lines, too).
_CONTROLS = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029"
# The same, minus tab, line feed and carriage return.
_CONTROLS_MULTILINE = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_CONTROL_MULTILINE = re.compile(f"[{_CONTROLS_MULTILINE}]")


def _documented(controls: str) -> Any:
    """The rule in the OpenAPI too (so clients and schemathesis know it): no such characters,
    and, once trimmed, not blank unless empty."""
    pattern = f"^(?:[^{controls}]*[^\\s{controls}][^{controls}]*)?$"
    return Field(json_schema_extra={"pattern": pattern})


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (line breaks, NUL, ...) are not allowed here")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL_MULTILINE.search(value):
        raise ValueError("control characters other than line breaks and tabs are not allowed")
    return value


_Trimmed = StringConstraints(strip_whitespace=True)
SingleLine = Annotated[str, _Trimmed, AfterValidator(_single_line), _documented(_CONTROLS)]
MultiLine = Annotated[str, _Trimmed, AfterValidator(_multi_line), _documented(_CONTROLS_MULTILINE)]
Password = Annotated[
    str, AfterValidator(_single_line), Field(json_schema_extra={"pattern": f"^[^{_CONTROLS}]*$"})
]
# Free-form JSON (resource attributes, JSON Schemas): text may span lines, keys may not, and
# numbers are finite. Recursive, so the rule holds at every depth and is in the OpenAPI.
_JsonKey = Annotated[
    str, AfterValidator(_single_line), Field(json_schema_extra={"pattern": f"^[^{_CONTROLS}]*$"})
]
_JsonText = Annotated[
    str, AfterValidator(_multi_line), Field(json_schema_extra={"pattern": f"^[^{_CONTROLS_MULTILINE}]*$"})
]


class _KeyRule:
    """JSON Schema for the key rule: `propertyNames` (`patternProperties` would allow others)."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> Any:
        schema = handler(core_schema)
        for pattern, value in schema.pop("patternProperties", {}).items():
            schema["propertyNames"] = {"pattern": pattern}
            schema["additionalProperties"] = value
        return schema


JsonValue = TypeAliasType(
    "JsonValue",
    "Union[_JsonText, bool, int, Annotated[float, Field(allow_inf_nan=False)], None, "
    "list[JsonValue], Annotated[dict[_JsonKey, JsonValue], _KeyRule()]]",
)
JsonObject = Annotated[dict[_JsonKey, JsonValue], _KeyRule()]
TextMap = Annotated[dict[SingleLine, SingleLine], _KeyRule()]


def _json_int(value: Any) -> Any:
    """JSON Schema's integer: 5 and 5.0, never "5" or true (Pydantic's lax mode takes both)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _iso_datetime(value: Any) -> Any:
    """An ISO 8601 date-time as documented, not a number of seconds (Pydantic's lax mode)."""
    if not isinstance(value, datetime) and not (isinstance(value, str) and _ISO_DATE.match(value)):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2030-01-31T12:00:00Z")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")  # a date alone means its midnight, UTC
# Last in `Annotated[StrictInt, Field(ge=..), JSON_INTEGER]`, so bounds still show in the OpenAPI.
JSON_INTEGER = BeforeValidator(_json_int)
JsonInt = Annotated[StrictInt, JSON_INTEGER]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


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
