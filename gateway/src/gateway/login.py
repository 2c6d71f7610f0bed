"""Password (+ second factor) login with progressive lockout per account and per IP, audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import audit, throttle
from gateway.config import Settings
from gateway.models import User
from gateway.security import SecretBox, verify_password
from gateway.users import check_second_factor, get_by_email, normalize_email


@dataclass(frozen=True)
class LoginResult:
    user: User | None = None
    error: str | None = None
    retry_after: int = 0
    otp_required: bool = False


def account_policy(settings: Settings) -> throttle.LockoutPolicy:
    return throttle.LockoutPolicy(
        settings.lockout_threshold, settings.lockout_base_seconds, settings.lockout_max_seconds
    )


def ip_policy(settings: Settings) -> throttle.LockoutPolicy:
    return throttle.LockoutPolicy(
        settings.lockout_ip_threshold, settings.lockout_base_seconds, settings.lockout_max_seconds
    )


async def _fail(
    session: AsyncSession, settings: Settings, *, email: str, ip: str, reason: str
) -> LoginResult:
    account = throttle.account_key(email)
    locked = await throttle.register_failure(session, account, account_policy(settings))
    ip_locked = await throttle.register_failure(session, throttle.ip_key(ip), ip_policy(settings))
    await audit.record(session, "login", outcome="failure", actor=email, ip=ip, detail={"reason": reason})
    for by, seconds in (("account", locked), ("ip", ip_locked)):
        if seconds:
            await audit.record(
                session,
                "lockout",
                outcome="locked",
                actor=email,
                ip=ip,
                detail={"seconds": seconds, "by": by},
            )
    return LoginResult(error="The email, password or one-time code is not correct.")


async def authenticate_person(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    *,
    email: str,
    password: str,
    otp: str | None,
    ip: str,
) -> LoginResult:
    """Check a login; failures are counted (and committed by the caller's session) rather than raised."""
    email = normalize_email(email)
    wait = max(
        await throttle.locked_for(session, throttle.account_key(email)),
        await throttle.locked_for(session, throttle.ip_key(ip)),
    )
    if wait:
        await audit.record(session, "login", outcome="locked", actor=email, ip=ip)
        return LoginResult(error=f"Too many failed attempts; try again in {wait} s.", retry_after=wait)
    user = await get_by_email(session, email)
    if not await verify_password(password, user.password_hash if user else None) or user is None:
        return await _fail(session, settings, email=email, ip=ip, reason="password")
    if user.status != "active":
        return await _fail(session, settings, email=email, ip=ip, reason="disabled")
    if user.totp_enabled:
        if not otp:
            return LoginResult(error="This account needs a one-time code (otp).", otp_required=True)
        if not await check_second_factor(session, user, box, otp):
            return await _fail(session, settings, email=email, ip=ip, reason="otp")
    # A success ends the run of failures of the account and of the address it came from (the auth
    # endpoints' per-address rate limit still bounds how fast one address can guess).
    await throttle.register_success(session, throttle.account_key(email))
    await throttle.register_success(session, throttle.ip_key(ip))
    await audit.record(session, "login", outcome="success", actor=email, target=user.id, ip=ip)
    return LoginResult(user=user)
