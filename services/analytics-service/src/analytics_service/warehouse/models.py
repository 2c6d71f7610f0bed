"""The analytics store: every table analytics-service fills from events and its own API.

Three layers:

- **facts** kept as they arrive: raw storefront events (`activity_events`), sessions, orders and their
  lines, products, stock, customers with their consent and merges, identity links, marketing spend and
  expenses;
- **rollups** maintained incrementally from the facts (`rollup_daily_channel`, its per-day total
  `rollup_daily`, `rollup_daily_product`):
  a fact's contribution to a rollup row is a pure function of the fact, so when a fact changes (a late
  event, a status change, a merge) the old contribution is subtracted and the new one added. That keeps
  them idempotent under redelivery (the facts de-duplicate) and correct under out-of-order delivery;
- KPI queries read rollups (and customer/order facts for the customer-level figures), never the raw
  events.

Money is in minor units (cents) of the order's currency; only orders in the reporting currency
(`ANALYTICS_REPORTING_CURRENCY`) feed the money rollups. Days are UTC dates. `channel` on sessions,
orders and spend is the marketing channel (traffic source, e.g. `google`, `email`, `direct`);
`sales_channel` on orders is where the order was placed (web, marketplace, pos).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime

NO_CAMPAIGN = ""
NO_LOCATION = ""


def _moment(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


# --- activity ----------------------------------------------------------------------------------------


class ActivityEvent(SQLModel, table=True):
    """One storefront event as tracked (`POST /v1/track` -> ecom.activity.v1), kept once per message id.

    `customer_id` is the customer the event belongs to now: the one sent, else the one its anonymous id
    was stitched to, re-pointed to the survivor by a merge (`original_customer_id` keeps the id before
    the merge so an unmerge can give it back). Events of a customer who withdrew analytics consent are
    stored without `customer_id`/`anonymous_id` (or not at all, per `ANALYTICS_CONSENT_MODE`)."""

    __tablename__ = "activity_events"
    __table_args__ = (
        sa.Index("ix_activity_events_customer", "customer_id"),
        sa.Index("ix_activity_events_anonymous", "anonymous_id"),
        sa.Index("ix_activity_events_session", "session_id"),
    )

    message_id: str = Field(primary_key=True, max_length=100)
    event: str = Field(max_length=40, description="Segment spec name, e.g. Product Viewed")
    occurred_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    day: date
    session_id: str | None = Field(default=None, max_length=100)
    anonymous_id: str | None = Field(default=None, max_length=100)
    customer_id: str | None = Field(default=None, max_length=64)
    original_customer_id: str | None = Field(default=None, max_length=64)
    channel: str = Field(max_length=50)
    campaign: str = Field(default=NO_CAMPAIGN, max_length=100)
    sku: str | None = Field(default=None, max_length=100)
    order_id: str | None = Field(default=None, max_length=64)
    revenue_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))


class SessionFact(SQLModel, table=True):
    """One visit, folded from its events: its day, channel and campaign are those of its earliest event
    (so a late-arriving earlier event moves the session), and which funnel steps it reached. A session
    contributes one to `rollup_daily_channel.sessions` and to each step column it reached."""

    __tablename__ = "activity_sessions"

    session_id: str = Field(primary_key=True, max_length=100)
    day: date = Field(index=True)
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    channel: str = Field(max_length=50)
    campaign: str = Field(default=NO_CAMPAIGN, max_length=100)
    customer_id: str | None = Field(default=None, max_length=64, index=True)
    anonymous_id: str | None = Field(default=None, max_length=100, index=True)
    events: int = 0
    page_views: int = 0
    product_views: int = 0
    viewed: bool = Field(default=False, description="Reached Product Viewed")
    added: bool = Field(default=False, description="Reached Product Added")
    checkout: bool = Field(default=False, description="Reached Checkout Started")
    purchased: bool = Field(default=False, description="Reached Order Completed")


class IdentityLink(SQLModel, table=True):
    """Identity stitching: an anonymous (device/cookie) id belongs to a customer, learnt from an Identify
    event or any event carrying both ids. The first link wins; a merge re-points it to the survivor
    (`original_customer_id` remembers the id before)."""

    __tablename__ = "identity_links"

    anonymous_id: str = Field(primary_key=True, max_length=100)
    customer_id: str = Field(max_length=64, index=True)
    original_customer_id: str | None = Field(default=None, max_length=64)
    linked_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


# --- customers -----------------------------------------------------------------------------------------


class CustomerProfile(SQLModel, table=True):
    """The customers projection: one row per customer id seen in orders, events or consent, with the
    order metrics segments and CLV read (recomputed from `order_facts` whenever one of its orders
    changes). `merged_into` is set while the customer is merged into a survivor (ecom.customer.merged.v1)
    and cleared by an unmerge; a merged customer has no orders or events of its own meanwhile."""

    __tablename__ = "analytics_customers"

    customer_id: str = Field(primary_key=True, max_length=64)
    merged_into: str | None = Field(default=None, max_length=64, index=True)
    merge_id: str | None = Field(default=None, max_length=64)
    first_seen_at: datetime | None = _moment(nullable=True)
    first_order_at: datetime | None = _moment(nullable=True)
    last_order_at: datetime | None = _moment(nullable=True)
    orders_count: int = Field(default=0, description="Orders counted (placed, not cancelled or refunded)")
    revenue_minor: int = Field(default=0, sa_type=sa.BigInteger, description="Net revenue of those orders")
    acquisition_channel: str | None = Field(default=None, max_length=50, description="Channel of 1st order")
    acquisition_campaign: str | None = Field(default=None, max_length=100)


class CustomerConsent(SQLModel, table=True):
    """A customer's consent per purpose (email_marketing, sms, personalisation, analytics,
    third_party_sharing) from ecom.customer.consent_changed.v1; the latest `changed_at` wins, so an
    older decision delivered late does not overwrite a newer one."""

    __tablename__ = "customer_consents"

    customer_id: str = Field(primary_key=True, max_length=64)
    purpose: str = Field(primary_key=True, max_length=40)
    status: str = Field(max_length=20, description="granted or withdrawn")
    changed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


# --- orders --------------------------------------------------------------------------------------------


class OrderFact(SQLModel, table=True):
    """An order from ecom.orders.v1 with its current status, attributed to the marketing channel and
    campaign of the session whose Order Completed event named it (`session_id`; it follows the session
    when a late event moves it), else to its sales channel with no campaign.

    `placed` is false for a row created by a status change or an Order Completed event that arrived before
    the order itself; such a row counts nowhere until ecom.order.placed.v1 arrives. `status_at` is the
    time of the status held: an older status change delivered late is ignored. `is_first` marks the
    customer's first counted order (by `placed_at`), the one that makes them a new customer.
    `prior_order_day` and `second_prior_order_day` link a counted order in the reporting currency to the
    days of the same customer's two counted orders before it (by `placed_at`, then order id), so the repeat
    purchase rate of a range is two counts over an index, with no grouping by customer (kpis/service.py);
    `prior_channel_order_day` and `second_prior_channel_order_day` do the same among the customer's orders
    of the order's channel (its rollup channel: attributed, else sales channel, else "unknown").
    `cogs_minor` is the sum of line quantity x the SKU's cost when the order was placed (`product_costs`;
    0 for a SKU whose cost is unknown; `cogs_complete` says whether every line had one)."""

    __tablename__ = "order_facts"
    __table_args__ = (
        sa.Index("ix_order_facts_customer", "customer_id", "placed_at"),
        sa.Index("ix_order_facts_prior_day", "prior_order_day", "day", "second_prior_order_day"),
        sa.Index(
            "ix_order_facts_prior_channel_day",
            "prior_channel_order_day",
            "day",
            "second_prior_channel_order_day",
            "channel",
            "sales_channel",
        ),
    )

    order_id: str = Field(primary_key=True, max_length=64)
    order_number: str | None = Field(default=None, max_length=100)
    placed: bool = False
    customer_id: str | None = Field(default=None, max_length=64)
    original_customer_id: str | None = Field(default=None, max_length=64)
    sales_channel: str | None = Field(default=None, max_length=50)
    channel: str | None = Field(default=None, max_length=50, description="Attributed marketing channel")
    campaign: str | None = Field(default=None, max_length=100)
    session_id: str | None = Field(
        default=None, max_length=100, index=True, description="Attributing session"
    )
    location_id: str | None = Field(default=None, max_length=64)
    currency: str | None = Field(default=None, max_length=3)
    subtotal_minor: int = Field(default=0, sa_type=sa.BigInteger)
    discount_minor: int = Field(default=0, sa_type=sa.BigInteger)
    total_minor: int = Field(default=0, sa_type=sa.BigInteger)
    cogs_minor: int = Field(default=0, sa_type=sa.BigInteger)
    cogs_complete: bool = True
    status: str = Field(default="placed", max_length=20)
    status_at: datetime | None = _moment(nullable=True)
    placed_at: datetime | None = _moment(nullable=True, index=True)
    day: date | None = Field(default=None, index=True)
    is_first: bool = False
    prior_order_day: date | None = Field(
        default=None, description="Day of the customer's previous counted order (reporting currency)"
    )
    second_prior_order_day: date | None = Field(default=None, description="Day of the one before that")
    prior_channel_order_day: date | None = Field(
        default=None, description="The same among the customer's orders of this order's channel"
    )
    second_prior_channel_order_day: date | None = None


class OrderLineFact(SQLModel, table=True):
    """A line of an order: SKU, quantity, unit price and the SKU's unit cost when the order was placed."""

    __tablename__ = "order_lines"

    order_id: str = Field(primary_key=True, max_length=64)
    line_no: int = Field(primary_key=True)
    sku: str = Field(max_length=100, index=True)
    quantity: int
    unit_price_minor: int = Field(sa_type=sa.BigInteger)
    unit_cost_minor: int | None = Field(default=None, sa_type=sa.BigInteger)


