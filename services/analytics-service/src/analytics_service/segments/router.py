"""Segment routes: RFM and custom segments, members (consent-aware), counts over time, CSV export."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from analytics_service.http import ReadCaller, WriteCaller
from analytics_service.kpis.router import RangeDep, SettingsDep
from analytics_service.periods import Granularity
from analytics_service.segments import service
from analytics_service.segments.schemas import (
    ConsentPurpose,
    SegmentCount,
    SegmentCreate,
    SegmentMember,
    SegmentMembers,
    SegmentRead,
    SegmentRules,
)
from analytics_service.warehouse.models import SegmentDefinition
from servicekit.bounds import SaneDate
from servicekit.dependencies import DatabaseDep, SessionDep
from servicekit.errors import UnprocessableEntity, problem_responses
from servicekit.http.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/segments", tags=["segments"])


def _today() -> date:
    return datetime.now(UTC).date()


@router.get("", response_model=list[SegmentRead], responses=problem_responses(401, 403))
async def list_segments(
    session: SessionDep, database: DatabaseDep, settings: SettingsDep, _: ReadCaller
) -> list[SegmentRead]:
    """The RFM segments and the custom ones, with today's member counts (every customer's metrics read
    once for all of them)."""
    today = _today()
    definitions = [
        (segment, SegmentRules.model_validate(segment.rules))
        for segment in await session.scalars(select(SegmentDefinition).order_by(SegmentDefinition.name))
    ]
    async with database.read() as connection:
        everyone = service.Population(
            await service.metrics(
                connection, as_of=today, currency=settings.reporting_currency, with_details=bool(definitions)
            )
        )
        counts = [
            len(await service.choose(connection, everyone, segment.name, rules, purpose=None))
            for segment, rules in definitions
        ]
    by_rfm: dict[str, int] = dict.fromkeys(service.RFM_SEGMENTS, 0)
    for m in everyone.customers:
        by_rfm[service.rfm_segment(m)] += 1
    result = [
        SegmentRead(name=name, kind="rfm", description=text, members=by_rfm[name])
        for name, text in service.RFM_SEGMENTS.items()
    ]
    result += [
        SegmentRead(
            name=segment.name,
            kind="custom",
            description=segment.description,
            rules=rules,
            members=count,
            created_at=segment.created_at,
        )
        for (segment, rules), count in zip(definitions, counts, strict=True)
    ]
    return result


@router.post("", status_code=201, response_model=SegmentRead, responses=problem_responses(401, 403, 409, 422))
async def create_segment(body: SegmentCreate, session: SessionDep, _: WriteCaller) -> SegmentRead:
    """Define a custom segment by rules over customer metrics."""
    segment = await service.create(session, body)
    return SegmentRead(
        name=segment.name,
        kind="custom",
        description=segment.description,
        rules=body.rules,
        members=0,
        created_at=segment.created_at,
    )


@router.delete("/{name}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_segment(name: str, session: SessionDep, _: WriteCaller) -> Response:
    """Delete a custom segment."""
    await service.delete(session, name)
    return Response(status_code=204)


@router.get(
    "/{name}/members", response_model=SegmentMembers, responses=problem_responses(400, 401, 403, 404, 422)
)
async def segment_members(
    name: str,
    database: DatabaseDep,
    settings: SettingsDep,
    _: ReadCaller,
    as_of: SaneDate | None = None,
    purpose: ConsentPurpose | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> SegmentMembers:
    """The segment's members with their RFM metrics, by customer id; with `purpose`, only customers who
    granted consent for it."""
    after = decode_cursor(cursor).get("id") if cursor else None
    day = as_of or _today()
    async with database.read() as connection:
        rows = await service.members(
            connection, name, as_of=day, currency=settings.reporting_currency, purpose=purpose
        )
    if isinstance(after, str):
        rows = [m for m in rows if m.customer_id > after]
    page = rows[:limit]
    next_cursor = encode_cursor({"id": page[-1].customer_id}) if len(rows) > limit else None
    return SegmentMembers(
        segment=name,
        as_of=day,
        purpose=purpose,
        items=[SegmentMember.model_validate(service.as_json(m)) for m in page],
        next_cursor=next_cursor,
    )


@router.get(
    "/{name}/export",
    responses={**problem_responses(401, 403, 404, 422), 200: {"content": {"text/csv": {}}}},
    response_class=Response,
)
async def export_segment(
    name: str,
    purpose: ConsentPurpose,
    database: DatabaseDep,
    settings: SettingsDep,
    _: ReadCaller,
    as_of: SaneDate | None = None,
) -> Response:
    """CSV of the members (today's, or as of `as_of`) for a marketing tool: only customers who granted
    consent for `purpose`."""
    async with database.read() as connection:
        rows = await service.members(
            connection, name, as_of=as_of or _today(), currency=settings.reporting_currency, purpose=purpose
        )
    return Response(
        service.to_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="segment-{name}-{purpose}.csv"'},
    )


@router.get(
    "/{name}/counts", response_model=list[SegmentCount], responses=problem_responses(401, 403, 404, 422)
)
async def segment_counts(
    name: str,
    span: RangeDep,
    database: DatabaseDep,
    settings: SettingsDep,
    _: ReadCaller,
    granularity: Granularity = "month",
) -> list[SegmentCount]:
    """Members at the end of each day, week or month of `start`..`end`."""
    async with database.read() as connection:
        await service.known_segment(connection, name)
        if granularity == "day" and span.days > 92:
            raise UnprocessableEntity("Daily segment counts cover at most 92 days; use week or month.")
        points = await service.counts(
            connection, name, span=span, granularity=granularity, currency=settings.reporting_currency
        )
    return [SegmentCount(as_of=day, members=count) for day, count in points]
