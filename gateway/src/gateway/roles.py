"""Roles are bundles of scopes: the one table that decides what each kind of caller may do."""

from __future__ import annotations

from enum import StrEnum

SCOPES: dict[str, str] = {
    "customers:read": "Read customer profiles (PII masked)",
    "customers:write": "Create and change customers",
    "customers:pii": "Read unmasked personal data (audited)",
    "orders:write": "Record orders",
    "products:read": "Read the catalog, prices and stock",
    "products:write": "Change the catalog and prices",
    "inventory:write": "Change stock levels",
    "sync:read": "Read sync-service: sales channels, listings, deliveries, status, logistics partners, "
    "order tracking, inbound deliveries",
    "sync:admin": "Manage sync-service: register and change sales channels and logistics partners, replay "
    "deliveries",
    "shipments:write": "Report shipment updates (logistics partners)",
    "analytics:read": "Read KPIs, funnels, cohorts, segments and their exports",
    "analytics:write": "Record marketing spend and expenses, define segments",
    "events:write": "Send storefront behaviour events (POST /api/analytics/v1/track)",
    "privacy:admin": "Read the audit log of unmasked PII reads",
    "admin": "Everything, including the gateway's users, clients and keys",
}


class Role(StrEnum):
    admin = "admin"
    data_steward = "data_steward"
    analyst = "analyst"
    support = "support"
    storefront = "storefront"
    pos = "pos"
    logistics = "logistics"
    sync = "sync"


PERSON_ROLES = frozenset({Role.admin, Role.data_steward, Role.analyst, Role.support})
CLIENT_ROLES = frozenset({Role.storefront, Role.pos, Role.logistics, Role.sync})

ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.admin: ("admin",),
    Role.data_steward: (
        "customers:read",
        "customers:write",
        "customers:pii",
        "products:read",
        "products:write",
        "inventory:write",
        "sync:read",
        "sync:admin",
        "privacy:admin",
    ),
    Role.analyst: ("customers:read", "products:read", "sync:read", "analytics:read", "analytics:write"),
    Role.support: ("customers:read", "customers:write", "customers:pii", "products:read", "sync:read"),
    Role.storefront: (
        "customers:read",
        "customers:write",
        "orders:write",
        "products:read",
        "events:write",
        "sync:read",
    ),
    Role.pos: ("customers:read", "orders:write", "products:read", "inventory:write"),
    Role.logistics: ("products:read", "inventory:write", "sync:read", "shipments:write"),
    # sync-service's own client: a full resync reads the catalogue, prices and stock, nothing else.
    Role.sync: ("products:read",),
}


def scopes_for(roles: list[str] | tuple[str, ...]) -> list[str]:
    """The union of the scopes of `roles`, sorted."""
    granted: set[str] = set()
    for role in roles:
        granted.update(ROLE_SCOPES[Role(role)])
    return sorted(granted)


def narrow(granted: list[str], requested: str | None) -> list[str]:
    """The requested scopes if all are granted (`admin` grants every scope); all granted if none asked.

    Raises ValueError naming the scopes that are not granted.
    """
    if not requested:
        return granted
    wanted = sorted(set(requested.split()))
    if "admin" in granted:
        unknown = [scope for scope in wanted if scope not in SCOPES]
    else:
        unknown = [scope for scope in wanted if scope not in granted]
    if unknown:
        raise ValueError(" ".join(unknown))
    return wanted
