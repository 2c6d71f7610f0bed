"""Listing routes: a channel's listings with their desired and acknowledged state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.pagination import Page, PageDep
from sync_service.channels import service as channels
from sync_service.common import ReadCaller, as_utc
from sync_service.listings import service
from sync_service.listings.models import Listing
from sync_service.listings.schemas import ListingRead, ListingStatus

router = APIRouter(prefix="/v1/channels", tags=["listings"])


def to_read(listing: Listing) -> ListingRead:
    return ListingRead(
        channel_id=listing.channel_id,
        sku=listing.sku,
        product_id=listing.product_id,
        status=listing.status,
        publishable=listing.publishable,
        desired=listing.desired,
        desired_seq=listing.desired_seq,
        desired_at=as_utc(listing.desired_at),
        acknowledged=listing.acked,
        acknowledged_seq=listing.acked_seq,
        acknowledged_at=as_utc(listing.acked_at) if listing.acked_at else None,
        last_error=listing.last_error,
        created_at=as_utc(listing.created_at),
        updated_at=as_utc(listing.updated_at),
    )


@router.get(
    "/{channel_id}/listings",
    response_model=Page[ListingRead],
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_listings(
    channel_id: str,
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    status: Annotated[ListingStatus | None, Query()] = None,
    sku: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    product_id: Annotated[str | None, Query(min_length=1, max_length=36)] = None,
) -> Page[ListingRead]:
    """The channel's listings by SKU (desired and acknowledged state, status, last error), filtered by
    status, SKU or product; cursor pagination."""
    await channels.get_channel(session, channel_id=channel_id)
    result = await service.list_listings(
        session, channel_id=channel_id, status=status, sku=sku, product_id=product_id, page=page
    )
    return Page[ListingRead](
        items=[to_read(listing) for listing in result.items], next_cursor=result.next_cursor
    )
