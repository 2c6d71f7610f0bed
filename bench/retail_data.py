"""Retail transaction logs for bench/scenarios/analytics_models.py: a generator, and a reader of real
logs shaped like the UCI Online Retail data sets (one row per invoice line).

A row is (invoice, sku, quantity, moment, unit_price, customer_id or None, country). An invoice whose
number starts with "C" is a cancellation/return (negative quantity), as in the UCI logs.

The generator holds what makes real retail data hard: popularity following a power law (a long tail of
SKUs that sell on a few days a year), weekly and yearly seasonality, SKUs launched and discontinued
during the period, customers who buy once and never return next to regulars and a few wholesalers with
huge baskets, guest orders without a customer id, returns, price outliers, and products bought together
(complements) among plenty of noise.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

WEEKDAY_FACTORS = (1.05, 1.0, 1.0, 1.15, 1.1, 0.75, 0.55)


@dataclass(frozen=True)
class Line:
    invoice: str
    sku: str
    quantity: int
    moment: datetime
    unit_price: float
    customer_id: str | None
    country: str

    @property
    def amount(self) -> float:
        return self.quantity * self.unit_price


def generate(*, seed: int, skus: int, customers: int, days: int, start: datetime) -> list[Line]:
    """A transaction log of `days` days (see the module docstring)."""
    rng = random.Random(seed)
    catalog = [f"SKU{index:05d}" for index in range(skus)]
    categories = max(skus // 30, 3)
    category_of = {sku: rng.randrange(categories) for sku in catalog}
    weight = {sku: 1.0 / (rank + 1) ** 1.05 for rank, sku in enumerate(rng.sample(catalog, len(catalog)))}
    price = {sku: round(math.exp(rng.gauss(1.2, 0.9)), 2) for sku in catalog}
    launch = {sku: (rng.randrange(days // 2) if rng.random() < 0.15 else 0) for sku in catalog}
    retire = {sku: (rng.randrange(days // 3, days) if rng.random() < 0.1 else days) for sku in catalog}
    by_category: dict[int, list[str]] = {}
    for sku in catalog:
        by_category.setdefault(category_of[sku], []).append(sku)
    complements = {
        sku: [
            *rng.sample(by_category[category_of[sku]], min(2, len(by_category[category_of[sku]]))),
            rng.choice(catalog),
        ]
        for sku in catalog
    }
    countries = ["United Kingdom"] * 17 + ["Germany", "France", "EIRE"]
    lines: list[Line] = []
    invoice_number = 500000
    returns: list[tuple[int, Line]] = []

    def pick(candidates: list[str], day: int) -> str | None:
        live = [sku for sku in candidates if launch[sku] <= day < retire[sku]]
        if not live:
            return None
        return rng.choices(live, weights=[weight[sku] for sku in live])[0]

    for index in range(customers):
        customer_id = str(12000 + index)
        wholesale = rng.random() < 0.02
        rate = rng.gammavariate(0.6, 1 / 8.0) * (4 if wholesale else 1)  # purchases per week
        drop = rng.betavariate(1.5, 4.0)
        favourites = rng.sample(range(categories), 2)
        country = rng.choice(countries)
        day = float(rng.randrange(days))
        bought: list[str] = []
        while day < days:
            whole_day = int(day)
            season = 1.0 + 0.6 * math.exp(-(((whole_day % 365) - 330) ** 2) / (2 * 25.0**2))
            if rng.random() < WEEKDAY_FACTORS[(start + timedelta(days=whole_day)).weekday()] / 1.15:
                invoice_number += 1
                moment = start + timedelta(days=whole_day, minutes=rng.randrange(8 * 60, 20 * 60))
                size = 1 + int(rng.expovariate(1 / (25.0 if wholesale else 3.0 * season)))
                basket: set[str] = set()
                for _ in range(size * 3):
                    if len(basket) >= size:
                        break
                    roll = rng.random()
                    if basket and roll < 0.35:
                        sku = pick(complements[rng.choice(sorted(basket))], whole_day)
                    elif bought and roll < 0.5:
                        sku = pick(bought, whole_day)
                    elif roll < 0.8:
                        sku = pick(by_category[rng.choice(favourites)], whole_day)
                    else:
                        sku = pick(catalog, whole_day)
                    if sku is not None:
                        basket.add(sku)
                for sku in sorted(basket):
                    quantity = max(1, int(rng.expovariate(1 / (24.0 if wholesale else 2.5))))
                    unit = price[sku] if rng.random() > 0.01 else round(price[sku] * 20, 2)
                    line = Line(str(invoice_number), sku, quantity, moment, unit, customer_id, country)
                    lines.append(line)
                    bought.append(sku)
                    if rng.random() < 0.03:
                        returns.append((whole_day + rng.randrange(1, 30), line))
                if rng.random() < drop:
                    break
            day += rng.expovariate(max(rate, 1e-3) / 7.0) + 1.0
    # Guest orders: no customer id, the same catalog and seasonality.
    for _ in range(len(lines) // 40):
        whole_day = rng.randrange(days)
        sku = pick(catalog, whole_day)
        if sku is None:
            continue
        invoice_number += 1
        moment = start + timedelta(days=whole_day, hours=rng.randrange(8, 20))
        lines.append(
            Line(str(invoice_number), sku, rng.randint(1, 4), moment, price[sku], None, "United Kingdom")
        )
    for day, line in returns:
        if day < days:
            moment = start + timedelta(days=day, hours=12)
            quantity = -rng.randint(1, line.quantity)
            lines.append(
                Line(
                    f"C{line.invoice}",
                    line.sku,
                    quantity,
                    moment,
                    line.unit_price,
                    line.customer_id,
                    line.country,
                )
            )
    lines.sort(key=lambda line: (line.moment, line.invoice, line.sku))
    return lines


# Header names of the UCI "Online Retail" (2011) and "Online Retail II" (2009-2011) files.
COLUMNS = {
    "invoice": ("InvoiceNo", "Invoice", "invoice", "invoice_no"),
    "sku": ("StockCode", "stock_code", "sku"),
    "quantity": ("Quantity", "quantity"),
    "moment": ("InvoiceDate", "invoice_date", "date"),
    "unit_price": ("UnitPrice", "Price", "unit_price", "price"),
    "customer_id": ("CustomerID", "Customer ID", "customer_id"),
    "country": ("Country", "country"),
}
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d")


def _parse_moment(text: str, formats: list[str]) -> datetime:
    for index, fmt in enumerate(formats):
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if index:  # keep the format that worked first
            formats.insert(0, formats.pop(index))
        return moment
    raise ValueError(f"unrecognised date {text!r}")


def read_csv(path: Path) -> Iterator[Line]:
    """Lines of a UCI-shaped CSV (UTF-8 or Latin-1). Rows without a SKU, a number or a date fail with
    their line number; rows with a non-positive unit price (adjustments, postage fixes) are skipped."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    names: dict[str, str | None] = {}
    for field, candidates in COLUMNS.items():
        names[field] = next((name for name in candidates if name in header), None)
        if names[field] is None and field not in ("customer_id", "country"):
            raise ValueError(f"{path}: no column for {field} (one of {', '.join(candidates)})")
    formats = list(DATE_FORMATS)
    for row in reader:
        try:
            price = float(row[names["unit_price"] or ""])
            if price <= 0:
                continue
            customer = (row.get(names["customer_id"] or "") or "").strip()
            if customer.endswith(".0"):
                customer = customer[:-2]
            yield Line(
                invoice=row[names["invoice"] or ""].strip(),
                sku=row[names["sku"] or ""].strip().upper(),
                quantity=int(float(row[names["quantity"] or ""])),
                moment=_parse_moment(row[names["moment"] or ""].strip(), formats),
                unit_price=price,
                customer_id=customer or None,
                country=(row.get(names["country"] or "") or "").strip(),
            )
        except (KeyError, ValueError) as error:
            raise ValueError(f"{path}: line {reader.line_num}: {error}") from error