# --- catalog and stock -----------------------------------------------------------------------------------


class ProductFact(SQLModel, table=True):
    """A SKU as the catalog describes it: product, category, status (draft/active/archived; `published`
    when active), base price and unit cost from ecom.prices.v1 (the latest `effective_from` wins). Fed by
    ecom.products.v1 (guarded by the product's version) and ecom.prices.v1."""

    __tablename__ = "product_facts"

    sku: str = Field(primary_key=True, max_length=100)
    product_id: str | None = Field(default=None, max_length=64, index=True)
    category_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default="draft", max_length=20)
    product_version: int = 0
    currency: str | None = Field(default=None, max_length=3)
    price_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    cost_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    price_effective_from: datetime | None = _moment(nullable=True)

    @property
    def published(self) -> bool:
        return self.status == "active"


class ProductCost(SQLModel, table=True):
    """A SKU's unit cost in a currency from `effective_from` on (ecom.price.changed.v1 with a cost, every
    channel): the history an order line's cost is read from (warehouse/costs.py), so an order's cost of
    goods does not depend on whether its order or its SKU's price event arrived first."""

    __tablename__ = "product_costs"

    sku: str = Field(primary_key=True, max_length=100)
    currency: str = Field(primary_key=True, max_length=3)
    effective_from: datetime = Field(sa_column=sa.Column(UTCDateTime(), primary_key=True))
    cost_minor: int = Field(sa_type=sa.BigInteger)


