"""What the routes share to read a request: the strict body base and the query values
(ISO 8601 times with an offset, comma-separated lists), refused with the API's 422 body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from gateway.config.text import clean_text
from gateway.http.errors import ApiError

# Times a request may name: earlier or later ones are refused (422) rather than overflowing.
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9998, 12, 31, tzinfo=UTC)


# Fields whose text keeps its line breaks; passwords are taken exactly as typed.
_MULTILINE_FIELDS = frozenset(
    {"note", "requirements", "measure", "description"}
    # gateway.http.incidents: a follow-up and the written report's paragraphs
    | {"text", "what_happened", "people_affected", "measures_taken", "current_state", "follow_up"}
)
_VERBATIM_FIELDS = frozenset({"password"})


class Body(BaseModel):
    """A request body: an unknown field is an error, not ignored (a typo never passes), and
    text is cleaned of control and bidi characters before anything stores or shows it."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _clean_text(self) -> Self:
        for name, value in self.__dict__.items():
            if isinstance(value, str) and name not in _VERBATIM_FIELDS:
                cleaned = clean_text(value, multiline=name in _MULTILINE_FIELDS)
                if cleaned != value:
                    object.__setattr__(self, name, cleaned)
        return self


def parse_time(raw: str | None, name: str) -> float | None:
    if raw is None:
        return None
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid request", f"{name}: not an ISO 8601 time: {raw!r}") from None
    if dt.tzinfo is None:
        raise ApiError(
            422, "invalid request", f"{name}: give a UTC offset, e.g. 2026-11-24T08:00+08:00"
        )
    if not MIN_TIME <= dt <= MAX_TIME:
        raise ApiError(
            422, "invalid request", f"{name}: out of range (years 1970 to 9998): {raw!r}"
        )
    return dt.timestamp()


def split_list(raw: str | None) -> list[str]:
    return [p for p in (raw or "").split(",") if p]
