"""People: accounts with argon2id passwords, roles, TOTP second factor and recovery codes."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import email_validator
import pyotp
import segno
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from gateway.models import RecoveryCode, User
from gateway.roles import PERSON_ROLES
from gateway.security import SecretBox, hash_password, hash_secret

RECOVERY_CODE_COUNT = 10
TOTP_DRIFT_STEPS = 1
MIN_PASSWORD_LENGTH = 12


class UserError(ValueError):
    """A user could not be created or changed as asked; `field` names the input at fault, when one is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EmailTaken(UserError):
    """Another account has this email (found before the insert, or by the unique index when a concurrent
    request created it first)."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


# Special-use names a staff sign-in may end in: an intranet's `.local` (the demo admin is admin@ecom.local)
# and the documentation and test names. email-validator refuses them, as addresses that cannot receive mail
# from the internet; the gateway sends no mail, the address only names the person who signs in.
SIGN_IN_ONLY_DOMAINS = ("local", "localhost", "test")


def check_email(email: str) -> None:
    """UserError (field `email`) unless `email` is an email address by its syntax, as email-validator reads
    it without a DNS lookup: one @, a dot-atom local part, a domain name with a top-level domain. A
    `SIGN_IN_ONLY_DOMAINS` ending is checked as an ordinary top-level domain of the same length."""
    local, _, domain = email.rpartition("@")
    special = next((n for n in SIGN_IN_ONLY_DOMAINS if domain == n or domain.endswith(f".{n}")), None)
    checked = (
        email if special is None else f"{local}@{domain[: len(domain) - len(special)]}{'x' * len(special)}"
    )
    try:
        email_validator.validate_email(checked, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise UserError(f"email is not valid: {exc}", field="email") from None


def check_password(password: str) -> None:
    """UserError (field `password`) for a password shorter than `MIN_PASSWORD_LENGTH` once the spaces at its
    start and end are set aside: twelve spaces, or `  abc  ` padded to length, are no password."""
    if len(password.strip()) < MIN_PASSWORD_LENGTH:
        raise UserError(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters, not counting spaces (or other "
            "white space) at its start and end",
            field="password",
        )


def _totp_context(user_id: str) -> str:
    return f"totp:{user_id}"


def validate_roles(roles: list[str]) -> list[str]:
    unknown = [role for role in roles if role not in {r.value for r in PERSON_ROLES}]
    if unknown or not roles:
        allowed = ", ".join(sorted(r.value for r in PERSON_ROLES))
        raise UserError(f"roles must be one or more of: {allowed}", field="roles")
    return sorted(set(roles))


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    user: User | None = await session.scalar(select(User).where(col(User.email) == normalize_email(email)))
    return user


async def create_user(session: AsyncSession, *, email: str, password: str, roles: list[str]) -> User:
    """A new active account; raises UserError for an invalid or taken email, a short or blank password or
    unknown roles. The password is stored as given (its spaces included), only checked."""
    email = normalize_email(email)
    check_email(email)
    check_password(password)
    roles = validate_roles(roles)
    if await get_by_email(session, email) is not None:
        raise EmailTaken(f"a user with email {email} already exists")
    user = User(
        id=f"usr_{uuid.uuid4().hex}",
        email=email,
        password_hash=await hash_password(password),
        roles=roles,
        status="active",
        created_at=datetime.now(UTC),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent request created the same email between the check and the flush
        raise EmailTaken(f"a user with email {email} already exists") from None
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(select(User).order_by(col(User.created_at)))).all())


def generate_password() -> str:
    return secrets.token_urlsafe(18)


# --- TOTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


def start_totp_enrolment(user: User, box: SecretBox, *, issuer: str) -> TotpEnrolment:
    """Give the user a new (not yet active) TOTP secret, to confirm with a first code."""
    secret = pyotp.random_base32()
    user.totp_secret_enc = box.seal(secret, context=_totp_context(user.id))
    user.totp_enabled = False
    user.totp_last_step = None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)


def totp_step_matching(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step whose code is `code`, allowing one step of drift either way (RFC 6238 §5.2)."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.fromtimestamp(at if at is not None else time.time(), UTC))
    code = code.strip().replace(" ", "")
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        # Bytes: compare_digest refuses str with non-ASCII characters, which a caller may send.
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            return step
    return None


async def check_totp(session: AsyncSession, user: User, box: SecretBox, code: str) -> bool:
    """True for a valid code of a step later than the last one used; the step is then remembered. The
    step is claimed by a compare-and-set on the last step used (a row lock until the transaction ends),
    so of logins racing with one code exactly one gets in: the code is not replayed concurrently."""
    if not user.totp_secret_enc:
        return False
    secret = box.open(user.totp_secret_enc, context=_totp_context(user.id))
    step = totp_step_matching(secret, code)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    claimed = await session.execute(
        update(User)
        .where(
            col(User.id) == user.id,
            or_(col(User.totp_last_step).is_(None), col(User.totp_last_step) < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def _normalize_recovery(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


async def issue_recovery_codes(session: AsyncSession, user: User) -> list[str]:
    """Replace the user's recovery codes with new ones; returns them in clear (shown once)."""
    await session.execute(
        update(RecoveryCode).where(col(RecoveryCode.user_id) == user.id).values(used_at=datetime.now(UTC))
    )
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(6)
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=hash_secret(_normalize_recovery(raw))))
    await session.flush()
    return codes


async def use_recovery_code(session: AsyncSession, user: User, code: str) -> bool:
    """Spend a recovery code; False when it is unknown or already used."""
    row = await session.scalar(
        select(RecoveryCode).where(
            col(RecoveryCode.user_id) == user.id,
            col(RecoveryCode.code_hash) == hash_secret(_normalize_recovery(code)),
        )
    )
    if row is None or row.used_at is not None:
        return False
    # Spent by a compare-and-set: of logins racing with one recovery code exactly one gets in.
    spent = await session.execute(
        update(RecoveryCode)
        .where(col(RecoveryCode.id) == row.id, col(RecoveryCode.used_at).is_(None))
        .values(used_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]


async def check_second_factor(session: AsyncSession, user: User, box: SecretBox, code: str) -> bool:
    """A TOTP code (6 digits) or a recovery code."""
    if code.strip().isdigit() and len(code.strip()) == 6:
        return await check_totp(session, user, box, code)
    return await use_recovery_code(session, user, code)


async def find_user(session: AsyncSession, ref: str) -> User | None:
    """A user by id (`usr_…`) or by email."""
    if ref.startswith("usr_"):
        return await session.get(User, ref)
    return await get_by_email(session, ref)


async def set_user_status(session: AsyncSession, user: User, *, active: bool) -> bool:
    """Enable or disable an account with a compare-and-set on its status; False when it already was.

    A disabled person cannot log in or refresh, the gateway refuses their tokens and sessions at once
    (its status cache is dropped by the caller), and services refuse them once they poll the
    revocation list (`/.well-known/revocations.json`, within REVOCATIONS_CACHE_SECONDS)."""
    status, expected = ("active", "disabled") if active else ("disabled", "active")
    result = await session.execute(
        update(User).where(col(User.id) == user.id, col(User.status) == expected).values(status=status)
    )
    # Either this update moved it, or it already had that status (there are only two): no re-read,
    # which would also turn the timezone-aware created_at into SQLite's naive one.
    set_committed_value(user, "status", status)
    return getattr(result, "rowcount", 0) == 1
