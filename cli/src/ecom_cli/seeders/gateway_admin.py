"""The demo admin: created on first start with a generated password, printed by `ecom dev`."""

from __future__ import annotations

from ecom_cli.seeding import SeedContext, Seeder

DEMO_ADMIN_EMAIL = "admin@ecom.local"


async def _is_empty(database_url: str) -> bool:
    from sqlalchemy import func, select

    from gateway.models import User
    from servicekit.db import Database

    database = Database(database_url)
    try:
        async with database.session() as session:
            count = await session.scalar(select(func.count()).select_from(User))
    finally:
        await database.dispose()
    return not count


async def _seed(context: SeedContext) -> str:
    from gateway.keys import ensure_signing_key
    from gateway.operations import gateway_session, record
    from gateway.users import create_user, generate_password

    password = generate_password()
    async with gateway_session(context.database_url) as (session, ops):
        user = await create_user(session, email=DEMO_ADMIN_EMAIL, password=password, roles=["admin"])
        await record(session, "user.create", target=user.id, roles=user.roles, seeded=True)
        await ensure_signing_key(session, ops.box)
    return f"demo admin {DEMO_ADMIN_EMAIL} with password {password} (generated; change it or create your own)"


SEEDER = Seeder(name="admin", service="gateway", is_empty=_is_empty, seed=_seed, order=10)
