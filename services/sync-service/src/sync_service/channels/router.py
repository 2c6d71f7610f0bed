"""Channel registry routes: register, list, read, change (If-Match), rotate the signing secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.concurrency import IfMatchDep, set_etag
from servicekit.http.pagination import Page, PageDep
from sync_service.channels import service
from sync_service.channels.schemas import (
    ChannelCreate,
    ChannelKind,
    ChannelRead,
    ChannelStatus,
    ChannelUpdate,
    ChannelWithSecret,
)
from sync_service.common import AdminCaller, ReadCaller, SettingsDep

router = APIRouter(prefix="/v1/channels", tags=["channels"])


@router.post(
    "",
    response_model=ChannelWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
async def register_channel(
    body: ChannelCreate, session: SessionDep, _: AdminCaller, settings: SettingsDep, response: Response
) -> ChannelWithSecret:
    """Register a sales channel; the answer shows its signing secret, the only time it is shown."""
    channel, secret = await service.register_channel(
        session, body=body, secrets_key=settings.secrets_key.get_secret_value()
    )
    set_etag(response, channel.version)
    return ChannelWithSecret(**service.to_read(channel).model_dump(), signing_secret=secret)


@router.get("", response_model=Page[ChannelRead], responses=problem_responses(400, 401, 403, 422))
async def list_channels(
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    kind: Annotated[ChannelKind | None, Query()] = None,
    status: Annotated[ChannelStatus | None, Query()] = None,
) -> Page[ChannelRead]:
    """Channels by code, optionally of one kind or status; cursor pagination."""
    return await service.list_channels(session, kind=kind, status=status, page=page)


@router.get("/{channel_id}", response_model=ChannelRead, responses=problem_responses(401, 403, 404))
async def get_channel(channel_id: str, session: SessionDep, _: ReadCaller, response: Response) -> ChannelRead:
    """Read one channel (never its secret); the ETag is its version."""
    channel = await service.get_channel(session, channel_id=channel_id)
    set_etag(response, channel.version)
    return service.to_read(channel)


@router.patch(
    "/{channel_id}",
    response_model=ChannelRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_channel(
    channel_id: str,
    body: ChannelUpdate,
    session: SessionDep,
    _: AdminCaller,
    if_match: IfMatchDep,
    response: Response,
) -> ChannelRead:
    """Change a channel's settings, pause or enable it, or retire it (`status: retired`); If-Match: its
    ETag."""
    channel = await service.get_channel(session, channel_id=channel_id)
    channel = await service.update_channel(session, channel=channel, changes=body, if_match=if_match)
    set_etag(response, channel.version)
    return service.to_read(channel)


@router.post(
    "/{channel_id}/secret",
    response_model=ChannelWithSecret,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
)
async def rotate_secret(
    channel_id: str,
    session: SessionDep,
    _: AdminCaller,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
) -> ChannelWithSecret:
    """Replace the channel's signing secret (If-Match: its ETag); the new one is shown only here."""
    channel = await service.get_channel(session, channel_id=channel_id)
    channel, secret = await service.rotate_secret(
        session, channel=channel, if_match=if_match, secrets_key=settings.secrets_key.get_secret_value()
    )
    set_etag(response, channel.version)
    return ChannelWithSecret(**service.to_read(channel).model_dump(), signing_secret=secret)
