"""Product search index: FTS5 on SQLite, tsvector with a GIN index on PostgreSQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 17:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE product_search (product_id VARCHAR(36) PRIMARY KEY, document TSVECTOR NOT NULL)"
        )
        op.execute("CREATE INDEX ix_product_search_document ON product_search USING GIN (document)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE product_search USING fts5(product_id UNINDEXED, document, "
            "tokenize = 'unicode61 remove_diacritics 2')"
        )


def downgrade() -> None:
    op.execute("DROP TABLE product_search")
