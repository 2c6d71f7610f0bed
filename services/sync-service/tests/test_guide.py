"""docs/sync.md tells the truth about what sync-service does."""

from pathlib import Path

from sync_service.shipments.statuses import CARRIERS, GENERIC, STATUSES

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "sync.md"


def test_the_guide_shows_the_status_mapping_table() -> None:
    guide = GUIDE.read_text(encoding="utf-8")

    def codes(table: dict[str, str], status: str) -> str:
        return ", ".join(f"`{code}`" for code, target in table.items() if target == status) or "—"

    for status in STATUSES:
        carriers = " | ".join(codes(dict(CARRIERS[carrier]), status) for carrier in CARRIERS)
        row = f"| `{status}` | {carriers} | {codes(dict(GENERIC), status)} |"
        assert row in guide, row
