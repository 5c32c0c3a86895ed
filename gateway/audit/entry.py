"""An audit row: what a caller appends (`AuditEntry`, cleaned of control and bidi characters
on creation, so that what is hashed and stored is what is shown), what is stored
(`AuditRecord`), and the hash that chains each row to the one before."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from gateway.config.text import clean_text

GENESIS: Final = "0" * 64  # the prev_hash of the first row

DetailValue: TypeAlias = str | int | float | bool | None
Detail: TypeAlias = Mapping[str, DetailValue]

COLUMNS: Final = (
    "seq, at, actor, actor_name, role, source, action, site, target, result, detail, "
    "prev_hash, hash"
)
_HASHED: Final = (
    "seq", "at", "actor", "actor_name", "role", "source", "action", "site", "target",
    "result", "detail",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened, as the caller knows it. Text is cleaned of control and bidi characters
    here, so what is hashed and stored is what is shown."""

    at: float  # epoch seconds
    actor: str  # login, token name, "local" or "system"
    actor_name: str  # display name
    role: str
    source: str  # client address, "cli" or "signal"
    action: str  # "<resource>.<verb>", see gateway.audit.actions
    site: str | None = None  # None: not about one site (only admins read it)
    target: str | None = None  # alarm id, device id, login, token id...
    result: str = "ok"  # ok | refused | failed | locked | ...
    detail: Detail | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.at):
            raise ValueError(f"audit entry time is not finite: {self.at!r}")
        # A float, always: an int would hash as "5" but read back from REAL as 5.0.
        object.__setattr__(self, "at", float(self.at))
        object.__setattr__(self, "actor", clean_text(self.actor))
        object.__setattr__(self, "actor_name", clean_text(self.actor_name))
        object.__setattr__(self, "role", clean_text(self.role))
        object.__setattr__(self, "source", clean_text(self.source))
        object.__setattr__(self, "action", clean_text(self.action))
        object.__setattr__(self, "result", clean_text(self.result))
        object.__setattr__(self, "site", _clean_or_none(self.site))
        object.__setattr__(self, "target", _clean_or_none(self.target))
        for name in ("actor", "action", "result"):
            if not getattr(self, name):
                raise ValueError(f"audit entry without {name}")
        if self.detail is not None:
            object.__setattr__(self, "detail", _clean_detail(self.detail))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored row."""

    seq: int
    at: float
    actor: str
    actor_name: str
    role: str
    source: str
    action: str
    site: str | None
    target: str | None
    result: str
    detail: Detail | None
    prev_hash: str
    hash: str


def _clean_or_none(s: str | None) -> str | None:
    return None if s is None else clean_text(s)


def _clean_detail(detail: Detail) -> dict[str, DetailValue]:
    out: dict[str, DetailValue] = {}
    for key, value in detail.items():
        if not isinstance(key, str):
            raise TypeError(f"audit detail key is not text: {key!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"audit detail {key!r} is not finite: {value!r}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(f"audit detail {key!r} is a {type(value).__name__}")
        out[clean_text(key)] = (
            clean_text(value, multiline=True) if isinstance(value, str) else value
        )
    return out


def detail_text(detail: Detail | None) -> str | None:
    """The stored (and hashed) form of a detail: canonical JSON."""
    if detail is None:
        return None
    return json.dumps(
        dict(detail), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def row_hash(prev_hash: str, fields: tuple[Any, ...]) -> str:
    """sha256(prev_hash || canonical JSON of the row's fields, seq to detail, in `_HASHED`
    order; detail as its stored text)."""
    canonical = json.dumps(
        dict(zip(_HASHED, fields, strict=True)),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(prev_hash.encode("ascii") + canonical.encode("utf-8")).hexdigest()
