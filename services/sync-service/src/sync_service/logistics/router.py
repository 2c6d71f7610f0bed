"""Logistics partner routes: register (secret shown once), list, read, change, rotate the secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.concurrency import IfMatchDep, set_etag
from servicekit.http.pagination import Page, PageDep, cursor_value, make_page
from sync_service.common import AdminCaller, ReadCaller, SettingsDep
from sync_service.logistics import service
from sync_service.logistics.models import LogisticsPartner
from sync_service.logistics.schemas import PartnerCreate, PartnerRead, PartnerUpdate, PartnerWithSecret

router = APIRouter(prefix="/v1/logistics-partners", tags=["logistics partners"])


async def get_partner_or_404(partner_id: str, session: SessionDep) -> LogisticsPartner:
    return await service.get(session, partner_id=partner_id)


PartnerDep = Annotated[LogisticsPartner, Depends(get_partner_or_404)]


def _read(partner: LogisticsPartner) -> PartnerRead:
    return PartnerRead.model_validate(partner.model_dump())


def _with_secret(partner: LogisticsPartner, secret: str, status: int) -> JSONResponse:
    body = PartnerWithSecret(**_read(partner).model_dump(), signing_secret=secret)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status,
        headers={"ETag": f'"{partner.version}"', "Cache-Control": "no-store"},
    )


@router.post(
    "",
    status_code=201,
    response_model=PartnerWithSecret,
    responses=problem_responses(401, 403, 409, 422),
)
async def register_partner(
    body: PartnerCreate, session: SessionDep, settings: SettingsDep, _: AdminCaller
) -> JSONResponse:
    """Register a logistics partner; the answer shows its signing secret, once."""
    partner, secret = await service.create(session, key=settings.secrets_key.get_secret_value(), body=body)
    return _with_secret(partner, secret, 201)


@router.get("", response_model=Page[PartnerRead], responses=problem_responses(400, 401, 403))
async def list_partners(session: SessionDep, page: PageDep, _: ReadCaller) -> Page[PartnerRead]:
    """The logistics partners, by code."""
    after = cursor_value(page.cursor, "code", str)
    rows = await service.page(session, after_code=after, limit=page.limit)
    result = make_page(rows, page.limit, lambda p: {"code": p.code})
    return Page[PartnerRead](items=[_read(p) for p in result.items], next_cursor=result.next_cursor)


@router.get("/{partner_id}", response_model=PartnerRead, responses=problem_responses(401, 403, 404))
async def read_partner(partner: PartnerDep, response: Response, _: ReadCaller) -> PartnerRead:
    """One logistics partner (never its secret), with its ETag."""
    set_etag(response, partner.version)
    return _read(partner)


@router.patch(
    "/{partner_id}",
    response_model=PartnerRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_partner(
    partner: PartnerDep,
    body: PartnerUpdate,
    session: SessionDep,
    response: Response,
    if_match: IfMatchDep,
    _: AdminCaller,
) -> PartnerRead:
    """Change a partner's name, client id, status overrides or enabled flag (If-Match required)."""
    partner = await service.update_partner(session, partner=partner, changes=body, if_match=if_match)
    set_etag(response, partner.version)
    return _read(partner)


@router.post(
    "/{partner_id}/secret",
    response_model=PartnerWithSecret,
    responses=problem_responses(401, 403, 404, 409, 412, 428),
)
async def rotate_secret(
    partner: PartnerDep, session: SessionDep, settings: SettingsDep, if_match: IfMatchDep, _: AdminCaller
) -> JSONResponse:
    """Replace the partner's signing secret (If-Match required); the new one is shown once."""
    partner, secret = await service.rotate_secret(
        session, key=settings.secrets_key.get_secret_value(), partner=partner, if_match=if_match
    )
    return _with_secret(partner, secret, 200)
