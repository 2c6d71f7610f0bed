"""Customer profiles: create, update, identify, read (masked or audited), all PII sealed at rest."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event, uuid7
from contracts.catalog.customers import CustomerCreated, CustomerUpdated
from customer_service.context import CustomerContext
from customer_service.crypto import WrappedKey, decrypt_document, encrypt_document
from customer_service.customers import masking
from customer_service.customers.models import (
    BlockingKey,
    Customer,
    CustomerConsentState,
    CustomerIdentifier,
    CustomerTag,
    PiiRead,
)
from customer_service.customers.normalize import Normalizer
from customer_service.customers.schemas import (
    AddressRead,
    ConsentState,
    CustomerCreate,
    CustomerRead,
    CustomerUpdate,
    EmailIn,
    EmailRead,
    ExternalIdentity,
    IdentifyRequest,
    PhoneIn,
    PhoneRead,
)
from customer_service.duplicates.matching import Side, blocking_values, side_of
from servicekit.auth import Caller
from servicekit.errors import Conflict, FieldError, NotFound, PreconditionFailed, UnprocessableEntity
from servicekit.events import outbox
from servicekit.http.concurrency import check_if_match

EMAIL = "email"
PHONE = "phone"
EXTERNAL_PREFIX = "ext:"


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class Contact:
    """The sealed part of a profile, in clear while in memory."""

    emails: list[dict[str, Any]] = field(default_factory=list)
    phones: list[dict[str, Any]] = field(default_factory=list)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    birthday: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "emails": self.emails,
            "phones": self.phones,
            "addresses": self.addresses,
            "birthday": self.birthday,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Contact:
        return cls(
            emails=list(document.get("emails", [])),
            phones=list(document.get("phones", [])),
            addresses=list(document.get("addresses", [])),
            birthday=document.get("birthday"),
        )


# --- sealing -------------------------------------------------------------------------------------


def _data_key(context: CustomerContext, customer: Customer) -> bytes:
    if customer.wrapped_key is None or customer.key_id is None:
        raise NotFound("This customer's personal data has been erased.")
    return context.keyring.unwrap(WrappedKey(customer.key_id, customer.wrapped_key))


def open_contact(context: CustomerContext, customer: Customer) -> Contact:
    """Decrypt a customer's contact data."""
    if customer.pii is None:
        return Contact()
    return Contact.from_document(
        decrypt_document(_data_key(context, customer), customer.pii, aad=customer.id)
    )


def seal_contact(context: CustomerContext, customer: Customer, contact: Contact) -> None:
    """Encrypt `contact` into the row, creating the customer's data key on first use."""
    if customer.wrapped_key is None:
        data_key, wrapped = context.keyring.new_data_key()
        customer.key_id, customer.wrapped_key = wrapped.kid, wrapped.blob
    else:
        data_key = _data_key(context, customer)
    customer.pii = encrypt_document(data_key, contact.to_document(), aad=customer.id)


# --- normalisation -------------------------------------------------------------------------------


@dataclass
class NormalizedProfile:
    contact: Contact
    fields: dict[str, Any]
    external_ids: list[ExternalIdentity] | None


