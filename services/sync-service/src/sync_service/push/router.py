"""Delivery and status routes: failed pushes listed and replayed, a channel's sync status, every
channel's in one call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.pagination import Page, PageDep
from sync_service.channels import service as channels
from sync_service.channels.schemas import ChannelKind
from sync_service.channels.schemas import ChannelStatus as RegistryStatus
from sync_service.common import AdminCaller, ReadCaller, as_utc
from sync_service.events import LISTINGS_CONSUMER
from sync_service.listings.models import Listing
from sync_service.push import deliveries
from sync_service.push.models import Delivery
from sync_service.push.pipeline import PushPipeline
from sync_service.push.schemas import (
    ChannelStatus,
    ChannelSyncStatus,
    DeliveryOutcome,
    DeliveryRead,
    ReplayResult,
)

router = APIRouter(prefix="/v1/channels", tags=["deliveries"])
# Outside /v1/channels/, where a path segment is a channel id
overview_router = APIRouter(prefix="/v1/sync-status", tags=["deliveries"])


def to_read(delivery: Delivery) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        channel_id=delivery.channel_id,
        skus=sorted(delivery.seqs),
        outcome=delivery.outcome,
        attempts=delivery.attempts,
        status_code=delivery.status_code,
        error=delivery.error,
        latency_ms=delivery.latency_ms,
        started_at=as_utc(delivery.started_at),
        finished_at=as_utc(delivery.finished_at),
        replayed_at=as_utc(delivery.replayed_at) if delivery.replayed_at else None,
    )


def _queue(request: Request, channel_id: str, skus: list[str]) -> None:
    pipeline: PushPipeline | None = getattr(request.app.state, "pipeline", None)
    if pipeline is not None and skus:
        pipeline.enqueue((channel_id, sku) for sku in skus)


@router.get(
    "/{channel_id}/deliveries",
    response_model=Page[DeliveryRead],
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_deliveries(
    channel_id: str,
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    outcome: Annotated[DeliveryOutcome | None, Query()] = None,
) -> Page[DeliveryRead]:
    """The channel's pushes, newest first (`?outcome=failed`: the failed ones); cursor pagination."""
    await channels.get_channel(session, channel_id=channel_id)
    result = await deliveries.list_deliveries(session, channel_id=channel_id, outcome=outcome, page=page)
    return Page[DeliveryRead](items=[to_read(d) for d in result.items], next_cursor=result.next_cursor)


@router.post(
    "/{channel_id}/deliveries/{delivery_id}/replay",
    response_model=ReplayResult,
    responses=problem_responses(401, 403, 404, 409),
)
async def replay_delivery(
    channel_id: str, delivery_id: str, session: SessionDep, _: AdminCaller, request: Request
) -> ReplayResult:
    """Push a failed delivery's listings again (their latest state); 409 when it did not fail or was
    replayed already."""
    await channels.get_channel(session, channel_id=channel_id)
    skus = await deliveries.replay(session, channel_id=channel_id, delivery_id=delivery_id)
    await session.commit()
    _queue(request, channel_id, skus)
    return ReplayResult(requeued=skus)


@router.post(
    "/{channel_id}/deliveries/replay", response_model=ReplayResult, responses=problem_responses(401, 403, 404)
)
async def replay_failed(
    channel_id: str, session: SessionDep, _: AdminCaller, request: Request
) -> ReplayResult:
    """Push every failed listing of the channel again."""
    await channels.get_channel(session, channel_id=channel_id)
    skus = await deliveries.replay_failed(session, channel_id=channel_id)
    await session.commit()
    _queue(request, channel_id, skus)
    return ReplayResult(requeued=skus)


@router.get("/{channel_id}/status", response_model=ChannelStatus, responses=problem_responses(401, 403, 404))
async def channel_status(
    channel_id: str, session: SessionDep, _: ReadCaller, request: Request
) -> ChannelStatus:
    """How far the channel is in sync: listings per status, in-sync share, push latency (event time to
    acknowledgement) p50/p99, circuit breaker state."""
    channel = await channels.get_channel(session, channel_id=channel_id)
    return await _status(session, request, channel_id=channel.id, code=channel.code)


@overview_router.get(
    "", response_model=Page[ChannelSyncStatus], responses=problem_responses(400, 401, 403, 422)
)
async def sync_status(
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    request: Request,
    kind: Annotated[ChannelKind | None, Query()] = None,
    status: Annotated[RegistryStatus | None, Query()] = None,
) -> Page[ChannelSyncStatus]:
    """Every channel's sync status in one call (the dashboard's health panel): the channels as
    `GET /v1/channels` lists them (same filters, cursor pages), each with what
    `GET /v1/channels/{id}/status` says of it and its name."""
    listed = await channels.list_channels(session, kind=kind, status=status, page=page)
    items = [
        ChannelSyncStatus(
            name=channel.name,
            **(await _status(session, request, channel_id=channel.id, code=channel.code)).model_dump(),
        )
        for channel in listed.items
    ]
    return Page[ChannelSyncStatus](items=items, next_cursor=listed.next_cursor)


async def _status(session: AsyncSession, request: Request, *, channel_id: str, code: str) -> ChannelStatus:
    counts = dict(
        (
            await session.execute(
                select(col(Listing.status), func.count())
                .where(col(Listing.channel_id) == channel_id)
                .group_by(col(Listing.status))
            )
        ).all()
    )
    live = sum(counts.get(s, 0) for s in ("in_sync", "pending", "failed", "drifted"))
    latency = await deliveries.latency_percentiles(session, channel_id=channel_id)
    pipeline: PushPipeline | None = getattr(request.app.state, "pipeline", None)
    return ChannelStatus(
        channel_id=channel_id,
        code=code,
        listings=sum(counts.values()),
        in_sync=counts.get("in_sync", 0),
        pending=counts.get("pending", 0),
        failed=counts.get("failed", 0),
        drifted=counts.get("drifted", 0),
        unpublished=counts.get("unpublished", 0),
        in_sync_share=counts.get("in_sync", 0) / live if live else 1.0,
        latency_p50_ms=latency["p50"],
        latency_p99_ms=latency["p99"],
        circuit=pipeline.circuit_state(channel_id) if pipeline is not None else "closed",
    )


async def start_pipeline(app: FastAPI) -> None:
    """Start the push pipeline (unless SYNC_PUSH_ENABLED=false)."""
    runtime = app.state.runtime
    if not runtime.settings.push_enabled:
        return
    consumers = runtime.consumers  # filled when the consumers start, after this hook

    def behind() -> bool:
        return any(c.backlog > 0 for c in consumers if c.spec.name == LISTINGS_CONSUMER)

    pipeline = PushPipeline(runtime.database, runtime.settings, behind)
    app.state.pipeline = pipeline
    await pipeline.start()


async def stop_pipeline(app: FastAPI) -> None:
    pipeline: PushPipeline | None = getattr(app.state, "pipeline", None)
    if pipeline is not None:
        await pipeline.stop()
