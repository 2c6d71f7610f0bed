"""Duplicate detection (blocking + scoring on every write), merge with survivorship, and undo."""

from __future__ import annotations

import base64
import functools
import heapq
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import TextClause, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event, uuid7
from contracts.catalog.customers import CustomerMerged, CustomerUnmerged
from customer_service.consent.models import ConsentRecord
from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.customers.schemas import ExternalIdentity
from customer_service.duplicates.linkage import evidence as linkage_evidence
from customer_service.duplicates.linkage import score_at_least
from customer_service.duplicates.matching import side_of
from customer_service.duplicates.model_store import current_model
from customer_service.duplicates.models import DuplicateCandidate, Merge
from customer_service.orders.models import Order
from servicekit.errors import Conflict, NotFound, UnprocessableEntity
from servicekit.events import outbox

MAX_BLOCK_CANDIDATES = 50
MAX_PHONETIC_CANDIDATES = 10
# Keys of the broad blocking rules (a name alone, one name with a postcode or city, a street): their
# blocks grow with the base (common names, apartment blocks), so only their most recent few members
# are compared.
BROAD_PREFIXES = ("ph:", "np:", "nc:", "ac:")


def is_broad(key: str) -> bool:
    return key.startswith(BROAD_PREFIXES)


OPEN = "open"
# Values per IN (...) list: well under the bind parameter limits of SQLite and asyncpg.
IN_LIST_MAX = 2_000


T = TypeVar("T")


def in_list_parts(values: Sequence[T]) -> Iterator[list[T]]:
    """`values` in slices of at most IN_LIST_MAX, one query's IN (...) list each."""
    for start in range(0, len(values), IN_LIST_MAX):
        yield list(values[start : start + IN_LIST_MAX])


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


async def detect_for(
    session: AsyncSession, context: CustomerContext, *, customer: Customer, contact: customers.Contact
) -> list[DuplicateCandidate]:
    """Score the customer against every active profile sharing a blocking key; record the pairs above
    the threshold and merge automatically those above the auto-merge threshold."""
    keys = customers.blocking_keys(context, customer, contact)
    if not keys:
        return []
    other_ids = candidates_from(await holders_by_key(session, sorted(keys)), exclude={customer.id})
    if not other_ids:
        return []
    mine = side_of(customer.first_name, customer.last_name, contact.to_document())
    model = await current_model(session, context)
    found: list[DuplicateCandidate] = []
    best: tuple[float, Customer] | None = None
    # By id only, the status checked here: with `status = 'active'` in the WHERE, SQLite without
    # statistics (a database never ANALYZEd, as a service's is) reads the candidates through the status
    # index, i.e. every active customer (6.5 ms at 25,000 customers, growing with the base).
    loaded = (await session.execute(select(Customer).where(col(Customer.id).in_(other_ids)))).scalars()
    others = [other for other in loaded if other.status == "active"]
    for other in others:
        theirs = customers.open_contact(context, other)
        scored = score_at_least(
            mine,
            side_of(other.first_name, other.last_name, theirs.to_document()),
            context.duplicate_threshold,
            model,
        )
        if scored is None or scored[0] < context.duplicate_threshold:
            continue
        total, evidence = scored
        candidate = await _record_candidate(session, customer.id, other.id, total, evidence)
        if candidate.status != OPEN:
            continue  # a steward dismissed this pair (or undid its merge): never propose it again
        found.append(candidate)
        await _set_open_duplicate(session, context, other, True)
        if best is None or total > best[0]:
            best = (total, other)
    if found:
        await _set_open_duplicate(session, context, customer, True)
    if best is not None and context.auto_merge_enabled and best[0] >= context.auto_merge_threshold:
        survivor, merged = (best[1], customer) if best[1].id < customer.id else (customer, best[1])
        await merge(
            session,
            context,
            survivor=survivor,
            others=[merged],
            actor="auto-merge",
            automatic=True,
            score=best[0],
        )
    return found


async def record_candidate(
    session: AsyncSession,
    context: CustomerContext,
    a_id: str,
    b_id: str,
    probability: float,
    weights: dict[str, float],
) -> DuplicateCandidate:
    """List a pair for review (open) and lower both profiles' quality (they have an open duplicate)."""
    candidate = await _record_candidate(session, a_id, b_id, probability, weights)
    if candidate.status == OPEN:
        for customer_id in (a_id, b_id):
            customer = await session.get(Customer, customer_id)
            if customer is not None:
                await _set_open_duplicate(session, context, customer, True)
    return candidate