def _normalize_emails(norm: Normalizer, emails: Sequence[Any], stamp: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(emails):
        address = norm.email(item.address, f"body.emails.{i}.address")
        if address and address not in seen:
            seen.add(address)
            result.append({"address": address, "verified": item.verified, "added_at": stamp})
    return result


def _normalize_phones(norm: Normalizer, phones: Sequence[Any], stamp: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(phones):
        number = norm.phone(item.number, f"body.phones.{i}.number")
        if number and number not in seen:
            seen.add(number)
            result.append({"number": number, "verified": item.verified, "added_at": stamp})
    return result


def _normalize_addresses(norm: Normalizer, addresses: Sequence[Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for i, item in enumerate(addresses):
        path = f"body.addresses.{i}"
        country = norm.country(item.country, f"{path}.country")
        result.append(
            {
                "id": secrets.token_hex(6),
                "kind": item.kind,
                "line1": norm.text(item.line1, f"{path}.line1", title=True) or "",
                "line2": norm.text(item.line2, f"{path}.line2", title=True),
                "city": norm.text(item.city, f"{path}.city", title=True) or "",
                "postcode": norm.postcode(item.postcode, country, f"{path}.postcode"),
                "region": norm.region(item.region, country, f"{path}.region"),
                "country": country or "",
                "is_default": item.is_default,
                "verified": item.verified,
            }
        )
    return with_one_default_per_kind(result)


def with_one_default_per_kind(addresses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exactly one default shipping and one default billing address (the first marked, else the first)."""
    for kind in ("shipping", "billing"):
        of_kind = [a for a in addresses if a["kind"] == kind]
        if not of_kind:
            continue
        chosen = next((a for a in of_kind if a["is_default"]), of_kind[0])
        for address in of_kind:
            address["is_default"] = address is chosen
    return addresses


def _normalize_fields(norm: Normalizer, data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("first_name", "last_name"):
        if name in data:
            fields[name] = norm.text(data[name], f"body.{name}", title=True)
    if "country" in data:
        fields["country"] = norm.country(data["country"], "body.country")
    if "locale" in data:
        fields["locale"] = data["locale"].replace("_", "-") if data["locale"] else None
    if "attributes" in data and data["attributes"] is not None:
        fields["attributes"] = dict(data["attributes"])
    if "tags" in data and data["tags"] is not None:
        tags = []
        for i, tag in enumerate(data["tags"]):
            cleaned = " ".join(str(tag).split()).lower()
            if not cleaned or len(cleaned) > 100:
                norm.fail(f"body.tags.{i}", "A tag is 1 to 100 characters.", "value_error.tag")
            elif cleaned not in tags:
                tags.append(cleaned)
        fields["tags"] = tags
    return fields


def normalize_create(
    context: CustomerContext, data: CustomerCreate, *, normalizer: type[Normalizer] = Normalizer
) -> NormalizedProfile:
    return normalize_profile(context.default_region, data, normalizer=normalizer)


def normalize_profile(
    default_region: str, data: CustomerCreate, *, normalizer: type[Normalizer] = Normalizer
) -> NormalizedProfile:
    """`normalize_create` with only what it needs of the context (import validation runs it in a worker
    process)."""
    norm = normalizer(default_region)
    stamp = now().isoformat()
    contact = Contact(
        emails=_normalize_emails(norm, data.emails, stamp),
        phones=_normalize_phones(norm, data.phones, stamp),
        addresses=_normalize_addresses(norm, data.addresses),
        birthday=_check_birthday(norm, data.birthday),
    )
    fields = _normalize_fields(
        norm, data.model_dump(include={"first_name", "last_name", "country", "locale", "attributes", "tags"})
    )
    named = fields.get("first_name") or fields.get("last_name")
    if not (norm.errors or named or contact.emails or contact.phones or data.external_ids):
        # The schema saw a name; normalised, it was only invisible characters (a zero-width space).
        norm.fail("body", "A customer needs at least one identifying field; the names are blank.", "missing")
    norm.raise_if_any()
    return NormalizedProfile(contact, fields, list(data.external_ids))


def _check_birthday(norm: Normalizer, birthday: date | None) -> str | None:
    if birthday is None:
        return None
    if birthday > date.today() or birthday.year < 1900:
        norm.fail("body.birthday", "The birthday must be between 1900 and today.", "value_error.birthday")
        return None
    return birthday.isoformat()


# --- identifiers, blocking keys, tags, quality ---------------------------------------------------


def identifier_rows(
    context: CustomerContext, customer_id: str, contact: Contact, external_ids: Sequence[ExternalIdentity]
) -> list[CustomerIdentifier]:
    return [
        CustomerIdentifier(**values)
        for values in identifier_values(context, customer_id, contact, external_ids, stamp=now())
    ]


def identifier_values(
    context: CustomerContext,
    customer_id: str,
    contact: Contact,
    external_ids: Sequence[ExternalIdentity],
    *,
    stamp: datetime,
) -> list[dict[str, Any]]:
    """The `customer_identifiers` rows of a profile as plain values (bulk inserts use them as they are)."""
    bi = context.keyring.blind_index
    rows: list[dict[str, Any]] = []
    for email in contact.emails:
        index = bi(EMAIL, email["address"])
        rows.append(
            {
                "customer_id": customer_id,
                "kind": EMAIL,
                "blind_index": index,
                "unique_key": f"{EMAIL}:{index}",
                "value": None,
                "created_at": stamp,
            }
        )
    for phone in contact.phones:
        index = bi(PHONE, phone["number"])
        rows.append(
            {
                "customer_id": customer_id,
                "kind": PHONE,
                "blind_index": index,
                "unique_key": None,
                "value": None,
                "created_at": stamp,
            }
        )
    for ext in external_ids:
        kind = f"{EXTERNAL_PREFIX}{ext.source}"
        index = bi(kind, ext.id)
        rows.append(
            {
                "customer_id": customer_id,
                "kind": kind,
                "blind_index": index,
                "unique_key": f"{kind}:{index}",
                "value": ext.id,
                "created_at": stamp,
            }
        )
    return rows


def blocking_keys(
    context: CustomerContext,
    customer: Customer,
    contact: Contact,
    external_ids: Sequence[ExternalIdentity] = (),
) -> set[str]:
    """Keys that put likely duplicates in one block; keyed hashes so no clear PII is stored."""
    return blocking_keys_for(context, customer.first_name, customer.last_name, contact, external_ids)


def blocking_keys_for(
    context: CustomerContext,
    first_name: str | None,
    last_name: str | None,
    contact: Contact,
    external_ids: Sequence[ExternalIdentity] = (),
) -> set[str]:
    """`blocking_keys` from the names and contact alone (no Customer object needed): each rule's
    value (`matching.blocking_values`) under a keyed hash, the rule kept as a readable prefix."""
    side = side_of(first_name, last_name, contact.to_document(), [(e.source, e.id) for e in external_ids])
    return blocking_keys_of_side(context, side)


def blocking_keys_of_side(
    context: CustomerContext, side: Side, known: dict[str, str] | None = None
) -> set[str]:
    """`blocking_keys` of a profile already read as a matching `Side`. `known` (a bulk writer's,
    value -> key, for one blind-index key) keeps the keys of values seen before: most values of a file
    repeat (a surname's code with a postcode or town, a street with its postcode)."""
    if known is None:
        return {_blocking_key(context, value) for value in blocking_values(side)}
    keys: set[str] = set()
    for value in blocking_values(side):
        key = known.get(value)
        if key is None:
            key = known[value] = _blocking_key(context, value)
        keys.add(key)
    return keys


def blocking_key_of_value(context: CustomerContext, value: str) -> str:
    """The stored blocking key of one clear blocking value (`rule:value`)."""
    return _blocking_key(context, value)


def _blocking_key(context: CustomerContext, value: str) -> str:
    rule, _, clear = value.partition(":")
    return f"{rule}:" + context.keyring.blind_index(f"block_{rule}", clear)[:40]


def compute_quality(customer: Customer, contact: Contact, *, open_duplicate: bool) -> None:
    """Completeness/quality: each criterion a fifth of the score."""
    customer.quality, customer.quality_score = quality_of(
        contact, customer.consents, open_duplicate=open_duplicate
    )


def quality_of(
    contact: Contact, consents: dict[str, Any], *, open_duplicate: bool
) -> tuple[dict[str, Any], float]:
    """The quality criteria and the score (their share met) of a profile."""
    criteria = {
        "valid_email": bool(contact.emails),
        "e164_phone": bool(contact.phones),
        "verified_address": any(a.get("verified") for a in contact.addresses),
        "consent_recorded": bool(consents),
        "no_open_duplicate": not open_duplicate,
    }
    return criteria, score_of_quality(criteria)


def score_of_quality(criteria: dict[str, Any]) -> float:
    return round(sum(bool(v) for v in criteria.values()) / len(criteria), 2)


async def clear_derived_rows(session: AsyncSession, customer_id: str) -> None:
    """Remove a customer's identifiers, blocking keys and tags (rewritten from its state after)."""
    for table in (CustomerIdentifier, BlockingKey, CustomerTag, CustomerConsentState):
        await session.execute(delete(table).where(col(table.customer_id) == customer_id))


async def write_derived_rows(
    session: AsyncSession,
    context: CustomerContext,
    customer: Customer,
    contact: Contact,
    external_ids: Sequence[ExternalIdentity],
) -> None:
    """Write identifiers, blocking keys and tags from the customer's current state."""
    await check_identifiers_free(session, context, customer.id, contact, external_ids)
    customer.index_key_id = context.keyring.blind_kid
    session.add_all(identifier_rows(context, customer.id, contact, external_ids))
    session.add_all(
        BlockingKey(customer_id=customer.id, key=key)
        for key in blocking_keys(context, customer, contact, external_ids)
    )
    session.add_all(CustomerTag(customer_id=customer.id, tag=tag) for tag in customer.tags)
    session.add_all(
        CustomerConsentState(customer_id=customer.id, purpose=purpose, status=str(state["status"]))
        for purpose, state in customer.consents.items()
    )
    await session.flush()


def unique_keys(
    context: CustomerContext, contact: Contact, external_ids: Sequence[ExternalIdentity]
) -> dict[str, str]:
    """The `unique_key`s of a profile's emails and external ids (also under previous blind-index keys),
    each with the request field it comes from."""
    keys: dict[str, str] = {}
    for i, email in enumerate(contact.emails):
        for index in context.keyring.blind_indexes(EMAIL, email["address"]):
            keys[f"{EMAIL}:{index}"] = f"body.emails.{i}.address"
    for i, ext in enumerate(external_ids):
        kind = f"{EXTERNAL_PREFIX}{ext.source}"
        for index in context.keyring.blind_indexes(kind, ext.id):
            keys[f"{kind}:{index}"] = f"body.external_ids.{i}"
    return keys


async def check_identifiers_free(
    session: AsyncSession,
    context: CustomerContext,
    customer_id: str,
    contact: Contact,
    external_ids: Sequence[ExternalIdentity],
) -> None:
    """409 naming the field when an email or external id already belongs to another customer."""
    wanted = unique_keys(context, contact, external_ids)
    if not wanted:
        return
    taken = (
        await session.execute(
            select(col(CustomerIdentifier.unique_key), col(CustomerIdentifier.customer_id)).where(
                col(CustomerIdentifier.unique_key).in_(list(wanted)),
                col(CustomerIdentifier.customer_id) != customer_id,
            )
        )
    ).all()
    if taken:
        errors = [
            FieldError(
                field=wanted[str(key)], message=f"Already belongs to customer {owner}.", type="conflict"
            )
            for key, owner in taken
        ]
        raise Conflict(
            "An identifier already belongs to another customer.",
            extra={"errors": [e.model_dump() for e in errors], "customer_ids": sorted({o for _, o in taken})},
        )


async def external_identities(session: AsyncSession, customer_id: str) -> list[ExternalIdentity]:
    rows = (
        await session.execute(
            select(CustomerIdentifier)
            .where(
                col(CustomerIdentifier.customer_id) == customer_id,
                col(CustomerIdentifier.kind).startswith(EXTERNAL_PREFIX),
            )
            .order_by(col(CustomerIdentifier.id))
        )
    ).scalars()
    return [external_identity_of(row) for row in rows]


def external_identity_of(row: CustomerIdentifier) -> ExternalIdentity:
    """The external identity an `ext:` identifier row holds (its clear id is stored, not only indexed)."""
    return ExternalIdentity(source=row.kind[len(EXTERNAL_PREFIX) :], id=row.value or "")


# --- commands --------------------------------------------------------------------------------------


async def create(
    session: AsyncSession, context: CustomerContext, *, data: CustomerCreate, source: str = "api"
) -> Customer:
    """Validate, normalise, seal and store a new profile; emits customer.created."""
    profile = normalize_create(context, data)
    return await create_normalized(session, context, profile=profile, source=source)


async def create_normalized(
    session: AsyncSession, context: CustomerContext, *, profile: NormalizedProfile, source: str
) -> Customer:
    stamp = now()
    customer = Customer(
        id=str(uuid7()),
        first_name=profile.fields.get("first_name"),
        last_name=profile.fields.get("last_name"),
        locale=profile.fields.get("locale"),
        country=profile.fields.get("country") or first_country(profile.contact),
        attributes=profile.fields.get("attributes", {}),
        tags=profile.fields.get("tags", []),
        consents={},
        created_at=stamp,
        updated_at=stamp,
    )
    seal_contact(context, customer, profile.contact)
    compute_quality(customer, profile.contact, open_duplicate=False)
    session.add(customer)
    await session.flush()
    await write_derived_rows(session, context, customer, profile.contact, profile.external_ids or [])
    await outbox.add(
        session,
        build_event(
            "ecom.customer.created.v1",
            CustomerCreated(customer_id=customer.id, country=customer.country),
            subject=customer.id,
            sequence=customer.version,
        ),
    )
    from customer_service.duplicates import service as duplicates
    from customer_service.risk import service as risk

    await risk.evaluate_profile(session, customer=customer, contact=profile.contact)
    await duplicates.detect_for(session, context, customer=customer, contact=profile.contact)
    return customer


def first_country(contact: Contact) -> str | None:
    for address in contact.addresses:
        if address.get("country"):
            return str(address["country"])
    return None


async def claim_version(
    session: AsyncSession, customer: Customer, *, stamp: datetime, version: int | None = None
) -> bool:
    """Move an active profile from the version it was read at (or `version`) to the next one (a
    compare-and-set that locks its row): False when a concurrent writer changed or merged it first.
    `customer` itself is left as read; the caller sets its new version."""
    expected = customer.version if version is None else version
    claimed = await session.execute(
        sa_update(Customer)
        .where(
            col(Customer.id) == customer.id,
            col(Customer.status) == "active",
            col(Customer.version) == expected,
        )
        .values(version=expected + 1, updated_at=stamp)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


async def update(
    session: AsyncSession,
    context: CustomerContext,
    *,
    customer: Customer,
    changes: CustomerUpdate,
    expected: str | None,
) -> Customer:
    """Apply the fields sent (If-Match required); emits customer.updated naming what changed."""
    check_if_match(expected, customer.version)
    data = changes.model_dump(exclude_unset=True)
    norm = Normalizer(context.default_region)
    stamp = now().isoformat()
    contact = open_contact(context, customer)
    changed: list[str] = []
    if "emails" in data:
        contact.emails = _keep_added_at(
            _normalize_emails(norm, changes.emails or [], stamp), contact.emails, "address"
        )
        changed.append("emails")
    if "phones" in data:
        contact.phones = _keep_added_at(
            _normalize_phones(norm, changes.phones or [], stamp), contact.phones, "number"
        )
        changed.append("phones")
    if "addresses" in data:
        contact.addresses = _normalize_addresses(norm, changes.addresses or [])
        changed.append("addresses")
    if "birthday" in data:
        contact.birthday = _check_birthday(norm, changes.birthday)
        changed.append("birthday")
    fields = _normalize_fields(norm, data)
    norm.raise_if_any()
    for name, value in fields.items():
        if getattr(customer, name) != value:
            setattr(customer, name, value)
            changed.append(name)
    external_ids = changes.external_ids if "external_ids" in data else None
    if external_ids is not None:
        changed.append("external_ids")
    if not changed:
        return customer
    # Compare-and-set on the version read (If-Match was checked against it): a concurrent update that
    # committed meanwhile moved it, and this one is refused (412) instead of overwriting that update.
    if not await claim_version(session, customer, stamp=now()):
        raise PreconditionFailed(
            f"Customer {customer.id} was changed by a concurrent request (it is no longer at version "
            f"{customer.version}); read it again and retry."
        )
    customer.version += 1
    customer.updated_at = now()
    seal_contact(context, customer, contact)
    open_duplicate = bool(customer.quality) and not customer.quality.get("no_open_duplicate", True)
    compute_quality(customer, contact, open_duplicate=open_duplicate)
    await session.flush()
    if external_ids is None:
        external_ids = await external_identities(session, customer.id)
    await clear_derived_rows(session, customer.id)
    await write_derived_rows(session, context, customer, contact, external_ids)
    await outbox.add(
        session,
        build_event(
            "ecom.customer.updated.v1",
            CustomerUpdated(
                customer_id=customer.id,
                version=customer.version,
                changed=sorted(set(changed)),
                country=customer.country,
                tags=customer.tags,
            ),
            subject=customer.id,
            sequence=customer.version,
        ),
    )
    from customer_service.duplicates import service as duplicates
    from customer_service.risk import service as risk

    await risk.evaluate_profile(session, customer=customer, contact=contact)
    await duplicates.detect_for(session, context, customer=customer, contact=contact)
    return customer


def _keep_added_at(new: list[dict[str, Any]], old: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """An unchanged contact keeps its original timestamp (survivorship compares them)."""
    previous = {item[key]: item for item in old}
    for item in new:
        before = previous.get(item[key])
        if before is not None:
            item["added_at"] = before.get("added_at", item["added_at"])
            item["verified"] = item["verified"] or bool(before.get("verified"))
    return new


async def get(session: AsyncSession, *, customer_id: str) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.")
    return customer


async def find_by_identifier(session: AsyncSession, *, kind: str, blind_index: str) -> Customer | None:
    """The active customer holding this identifier (the most recently created when phones are shared)."""
    row = (
        await session.execute(
            select(Customer)
            .join(CustomerIdentifier, col(CustomerIdentifier.customer_id) == col(Customer.id))
            .where(
                col(CustomerIdentifier.kind) == kind,
                col(CustomerIdentifier.blind_index) == blind_index,
                col(Customer.status) == "active",
            )
            .order_by(col(Customer.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return row


async def identify(
    session: AsyncSession, context: CustomerContext, *, request: IdentifyRequest
) -> tuple[Customer, bool]:
    """The customer matching any identifier (external id, then email, then phone), or a new one.

    Safe under concurrent calls: email and external ids are unique in `customer_identifiers`, so of
    two racing creations one fails on the constraint; it rolls back and reads the winner.
    """
    norm = Normalizer(context.default_region)
    email = norm.email(request.email, "body.email") if request.email else None
    phone = norm.phone(request.phone, "body.phone") if request.phone else None
    if not (email or phone or request.external_id) and not norm.errors:
        norm.fail("body", "Send at least one of email, phone or external_id.", "missing")
    norm.raise_if_any()
    lookups = _identify_lookups(context, email=email, phone=phone, external=request.external_id)
    found = await _lookup(session, lookups)
    if found is not None:
        return found, False
    data = CustomerCreate(
        first_name=request.first_name,
        last_name=request.last_name,
        country=request.country,
        locale=request.locale,
        emails=[EmailIn(address=email)] if email else [],
        phones=[PhoneIn(number=phone)] if phone else [],
        external_ids=[request.external_id] if request.external_id else [],
    )
    try:
        customer = await create(session, context, data=data, source="identify")
        await session.flush()
    except (IntegrityError, Conflict):
        # A concurrent identify created the customer first: this transaction holds nothing else yet.
        await session.rollback()
        found = await _lookup(session, lookups)
        if found is None:
            raise
        return found, False
    return customer, True


async def lookup_only(
    session: AsyncSession, context: CustomerContext, request: IdentifyRequest
) -> tuple[Customer | None, list[tuple[str, str]]]:
    """The customer an already normalised email or external id belongs to, without creating one."""
    lookups = _identify_lookups(context, email=request.email, phone=None, external=request.external_id)
    return await _lookup(session, lookups), lookups


def _identify_lookups(
    context: CustomerContext, *, email: str | None, phone: str | None, external: ExternalIdentity | None
) -> list[tuple[str, str]]:
    indexes = context.keyring.blind_indexes
    lookups: list[tuple[str, str]] = []
    if external is not None:
        kind = f"{EXTERNAL_PREFIX}{external.source}"
        lookups += ((kind, index) for index in indexes(kind, external.id))
    if email:
        lookups += ((EMAIL, index) for index in indexes(EMAIL, email))
    if phone:
        lookups += ((PHONE, index) for index in indexes(PHONE, phone))
    return lookups


async def _lookup(session: AsyncSession, lookups: list[tuple[str, str]]) -> Customer | None:
    for kind, index in lookups:
        found = await find_by_identifier(session, kind=kind, blind_index=index)
        if found is not None:
            return found
    return None


# --- reading -------------------------------------------------------------------------------------


async def to_read(
    session: AsyncSession, context: CustomerContext, customer: Customer, *, masked: bool
) -> CustomerRead:
    """The API view of a customer; PII masked unless `masked` is False."""
    contact = open_contact(context, customer)
    emails = ranked(contact.emails)
    phones = ranked(contact.phones)
    return CustomerRead(
        id=customer.id,
        version=customer.version,
        status="merged" if customer.status == "merged" else "active",
        merged_into_id=customer.merged_into_id,
        pii_masked=masked,
        first_name=customer.first_name,
        last_name=customer.last_name,
        emails=[
            EmailRead(
                address=masking.email(e["address"]) if masked else e["address"],
                verified=bool(e.get("verified")),
                primary=i == 0,
            )
            for i, e in enumerate(emails)
        ],
        phones=[
            PhoneRead(
                number=masking.phone(p["number"]) if masked else p["number"],
                verified=bool(p.get("verified")),
                primary=i == 0,
            )
            for i, p in enumerate(phones)
        ],
        addresses=[AddressRead(**(masking.address(a) if masked else a)) for a in contact.addresses],
        birthday=masking.birthday(contact.birthday) if masked else contact.birthday,
        locale=customer.locale,
        country=customer.country,
        attributes=customer.attributes,
        tags=customer.tags,
        external_ids=await external_identities(session, customer.id),
        consents={k: ConsentState(**v) for k, v in customer.consents.items()},
        quality_score=customer.quality_score,
        quality={k: bool(v) for k, v in customer.quality.items()},
        created_at=aware(customer.created_at),
        updated_at=aware(customer.updated_at),
    )


def ranked(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Primary first: verified before unverified, then the most recently added (survivorship order)."""
    return sorted(
        items, key=lambda item: (bool(item.get("verified")), str(item.get("added_at", ""))), reverse=True
    )


async def record_pii_reads(
    session: AsyncSession, *, customer_ids: Sequence[str], caller: Caller, route: str, request_id: str | None
) -> None:
    """Audit one unmasked read per customer returned."""
    stamp = now()
    session.add_all(
        PiiRead(
            customer_id=customer_id,
            subject=caller.subject,
            client_id=caller.client_id,
            route=route,
            request_id=request_id,
            read_at=stamp,
        )
        for customer_id in customer_ids
    )
    await session.flush()


async def list_pii_reads(
    session: AsyncSession, *, customer_id: str | None, after_id: int | None, limit: int
) -> list[PiiRead]:
    query = select(PiiRead).order_by(col(PiiRead.id)).limit(limit + 1)
    if customer_id:
        query = query.where(col(PiiRead.customer_id) == customer_id)
    if after_id is not None:
        query = query.where(col(PiiRead.id) > after_id)
    return list((await session.execute(query)).scalars())


def lookup_index(context: CustomerContext, kind: str, raw: str) -> str:
    """The blind index of an email or phone given in a query; 422 naming the parameter if invalid."""
    norm = Normalizer(context.default_region)
    value = norm.email(raw, "query.email") if kind == EMAIL else norm.phone(raw, "query.phone")
    norm.raise_if_any()
    assert value is not None
    return context.keyring.blind_index(kind, value)


def unprocessable(field_path: str, message: str, kind: str = "value_error") -> UnprocessableEntity:
    return UnprocessableEntity(
        "The request is not valid; see errors.",
        extra={"errors": [FieldError(field=field_path, message=message, type=kind).model_dump()]},
    )
