"""The editors' JSON API: pins, blocks, global blocks and the audit trail (admin token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from starlette.responses import Response

from api.access.admin_token import AdminDep
from api.deps import ServicesDep
from api.responses import json_response
from api.routes.live_changes import ADMIN_ERRORS
from api.routes.parameters import SlugPath
from api.schemas import (
    AuditBody,
    BlockBody,
    BlockCreated,
    BlockRequest,
    PinBody,
    PinCreated,
    PinRequest,
)
from api.serving.override_actions import add_block, add_pin, audit_json, block_json, pin_json
from recommender.articles import MAX_SLUG_LENGTH, SLUG_PATTERN

router = APIRouter(tags=["curation"])

TargetPath = Annotated[str, Path(pattern=SLUG_PATTERN.pattern, max_length=MAX_SLUG_LENGTH)]
ActorHeader = Annotated[
    str,
    Header(
        alias="X-Actor",
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who makes the change, for the audit trail (default: api).",
    ),
]


@router.post(
    "/v1/articles/{slug}/pins", status_code=201, response_model=PinCreated, responses=ADMIN_ERRORS
)
async def create_pin(
    slug: SlugPath, pin: PinRequest, _: AdminDep, services: ServicesDep, actor: ActorHeader = "api"
) -> Response:
    """Pin an article into a slot of this article's list, optionally until a moment."""
    created, record = await add_pin(
        services.holder, slug, pin.target, pin.slot, pin.until, pin.reason, actor
    )
    return json_response({**pin_json(created), "audit_id": record.id}, 201)


@router.get("/v1/articles/{slug}/pins", response_model=list[PinBody], responses=ADMIN_ERRORS)
async def list_pins(slug: SlugPath, _: AdminDep, services: ServicesDep) -> Response:
    """This article's pins, expired ones included (`active` tells)."""
    holder = services.holder
    pins = await holder.call_store(lambda: holder.curation.pins(slug))
    return json_response([pin_json(pin) for pin in pins])


@router.delete("/v1/articles/{slug}/pins/{target}", status_code=204, responses=ADMIN_ERRORS)
async def delete_pin(
    slug: SlugPath,
    target: TargetPath,
    _: AdminDep,
    services: ServicesDep,
    actor: ActorHeader = "api",
) -> Response:
    """Remove a pin."""
    holder = services.holder
    await holder.call_store(lambda: holder.curation.unpin(slug, target, actor))
    return Response(status_code=204)


@router.post(
    "/v1/articles/{slug}/blocks",
    status_code=201,
    response_model=BlockCreated,
    responses=ADMIN_ERRORS,
)
async def create_block(
    slug: SlugPath,
    block: BlockRequest,
    _: AdminDep,
    services: ServicesDep,
    actor: ActorHeader = "api",
) -> Response:
    """Never suggest an article in this article's list."""
    created, record = await add_block(services.holder, slug, block.target, block.reason, actor)
    return json_response({**block_json(created), "audit_id": record.id}, 201)


@router.get("/v1/articles/{slug}/blocks", response_model=list[BlockBody], responses=ADMIN_ERRORS)
async def list_blocks(slug: SlugPath, _: AdminDep, services: ServicesDep) -> Response:
    """This article's blocks (global blocks are listed at /v1/blocks)."""
    holder = services.holder
    blocks = await holder.call_store(lambda: holder.curation.blocks(slug))
    return json_response([block_json(b) for b in blocks])


@router.delete("/v1/articles/{slug}/blocks/{target}", status_code=204, responses=ADMIN_ERRORS)
async def delete_block(
    slug: SlugPath,
    target: TargetPath,
    _: AdminDep,
    services: ServicesDep,
    actor: ActorHeader = "api",
) -> Response:
    """Remove a block."""
    holder = services.holder
    await holder.call_store(lambda: holder.curation.unblock(slug, target, actor))
    return Response(status_code=204)


@router.post("/v1/blocks", status_code=201, response_model=BlockCreated, responses=ADMIN_ERRORS)
async def create_global_block(
    block: BlockRequest, _: AdminDep, services: ServicesDep, actor: ActorHeader = "api"
) -> Response:
    """Never suggest an article anywhere (e.g. a legal hold)."""
    created, record = await add_block(services.holder, None, block.target, block.reason, actor)
    return json_response({**block_json(created), "audit_id": record.id}, 201)


@router.get("/v1/blocks", response_model=list[BlockBody], responses=ADMIN_ERRORS)
async def list_global_blocks(_: AdminDep, services: ServicesDep) -> Response:
    """Articles blocked everywhere."""
    holder = services.holder
    blocks = await holder.call_store(lambda: holder.curation.blocks(global_only=True))
    return json_response([block_json(b) for b in blocks])


@router.delete("/v1/blocks/{target}", status_code=204, responses=ADMIN_ERRORS)
async def delete_global_block(
    target: TargetPath, _: AdminDep, services: ServicesDep, actor: ActorHeader = "api"
) -> Response:
    """Lift a global block."""
    holder = services.holder
    await holder.call_store(lambda: holder.curation.unblock(None, target, actor))
    return Response(status_code=204)


@router.get("/v1/audit", response_model=list[AuditBody], responses=ADMIN_ERRORS)
async def audit_trail(
    _: AdminDep,
    services: ServicesDep,
    slug: Annotated[
        str | None,
        Query(
            pattern=SLUG_PATTERN.pattern,
            max_length=MAX_SLUG_LENGTH,
            description="Only changes naming this article (as source or target).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """Every change to pins and blocks, newest first: who, when, what, why."""
    holder = services.holder
    records = await holder.call_store(lambda: holder.curation.audit(slug, limit))
    return json_response([audit_json(r) for r in records])


@router.post(
    "/v1/audit/{audit_id}/undo",
    status_code=201,
    response_model=AuditBody,
    responses={409: ADMIN_ERRORS[404], **ADMIN_ERRORS},
)
async def undo_change(
    audit_id: Annotated[int, Path(ge=1)],
    _: AdminDep,
    services: ServicesDep,
    actor: ActorHeader = "api",
) -> Response:
    """Undo one recorded change (the undo is recorded too, and can itself be undone)."""
    holder = services.holder
    record = await holder.call_store(lambda: holder.curation.undo(audit_id, actor))
    return json_response(audit_json(record), 201)
