"""What readers saw and clicked in the widget, as `POST /v1/events` takes it (`Event`,
`EventBatch`, `EventReceipt`) and as `GET /v1/stats/ctr` answers (`CtrReport`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender.articles import MAX_SLUG_LENGTH, PLACEMENT_PATTERN, SLUG_PATTERN

#: Largest `POST /v1/events` body and batch: a box shows at most 50 suggestions, each event
#: carrying its box's token; 64 KiB is all a page may have in flight through sendBeacon.
MAX_EVENT_BYTES = 64 * 1024
MAX_EVENTS = 50
MAX_SLOT = 50
#: A token of a 50-item list is ~600 characters.
MAX_TOKEN_LENGTH = 1024
IMPRESSION_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"

Slug = Annotated[str, Field(pattern=SLUG_PATTERN.pattern, max_length=MAX_SLUG_LENGTH)]

#: Why an event was not counted (an event about an article the index does not hold is
#: `ignored` instead): no token, no impression id, a token that does not vouch for that target
#: at that slot of that source's list, an expired token, an impression or click counted before.
Refusal = Literal[
    "missing_token", "missing_impression", "invalid_token", "expired_token", "duplicate"
]
REFUSALS: tuple[Refusal, ...] = (
    "missing_token",
    "missing_impression",
    "invalid_token",
    "expired_token",
    "duplicate",
)


class Event(BaseModel):
    """One suggestion shown (`impression`) or followed (`click`) in a box on `source`'s page."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["impression", "click"]
    source: Slug = Field(description="The article whose page shows the box.")
    target: Slug = Field(description="The suggested article.")
    slot: int = Field(ge=1, le=MAX_SLOT, description="Its position in the box, from 1.")
    token: str | None = Field(
        None,
        max_length=MAX_TOKEN_LENGTH,
        description="The `feedback.token` of the list shown (the box's data-feedback-token); "
        "an event without a valid one is refused.",
    )
    impression: str | None = Field(
        None,
        pattern=IMPRESSION_PATTERN,
        description="An id the widget draws for each box it shows (16-64 characters of "
        "A-Z a-z 0-9 _ -): an impression counts once per item, a click once per item.",
    )
    placement: str | None = Field(
        None,
        pattern=PLACEMENT_PATTERN,
        description="The box's placement; optional, as the token carries it (an event naming "
        "another placement than its token's is refused as invalid_token).",
    )

    def seen_key(self) -> str:
        """What makes this event a repeat: the same type, box (source and impression) and slot."""
        return f"{self.type}:{self.source}:{self.impression}:{self.slot}"


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS)


class EventReceipt(BaseModel):
    accepted: int = Field(description="Events counted.")
    ignored: int = Field(description="Events about articles the index does not hold.")
    refused: dict[Refusal, int] = Field(
        description="Events not counted, by reason (only reasons that occurred)."
    )


class CtrRow(BaseModel):
    impressions: int
    clicks: int
    ctr: float | None = Field(description="clicks / impressions; null without impressions.")


class SlotRow(CtrRow):
    slot: int


class TargetRow(CtrRow):
    target: str


class SourceRow(CtrRow):
    source: str


class CtrReport(BaseModel):
    source: str | None = Field(description="The source article asked for; null: all of them.")
    available: bool = Field(description="False when the counters could not be read (Redis down).")
    totals: CtrRow
    by_slot: list[SlotRow]
    by_target: list[TargetRow]
    by_source: list[SourceRow]
    refused: dict[Refusal, int] = Field(
        description="Events refused since the counters began, by reason, for the whole "
        "service (a refused event's source cannot be trusted); zeros when unavailable."
    )
