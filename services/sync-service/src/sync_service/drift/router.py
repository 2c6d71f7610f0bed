"""Drift and job routes: reconcile (read the channel's state and compare), snapshot (the channel posts its
state), resync, the drift found, a job's progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from servicekit.dependencies import SessionDep
from servicekit.errors import Conflict, problem_responses
from servicekit.http.pagination import Page, PageDep
from sync_service.channels import service as channels
from sync_service.channels.models import Channel
from sync_service.channels.schemas import PUSHED_KINDS
from sync_service.common import AdminCaller, ReadCaller, as_utc
from sync_service.drift import service
from sync_service.drift.models import SyncJob
from sync_service.drift.runner import JobRunner
from sync_service.drift.schemas import FindingRead, JobRead, ResyncBody, SnapshotBody

router = APIRouter(prefix="/v1", tags=["drift"])


def to_read(job: SyncJob) -> JobRead:
    return JobRead(
        id=job.id,
        channel_id=job.channel_id,
        kind=job.kind,
        source=job.source,
        status=job.status,
        phase=job.phase,
        pulled=job.pulled,
        total=job.total,
        processed=job.processed,
        drifted=job.drifted,
        healed=job.healed,
        skipped=job.skipped,
        error=job.error,
        created_at=as_utc(job.created_at),
        started_at=as_utc(job.started_at) if job.started_at else None,
        finished_at=as_utc(job.finished_at) if job.finished_at else None,
    )


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


def _usable(channel: Channel) -> None:
    if channel.status == "retired":
        raise Conflict(f"Channel {channel.code} is retired.")


def _accepted(response: Response, job: SyncJob) -> JobRead:
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return to_read(job)


@router.post(
    "/channels/{channel_id}/reconcile",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 404, 409),
)
async def reconcile(
    channel_id: str, session: SessionDep, caller: AdminCaller, request: Request, response: Response
) -> JobRead:
    """Start a job that reads what the channel holds (GET on its endpoint), compares it field by field with
    the listings, marks differing listings drifted and, with drift policy `heal`, pushes them again. 409
    while a reconcile or resync of the channel runs, or for a channel that has no state to read."""
    channel = await channels.get_channel(session, channel_id=channel_id)
    _usable(channel)
    if channel.kind not in PUSHED_KINDS or not channel.endpoint:
        raise Conflict(
            f"Channel {channel.code} has no endpoint to read its state from; it can post a snapshot."
        )
    job = await service.start_job(
        session, channel_id=channel.id, kind="reconcile", source="state_endpoint", actor=caller.subject
    )
    _runner(request).spawn(job.id, "reconcile", channel.id)
    return _accepted(response, job)


@router.post(
    "/channels/{channel_id}/snapshot",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)
async def snapshot(
    channel_id: str,
    body: SnapshotBody,
    session: SessionDep,
    caller: AdminCaller,
    request: Request,
    response: Response,
) -> JobRead:
    """The channel posts what it holds (every listing: a SKU it does not name is taken as not held);
    a reconcile job compares it like a read state."""
    channel = await channels.get_channel(session, channel_id=channel_id)
    _usable(channel)
    held = {item.sku: item.state for item in body.listings}
    job = await service.start_job(
        session, channel_id=channel.id, kind="reconcile", source="snapshot", actor=caller.subject
    )
    _runner(request).spawn(job.id, "reconcile", channel.id, held)
    return _accepted(response, job)


@router.post(
    "/channels/{channel_id}/resync",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def resync(
    channel_id: str,
    session: SessionDep,
    caller: AdminCaller,
    request: Request,
    response: Response,
    body: ResyncBody | None = None,
) -> JobRead:
    """Start a full resync: with source product-service (the default when sync-service has its
    credential) the catalogue is first read from product-service's API into sync-service's projection;
    then every listing of the channel is recomputed from the projection and pushed again (a feed channel:
    recomputed). 409 while a reconcile or resync of the channel runs, or for source product-service
    without the credential."""
    channel = await channels.get_channel(session, channel_id=channel_id)
    _usable(channel)
    configured = request.app.state.runtime.settings.product_service_configured
    source = (body.source if body is not None else None) or (
        "product-service" if configured else "projection"
    )
    if source == "product-service" and not configured:
        raise Conflict(
            "sync-service has no credential to read product-service's API (SYNC_PRODUCT_SERVICE_URL, "
            "SYNC_TOKEN_URL, SYNC_CLIENT_ID, SYNC_CLIENT_SECRET); resync from the projection instead."
        )
    job = await service.start_job(
        session, channel_id=channel.id, kind="resync", source=source, actor=caller.subject
    )
    _runner(request).spawn(job.id, "resync", channel.id)
    return _accepted(response, job)


@router.get(
    "/channels/{channel_id}/drift",
    response_model=Page[FindingRead],
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_drift(
    channel_id: str,
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    sku: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Page[FindingRead]:
    """The differences the latest reconcile found, one per listing and field; cursor pagination."""
    await channels.get_channel(session, channel_id=channel_id)
    result = await service.list_findings(session, channel_id=channel_id, sku=sku, page=page)
    return Page[FindingRead](
        items=[
            FindingRead(
                sku=f.sku,
                field=f.field,
                expected=f.expected,
                actual=f.actual,
                job_id=f.job_id,
                detected_at=as_utc(f.detected_at),
            )
            for f in result.items
        ],
        next_cursor=result.next_cursor,
    )


@router.get("/jobs/{job_id}", response_model=JobRead, responses=problem_responses(401, 403, 404))
async def get_job(job_id: str, session: SessionDep, _: ReadCaller) -> JobRead:
    """A reconcile or resync job: status and progress."""
    return to_read(await service.get_job(session, job_id))
