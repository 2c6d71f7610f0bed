"""Tables of sync-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from servicekit.events import models as platform_models

__all__ = ["platform_models"]
