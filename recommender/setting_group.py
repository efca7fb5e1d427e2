"""What every group of settings is made of: a frozen model whose fields are read by their flat
names (`recommender.settings` composes the groups and reads the environment). Imports nothing of
ours, so each room can declare its own group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: `RECOMMENDER_DATA_DIR` unset: where versions, caches and exports live.
DEFAULT_DATA_DIR = Path(".recommender")


def setting(alias: str, default: Any = ..., **constraints: Any) -> Any:
    """A field whose flat name (`RECOMMENDER_<ALIAS>`, `Settings(<alias>=...)`) is `alias`."""
    return Field(default, validation_alias=alias, **constraints)


class Group(BaseModel):
    """A frozen group of settings; its fields are read by their flat aliases."""

    model_config = ConfigDict(frozen=True, extra="ignore")
