"""The OData parts of a request: ``Prefer`` preferences and the ``$`` query options."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.graph_emulator import fields
from tests.graph_emulator.errors import GraphError, bad_request, not_implemented

__all__ = [
    "ExtFilter",
    "Prefer",
    "parse_expand",
    "parse_filter",
    "parse_prefer",
    "parse_select",
    "query_int",
]

_OPTIONS = (
    "select",
    "expand",
    "filter",
    "top",
    "skip",
    "orderby",
    "search",
    "count",
    "skiptoken",
    "deltatoken",
)
_PREF = re.compile(r'\s*([^=,\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)')
_LITERAL = r"'((?:[^']|'')*)'"
_EXPAND = re.compile(
    r"singleValueExtendedProperties\s*\(\s*\$filter\s*=\s*(.*)\)\s*", re.IGNORECASE | re.DOTALL
)
_ID_EQ = re.compile(rf"^\s*id\s+eq\s+{_LITERAL}\s*$", re.IGNORECASE)
_ANY = re.compile(
    rf"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+{_LITERAL}"
    rf"(?:\s+and\s+\1/value\s+eq\s+{_LITERAL})?\s*\)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Prefer:
    """The preferences of a request (names lower-case, values unquoted)."""

    values: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """One preference's value."""
        return self.values.get(name.lower())

    @property
    def max_page_size(self) -> int | None:
        """``odata.maxpagesize``, when given as a positive number."""
        raw = self.get("odata.maxpagesize")
        return int(raw) if raw and raw.isdigit() and int(raw) > 0 else None

    @property
    def time_zone(self) -> str | None:
        """``outlook.timezone``."""
        return self.get("outlook.timezone")

    @property
    def body_type(self) -> str | None:
        """``outlook.body-content-type`` (text or html)."""
        value = (self.get("outlook.body-content-type") or "").lower()
        return value if value in ("text", "html") else None

    @property
    def immutable_ids(self) -> bool:
        """``IdType="ImmutableId"``."""
        return (self.get("idtype") or "").lower() == "immutableid"


def parse_prefer(headers: list[str]) -> Prefer:
    """All ``Prefer`` headers (each may list several preferences, comma-separated)."""
    values: dict[str, str] = {}
    for header in headers:
        for match in _PREF.finditer(header):
            name, value = match.group(1), (match.group(2) or "").strip()
            if not name:
                continue
            if value.startswith('"') and value.endswith('"') and len(value) >= 2:
                value = value[1:-1]
            values[name.lower()] = value
    return Prefer(values)


def normalize_query(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Query parameters with lower-case names; OData options always with their ``$``."""
    query: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in _OPTIONS:
            key = "$" + key
        query[key] = value
    return query


def parse_select(value: str | None) -> tuple[str, ...] | None:
    """``$select``: property names; 400 for a property ``event`` does not have."""
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    for name in names:
        if name not in fields.KNOWN or name in fields.NAVIGATION:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.event'.",
                "RequestBroker--ParseUri",
            )
    return names


def parse_expand(value: str | None) -> tuple[str, ...]:
    """``$expand=singleValueExtendedProperties($filter=id eq '…' [or id eq '…'])``: the ids."""
    if value is None:
        return ()
    match = _EXPAND.fullmatch(value)
    if match is None:
        name = value.split("(")[0].strip()
        if name in fields.NAVIGATION:
            raise not_implemented(f"$expand={name} (only singleValueExtendedProperties)")
        raise bad_request(
            f"Parsing OData Select and Expand failed: Could not find a property named '{name}'."
        )
    ids = []
    for part in re.split(r"\s+or\s+", match.group(1), flags=re.IGNORECASE):
        found = _ID_EQ.match(part)
        if found is None:
            raise bad_request(
                "Expanding singleValueExtendedProperties needs a $filter of the form id eq '…'.",
                "ErrorInvalidUrlQueryFilter",
            )
        ids.append(found.group(1).replace("''", "'").lower())
    return tuple(ids)


@dataclass(frozen=True, slots=True)
class ExtFilter:
    """``singleValueExtendedProperties/Any(ep: ep/id eq '…' [and ep/value eq '…'])``."""

    prop_id: str
    value: str | None


def parse_filter(value: str | None) -> ExtFilter | None:
    """The extended-property ``$filter`` of a list; other filters are not modelled (501)."""
    if value is None:
        return None
    match = _ANY.match(value)
    if match is None:
        raise not_implemented(
            f"$filter={value} (only singleValueExtendedProperties/Any(ep: ep/id eq '…' and "
            "ep/value eq '…'))"
        )
    found = match.group(3)
    return ExtFilter(
        match.group(2).replace("''", "'").lower(),
        None if found is None else found.replace("''", "'"),
    )


def query_int(query: dict[str, str], name: str, low: int, high: int) -> int | None:
    """An integer query option within [low, high]; 400 otherwise."""
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option {name}.")
    return int(raw)
