"""Stores' end-of-day sales files: read strictly, recorded once per receipt id (even when uploads race),
a row-level error report, each new receipt published for customer-service to place as a POS order."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from partner_support import rejected
from sqlalchemy import select
from sqlmodel import col
from sync_support import Running, register, unique

from servicekit.events.models import OutboxMessage
from sync_service.listings.models import CatalogStock, CatalogVariant

pytestmark = pytest.mark.asyncio(loop_scope="module")

HEADER = "receipt_id,line,sku,quantity,price,store,time,loyalty_id\n"
EACH = 4


def sales_csv(*receipts: str, store: str = "store-1") -> bytes:
    rows = []
    for receipt in receipts:
        rows.append(f"{receipt},1,MUG,2,9.90,{store},2026-11-28T17:02:00Z,LOY-1\n")
        rows.append(f"{receipt},2,TSHIRT-M,1,19.90,{store},2026-11-28T17:02:00Z,LOY-1\n")
    return (HEADER + "".join(rows)).encode()


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def catalogue(running: Running) -> None:
    """The SKUs and stores these files sell, in sync-service's catalogue (as product-service's product and
    stock events leave them): a sale is recorded only of a known SKU at a known store."""
    async with running.database.session() as session:
        for sku in ("MUG", "TSHIRT-M"):
            await session.merge(CatalogVariant(sku=sku, product_id=f"p-{sku}", gtin=None, attributes={}))
            for store in ("store-1", "store-2"):
                await session.merge(
                    CatalogStock(sku=sku, location_id=store, location_code=store, available=10)
                )
        await session.commit()


def pos_writer(live: Running) -> dict[str, str]:
    return {**live.tokens.auth_header("orders:write"), "content-type": "text/csv"}


async def _pos_channel(live: Running) -> dict[str, object]:
    return await register(live, kind="pos", name="Store Paris", code=unique("store-"))


async def _sale_events(live: Running, channel_id: str) -> list[dict[str, object]]:
    async with live.database.session() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(
                col(OutboxMessage.key) == channel_id, col(OutboxMessage.event_type) == "ecom.sale.recorded.v1"
            )
            .order_by(col(OutboxMessage.id))
        )
        return [{"topic": row.topic, **json.loads(row.payload)["data"]} for row in rows.scalars()]


async def _refused_then_skipped(
    live: Running, channel: dict[str, object], content: bytes
) -> tuple[httpx.Response, list[dict[str, object]], httpx.Response]:
    """The file sent with on_error=refuse (the default), the sale events then, and the file sent again
    with on_error=skip_receipt."""
    url = f"/v1/channels/{channel['id']}/sales"
    refused = await live.client.post(url, content=content, headers=pos_writer(live))
    nothing = await _sale_events(live, str(channel["id"]))
    skipped = await live.client.post(
        f"{url}?on_error=skip_receipt", content=content, headers=pos_writer(live)
    )
    return refused, nothing, skipped


async def test_each_receipt_is_recorded_once_and_published(running: Running) -> None:
    channel = await _pos_channel(running)
    receipts = [unique("R"), unique("R")]
    url = f"/v1/channels/{channel['id']}/sales"

    first = await running.client.post(url, content=sales_csv(*receipts), headers=pos_writer(running))
    again = await running.client.post(url, content=sales_csv(*receipts), headers=pos_writer(running))

    assert first.status_code == 200, first.text
    assert {k: first.json()[k] for k in ("rows", "receipts", "recorded", "duplicates", "rejected")} == {
        "rows": 4,
        "receipts": 2,
        "recorded": 2,
        "duplicates": 0,
        "rejected": 0,
    }
    assert (again.json()["recorded"], again.json()["duplicates"]) == (0, 2)
    events = await _sale_events(running, str(channel["id"]))
    assert [e["receipt_id"] for e in events] == receipts
    assert all(e["topic"] == "ecom.sales.v1" for e in events)
    assert events[0]["currency"] == "EUR"
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in events[0]["lines"]] == [  # type: ignore[attr-defined]
        ("MUG", 2, "9.90"),
        ("TSHIRT-M", 1, "19.90"),
    ]


async def test_racing_uploads_of_the_same_receipts_record_each_once(running: Running) -> None:
    channel = await _pos_channel(running)
    receipts = [unique("R"), unique("R"), unique("R")]
    url = f"/v1/channels/{channel['id']}/sales"

    responses = await asyncio.gather(
        *(
            running.client.post(url, content=sales_csv(*receipts), headers=pos_writer(running))
            for _ in range(EACH)
        )
    )

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(r.json()["recorded"] for r in responses) == len(receipts)
    assert sum(r.json()["duplicates"] for r in responses) == len(receipts) * (EACH - 1)
    assert len(await _sale_events(running, str(channel["id"]))) == len(receipts)


async def test_row_errors_refuse_the_file_or_skip_their_receipts(running: Running) -> None:
    channel = await _pos_channel(running)
    good, bad = unique("R"), unique("R")
    content = (
        HEADER
        + f"{good},1,MUG,1,9.90,store-1,2026-11-28T17:02:00Z,\n"
        + f"{bad},1,MUG,0,9.90,store-1,2026-11-28T17:03:00Z,\n"
        + f"{bad},2,MUG,1,abc,store-1,2026-11-28T17:03:00Z,\n"
    ).encode()
    before = rejected("sales", "row_errors")

    refused, nothing, skipped = await _refused_then_skipped(running, channel, content)

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    report = refused.json()["report"]
    assert [(e["line"], e["receipt_id"], e["field"]) for e in report["errors"]] == [
        (3, bad, "quantity"),
        (4, bad, "price"),
    ]
    assert nothing == []
    assert rejected("sales", "row_errors") == before + 1
    assert skipped.status_code == 200
    assert (skipped.json()["recorded"], skipped.json()["rejected"]) == (1, 1)
    assert [e["receipt_id"] for e in await _sale_events(running, str(channel["id"]))] == [good]


async def test_a_sale_of_an_unknown_sku_or_store_or_in_the_future_is_a_row_error(running: Running) -> None:
    channel = await _pos_channel(running)
    good, no_sku, no_store, future = unique("R"), unique("R"), unique("R"), unique("R")
    content = (
        HEADER
        + f"{good},1,MUG,1,9.90,store-1,2026-11-28T17:02:00Z,\n"
        + f"{no_sku},1,MUG,1,9.90,store-1,2026-11-28T17:03:00Z,\n"
        + f"{no_sku},2,NO-SUCH-SKU,1,9.90,store-1,2026-11-28T17:03:00Z,\n"
        + f"{no_store},1,MUG,1,9.90,no-such-store,2026-11-28T17:04:00Z,\n"
        + f"{future},1,MUG,1,9.90,store-1,2150-01-01T00:00:00Z,\n"
    ).encode()
    before = rejected("sales", "row_errors")

    refused, nothing, skipped = await _refused_then_skipped(running, channel, content)

    assert refused.status_code == 422, refused.text
    report = refused.json()["report"]
    assert [(e["line"], e["receipt_id"], e["field"]) for e in report["errors"]] == [
        (4, no_sku, "sku"),
        (5, no_store, "store"),
        (6, future, "time"),
    ]
    assert "unknown SKU" in report["errors"][0]["message"]
    assert "unknown store" in report["errors"][1]["message"]
    assert nothing == []
    assert rejected("sales", "row_errors") == before + 1
    assert skipped.status_code == 200, skipped.text
    assert (skipped.json()["recorded"], skipped.json()["rejected"]) == (1, 3)
    assert [e["receipt_id"] for e in await _sale_events(running, str(channel["id"]))] == [good]


async def test_a_price_with_more_decimals_than_the_channels_currency_has_is_a_row_error(
    running: Running,
) -> None:
    """A store selling in yen (no minor unit): 9.90 was recorded and placed as a POS order of 9.90 JPY."""
    channel = await register(running, kind="pos", name="Store Tokyo", code=unique("store-"), currency="JPY")
    good, bad = unique("R"), unique("R")
    content = (
        HEADER
        + f"{good},1,MUG,1,990,store-1,2026-11-28T17:02:00Z,\n"
        + f"{bad},1,MUG,1,9.90,store-1,2026-11-28T17:03:00Z,\n"
    ).encode()

    refused, nothing, skipped = await _refused_then_skipped(running, channel, content)

    assert refused.status_code == 422, refused.text
    errors = refused.json()["report"]["errors"]
    assert [(e["line"], e["receipt_id"], e["field"]) for e in errors] == [(3, bad, "price")]
    assert "JPY" in errors[0]["message"]
    assert nothing == []
    assert (skipped.json()["recorded"], skipped.json()["rejected"]) == (1, 1)
    [event] = await _sale_events(running, str(channel["id"]))
    assert (event["receipt_id"], event["currency"]) == (good, "JPY")


async def test_a_receipt_sent_again_with_other_content_is_an_error(running: Running) -> None:
    channel = await _pos_channel(running)
    receipt = unique("R")
    url = f"/v1/channels/{channel['id']}/sales"
    await running.client.post(url, content=sales_csv(receipt), headers=pos_writer(running))

    changed = await running.client.post(
        url, content=sales_csv(receipt, store="store-2"), headers=pos_writer(running)
    )

    assert changed.status_code == 422
    assert (
        changed.json()["report"]["errors"][0]["message"]
        == "this receipt was recorded before with other content"
    )


async def test_a_receipt_id_too_long_for_its_pos_order_number_is_a_row_error(running: Running) -> None:
    """customer-service places a receipt as the order POS-<channel code>-<receipt id> and cuts an order
    number at 100 characters: two long receipt ids sharing their start used to be recorded both, and the
    second became a repeat of the first order there (dead-lettered: its sale lost)."""
    channel = await _pos_channel(running)
    room = 100 - len(f"POS-{channel['code']}-")
    fits = unique("R").ljust(room, "x")
    start = unique("R").ljust(room, "x")
    first, second = f"{start}A", f"{start}B"

    refused, nothing, skipped = await _refused_then_skipped(running, channel, sales_csv(fits, first, second))

    assert refused.status_code == 422, refused.text
    errors = refused.json()["report"]["errors"]
    assert [(e["line"], e["receipt_id"], e["field"]) for e in errors] == [
        (4, first, "receipt_id"),
        (6, second, "receipt_id"),
    ]
    assert f"at most {room} characters" in errors[0]["message"]
    assert nothing == []
    assert (skipped.json()["recorded"], skipped.json()["rejected"]) == (1, 2)
    assert [e["receipt_id"] for e in await _sale_events(running, str(channel["id"]))] == [fits]


async def test_a_sale_time_without_an_offset_is_published_as_utc(running: Running) -> None:
    """The guide takes a time without an offset as UTC, but it used to leave in ecom.sale.recorded.v1
    without one; customer-service placed the order with that naive time and analytics-service's consumer,
    comparing it with aware times, dead-lettered the order (the sale missing from every KPI)."""
    channel = await _pos_channel(running)
    receipt = unique("R")
    content = (HEADER + f"{receipt},1,MUG,1,9.90,store-1,2026-11-28T17:02:00,\n").encode()

    response = await running.client.post(
        f"/v1/channels/{channel['id']}/sales", content=content, headers=pos_writer(running)
    )

    assert response.status_code == 200, response.text
    (event,) = await _sale_events(running, str(channel["id"]))
    assert datetime.fromisoformat(str(event["sold_at"])) == datetime(2026, 11, 28, 17, 2, tzinfo=UTC)


async def test_a_sale_time_that_is_not_a_date_time_is_a_row_error(running: Running) -> None:
    """A till's 20261128 (YYYYMMDD) was read as Unix seconds and recorded as a sale on 1970-08-23; a
    number or a bare date is not the RFC 3339 date-time the guide asks for."""
    channel = await _pos_channel(running)
    times = ["20261128", "1732900000", "2026-11-28"]
    receipts = [unique("R") for _ in times]
    content = (
        HEADER + "".join(f"{r},1,MUG,1,9.90,store-1,{t},\n" for r, t in zip(receipts, times, strict=True))
    ).encode()

    response = await running.client.post(
        f"/v1/channels/{channel['id']}/sales", content=content, headers=pos_writer(running)
    )

    assert response.status_code == 422, response.text
    errors = response.json()["report"]["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "time"), (3, "time"), (4, "time")]
    assert "RFC 3339" in errors[0]["message"]
    assert await _sale_events(running, str(channel["id"])) == []


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (HEADER.encode() + b'R1,1,MUG,1,"9.90,store-1,2026-11-28T17:02:00Z,\n', 2),
        (HEADER.encode() + b"R1,1,MUG,1,9.90\n", 2),
        (b"receipt,line\nR1,1\n", 1),
        (HEADER.encode() + b"R1,1,MUG,1,9.90,store-\xff,2026-11-28T17:02:00Z,\n", 2),
    ],
    ids=["unterminated-quote", "short-row", "wrong-header", "not-utf8"],
)
async def test_a_broken_file_is_refused_whole_with_its_line(
    running: Running, content: bytes, line: int
) -> None:
    channel = await _pos_channel(running)
    before = rejected("sales", "malformed_file")

    response = await running.client.post(
        f"/v1/channels/{channel['id']}/sales", content=content, headers=pos_writer(running)
    )

    assert response.status_code == 422
    assert f"line {line}" in response.json()["detail"]
    assert rejected("sales", "malformed_file") == before + 1
    assert await _sale_events(running, str(channel["id"])) == []


@pytest.mark.parametrize(
    ("content", "content_type", "line"),
    [
        (HEADER.encode(), "text/csv", 2),
        (HEADER.encode() + b"\n\n", "text/csv", 2),
        (b"", "application/x-ndjson", 1),
        (b"\n\n", "application/x-ndjson", 1),
    ],
    ids=["csv-header-only", "csv-header-and-blank-lines", "ndjson-empty", "ndjson-blank-lines"],
)
async def test_a_file_without_a_sales_row_is_refused_whole_with_its_line(
    running: Running, content: bytes, content_type: str, line: int
) -> None:
    """A header and nothing else answered 200 with 0 rows: a till's empty export, or the wrong file, went
    unnoticed as a day without sales."""
    channel = await _pos_channel(running)
    before = rejected("sales", "malformed_file")

    response = await running.client.post(
        f"/v1/channels/{channel['id']}/sales",
        content=content,
        headers={**running.tokens.auth_header("orders:write"), "content-type": content_type},
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert f"line {line}" in detail, detail
    assert "no sales row" in detail, detail
    assert [e["field"] for e in response.json()["errors"]] == ["body.file"]
    assert rejected("sales", "malformed_file") == before + 1


async def test_ndjson_is_read_too(running: Running) -> None:
    channel = await _pos_channel(running)
    receipt = unique("R")
    rows = [
        {
            "receipt_id": receipt,
            "line": n,
            "sku": "MUG",
            "quantity": 1,
            "price": "9.90",
            "store": "store-1",
            "time": "2026-11-28T17:02:00Z",
        }
        for n in (1, 2)
    ]
    content = "\n".join(json.dumps(row) for row in rows).encode()

    response = await running.client.post(
        f"/v1/channels/{channel['id']}/sales",
        content=content,
        headers={**running.tokens.auth_header("orders:write"), "content-type": "application/x-ndjson"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1


async def test_only_a_pos_channel_takes_sales_and_only_with_the_scope(running: Running) -> None:
    web = await register(running, kind="webhook")
    pos = await _pos_channel(running)

    not_pos = await running.client.post(
        f"/v1/channels/{web['id']}/sales", content=sales_csv(unique("R")), headers=pos_writer(running)
    )
    unknown = await running.client.post(
        f"/v1/channels/{unique()}/sales", content=sales_csv(unique("R")), headers=pos_writer(running)
    )
    no_scope = await running.client.post(
        f"/v1/channels/{pos['id']}/sales",
        content=sales_csv(unique("R")),
        headers={**running.reader, "content-type": "text/csv"},
    )
    no_token = await running.client.post(
        f"/v1/channels/{pos['id']}/sales",
        content=sales_csv(unique("R")),
        headers={"content-type": "text/csv"},
    )

    assert (not_pos.status_code, unknown.status_code, no_scope.status_code, no_token.status_code) == (
        422,
        404,
        403,
        401,
    )
