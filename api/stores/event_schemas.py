"""What readers saw and clicked in the widget, as `POST /v1/events` takes it (`Event`,
`EventBatch`, `EventReceipt`) and as `GET /v1/stats/ctr` answers (`CtrReport`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender.articles import MAX_SLUG_LENGTH, SLUG_PATTERN

#: Largest `POST /v1/events` body and batch: a box shows at most 50 suggestions.
MAX_EVENT_BYTES = 16 * 1024
MAX_EVENTS = 50
MAX_SLOT = 50

Slug = Annotated[str, Field(pattern=SLUG_PATTERN.pattern, max_length=MAX_SLUG_LENGTH)]


class Event(BaseModel):
    """One suggestion shown (`impression`) or followed (`click`) in a box on `source`'s page."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["impression", "click"]
    source: Slug = Field(description="The article whose page shows the box.")
    target: Slug = Field(description="The suggested article.")
    slot: int = Field(ge=1, le=MAX_SLOT, description="Its position in the box, from 1.")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS)


class EventReceipt(BaseModel):
    accepted: int = Field(description="Events counted.")
    ignored: int = Field(description="Events about articles the index does not hold.")


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