# Keys per UNION ALL query of `sharing_by_key` (two bind parameters each).
KEYS_PER_QUERY = 200


@functools.lru_cache(maxsize=8)
def _blocks_query(count: int) -> TextClause:
    """The most recent holders of `count` keys (:k0.., limits :l0..), each read through the
    (key, customer_id) index. Plain SQL built once per size: building hundreds of subqueries with the
    expression language per chunk cost more than running them."""
    one = (
        "SELECT * FROM (SELECT key, customer_id FROM customer_blocking_keys WHERE key = :k{i} "
        "ORDER BY customer_id DESC LIMIT :l{i}) AS b{i}"
    )
    return text(" UNION ALL ".join(one.format(i=i) for i in range(count)))


def limit_of(key: str) -> int:
    return MAX_PHONETIC_CANDIDATES if is_broad(key) else MAX_BLOCK_CANDIDATES


async def sharing_by_key(session: AsyncSession, keys: Sequence[str]) -> dict[str, list[tuple[str, int]]]:
    """For each blocking key, the active customers holding it (id, version), most recent first: at most
    MAX_BLOCK_CANDIDATES, or MAX_PHONETIC_CANDIDATES for a broad key. Each key's members are read
    through the (key, customer_id) index with its own LIMIT, so the cost does not grow with the size
    of a block (a common name in a big city); many keys go in one UNION ALL query."""
    result: dict[str, list[tuple[str, int]]] = {}
    holders = await holders_by_key(session, keys)
    ids = sorted({cid for members in holders.values() for cid in members})
    # Merged customers hold no blocking keys (a merge clears them); the status check is a safeguard.
    versions: dict[str, int] = {}
    for part in in_list_parts(ids):
        rows = await session.execute(  # by id only, status checked here (see detect_for)
            select(col(Customer.id), col(Customer.version), col(Customer.status)).where(
                col(Customer.id).in_(part)
            )
        )
        versions.update({str(cid): int(v) for cid, v, status in rows.all() if status == "active"})
    for key, members in holders.items():
        result[key] = [(cid, versions[cid]) for cid in members if cid in versions]
    return result


async def holders_by_key(session: AsyncSession, keys: Sequence[str]) -> dict[str, list[str]]:
    """`sharing_by_key` without the versions: the ids holding each key, most recent first (a merged
    customer holds no keys; a caller loading the candidates checks their status itself)."""
    holders: dict[str, list[str]] = {}
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), KEYS_PER_QUERY):
        part = ordered[start : start + KEYS_PER_QUERY]
        params: dict[str, Any] = {}
        for i, key in enumerate(part):
            params[f"k{i}"], params[f"l{i}"] = key, limit_of(key)
        for key, customer_id in (await session.execute(_blocks_query(len(part)), params)).all():
            holders.setdefault(str(key), []).append(str(customer_id))
    return holders


def candidates_from(blocks: dict[str, list[str]], exclude: set[str]) -> list[str]:
    """The profiles to compare with one holding the blocks' keys: the most recent MAX_BLOCK_CANDIDATES
    of those sharing a specific key, then the most recent MAX_PHONETIC_CANDIDATES sharing a broad one."""
    strong: set[str] = set()
    broad: set[str] = set()
    for key, members in blocks.items():
        (broad if is_broad(key) else strong).update(members)
    return pick_candidates(strong, broad, exclude)


def pick_candidates(strong: set[str], broad: set[str], exclude: set[str]) -> list[str]:
    """`candidates_from` once the holders of specific and of broad keys are gathered."""
    chosen = _most_recent(MAX_BLOCK_CANDIDATES, strong - exclude) if strong else []
    if not broad:
        return chosen
    picked = set(chosen)
    chosen += [cid for cid in _most_recent(MAX_PHONETIC_CANDIDATES, broad - exclude) if cid not in picked]
    return chosen


# Up to this many ids, sorting them all is faster than heapq.nlargest (an import row's broad holders are
# some 70 ids: 3 us against 8); above it, nlargest is.
SORT_ALL_UP_TO = 500


