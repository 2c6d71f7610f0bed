"""Channel facts route: the catalogue as sales channels show it, a page of products at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from product_service.channel_facts import service
from product_service.channel_facts.schemas import ChannelFactsPage
from product_service.common import ReadCaller, cursor_id, utc_now
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.pagination import encode_cursor

router = APIRouter(prefix="/v1", tags=["catalog"])

MAX_FACTS_PAGE = 200


@router.get(
    "/channel-facts", response_model=ChannelFactsPage, responses=problem_responses(400, 401, 403, 422)
)
async def channel_facts(
    session: SessionDep,
    _: ReadCaller,
    limit: Annotated[int, Query(ge=1, le=MAX_FACTS_PAGE)] = 100,
    cursor: str | None = None,
) -> ChannelFactsPage:
    """Every product (archived ones too) in id order as its events describe it, with its SKUs' prices in
    effect now and their stock per location; cursor pagination. sync-service's full resync reads it."""
    after = cursor_id(cursor, str)
    at = utc_now()
    items, more = await service.facts_page(session, limit=limit, after_id=after, at=at)
    next_cursor = encode_cursor({"id": items[-1].product_id}) if more and items else None
    return ChannelFactsPage(items=items, next_cursor=next_cursor, as_of=at)
