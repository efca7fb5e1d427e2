"""The A/B experiment's admin API: read, set and stop it (admin token).

Every change moves the experiment's version, sent as the `ETag`; a change sent with
`If-Match: "<version>"` is applied only if the experiment is still at that version (412
`experiment_changed` otherwise), checked and written in one transaction of the store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.access.admin_token import AdminDep
from api.deps import ServicesDep
from api.responses import json_response
from api.routes.curation import ActorHeader
from api.routes.live_changes import ADMIN_ERRORS
from api.schemas import ErrorBody
from api.serving.experiment_arms import experiment_json
from index.state.experiment_store import StoredExperiment

router = APIRouter(tags=["experiment"])

EXPERIMENT_PATH = "/v1/admin/experiment"
CHANGE_ERRORS = {412: {"model": ErrorBody}, **ADMIN_ERRORS}
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=40,
        description='The version the change is based on, as the ETag gave it ("7").',
    ),
]


class ArmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1-32 of a-z 0-9 _ -; one arm is `holdout`.")
    share: float = Field(description="Its share of the boxes, in steps of 0.0001.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Ranking settings it changes (flat names, as evaluate-policy's "
        "--candidate) and `exploration`; none for the holdout.",
    )


class ExperimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arms: list[ArmRequest] = Field(description="The arms; their shares sum to 1.")


class ExperimentBody(BaseModel):
    version: int
    running: bool
    arms: list[dict[str, Any]]
    actor: str | None
    changed_at: float | None


def based_on(if_match: str | None) -> int | None:
    """The version an `If-Match` value names (None: no condition)."""
    if if_match is None or if_match.strip() == "*":
        return None
    version = if_match.strip().removeprefix("W/").strip('"')
    if not version.isdigit():
        raise HTTPException(422, 'If-Match: the experiment\'s version in quotes, as "7"')
    return int(version)


def _answer(stored: StoredExperiment) -> Response:
    return json_response(experiment_json(stored), headers={"ETag": f'"{stored.version}"'})


@router.get(EXPERIMENT_PATH, response_model=ExperimentBody, responses=ADMIN_ERRORS)
async def get_experiment(_: AdminDep, services: ServicesDep) -> Response:
    """The experiment running (or `running: false`), with its version as the ETag."""
    store = services.experiments.store
    return _answer(await services.holder.call_store(store.read))


@router.put(EXPERIMENT_PATH, response_model=ExperimentBody, responses=CHANGE_ERRORS)
async def put_experiment(
    experiment: ExperimentRequest,
    _: AdminDep,
    services: ServicesDep,
    if_match: IfMatchHeader = None,
    actor: ActorHeader = "api",
) -> Response:
    """Start or change the experiment (its figures count from now on)."""
    arms = [arm.model_dump() for arm in experiment.arms]
    expected = based_on(if_match)
    stored = await services.holder.call_store(
        lambda: services.experiments.change(arms, actor, expected)
    )
    return _answer(stored)


@router.delete(EXPERIMENT_PATH, response_model=ExperimentBody, responses=CHANGE_ERRORS)
async def delete_experiment(
    _: AdminDep, services: ServicesDep, if_match: IfMatchHeader = None, actor: ActorHeader = "api"
) -> Response:
    """Stop the experiment: every box shows the service's ranking again."""
    expected = based_on(if_match)
    stored = await services.holder.call_store(
        lambda: services.experiments.change(None, actor, expected)
    )
    return _answer(stored)