class SkuStock(SQLModel, table=True):
    """Stock of a SKU at a location from ecom.stock.changed.v1; `as_of` is the event time, an older event
    delivered late does not overwrite a newer level."""

    __tablename__ = "stock_by_location"

    sku: str = Field(primary_key=True, max_length=100)
    location_id: str = Field(primary_key=True, max_length=64)
    on_hand: int
    reserved: int
    available: int
    as_of: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


# --- spend and expenses ----------------------------------------------------------------------------------


class MarketingSpend(SQLModel, table=True):
    """Marketing spend of one day on one channel and campaign (`POST /v1/spend` or a CSV upload); a new
    entry for the same day, channel and campaign replaces the amount."""

    __tablename__ = "marketing_spend"

    day: date = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=50)
    campaign: str = Field(primary_key=True, max_length=100, default=NO_CAMPAIGN)
    amount_minor: int = Field(sa_type=sa.BigInteger)
    currency: str = Field(max_length=3)
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Expense(SQLModel, table=True):
    """An operating expense recorded for a day (rent, salaries, fees…), subtracted in net profit margin."""

    __tablename__ = "expenses"

    id: str = Field(primary_key=True, max_length=36)
    day: date = Field(index=True)
    category: str = Field(max_length=50)
    amount_minor: int = Field(sa_type=sa.BigInteger)
    currency: str = Field(max_length=3)
    description: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


