"""Administration: users, API clients, signing keys and the audit log (scope `admin`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from gateway import audit
from gateway.auth import AdminCaller
from gateway.clients import ClientError, SecretRotatedMeanwhile, create_client, rotate_secret, set_status
from gateway.keys import KeyRotationConflict, rotate_keys
from gateway.limits import client_ip
from gateway.listing import page_by_creation
from gateway.models import ApiClient, AuditEvent, SigningKey, User
from gateway.roles import ROLE_SCOPES, Role
from gateway.runtime import GatewayDep
from gateway.users import EmailTaken, UserError, create_user, set_user_status
from servicekit.dependencies import SessionDep
from servicekit.errors import Conflict, NotFound, UnprocessableEntity, problem_responses
from servicekit.http.pagination import MAX_LIMIT, Page, PageDep, cursor_key, decode_cursor, make_page

router = APIRouter(prefix="/admin", tags=["admin"], responses=problem_responses(401, 403))


class ClientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role


class ClientRead(BaseModel):
    client_id: str
    name: str
    role: str
    scopes: list[str]
    status: str
    created_at: datetime
    secret_rotated_at: datetime | None = None
    disabled_at: datetime | None = None

    @classmethod
    def of(cls, client: ApiClient) -> ClientRead:
        return cls(
            client_id=client.client_id,
            name=client.name,
            role=client.role,
            scopes=list(ROLE_SCOPES[Role(client.role)]),
            status=client.status,
            created_at=client.created_at,
            secret_rotated_at=client.secret_rotated_at,
            disabled_at=client.disabled_at,
        )


class ClientWithSecret(ClientRead):
    client_secret: str = Field(description="Shown once; only its hash is stored")


class UserCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=12, max_length=512)
    roles: list[Role] = Field(min_length=1)


class UserRead(BaseModel):
    id: str
    email: str
    roles: list[str]
    status: str
    totp_enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserRead:
        return cls(
            id=user.id,
            email=user.email,
            roles=user.roles,
            status=user.status,
            totp_enabled=user.totp_enabled,
            created_at=user.created_at,
        )


class KeyRead(BaseModel):
    kid: str
    status: str
    created_at: datetime
    retired_at: datetime | None = None
    published_until: int | None = None

    @classmethod
    def of(cls, key: SigningKey) -> KeyRead:
        return cls(
            kid=key.kid,
            status=key.status,
            created_at=key.created_at,
            retired_at=key.retired_at,
            published_until=key.published_until,
        )


class AuditRead(BaseModel):
    id: int
    at: datetime
    action: str
    outcome: str
    actor: str | None
    target: str | None
    ip: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditRead:
        assert event.id is not None
        return cls(
            id=event.id,
            at=event.at,
            action=event.action,
            outcome=event.outcome,
            actor=event.actor,
            target=event.target,
            ip=event.ip,
            detail=event.detail,
        )


# --- clients ---------------------------------------------------------------------------------------


@router.post("/clients", status_code=201, response_model=ClientWithSecret, responses=problem_responses(422))
async def create_api_client(
    body: ClientCreate, session: SessionDep, caller: AdminCaller, request: Request
) -> ClientWithSecret:
    """Create a machine client; the response holds its secret, shown only this once."""
    try:
        client, secret = await create_client(session, name=body.name, role=body.role.value)
    except ClientError as exc:
        raise UnprocessableEntity(str(exc)) from None
    await audit.record(
        session,
        "client.create",
        actor=caller.subject,
        target=client.client_id,
        ip=client_ip(request),
        detail={"role": client.role, "name": client.name},
    )
    return ClientWithSecret(**ClientRead.of(client).model_dump(), client_secret=secret)


@router.get("/clients", response_model=Page[ClientRead], responses=problem_responses(400))
async def list_api_clients(session: SessionDep, _: AdminCaller, page: PageDep) -> Page[ClientRead]:
    """Machine clients (never their secrets), oldest first; cursor pagination."""
    result = await page_by_creation(session, ApiClient, ApiClient.client_id, page)
    return Page[ClientRead](items=[ClientRead.of(c) for c in result.items], next_cursor=result.next_cursor)


async def _change_client(session: Any, client_id: str, change: Any) -> Any:
    try:
        return await change(session, client_id)
    except SecretRotatedMeanwhile as exc:
        raise Conflict(str(exc)) from None
    except ClientError as exc:
        raise NotFound(str(exc)) from None


@router.post(
    "/clients/{client_id}/rotate", response_model=ClientWithSecret, responses=problem_responses(404, 409)
)
async def rotate_api_client_secret(
    client_id: str, session: SessionDep, caller: AdminCaller, request: Request
) -> ClientWithSecret:
    """Give the client a new secret (returned once); the old secret stops working at once. 409 when
    another rotation of the same client won the race (its secret is the one in force)."""
    client, secret = await _change_client(session, client_id, rotate_secret)
    await audit.record(
        session, "client.rotate", actor=caller.subject, target=client_id, ip=client_ip(request)
    )
    return ClientWithSecret(**ClientRead.of(client).model_dump(), client_secret=secret)


@router.post("/clients/{client_id}/disable", response_model=ClientRead, responses=problem_responses(404))
async def disable_api_client(
    client_id: str, session: SessionDep, caller: AdminCaller, request: Request, gateway: GatewayDep
) -> ClientRead:
    """Disable a client: no new tokens, and the gateway refuses its existing tokens."""
    client = await _change_client(session, client_id, lambda s, c: set_status(s, c, active=False))
    await audit.record(
        session, "client.disable", actor=caller.subject, target=client_id, ip=client_ip(request)
    )
    gateway.principals.forget(client_id)
    return ClientRead.of(client)


@router.post("/clients/{client_id}/enable", response_model=ClientRead, responses=problem_responses(404))
async def enable_api_client(
    client_id: str, session: SessionDep, caller: AdminCaller, request: Request, gateway: GatewayDep
) -> ClientRead:
    """Enable a disabled client again."""
    client = await _change_client(session, client_id, lambda s, c: set_status(s, c, active=True))
    await audit.record(
        session, "client.enable", actor=caller.subject, target=client_id, ip=client_ip(request)
    )
    gateway.principals.forget(client_id)
    return ClientRead.of(client)


# --- users -----------------------------------------------------------------------------------------


@router.post("/users", status_code=201, response_model=UserRead, responses=problem_responses(409, 422))
async def create_person(
    body: UserCreate, session: SessionDep, caller: AdminCaller, request: Request
) -> UserRead:
    """Create a person's account with a password and one or more roles; 409 when the email has an
    account already (also when a concurrent request created it first)."""
    try:
        user = await create_user(
            session, email=body.email, password=body.password, roles=[r.value for r in body.roles]
        )
    except EmailTaken as exc:
        raise Conflict(str(exc)) from None
    except UserError as exc:
        field = {"field": f"body.{exc.field}", "message": str(exc), "type": "value_error"}
        raise UnprocessableEntity(str(exc), extra={"errors": [field]} if exc.field else None) from None
    await audit.record(
        session,
        "user.create",
        actor=caller.subject,
        target=user.id,
        ip=client_ip(request),
        detail={"roles": user.roles},
    )
    return UserRead.of(user)


@router.get("/users", response_model=Page[UserRead], responses=problem_responses(400))
async def list_people(session: SessionDep, _: AdminCaller, page: PageDep) -> Page[UserRead]:
    """People's accounts, oldest first; cursor pagination."""
    result = await page_by_creation(session, User, User.id, page)
    return Page[UserRead](items=[UserRead.of(u) for u in result.items], next_cursor=result.next_cursor)


