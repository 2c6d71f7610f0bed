"""GET /v1/channels/{id}/feed.xml: a feed channel's publishable listings as a Google Merchant Center
feed, streamed page by page from the database, with an ETag (304 on If-None-Match)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlmodel import col

from servicekit.db import Database
from servicekit.dependencies import SessionDep
from servicekit.errors import Conflict, problem_responses
from sync_service.channels import service as channels
from sync_service.common import ReadCaller, SettingsDep
from sync_service.feed.render import FeedWriter, item_fields
from sync_service.listings.models import Listing

router = APIRouter(prefix="/v1/channels", tags=["feed"])

PAGE = 500
MEDIA_TYPE = "application/rss+xml; charset=utf-8"


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


async def _items(
    database: Database, *, channel_id: str, name: str, code: str, link_base: str
) -> AsyncIterator[bytes]:
    writer = FeedWriter()
    yield writer.head(title=name, link=link_base, description=f"Products of {name} ({code})")
    after: str | None = None
    while True:
        async with database.session() as session:
            query = select(col(Listing.sku), col(Listing.desired)).where(
                col(Listing.channel_id) == channel_id, col(Listing.publishable).is_(True)
            )
            if after is not None:
                query = query.where(col(Listing.sku) > after)
            rows = (await session.execute(query.order_by(col(Listing.sku)).limit(PAGE))).all()
        for _, state in rows:
            fields = item_fields(state, link_base=link_base)
            if fields is not None:
                yield writer.item(fields)
        if len(rows) < PAGE:
            break
        after = rows[-1][0]
    yield writer.tail()


@router.get(
    "/{channel_id}/feed.xml",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/rss+xml": {}}, "description": "RSS 2.0 with the g: namespace"},
        304: {"description": "Not modified (If-None-Match named the current ETag)"},
        **problem_responses(401, 403, 404, 409),
    },
)
async def product_feed(
    channel_id: str,
    session: SessionDep,
    _: ReadCaller,
    settings: SettingsDep,
    request: Request,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """The feed channel's publishable listings as a Google Merchant Center product feed (RSS 2.0, `g:`
    namespace): id, title, description, link, image_link, availability, price, sale_price with its
    effective dates, gtin, brand, condition, item_group_id for variants. 409 for a channel that is not a
    feed or is retired."""
    channel = await channels.get_channel(session, channel_id=channel_id)
    if channel.kind != "feed":
        raise Conflict(f"Channel {channel.code} is a {channel.kind} channel; only feed channels have a feed.")
    if channel.status == "retired":
        raise Conflict(f"Channel {channel.code} is retired.")
    count, latest, seqs = (
        await session.execute(
            select(func.count(), func.max(col(Listing.updated_at)), func.sum(col(Listing.desired_seq))).where(
                col(Listing.channel_id) == channel.id
            )
        )
    ).one()
    link_base = channel.endpoint or settings.feed_link_base
    digest = hashlib.sha256(f"{channel.version}|{count}|{latest}|{seqs}|{link_base}".encode()).hexdigest()
    etag = f'"{digest[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    database: Database = request.app.state.runtime.database
    return StreamingResponse(
        _items(database, channel_id=channel.id, name=channel.name, code=channel.code, link_base=link_base),
        media_type=MEDIA_TYPE,
        headers=headers,
    )
