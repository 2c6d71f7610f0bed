"""What customer-service's domain code needs besides a session: keys and tuning from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from customer_service.config import Settings
from customer_service.crypto import KeyRing
from customer_service.duplicates.linkage import DEFAULT_MODEL, Model


@dataclass
class LinkageModel:
    """The linkage model in use (the default until one is trained), refreshed from the database."""

    model: Model = field(default_factory=lambda: DEFAULT_MODEL)
    model_id: str | None = None
    checked_at: float = 0.0


@dataclass(frozen=True)
class CustomerContext:
    keyring: KeyRing
    default_region: str
    duplicate_threshold: float
    auto_merge_threshold: float
    auto_merge_enabled: bool
    import_chunk_rows: int = 5000
    import_stale_after: timedelta = timedelta(seconds=120)
    import_validation_processes: int = 2
    import_scoring_process: bool = True
    linkage_min_training_profiles: int = 1000
    linkage: LinkageModel = field(default_factory=LinkageModel)

    @classmethod
    def from_settings(cls, settings: Settings) -> CustomerContext:
        return cls(
            keyring=KeyRing(
                settings.master_keys.get_secret_value(),
                settings.blind_index_key.get_secret_value(),
                settings.previous_blind_index_keys.get_secret_value(),
            ),
            default_region=settings.default_phone_region.upper(),
            duplicate_threshold=settings.duplicate_threshold,
            auto_merge_threshold=settings.auto_merge_threshold,
            auto_merge_enabled=settings.auto_merge_enabled,
            import_chunk_rows=settings.import_chunk_rows,
            import_stale_after=timedelta(seconds=settings.import_stale_after_seconds),
            import_validation_processes=settings.import_validation_processes,
            import_scoring_process=settings.import_scoring_process,
            linkage_min_training_profiles=settings.linkage_min_training_profiles,
        )


async def get_context(request: Request) -> CustomerContext:
    context: CustomerContext = request.app.state.customer_context
    return context


ContextDep = Annotated[CustomerContext, Depends(get_context)]