async def _set_person_status(
    user_id: str, *, active: bool, session: Any, caller: Any, request: Request, gateway: Any
) -> UserRead:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user has the id {user_id}.")
    changed = await set_user_status(session, user, active=active)
    await audit.record(
        session,
        "user.enable" if active else "user.disable",
        outcome="success" if changed else "unchanged",
        actor=caller.subject,
        target=user.id,
        ip=client_ip(request),
    )
    gateway.principals.forget(user.id)
    gateway.session_tokens.clear()
    return UserRead.of(user)


@router.post("/users/{user_id}/disable", response_model=UserRead, responses=problem_responses(404))
async def disable_person(
    user_id: str, session: SessionDep, caller: AdminCaller, request: Request, gateway: GatewayDep
) -> UserRead:
    """Disable a person's account: no login or refresh, the gateway refuses their tokens and sessions at
    once, services within their revocation-list poll (5 s by default)."""
    return await _set_person_status(
        user_id, active=False, session=session, caller=caller, request=request, gateway=gateway
    )


@router.post("/users/{user_id}/enable", response_model=UserRead, responses=problem_responses(404))
async def enable_person(
    user_id: str, session: SessionDep, caller: AdminCaller, request: Request, gateway: GatewayDep
) -> UserRead:
    """Enable a disabled account again."""
    return await _set_person_status(
        user_id, active=True, session=session, caller=caller, request=request, gateway=gateway
    )


# --- keys ------------------------------------------------------------------------------------------


@router.get("/keys", response_model=Page[KeyRead], responses=problem_responses(400))
async def list_signing_keys(session: SessionDep, _: AdminCaller, page: PageDep) -> Page[KeyRead]:
    """The signing keys, active and retired, oldest first; cursor pagination."""
    result = await page_by_creation(session, SigningKey, SigningKey.kid, page)
    return Page[KeyRead](items=[KeyRead.of(k) for k in result.items], next_cursor=result.next_cursor)


@router.post("/keys/rotate", status_code=201, response_model=KeyRead, responses=problem_responses(409))
async def rotate_signing_key(
    session: SessionDep, caller: AdminCaller, request: Request, gateway: GatewayDep
) -> KeyRead:
    """Add a new signing key; the old one keeps verifying until its tokens have expired."""
    try:
        key = await rotate_keys(
            session, gateway.box, access_token_ttl=gateway.settings.access_token_ttl_seconds
        )
    except KeyRotationConflict as exc:
        raise Conflict(str(exc)) from None
    await audit.record(session, "key.rotate", actor=caller.subject, target=key.kid, ip=client_ip(request))
    await session.commit()
    await gateway.keyring.load()
    return KeyRead.of(key)


# --- audit -----------------------------------------------------------------------------------------


@router.get("/audit", response_model=Page[AuditRead], responses=problem_responses(400))
async def audit_log(
    session: SessionDep,
    _: AdminCaller,
    action: Annotated[
        str | None, Query(description="e.g. login, token.issue, client.disable, lockout")
    ] = None,
    outcome: Annotated[str | None, Query(description="success, failure, locked")] = None,
    actor: Annotated[str | None, Query(description="email, client id or user id")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="The next_cursor of the previous page")] = None,
) -> Page[AuditRead]:
    """The audit log, newest first, filterable and paginated; 422 when `until` is not after `since`."""
    if since is not None and until is not None and until <= since:
        raise UnprocessableEntity(
            f"The time range is empty: until {until.isoformat()} is not after since {since.isoformat()}."
        )
    key = cursor_key(decode_cursor(cursor), ("id", int)) if cursor else None
    before_id: int | None = key[0] if key else None
    rows = await audit.search(
        session,
        limit=limit,
        before_id=before_id,
        action=action,
        outcome=outcome,
        actor=actor,
        since=since,
        until=until,
    )
    return make_page([AuditRead.of(row) for row in rows], limit, lambda item: {"id": item.id})
