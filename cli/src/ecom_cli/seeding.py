"""Seeding: modules in `ecom_cli/seeders/` each expose `SEEDER`; `ecom seed` runs them in order.

A seeder writes through its service's own code straight into that service's database (the outbox
included, so the service publishes the events when it runs). `ecom dev` runs the seeders whose
database is still empty, so a fresh install starts with data.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress

import ecom_cli.seeders


@dataclass(frozen=True)
class SeedContext:
    database_url: str
    """The URL of the seeder's own service database."""
    scale: float
    """1.0 is the default size (small enough for `make run`); 10 makes ten times as much."""
    console: Console
    progress: Progress
    shared: dict[str, Any] = field(default_factory=dict)
    """What seeders of one run hand to the later ones (the catalog's prices, the orders' ids): the same
    dict for every seeder of a run."""


@dataclass(frozen=True)
class Seeder:
    name: str
    service: str
    """The stack service whose database this seeder writes (see ecom_cli.stack.STACK)."""
    is_empty: Callable[[str], Awaitable[bool]]
    """Whether the service's database (by URL) holds nothing this seeder would create."""
    seed: Callable[[SeedContext], Awaitable[str]]
    """Create the data; returns a one-line summary."""
    order: int = 100


def discover_seeders() -> list[Seeder]:
    """Every `SEEDER` in the modules of `ecom_cli.seeders`, by order then name."""
    seeders: list[Seeder] = []
    for module_info in pkgutil.iter_modules(ecom_cli.seeders.__path__):
        module = importlib.import_module(f"ecom_cli.seeders.{module_info.name}")
        seeder = getattr(module, "SEEDER", None)
        if isinstance(seeder, Seeder):
            seeders.append(seeder)
    return sorted(seeders, key=lambda s: (s.order, s.name))