def _most_recent(count: int, ids: set[str]) -> list[str]:
    """The `count` largest ids, largest first: the same ids in the same order either way (ids are
    distinct)."""
    if len(ids) <= SORT_ALL_UP_TO:
        return sorted(ids, reverse=True)[:count]
    return heapq.nlargest(count, ids)


async def _record_candidate(
    session: AsyncSession, a_id: str, b_id: str, total: float, weights: dict[str, float]
) -> DuplicateCandidate:
    a, b = _pair(a_id, b_id)
    evidence = linkage_evidence(weights)
    existing = (
        await session.execute(
            select(DuplicateCandidate).where(
                col(DuplicateCandidate.customer_a_id) == a, col(DuplicateCandidate.customer_b_id) == b
            )
        )
    ).scalar_one_or_none()
    stamp = customers.now()
    if existing is not None:
        existing.score, existing.evidence, existing.updated_at = total, evidence, stamp
        if existing.status != "dismissed":
            existing.status = OPEN
        return existing
    candidate = DuplicateCandidate(
        id=str(uuid7()),
        customer_a_id=a,
        customer_b_id=b,
        score=total,
        evidence=evidence,
        status=OPEN,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(candidate)
    await session.flush()
    return candidate


async def _set_open_duplicate(
    session: AsyncSession, context: CustomerContext, customer: Customer, is_open: bool
) -> None:
    if customer.quality.get("no_open_duplicate", True) == (not is_open):
        return
    contact = customers.open_contact(context, customer)
    customers.compute_quality(customer, contact, open_duplicate=is_open)
    await session.flush()


async def _has_open_candidate(session: AsyncSession, customer_id: str) -> bool:
    row = (
        await session.execute(
            select(col(DuplicateCandidate.id))
            .where(
                col(DuplicateCandidate.status) == OPEN,
                (col(DuplicateCandidate.customer_a_id) == customer_id)
                | (col(DuplicateCandidate.customer_b_id) == customer_id),
            )
            .limit(1)
        )
    ).first()
    return row is not None


async def list_candidates(
    session: AsyncSession,
    *,
    status: str,
    min_score: float | None,
    customer_id: str | None = None,
    after: tuple[float, str] | None,
    limit: int,
) -> list[DuplicateCandidate]:
    """Pairs by score (highest first), then id."""
    query = select(DuplicateCandidate).where(col(DuplicateCandidate.status) == status)
    if customer_id:
        query = query.where(
            (col(DuplicateCandidate.customer_a_id) == customer_id)
            | (col(DuplicateCandidate.customer_b_id) == customer_id)
        )
    if min_score is not None:
        query = query.where(col(DuplicateCandidate.score) >= min_score)
    if after is not None:
        after_score, after_id = after
        query = query.where(
            (col(DuplicateCandidate.score) < after_score)
            | ((col(DuplicateCandidate.score) == after_score) & (col(DuplicateCandidate.id) > after_id))
        )
    query = query.order_by(col(DuplicateCandidate.score).desc(), col(DuplicateCandidate.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars())


MAX_CLUSTER = 20


async def cluster_of(
    session: AsyncSession, *, customer_id: str
) -> tuple[list[str], list[DuplicateCandidate]]:
    """The profiles linked to `customer_id` through open candidate pairs (transitively: A~B and B~C make
    one cluster of three), at most MAX_CLUSTER of them, and the pairs among them."""
    members = [customer_id]
    seen = {customer_id}
    pairs: dict[str, DuplicateCandidate] = {}
    frontier = [customer_id]
    while frontier and len(members) < MAX_CLUSTER:
        rows = (
            await session.execute(
                select(DuplicateCandidate).where(
                    col(DuplicateCandidate.status) == OPEN,
                    col(DuplicateCandidate.customer_a_id).in_(frontier)
                    | col(DuplicateCandidate.customer_b_id).in_(frontier),
                )
            )
        ).scalars()
        frontier = []
        for row in rows:
            for other in (row.customer_a_id, row.customer_b_id):
                if other not in seen and len(members) < MAX_CLUSTER:
                    seen.add(other)
                    members.append(other)
                    frontier.append(other)
            if row.customer_a_id in seen and row.customer_b_id in seen:
                pairs[row.id] = row
    return members, sorted(pairs.values(), key=lambda r: (-r.score, r.id))


async def dismiss(session: AsyncSession, *, duplicate_id: str) -> DuplicateCandidate:
    """Mark an open pair dismissed (compare-and-set on `open`). Dismissing it again is a no-op; a pair
    merged or superseded (by a merge, maybe one racing this call) is 409: it keeps its status."""
    dismissed = await session.execute(
        update(DuplicateCandidate)
        .where(col(DuplicateCandidate.id) == duplicate_id, col(DuplicateCandidate.status) == OPEN)
        .values(status="dismissed", updated_at=customers.now())
        .execution_options(synchronize_session=False)
    )
    row = await session.get(DuplicateCandidate, duplicate_id, populate_existing=True)
    if row is None:
        raise NotFound(f"No duplicate candidate {duplicate_id}.")
    if dismissed.rowcount != 1 and row.status != "dismissed":  # type: ignore[attr-defined]
        raise Conflict(
            f"This pair is {row.status}: a merge closed it. Undo the merge "
            "(POST /v1/merges/{id}/undo) to separate the profiles."
        )
    return row


# --- merge -----------------------------------------------------------------------------------------


def _union(items: list[dict[str, Any]], extra: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    by_key = {item[key]: dict(item) for item in items}
    for item in extra:
        mine = by_key.get(item[key])
        if mine is None:
            by_key[item[key]] = dict(item)
        else:
            mine["verified"] = bool(mine.get("verified")) or bool(item.get("verified"))
    # Survivorship: the most recently added verified contact comes first (it becomes primary).
    return customers.ranked(list(by_key.values()))


def _address_key(address: dict[str, Any]) -> tuple[str, ...]:
    """Two spellings of one address ("12 rue Victor-Hugo", "12 Rue Victor Hugo") give one key."""
    return tuple(
        " ".join(re.sub(r"[^0-9a-z]+", " ", str(address.get(k) or "").lower()).split())
        for k in ("kind", "line1", "line2", "postcode", "country")
    )


def _union_addresses(survivor: list[dict[str, Any]], other: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = [dict(a) for a in survivor]
    seen = {_address_key(a) for a in result}
    for address in other:
        if _address_key(address) not in seen:
            seen.add(_address_key(address))
            kinds_present = {a["kind"] for a in result}
            result.append(
                {**address, "id": uuid.uuid4().hex[:12], "is_default": address["kind"] not in kinds_present}
            )
    return customers.with_one_default_per_kind(result)


def absorb_contact(contact: customers.Contact, theirs: customers.Contact) -> None:
    """Survivorship of contact data (merges and imported rows matching a profile): emails, phones and
    addresses unioned (verified and most recent first), a birthday kept if the profile had none."""
    contact.emails = _union(contact.emails, theirs.emails, "address")
    contact.phones = _union(contact.phones, theirs.phones, "number")
    contact.addresses = _union_addresses(contact.addresses, theirs.addresses)
    contact.birthday = contact.birthday or theirs.birthday


def _union_consents(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for purpose, state in b.items():
        if purpose not in merged or str(state["recorded_at"]) > str(merged[purpose]["recorded_at"]):
            merged[purpose] = state
    return merged


def _snapshot_of(customer: Customer) -> dict[str, Any]:
    return {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "locale": customer.locale,
        "country": customer.country,
        "attributes": customer.attributes,
        "tags": customer.tags,
        "consents": customer.consents,
        "pii": base64.b64encode(customer.pii).decode() if customer.pii is not None else None,
    }


async def merge(
    session: AsyncSession,
    context: CustomerContext,
    *,
    survivor: Customer,
    others: Sequence[Customer],
    actor: str,
    automatic: bool = False,
    score: float | None = None,
) -> Merge:
    """Fold `others` into `survivor`: contacts, addresses, identities, tags unioned; orders and consent
    moved; lineage recorded so `undo` can restore every profile. Emits customer.merged."""
    others = [o for o in others if o.id != survivor.id]
    if not others:
        raise UnprocessableEntity("Name at least one other customer to merge.")
    for customer in (survivor, *others):
        if customer.status != "active":
            raise Conflict(
                f"Customer {customer.id} is not active (it was merged into {customer.merged_into_id})."
            )
    stamp = customers.now()
    # Compare-and-set: each profile must still be active at the version read, else another merge (or a
    # write) got there first and this one is refused whole (the transaction rolls back). Claimed in id
    # order: two merges of the same profiles named the other way round (a into b, b into a) would
    # otherwise lock them in opposite orders and deadlock on PostgreSQL (a 500, not the loser's 409).
    for customer in sorted((survivor, *others), key=lambda c: c.id):
        if not await customers.claim_version(session, customer, stamp=stamp):
            raise Conflict(
                f"Customer {customer.id} changed or was merged meanwhile; read it again and retry."
            )
    external_ids = await customers.external_identities(session, survivor.id)
    snapshot: dict[str, Any] = {
        "survivor": _snapshot_of(survivor),
        "survivor_external_ids": [e.model_dump() for e in external_ids],
        "others": {},
    }
    contact = customers.open_contact(context, survivor)
    for other in others:
        theirs = customers.open_contact(context, other)
        their_external = await customers.external_identities(session, other.id)
        order_ids = list(
            (await session.execute(select(col(Order.id)).where(col(Order.customer_id) == other.id))).scalars()
        )
        consent_ids = list(
            (
                await session.execute(
                    select(col(ConsentRecord.id)).where(col(ConsentRecord.customer_id) == other.id)
                )
            ).scalars()
        )
        snapshot["others"][other.id] = {
            "external_ids": [e.model_dump() for e in their_external],
            "order_ids": order_ids,
            "consent_ids": consent_ids,
            "version": other.version,
        }
        other.version += 1  # as claimed above
        absorb_contact(contact, theirs)
        known = {(e.source, e.id) for e in external_ids}
        external_ids += [e for e in their_external if (e.source, e.id) not in known]
        survivor.first_name = survivor.first_name or other.first_name
        survivor.last_name = survivor.last_name or other.last_name
        survivor.locale = survivor.locale or other.locale
        survivor.country = survivor.country or other.country
        survivor.attributes = {**other.attributes, **survivor.attributes}
        survivor.tags = list(dict.fromkeys([*survivor.tags, *other.tags]))
        survivor.consents = _union_consents(survivor.consents, other.consents)
        if order_ids:
            await session.execute(
                update(Order).where(col(Order.id).in_(order_ids)).values(customer_id=survivor.id)
            )
        if consent_ids:
            await session.execute(
                update(ConsentRecord)
                .where(col(ConsentRecord.id).in_(consent_ids))
                .values(customer_id=survivor.id)
            )
        other.status = "merged"
        other.merged_into_id = survivor.id
        other.updated_at = stamp
        await customers.clear_derived_rows(session, other.id)
    await session.flush()
    survivor.version += 1
    survivor.updated_at = stamp
    customers.seal_contact(context, survivor, contact)
    await customers.clear_derived_rows(session, survivor.id)
    await customers.write_derived_rows(session, context, survivor, contact, external_ids)
    ids = [o.id for o in others]
    await _close_candidates(session, survivor.id, ids)
    customers.compute_quality(
        survivor, contact, open_duplicate=await _has_open_candidate(session, survivor.id)
    )
    record = Merge(
        id=str(uuid7()),
        survivor_id=survivor.id,
        merged_ids=ids,
        automatic=automatic,
        score=score,
        snapshot=snapshot,
        survivor_version=survivor.version,
        actor=actor,
        created_at=stamp,
    )
    session.add(record)
    await session.flush()
    await outbox.add(
        session,
        build_event(
            "ecom.customer.merged.v1",
            CustomerMerged(
                merge_id=record.id,
                survivor_customer_id=survivor.id,
                merged_customer_ids=ids,
                automatic=automatic,
                score=score,
                merged_at=stamp,
            ),
            subject=survivor.id,
            sequence=survivor.version,
        ),
    )
    return record


async def _close_candidates(session: AsyncSession, survivor_id: str, merged_ids: list[str]) -> None:
    members = [survivor_id, *merged_ids]
    await session.execute(
        update(DuplicateCandidate)
        .where(
            col(DuplicateCandidate.status) == OPEN,
            col(DuplicateCandidate.customer_a_id).in_(members),
            col(DuplicateCandidate.customer_b_id).in_(members),
        )
        .values(status="merged", updated_at=customers.now())
    )
    # Pairs between a merged profile and a third one now concern the survivor.
    await session.execute(
        update(DuplicateCandidate)
        .where(
            col(DuplicateCandidate.status) == OPEN,
            col(DuplicateCandidate.customer_a_id).in_(merged_ids)
            | col(DuplicateCandidate.customer_b_id).in_(merged_ids),
        )
        .values(status="superseded", updated_at=customers.now())
    )


async def get_merge(session: AsyncSession, *, merge_id: str) -> Merge:
    record = await session.get(Merge, merge_id)
    if record is None:
        raise NotFound(f"No merge {merge_id}.")
    return record


async def undo(session: AsyncSession, context: CustomerContext, *, record: Merge) -> Merge:
    """Restore the survivor and the merged profiles as they were; 409 if the survivor changed since."""
    if record.undone_at is not None:
        raise Conflict("This merge was already undone.")
    survivor = await customers.get(session, customer_id=record.survivor_id)
    if survivor.version != record.survivor_version or survivor.status != "active":
        raise Conflict("The surviving profile changed after this merge; undoing it would lose those changes.")
    stamp = customers.now()
    # Compare-and-set on the merge and on the survivor's version: of two concurrent undos (or an undo
    # and a write to the survivor), exactly one goes through.
    undone = await session.execute(
        update(Merge)
        .where(col(Merge.id) == record.id, col(Merge.undone_at).is_(None))
        .values(undone_at=stamp)
        .execution_options(synchronize_session=False)
    )
    claimed = await customers.claim_version(session, survivor, stamp=stamp, version=record.survivor_version)
    if undone.rowcount != 1 or not claimed:  # type: ignore[attr-defined]
        raise Conflict("This merge was undone, or its survivor changed, meanwhile.")
    before = record.snapshot["survivor"]
    for name in ("first_name", "last_name", "locale", "country", "attributes", "tags", "consents"):
        setattr(survivor, name, before[name])
    survivor.pii = base64.b64decode(before["pii"]) if before["pii"] is not None else None
    survivor.version += 1
    survivor.updated_at = stamp
    await customers.clear_derived_rows(session, survivor.id)
    restored: list[tuple[Customer, customers.Contact, list[ExternalIdentity]]] = []
    for other_id, moved in record.snapshot["others"].items():
        other = await customers.get(session, customer_id=other_id)
        other.status = "active"
        other.merged_into_id = None
        other.version += 1
        other.updated_at = stamp
        if moved["order_ids"]:
            await session.execute(
                update(Order).where(col(Order.id).in_(moved["order_ids"])).values(customer_id=other.id)
            )
        if moved["consent_ids"]:
            await session.execute(
                update(ConsentRecord)
                .where(col(ConsentRecord.id).in_(moved["consent_ids"]))
                .values(customer_id=other.id)
            )
        restored.append(
            (
                other,
                customers.open_contact(context, other),
                [ExternalIdentity(**e) for e in moved["external_ids"]],
            )
        )
    await session.flush()
    survivor_contact = customers.open_contact(context, survivor)
    survivor_external = [ExternalIdentity(**e) for e in record.snapshot["survivor_external_ids"]]
    await customers.write_derived_rows(session, context, survivor, survivor_contact, survivor_external)
    for other, contact, external in restored:
        await customers.write_derived_rows(session, context, other, contact, external)
    members = [survivor.id, *record.merged_ids]
    await session.execute(
        update(DuplicateCandidate)
        .where(
            col(DuplicateCandidate.status) == "merged",
            col(DuplicateCandidate.customer_a_id).in_(members),
            col(DuplicateCandidate.customer_b_id).in_(members),
        )
        .values(status="dismissed", updated_at=stamp)
    )
    for customer, contact in [(survivor, survivor_contact), *[(o, c) for o, c, _ in restored]]:
        customers.compute_quality(
            customer, contact, open_duplicate=await _has_open_candidate(session, customer.id)
        )
    record.undone_at = stamp
    await session.flush()
    await outbox.add(
        session,
        build_event(
            "ecom.customer.unmerged.v1",
            CustomerUnmerged(
                merge_id=record.id,
                survivor_customer_id=survivor.id,
                restored_customer_ids=list(record.merged_ids),
                unmerged_at=stamp,
            ),
            subject=survivor.id,
            sequence=survivor.version,
        ),
    )
    return record
