"""A person's own account: who am I, TOTP enrolment and recovery codes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway import audit
from gateway.auth import CurrentCaller
from gateway.limits import client_ip
from gateway.models import User
from gateway.runtime import GatewayDep
from gateway.users import check_totp, issue_recovery_codes, start_totp_enrolment
from servicekit.dependencies import SessionDep
from servicekit.errors import Conflict, Forbidden, UnprocessableEntity, problem_responses

router = APIRouter(prefix="/v1/me", tags=["account"], responses=problem_responses(401, 403))


class Me(BaseModel):
    id: str
    email: str
    roles: list[str]
    scopes: list[str]
    totp_enabled: bool


class TotpEnrolmentRead(BaseModel):
    secret: str = Field(description="Base32 secret, for manual entry")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as a QR code (SVG)")


class TotpConfirm(BaseModel):
    code: str = Field(min_length=6, max_length=8)


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="One-time codes, shown once; each replaces a TOTP code once"
    )


async def _user(session: SessionDep, subject: str) -> User:
    user = await session.get(User, subject)
    if user is None:
        raise Forbidden("Only people have an account here; machine clients do not.")
    return user


@router.get("", response_model=Me)
async def me(caller: CurrentCaller, session: SessionDep) -> Me:
    """The signed-in person's account."""
    user = await _user(session, caller.subject)
    return Me(
        id=user.id,
        email=user.email,
        roles=user.roles,
        scopes=sorted(caller.scopes),
        totp_enabled=user.totp_enabled,
    )


@router.post("/totp", response_model=TotpEnrolmentRead, responses=problem_responses(409))
async def enrol_totp(caller: CurrentCaller, session: SessionDep, gateway: GatewayDep) -> TotpEnrolmentRead:
    """Start TOTP enrolment: a new secret as an otpauth URI and a QR code; confirm it with a code."""
    user = await _user(session, caller.subject)
    if user.totp_enabled:
        raise Conflict("A second factor is already enrolled.")
    enrolment = start_totp_enrolment(user, gateway.box, issuer=gateway.settings.totp_issuer)
    await session.flush()
    return TotpEnrolmentRead(**enrolment.__dict__)


@router.post("/totp/confirm", response_model=RecoveryCodes, responses=problem_responses(409, 422))
async def confirm_totp(
    body: TotpConfirm, caller: CurrentCaller, session: SessionDep, gateway: GatewayDep, request: Request
) -> RecoveryCodes:
    """Turn TOTP on with a first valid code; returns the one-time recovery codes."""
    user = await _user(session, caller.subject)
    if user.totp_enabled:
        raise Conflict("A second factor is already enrolled.")
    if not user.totp_secret_enc:
        raise Conflict("Start the enrolment first (POST /v1/me/totp).")
    if not await check_totp(session, user, gateway.box, body.code):
        raise UnprocessableEntity("The code is not valid.")
    user.totp_enabled = True
    codes = await issue_recovery_codes(session, user)
    await audit.record(session, "totp.enrol", actor=user.email, target=user.id, ip=client_ip(request))
    return RecoveryCodes(recovery_codes=codes)
