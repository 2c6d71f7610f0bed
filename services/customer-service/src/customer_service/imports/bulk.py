"""Bulk creation of validated profiles, one chunk of rows at a time.

For each row this does what `customers.create_normalized` does for one profile (dedupe on ingest,
sealing under a new data key, blind-indexed identifiers, blocking keys, tags, the risk rules, duplicate
scoring against blocking-key candidates with auto-merge, and the events), but with a fixed handful of
queries and bulk inserts per chunk instead of a dozen round trips per row:

- one lookup of every email and external id of the chunk (dedupe on ingest), plus an in-memory set of
  the identifiers created earlier in the chunk;
- one query for the duplicate candidates of every blocking key of the chunk (at most the number of
  candidates per key that a single write would score), plus an in-memory index of the chunk's own keys,
  so a row is also scored against the rows before it in the file; on SQLite, keys and candidates the
  job already knows from its earlier chunks are not read again while nothing else has written, and
  the phone key of a phone that no customer has is never read (see `_unheld_phone_keys`);
- one query counting the customers per phone number (the shared-identifier risk rule, and which
  phones no customer has), read before scoring and continued in memory through the chunk;
- bulk inserts of customers, identifiers, blocking keys, tags, candidate pairs, flags and outbox rows;
  on SQLite most of them one statement each over a JSON text (`_insert_through_json`), which runs
  without the GIL, so that while they run this process works out the next chunk's keys and sides
  (`prepare`) and seals its rows (`seal`: ids, data keys, encrypted contacts, identifier rows).

The scoring itself (`scoring.score_rows`) runs, for a job of more than one chunk, in the scoring worker
process (`workers.SCORING`) while the event loop writes the chunk's customers, identifiers, keys and
events; the pairs and the open-duplicate marks (customers are written without one, then marked) follow
its answer in the same transaction.

Rows are processed in file order, so each row sees the rows before it, as one-at-a-time writes would.
One difference: an auto-merge decided in a chunk is carried out after the chunk commits, a few merges
per transaction (`ChunkResult.merges`; a file where most rows merge would otherwise hold the database's
write lock for minutes), so later rows of the same chunk are scored against the surviving profile as
it was before that merge (a merged profile is never proposed again). Clear PII lives only in memory,
for the duration of the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import uuid
from collections.abc import Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from contracts import CloudEvent, build_event, uuid7
from contracts.catalog.customers import CustomerCreated, CustomerFlagged, CustomerUpdated
from customer_service.context import CustomerContext
from customer_service.crypto import WrappedKey, decrypt_document, encrypt_document
from customer_service.customers import service as customers
from customer_service.customers.models import BlockingKey, Customer, CustomerIdentifier, CustomerTag
from customer_service.duplicates import service as duplicates
from customer_service.duplicates.linkage import Model
from customer_service.duplicates.matching import Side, side_of
from customer_service.duplicates.model_store import current_model
from customer_service.duplicates.models import DuplicateCandidate
from customer_service.imports import scoring, workers
from customer_service.risk import service as risk
from customer_service.risk.models import RiskFlag
from servicekit.events import outbox
from servicekit.events.models import OutboxMessage

log = logging.getLogger(__name__)

# Blocking values whose keys (keyed hashes) are kept between chunks: a file repeats most of them.
MAX_CACHED_BLOCKING_KEYS = 1_000_000
# Blocking keys whose holders are kept between chunks (see BulkImporter._known_holders).
MAX_CACHED_HOLDER_KEYS = 1_000_000


# Profiles `BulkImporter.prepare` works out between two looks at the event loop.
PREPARE_SLICE = 64

# A profile, the blind-index key it was worked out under, its unique keys, then `_derive`'s answer.
_Prepared = tuple[customers.NormalizedProfile, str, dict[str, str], Side, set[str], list[str], list[str]]
_DerivedSide = tuple[Side, set[str], list[str], list[str]]


@dataclass
class ChunkResult:
    created: int = 0
    matched: int = 0
    candidates: int = 0
    # The auto-merges scoring decided (survivor, merged, score), carried out after the chunk commits
    # (`BulkImporter.auto_merge`, a few per transaction).
    merges: list[tuple[str, str, float]] = field(default_factory=list)
    # Per profile of the chunk, in order: (created | matched, the customer it created or matched).
    outcomes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Sealed:
    """A profile's customer row parts made ahead (`BulkImporter.seal`): its id, its data key wrapped, its
    contact sealed under that key, and its identifier rows (stamped again when written), all under the
    blind-index key `blind_kid`. Valid for the profile as it was then (a row folded into it after that
    is sealed again)."""

    profile: customers.NormalizedProfile
    blind_kid: str
    id: str
    wrapped: WrappedKey
    pii: bytes
    identifiers: list[dict[str, Any]]


@dataclass
class _NewRow:
    id: str
    profile: customers.NormalizedProfile
    first_name: str | None
    last_name: str | None
    keys: set[str]
    side: Side
    phones: list[str]
    # The blocking key of each of the side's phones (`p:`), in order.
    phone_keys: list[str]
    sealed: _Sealed | None = None


@dataclass
class BulkImporter:
    """Imports chunks of normalised profiles; keeps what it decrypted for scoring between chunks."""

    context: CustomerContext
    _sides: dict[tuple[str, int], Side] = field(default_factory=dict)
    # The worker process that scores the chunks (`scoring.score_chunk`), if any; None: scored here.
    scoring_pool: ProcessPoolExecutor | None = None
    # This importer's name in the worker process, and the model the worker process has of it.
    _job: str = field(default_factory=lambda: uuid.uuid4().hex)
    _model_sent: Model | None = None
    # Blocking value -> its key under the blind-index key `_blocking_kid` (see blocking_keys_of_side).
    _blocking_keys: dict[str, str] = field(default_factory=dict)
    _blocking_kid: str | None = None
    # `prepare`'s work, by profile (the profile, the blind-index key it was made under, then its unique
    # keys, side, blocking keys and phone indexes).
    _prepared: dict[int, _Prepared] = field(default_factory=dict)
    # What this job knows of the database between its chunks (SQLite only): the holders of blocking
    # keys it read or wrote (`holders_by_key`'s answer: most recent first, up to the key's limit) and
    # the version of customers it read or created (None: not active). Valid only while nothing but
    # the job has written since its last chunk: `_database_state` is the driver connection the last
    # chunk ran on, its `PRAGMA data_version` at the chunk's start (it changes when another connection
    # commits) and its count of changed rows at the chunk's end (it changes when another session
    # writes through the same pooled connection).
    _known_holders: dict[str, list[str]] = field(default_factory=dict)
    _known_versions: dict[str, int | None] = field(default_factory=dict)
    _database_state: tuple[Any, int, int | None] | None = None
    # The chunk's additions to them, kept once the chunk has committed (`chunk_committed`).
    _staged_holders: dict[str, list[str]] = field(default_factory=dict)
    _staged_versions: dict[str, int | None] = field(default_factory=dict)
    # The next chunk's preparation, started by `import_chunk` (see `_prepare_ahead`).
    _ahead: asyncio.Future[None] | None = None
    # `seal`'s work, by profile.
    _sealed: dict[int, _Sealed] = field(default_factory=dict)

    async def import_chunk(
        self,
        session: AsyncSession,
        profiles: Sequence[customers.NormalizedProfile],
        ahead: Sequence[customers.NormalizedProfile] = (),
    ) -> ChunkResult:
        """Create the chunk's new customers (flushed, not committed); a row matching a known customer
        (or an earlier row) is folded into it (survivorship, as a merge does). `ahead`: the next chunk's
        profiles, prepared (`prepare`) while this chunk's rows are written; `ahead_done` waits for that."""
        result = ChunkResult()
        stamp = customers.now()
        kid = self.context.keyring.blind_kid
        if len(self._blocking_keys) > MAX_CACHED_BLOCKING_KEYS or kid != self._blocking_kid:
            self._blocking_keys.clear()
            self._blocking_kid = kid
        await self._check_known(session)
        new, owners, absorbed = await self._dedupe_on_ingest(session, profiles, result)
        merges: list[tuple[str, str, float]] = []
        if new:
            per_phone = await _customers_per_phone(session, sorted({p for row in new for p in row.phones}))
            scored = await self._start_scoring(session, new, per_phone)
            flags = self._risk_flags(new, stamp, per_phone)
            await self._write(session, new, flags, stamp, ahead)
            answer = await scored
            candidates = _candidate_rows(answer, stamp)
            await insert_rows(session, DuplicateCandidate, candidates)
            await self._mark_open_duplicates(session, answer.open_new | answer.open_existing)
            merges = answer.merges
            result.created, result.candidates = len(new), len(candidates)
        for customer_id, incoming in absorbed.items():
            await self._absorb(session, customer_id, incoming)
        result.merges = merges
        if absorbed or merges:
            # Survivorship rewrites (or, for the merges, will rewrite) some customers' blocking keys
            # and versions: read them again.
            self.forget()
        else:
            self._stage(new)
        result.outcomes = [("created" if was_new else "matched", owner) for owner, was_new in owners]
        return result

    # --- what the job knows of the database between chunks -----------------------------------------

    async def _check_known(self, session: AsyncSession) -> None:
        """At a chunk's start: keep what the job knows of the database only if the chunk runs on the
        same connection as the last one, no other connection has committed since (`PRAGMA data_version`
        unchanged) and no other session has written through this one (its count of changed rows as the
        last chunk left it); otherwise (and always on PostgreSQL) it reads everything again."""
        state = await _data_version(session)
        previous, self._database_state = self._database_state, None
        if state is None:
            self.forget()
            return
        driver, version = state
        if (
            previous is None
            or previous[0] is not driver
            or previous[1] != version
            or previous[2] != driver.total_changes
        ):
            self.forget()
        self._database_state = (driver, version, None)
        self._staged_holders, self._staged_versions = {}, {}

    def chunk_written(self) -> None:
        """The chunk's last write is done (called in its transaction, before the commit): its count of
        changed rows is what the next chunk expects to find on the connection."""
        if self._database_state is not None:
            driver, version, _ = self._database_state
            self._database_state = (driver, version, driver.total_changes)

    def _stage(self, new: list[_NewRow]) -> None:
        """The chunk's new customers as holders of their keys (kept once the chunk commits)."""
        added: dict[str, list[str]] = {}
        versions = self._staged_versions
        for row in new:
            row_id = row.id
            versions[row_id] = 1
            for key in row.keys:
                ids = added.get(key)
                if ids is None:
                    added[key] = [row_id]
                else:
                    ids.append(row_id)
        known, staged, limit_of = self._known_holders, self._staged_holders, duplicates.limit_of
        for key, ids in added.items():
            members = known.get(key)
            if members is None:  # every key of a new row was read in this chunk; a safeguard
                continue
            if members:
                ids += members
            ids.sort(reverse=True)
            staged[key] = ids[: limit_of(key)]

    def chunk_committed(self) -> None:
        """The chunk's transaction committed: what it wrote is now what the job knows."""
        if len(self._known_holders) > MAX_CACHED_HOLDER_KEYS:
            self.forget()
            return
        self._known_holders.update(self._staged_holders)
        self._known_versions.update(self._staged_versions)
        self._staged_holders, self._staged_versions = {}, {}

    def forget(self) -> None:
        """Read every holder and version from the database again from the next chunk on."""
        self._known_holders.clear()
        self._known_versions.clear()
        self._staged_holders, self._staged_versions = {}, {}
        self._database_state = None

    def _unheld_phone_keys(self, new: list[_NewRow], per_phone: dict[str, int]) -> set[str]:
        """The phone blocking keys (`p:`) of the new rows whose phone no customer in the database has.
        A customer's phone identifiers and its blocking keys are written together from the same
        contact under the same blind-index key (create, update, merge, import, re-index), so a phone
        without an identifier row has no holder of its key either: its holders need no query (most
        phones of a file are new, and they made a good part of the blocking lookups)."""
        unheld: set[str] = set()
        for row in new:
            for key, index in zip(row.phone_keys, row.phones, strict=True):
                if per_phone.get(index, 0) == 0:
                    unheld.add(key)
        return unheld

    async def _holders_and_versions(
        self, session: AsyncSession, keys: Collection[str], unheld: set[str] | None = None
    ) -> tuple[dict[str, list[str]], dict[str, int]]:
        """`duplicates.sharing_by_key` as the importer uses it: the holders of each key (active
        customers, most recent first, up to each key's limit) and the version of every holder; read from
        the database only for the keys and customers the job does not know yet, and not at all for the
        keys in `unheld` (known to have no holder in the database)."""
        known, known_versions = self._known_holders, self._known_versions
        missing = []
        for key in keys:
            if key not in known:
                if unheld and key in unheld:
                    known[key] = []
                else:
                    missing.append(key)
        if missing:
            missing.sort()  # read in index order
            found = await duplicates.holders_by_key(session, missing)
            for key in missing:
                known[key] = found.get(key, [])
        holders = {key: members for key in keys if (members := known[key])}
        ids = {cid for members in holders.values() for cid in members}
        unknown = sorted(ids.difference(known_versions))
        for part in duplicates.in_list_parts(unknown):
            # The status is checked here, not in SQL: with `status = 'active'` in the WHERE clause,
            # SQLite without statistics (no ANALYZE yet, as in a fresh or fast-growing base) reads the
            # rows through the status index, i.e. every active customer, instead of the ids through the
            # primary key; that made each chunk's query grow with the table (2.5 s of a 30,000-row import).
            rows = await session.execute(
                select(col(Customer.id), col(Customer.version), col(Customer.status)).where(
                    col(Customer.id).in_(part)
                )
            )
            active = {str(cid): int(v) if status == "active" else None for cid, v, status in rows.all()}
            known_versions.update({cid: active.get(cid) for cid in part})
        versions = {cid: version for cid in ids if (version := known_versions[cid]) is not None}
        if len(versions) < len(ids):  # merged customers hold no keys; this is a safeguard
            holders = {key: [cid for cid in members if cid in versions] for key, members in holders.items()}
        return holders, versions

    # --- dedupe on ingest --------------------------------------------------------------------------

    def _prepare_ahead(self, profiles: Sequence[customers.NormalizedProfile]) -> None:
        """Start preparing `profiles` (once: a chunk tried again finds it started) now that the chunk's
        reads are done: its writes run in SQLite without the GIL (`_insert_through_json`), its reads
        would not (every row read takes the GIL back), so the preparation waits for the writes."""
        if profiles and self._ahead is None:
            self._ahead = asyncio.ensure_future(self._prepare_and_seal(profiles))

    async def _prepare_and_seal(self, profiles: Sequence[customers.NormalizedProfile]) -> None:
        await self.prepare(profiles)
        await self.seal(profiles)

    async def seal(self, profiles: Sequence[customers.NormalizedProfile]) -> None:
        """Make ahead each profile's id, data key, sealed contact and identifier rows (`_Sealed`), for a
        later chunk (about a third of the writing's CPU), yielding every PREPARE_SLICE profiles. A
        profile that becomes a match instead of a new customer wastes its id and key."""
        for n, profile in enumerate(profiles):
            if n % PREPARE_SLICE == PREPARE_SLICE - 1:
                await asyncio.sleep(0)
            if id(profile) not in self._sealed:
                try:
                    self._sealed[id(profile)] = self._seal(profile, str(uuid7()))
                except Exception:  # the chunk meets it again and reports it
                    continue

    def _seal(self, profile: customers.NormalizedProfile, row_id: str) -> _Sealed:
        keyring, contact = self.context.keyring, profile.contact
        data_key, wrapped = keyring.new_data_key()
        return _Sealed(
            profile=profile,
            blind_kid=keyring.blind_kid,
            id=row_id,
            wrapped=wrapped,
            pii=encrypt_document(data_key, contact.to_document(), aad=row_id),
            identifiers=customers.identifier_values(
                self.context, row_id, contact, profile.external_ids or [], stamp=customers.now()
            ),
        )

    def _taken_sealed(self, profile: customers.NormalizedProfile) -> _Sealed | None:
        sealed = self._sealed.pop(id(profile), None)
        if (
            sealed is None
            or sealed.profile is not profile
            or sealed.blind_kid != self.context.keyring.blind_kid
        ):
            return None
        return sealed

    async def close(self) -> None:
        """The job is over: the scoring worker process forgets what it holds of it."""
        pool, self.scoring_pool = self.scoring_pool, None
        if pool is not None:
            with contextlib.suppress(Exception):  # a worker gone has nothing to forget
                await workers.SCORING.run(pool, scoring.forget_job, self._job)

    async def ahead_done(self) -> None:
        """Wait for the preparation `import_chunk` started (none started: nothing to wait for)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await ahead

    async def prepare(self, profiles: Sequence[customers.NormalizedProfile]) -> None:
        """Work out ahead what a chunk derives from each profile alone (its unique keys, matching side,
        blocking keys and phone indexes), for a later chunk: run as a task while the current chunk's
        rows are written (`_prepare_ahead`), yielding every PREPARE_SLICE profiles. A profile changed
        after this (a later row folded into it) is worked out again; anything that fails here is left
        to the chunk."""
        kid = self.context.keyring.blind_kid
        for n, profile in enumerate(profiles):
            if n % PREPARE_SLICE == PREPARE_SLICE - 1:
                await asyncio.sleep(0)
            if id(profile) in self._prepared:
                continue
            try:
                derived = (self._unique_keys(profile), *self._derive(profile))
            except Exception:  # the chunk meets it again and reports it
                continue
            self._prepared[id(profile)] = (profile, kid, *derived)

    def _taken_prepared(self, profile: customers.NormalizedProfile) -> _Prepared | None:
        entry = self._prepared.pop(id(profile), None)
        if entry is None or entry[0] is not profile or entry[1] != self.context.keyring.blind_kid:
            return None
        return entry

    def _unique_keys(self, profile: customers.NormalizedProfile) -> dict[str, str]:
        return customers.unique_keys(self.context, profile.contact, profile.external_ids or [])

    def _derive(self, profile: customers.NormalizedProfile) -> _DerivedSide:
        first, last = profile.fields.get("first_name"), profile.fields.get("last_name")
        contact, external = profile.contact, profile.external_ids or []
        side = side_of(first, last, contact.to_document(), [(e.source, e.id) for e in external])
        known = self._blocking_keys
        keys = customers.blocking_keys_of_side(self.context, side, known)
        phones = [self.context.keyring.blind_index(customers.PHONE, p["number"]) for p in contact.phones]
        # `blocking_keys_of_side` has just put each phone's blocking value (`p:`) in `known`.
        phone_keys = [known[f"p:{number}"] for number in side.phones]
        return side, keys, phones, phone_keys

    def _new_row(
        self, row_id: str, profile: customers.NormalizedProfile, derived: _DerivedSide | None = None
    ) -> _NewRow:
        side, keys, phones, phone_keys = derived or self._derive(profile)
        return _NewRow(
            id=row_id,
            profile=profile,
            first_name=profile.fields.get("first_name"),
            last_name=profile.fields.get("last_name"),
            keys=keys,
            side=side,
            phones=phones,
            phone_keys=phone_keys,
        )

    async def _dedupe_on_ingest(
        self, session: AsyncSession, profiles: Sequence[customers.NormalizedProfile], result: ChunkResult
    ) -> tuple[list[_NewRow], list[tuple[str, bool]], dict[str, list[customers.NormalizedProfile]]]:
        """A row whose email or external id is already known (in the database, or on an earlier row of
        the file) matches that customer and is folded into it; the others become new rows. Returns the
        new rows, the customer of each profile in order (and whether the profile created it), and the
        rows to fold into existing customers."""
        prepared = [self._taken_prepared(profile) for profile in profiles]
        sealed = [self._taken_sealed(profile) for profile in profiles]
        wanted = [
            entry[2] if entry is not None else self._unique_keys(profile)
            for profile, entry in zip(profiles, prepared, strict=True)
        ]
        owner_of = await _existing_unique_keys(session, [k for keys in wanted for k in keys])
        new: list[_NewRow] = []
        by_id: dict[str, _NewRow] = {}
        owners: list[tuple[str, bool]] = []
        absorbed: dict[str, list[customers.NormalizedProfile]] = {}
        for profile, keys, entry, made in zip(profiles, wanted, prepared, sealed, strict=True):
            owner = next((owner_of[k] for k in keys if k in owner_of), None)
            created = owner is None
            if owner is None:
                row = self._new_row(
                    str(uuid7()) if made is None else made.id, profile, None if entry is None else entry[3:]
                )
                row.sealed = made
                new.append(row)
                by_id[row.id] = row
                owner = row.id
            else:
                result.matched += 1
                _drop_taken(profile, {keys[k] for k in keys if owner_of.get(k, owner) != owner})
                earlier = by_id.get(owner)
                if earlier is not None:
                    _fold(earlier.profile, profile)
                    by_id[owner] = self._new_row(owner, earlier.profile)
                    new[new.index(earlier)] = by_id[owner]
                else:
                    absorbed.setdefault(owner, []).append(profile)
            owners.append((owner, created))
            owner_of.update(dict.fromkeys(keys, owner))
        return new, owners, absorbed

    async def _absorb(
        self, session: AsyncSession, customer_id: str, incoming: list[customers.NormalizedProfile]
    ) -> None:
        """Survivorship of imported rows that matched an existing customer: what they bring (another
        address, a phone, a birthday, a missing name) is kept; emits customer.updated."""
        customer = await session.get(Customer, customer_id)
        if customer is None or customer.status != "active":
            return
        contact = customers.open_contact(self.context, customer)
        before = (contact.to_document(), customer.first_name, customer.last_name)
        external = await customers.external_identities(session, customer.id)
        known = {(e.source, e.id) for e in external}
        for profile in incoming:
            duplicates.absorb_contact(contact, profile.contact)
            customer.first_name = customer.first_name or profile.fields.get("first_name")
            customer.last_name = customer.last_name or profile.fields.get("last_name")
            external += [e for e in profile.external_ids or [] if (e.source, e.id) not in known]
            known.update((e.source, e.id) for e in profile.external_ids or [])
        if (contact.to_document(), customer.first_name, customer.last_name) == before:
            return
        customer.version += 1
        customer.updated_at = customers.now()
        customers.seal_contact(self.context, customer, contact)
        customers.compute_quality(
            customer, contact, open_duplicate=not customer.quality.get("no_open_duplicate", True)
        )
        await session.flush()
        await customers.clear_derived_rows(session, customer.id)
        await customers.write_derived_rows(session, self.context, customer, contact, external)
        await outbox.add(
            session,
            build_event(
                "ecom.customer.updated.v1",
                CustomerUpdated(
                    customer_id=customer.id,
                    version=customer.version,
                    changed=["contact"],
                    country=customer.country,
                    tags=customer.tags,
                ),
                subject=customer.id,
                sequence=customer.version,
            ),
        )

    # --- duplicate scoring -------------------------------------------------------------------------

    async def _start_scoring(
        self, session: AsyncSession, new: list[_NewRow], per_phone: dict[str, int]
    ) -> asyncio.Future[scoring.Scored]:
        """Read what scoring the new rows needs (the holders of their keys, and the sides of those not
        decrypted yet), then score them (`scoring.score_rows`): in the scoring worker process when the
        importer has one (the answer comes while the chunk is written), else here. `per_phone`: the
        customers in the database holding each phone (blind index) of the new rows."""
        context = self.context
        model = await current_model(session, context)
        holders, versions = await self._holders_and_versions(
            session, {k for row in new for k in row.keys}, self._unheld_phone_keys(new, per_phone)
        )
        loaded = await self._load_sides(session, versions)
        rows: list[scoring.ScoredRow] = [(row.id, row.side, row.keys) for row in new]
        auto = context.auto_merge_threshold if context.auto_merge_enabled else None
        sides = self._sides
        if self.scoring_pool is None:
            answer: asyncio.Future[scoring.Scored] = asyncio.get_running_loop().create_future()
            answer.set_result(
                scoring.score_rows(rows, holders, versions, sides, model, context.duplicate_threshold, auto)
            )
        else:
            answer = asyncio.ensure_future(
                self._score_elsewhere(self.scoring_pool, model, loaded, rows, holders, versions, sides, auto)
            )
        if len(sides) > scoring.MAX_SIDES:
            self._sides = sides = {}  # a new dict: the one above stays whole for the worker's answer
        for row in new:
            sides[(row.id, 1)] = row.side
        return answer

    async def _score_elsewhere(
        self,
        pool: ProcessPoolExecutor,
        model: Model,
        loaded: list[tuple[tuple[str, int], Side]],
        rows: list[scoring.ScoredRow],
        holders: dict[str, list[str]],
        versions: dict[str, int],
        sides: dict[tuple[str, int], Side],
        auto: float | None,
    ) -> scoring.Scored:
        """`scoring.score_chunk` in the scoring worker process; the sides it asks for are sent to it
        (and the model, when it has not had this one); here when the worker process died."""
        threshold = self.context.duplicate_threshold

        async def ask(model_sent: Model | None, sides_sent: list[tuple[tuple[str, int], Side]]) -> Any:
            return await workers.SCORING.run(
                pool,
                scoring.score_chunk,
                self._job,
                model_sent,
                sides_sent,
                rows,
                holders,
                versions,
                threshold,
                auto,
            )

        answer: scoring.Scored | scoring.Missing | None
        try:
            answer = await ask(model if model is not self._model_sent else None, loaded)
            if isinstance(answer, scoring.Missing):
                answer = await ask(model, [(key, sides[key]) for key in answer.keys])
            self._model_sent = model
        except BrokenProcessPool:
            log.warning("the import scoring worker process died; scoring in the service process")
            workers.SCORING.discard(pool)
            self.scoring_pool = None
            answer = None
        if not isinstance(answer, scoring.Scored):
            answer = scoring.score_rows(rows, holders, versions, sides, model, threshold, auto)
        return answer

    async def _load_sides(
        self, session: AsyncSession, versions: dict[str, int]
    ) -> list[tuple[tuple[str, int], Side]]:
        """Decrypt the candidates not seen yet (or changed since) into what scoring compares; returns
        them."""
        loaded: list[tuple[tuple[str, int], Side]] = []
        missing = [cid for cid, version in versions.items() if (cid, version) not in self._sides]
        keyring = self.context.keyring
        for part in duplicates.in_list_parts(missing):
            rows = await session.execute(
                select(
                    col(Customer.id),
                    col(Customer.version),
                    col(Customer.first_name),
                    col(Customer.last_name),
                    col(Customer.key_id),
                    col(Customer.wrapped_key),
                    col(Customer.pii),
                ).where(col(Customer.id).in_(part))
            )
            for cid, version, first, last, kid, wrapped, pii in rows.all():
                document: dict[str, Any] = {}
                if pii is not None and kid is not None and wrapped is not None:
                    data_key = keyring.unwrap(WrappedKey(kid, wrapped))
                    document = decrypt_document(data_key, pii, aad=cid)
                side = self._sides[(cid, version)] = side_of(first, last, document)
                loaded.append(((cid, version), side))
        return loaded

    # --- risk rules --------------------------------------------------------------------------------

    def _risk_flags(
        self, new: list[_NewRow], stamp: datetime, per_phone: dict[str, int]
    ) -> list[dict[str, Any]]:
        """The profile rules of `risk.evaluate_profile`, for every new row in file order (`per_phone`:
        the customers in the database holding each of their phones)."""
        shared = dict(per_phone)
        flags: list[dict[str, Any]] = []
        for row in new:
            for phone in row.phones:
                shared[phone] = shared.get(phone, 0) + 1
            most = max((shared[p] for p in row.phones), default=0)
            flags += (
                _flag(row.id, rule, reason, stamp)
                for rule, reason in risk.profile_rules(row.profile.contact, most_sharing_a_phone=most)
            )
        return flags

    # --- writing -----------------------------------------------------------------------------------

    async def _write(
        self,
        session: AsyncSession,
        new: list[_NewRow],
        flags: list[dict[str, Any]],
        stamp: datetime,
        ahead: Sequence[customers.NormalizedProfile] = (),
    ) -> None:
        customer_rows: list[dict[str, Any]] = []
        identifier_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        events: list[CloudEvent] = []
        flags_of: dict[str, list[dict[str, Any]]] = {}
        for flag in flags:
            flags_of.setdefault(flag["customer_id"], []).append(flag)
        for row in new:
            profile, contact = row.profile, row.profile.contact
            country = profile.fields.get("country") or customers.first_country(contact)
            tags = profile.fields.get("tags", [])
            sealed = row.sealed  # `_taken_sealed` checked it; a row folded into since has none
            if sealed is None:
                sealed = self._seal(profile, row.id)
            else:
                for identifier in sealed.identifiers:
                    identifier["created_at"] = stamp
            # An open duplicate is marked once the chunk is scored (`_mark_open_duplicates`).
            quality, quality_score = customers.quality_of(contact, {}, open_duplicate=False)
            customer_rows.append(
                {
                    "id": row.id,
                    "version": 1,
                    "status": "active",
                    "merged_into_id": None,
                    "first_name": row.first_name,
                    "last_name": row.last_name,
                    "locale": profile.fields.get("locale"),
                    "country": country,
                    "attributes": profile.fields.get("attributes", {}),
                    "tags": tags,
                    "consents": {},
                    "quality_score": quality_score,
                    "quality": quality,
                    "key_id": sealed.wrapped.kid,
                    "wrapped_key": sealed.wrapped.blob,
                    "pii": sealed.pii,
                    "index_key_id": sealed.blind_kid,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            identifier_rows += sealed.identifiers
            tag_rows += ({"customer_id": row.id, "tag": tag} for tag in tags)
            events.append(
                build_event(
                    "ecom.customer.created.v1",
                    CustomerCreated(customer_id=row.id, country=country),
                    subject=row.id,
                    sequence=1,
                )
            )
            for flag in flags_of.get(row.id, ()):
                events.append(
                    build_event(
                        "ecom.customer.flagged.v1",
                        CustomerFlagged(
                            flag_id=flag["id"],
                            customer_id=row.id,
                            rule=flag["rule"],
                            reason=flag["reason"],
                            order_id=None,
                            flagged_at=stamp,
                        ),
                        subject=row.id,
                    )
                )
        # Row by row (blobs and floats: see `_insert_through_json`), before the next chunk's preparation
        # starts; the rest goes through JSON texts, in statements that leave the GIL to it.
        await insert_rows(session, Customer, customer_rows)
        self._prepare_ahead(ahead)
        await insert_rows(session, CustomerIdentifier, identifier_rows)
        await _insert_blocking_keys(session, [(row.id, row.keys) for row in new])
        await insert_rows(session, CustomerTag, tag_rows)
        await insert_rows(session, RiskFlag, flags)
        # `outbox.add_many`'s rows, through `insert_rows` (driver tuples on SQLite).
        now = datetime.now(UTC)
        await insert_rows(session, OutboxMessage, [outbox.row_of(event, now=now) for event in events])
        if events:
            await outbox.mark_staged(session)

    async def _mark_open_duplicates(self, session: AsyncSession, customer_ids: set[str]) -> None:
        """Existing customers that a new row duplicates lose their `no_open_duplicate` point."""
        for part in duplicates.in_list_parts(sorted(customer_ids)):
            for customer in (
                await session.execute(select(Customer).where(col(Customer.id).in_(part)))
            ).scalars():
                if not customer.quality.get("no_open_duplicate", True):
                    continue
                quality = {**customer.quality, "no_open_duplicate": False}
                customer.quality, customer.quality_score = quality, customers.score_of_quality(quality)
        await session.flush()

    async def auto_merge(self, session: AsyncSession, survivor_id: str, merged_id: str, total: float) -> bool:
        """One auto-merge a chunk decided (`ChunkResult.merges`); False when either customer is no
        longer active (merged meanwhile, by this job or anyone)."""
        survivor = await session.get(Customer, survivor_id)
        merged = await session.get(Customer, merged_id)
        if survivor is None or merged is None or survivor.status != "active" or merged.status != "active":
            return False
        await duplicates.merge(
            session,
            self.context,
            survivor=survivor,
            others=[merged],
            actor="auto-merge",
            automatic=True,
            score=total,
        )
        return True


def _candidate_rows(scored: scoring.Scored, stamp: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid7()),
            "customer_a_id": a,
            "customer_b_id": b,
            "score": total,
            "evidence": evidence,
            "status": duplicates.OPEN,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for a, b, total, evidence in scored.pairs
    ]


def _drop_taken(profile: customers.NormalizedProfile, paths: set[str]) -> None:
    """Leave out of a matched row the emails and external ids that belong to yet another customer
    (identifiers are unique; the row still folds into the customer it matched first)."""
    if not paths:
        return
    profile.contact.emails = [
        e for i, e in enumerate(profile.contact.emails) if f"body.emails.{i}.address" not in paths
    ]
    profile.external_ids = [
        e for i, e in enumerate(profile.external_ids or []) if f"body.external_ids.{i}" not in paths
    ]


def _fold(into: customers.NormalizedProfile, other: customers.NormalizedProfile) -> None:
    """A later row of the file that is the same customer as an earlier new row: one profile."""
    duplicates.absorb_contact(into.contact, other.contact)
    for name in ("first_name", "last_name", "country", "locale"):
        if not into.fields.get(name) and other.fields.get(name):
            into.fields[name] = other.fields[name]
    into.fields["tags"] = list(dict.fromkeys([*into.fields.get("tags", []), *other.fields.get("tags", [])]))
    known = {(e.source, e.id) for e in into.external_ids or []}
    into.external_ids = [
        *(into.external_ids or []),
        *(e for e in other.external_ids or [] if (e.source, e.id) not in known),
    ]


def _flag(customer_id: str, rule: str, reason: str, stamp: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid7()),
        "customer_id": customer_id,
        "order_id": None,
        "rule": rule,
        "reason": reason,
        "dedupe_key": f"{rule}:{customer_id}",
        "created_at": stamp,
    }


async def _existing_unique_keys(session: AsyncSession, keys: list[str]) -> dict[str, str]:
    """The emails and external ids (as `unique_key`) that already belong to a customer, and whose."""
    found: dict[str, str] = {}
    for part in duplicates.in_list_parts(sorted(set(keys))):
        rows = await session.execute(
            select(col(CustomerIdentifier.unique_key), col(CustomerIdentifier.customer_id)).where(
                col(CustomerIdentifier.unique_key).in_(part)
            )
        )
        found.update({str(key): str(owner) for key, owner in rows.all()})
    return found


async def _data_version(session: AsyncSession) -> tuple[Any, int] | None:
    """On SQLite, the session's driver connection and its `PRAGMA data_version` (a number that changes
    when another connection commits to the database); None elsewhere."""
    connection = await session.connection()
    if connection.dialect.name != "sqlite":
        return None
    driver = (await connection.get_raw_connection()).driver_connection
    version = (await connection.exec_driver_sql("PRAGMA data_version")).scalar_one()
    return driver, int(version)


async def _customers_per_phone(session: AsyncSession, indexes: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in duplicates.in_list_parts(indexes):
        rows = await session.execute(
            select(
                col(CustomerIdentifier.blind_index),
                func.count(func.distinct(col(CustomerIdentifier.customer_id))),
            )
            .where(
                col(CustomerIdentifier.kind) == customers.PHONE, col(CustomerIdentifier.blind_index).in_(part)
            )
            .group_by(col(CustomerIdentifier.blind_index))
        )
        counts.update({str(index): int(n) for index, n in rows.all()})
    return counts


async def insert_rows(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """`INSERT` of `rows` (dicts with the same keys) into `model`'s table. On SQLite the values go to
    the driver as tuples, each through its column type's own bind processor (what SQLAlchemy's
    executemany applies: the same stored values), without SQLAlchemy's per-row parameter handling;
    elsewhere, or when a column left out has a Python-side default, through SQLAlchemy."""
    if not rows:
        return
    table = model.__table__
    names = list(rows[0])
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite" or any(c.default is not None for c in table.c if c.name not in names):
        await session.execute(insert(table), rows)
        return
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    quote = dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    columns = [
        [row[name] for row in rows] if process is None else _processed([row[name] for row in rows], process)
        for name, process in zip(names, processors, strict=True)
    ]
    if not await _insert_through_json(connection, table.name, names, columns):
        await connection.exec_driver_sql(statement, list(zip(*columns, strict=True)))


def _processed(values: list[Any], process: Any) -> list[Any]:
    """`process` (a bind processor: JSON, timestamps) of each value, once per run of one value (a
    chunk's rows share their timestamp) and once per kind of empty container (`{}`, `[]`)."""
    out: list[Any] = []
    last: Any = out  # no value is this list
    last_out: Any = None
    empty: dict[type, Any] = {}
    for value in values:
        if value is not last:
            kind = value.__class__
            if (kind is dict or kind is list) and not value:
                if kind not in empty:
                    empty[kind] = process(value)
                last_out = empty[kind]
            else:
                last_out = process(value)
            last = value
        out.append(last_out)
    return out


# Placeholders of two bind parameters in each driver's own style.
_TWO_PARAMS = {"qmark": "?, ?", "numeric_dollar": "$1, $2", "format": "%s, %s", "numeric": ":1, :2"}


async def _insert_blocking_keys(session: AsyncSession, keys_of: list[tuple[str, Collection[str]]]) -> None:
    """The blocking keys of each new customer (`keys_of`: its id and keys, about a dozen), inserted in
    key order: the (key, customer_id) index's pages are then filled one after the other, each read and
    written once per chunk, instead of at random (the keys are hashes).

    On SQLite one statement over a JSON text of the ids with their keys, which SQLite spreads into rows
    and sorts, without the GIL (see `_insert_through_json`); elsewhere sorted here and handed to the
    driver as tuples, without SQLAlchemy's per-row parameter processing (a tenth of an import's time
    went there)."""
    if not keys_of:
        return
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        # Ids and keys are ASCII (uuids, keyed hashes): the JSON text carries them exactly.
        document = orjson.dumps([(cid, list(keys)) for cid, keys in keys_of]).decode()
        await connection.exec_driver_sql(
            f"INSERT INTO {BlockingKey.__tablename__} (customer_id, key) "
            "SELECT json_extract(row.value, '$[0]'), key.value "
            "FROM json_each(?) AS row, json_each(row.value, '$[1]') AS key ORDER BY key.value",
            (document,),
        )
        return
    rows = sorted(((cid, key) for cid, keys in keys_of for key in keys), key=operator.itemgetter(1))
    marks = _TWO_PARAMS[connection.dialect.paramstyle]
    await connection.exec_driver_sql(
        f"INSERT INTO {BlockingKey.__tablename__} (customer_id, key) VALUES ({marks})", rows
    )


async def _insert_through_json(
    connection: AsyncConnection, table: str, names: list[str], columns: list[list[Any]]
) -> bool:
    """On SQLite, the rows (`columns`: each column's values, as the driver would bind them) inserted by
    one statement that reads them from a single JSON text (`json_each`), in their order; False, doing
    nothing, when a value cannot travel that way exactly (a float, whose decimal text SQLite might read
    back one bit apart; a blob that is not UTF-8 text; a NUL character): the caller binds them row by row.

    Why: an executemany takes the GIL back for every row it binds, so while the event loop's thread
    runs Python (the next chunk's preparation, `_prepare_ahead`) the insert crawls; one statement runs
    in SQLite without the GIL from its start to its end. sqlite3 alone, 60,000 (customer_id, key) rows
    into the blocking-key table in a thread: executemany 0.51 s with the main thread idle, 1.83 s with
    it busy; this 0.47 s and 0.76 s."""
    if connection.dialect.name != "sqlite":
        return False
    selected, carried = [], []
    for n, values in enumerate(columns):
        kinds = {value.__class__ for value in values}
        if kinds - _JSON_EXACT:
            return False
        extract = f"json_extract(value, '$[{n}]')"
        if kinds & _BLOBS:
            try:
                values = [bytes(v).decode() if v.__class__ in _BLOBS else v for v in values]
            except UnicodeDecodeError:
                return False
            extract = f"CAST({extract} AS BLOB)"
        selected.append(extract)
        carried.append(values)
    try:
        # orjson: the rows' text made several times faster than by `json` (a chunk writes some 100,000
        # rows this way). Integers beyond 53 bits and strings that are not valid Unicode (lone
        # surrogates) are refused: they go row by row.
        document = orjson.dumps(list(zip(*carried, strict=True)), option=orjson.OPT_STRICT_INTEGER).decode()
    except orjson.JSONEncodeError:
        return False
    if "\\u0000" in document:  # SQLite's JSON would read it back as the end of the text
        return False
    quote = connection.dialect.identifier_preparer.quote
    await connection.exec_driver_sql(
        f"INSERT INTO {quote(table)} ({', '.join(quote(name) for name in names)}) "
        f"SELECT {', '.join(selected)} FROM json_each(?) ORDER BY key",
        (document,),
    )
    return True


# The classes of bound values that a JSON text carries to SQLite exactly (blobs as UTF-8 text; a blob
# column's bind processor gives memoryviews).
_BLOBS = frozenset({bytes, memoryview})
_JSON_EXACT = frozenset({str, int, type(None), *_BLOBS})