# --- rollups -----------------------------------------------------------------------------------------------


class ChannelCounts(SQLModel):
    """The counts of the channel rollups (`rollup_daily_channel`, and `rollup_daily` summed over channels
    and campaigns): sessions and the funnel steps they reached (by session start), and the orders
    attributed there (by placing day; cancelled or refunded orders count in `cancelled_orders` only)."""

    sessions: int = 0
    sessions_viewed: int = 0
    sessions_added: int = 0
    sessions_checkout: int = 0
    sessions_purchased: int = 0
    page_views: int = 0
    product_views: int = 0
    events: int = 0
    orders: int = 0
    new_customer_orders: int = 0
    revenue_minor: int = Field(default=0, sa_type=sa.BigInteger)
    cogs_minor: int = Field(default=0, sa_type=sa.BigInteger)
    units: int = 0
    cancelled_orders: int = 0
    customer_orders: int = Field(default=0, description="Counted orders with a customer id")


class DailyChannelRollup(ChannelCounts, table=True):
    """Per UTC day x marketing channel x campaign: the channel counts. Maintained from
    `activity_sessions` and `order_facts`."""

    __tablename__ = "rollup_daily_channel"

    day: date = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=50)
    campaign: str = Field(primary_key=True, max_length=100, default=NO_CAMPAIGN)


class DailyRollup(ChannelCounts, table=True):
    """Per UTC day: the channel counts of all channels and campaigns (what an unfiltered KPI report reads:
    one row a day instead of one per channel and campaign). Moved by the same differences as
    `rollup_daily_channel`, in the same transaction."""

    __tablename__ = "rollup_daily"

    day: date = Field(primary_key=True)


class DailyProductRollup(SQLModel, table=True):
    """Per UTC day x SKU x location: views, cart adds and removals (from activity events, location ""),
    and units, orders, revenue and cost sold (from counted orders, at the order's location or "").
    The demand series forecasts read."""

    __tablename__ = "rollup_daily_product"

    day: date = Field(primary_key=True)
    sku: str = Field(primary_key=True, max_length=100)
    location_id: str = Field(primary_key=True, max_length=64, default=NO_LOCATION)
    views: int = 0
    adds: int = 0
    removes: int = 0
    orders: int = 0
    units: int = 0
    revenue_minor: int = Field(default=0, sa_type=sa.BigInteger)
    cogs_minor: int = Field(default=0, sa_type=sa.BigInteger)


# --- segments ----------------------------------------------------------------------------------------------


class SegmentDefinition(SQLModel, table=True):
    """A custom segment: a name and rules over customer metrics (recency, frequency, monetary, CLV,
    acquisition channel, category bought, consent), evaluated when read. The RFM segments (champions,
    loyal, at_risk, hibernating, new, need_attention) are built in and need no row."""

    __tablename__ = "segment_definitions"

    name: str = Field(primary_key=True, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    rules: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
