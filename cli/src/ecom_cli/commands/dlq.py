"""`ecom dlq replay`: publish a dead-letter topic's events back to the topic they failed on."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from rich.console import Console

from servicekit.broker import DURABLE_FETCH_MAX_WAIT_MS

app = typer.Typer(help="Dead-letter topics: replay events that consumers gave up on.", no_args_is_help=True)


@app.command()
def replay(
    topic: Annotated[str, typer.Argument(help="The dead-letter topic, e.g. ecom.orders.v1.dlq")],
    bootstrap_servers: Annotated[
        str,
        typer.Option(
            "--bootstrap-servers",
            envvar="KAFKA_BOOTSTRAP_SERVERS",
            help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092).",
        ),
    ] = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    limit: Annotated[int | None, typer.Option(min=1, help="Replay at most this many events.")] = None,
    fetch_max_wait_ms: Annotated[
        int,
        typer.Option(
            "--fetch-max-wait-ms",
            envvar="KAFKA_FETCH_MAX_WAIT_MS",
            min=1,
            help="How long a fetch may wait on the broker. The default suits the durable `ecom dev` broker, "
            "whose fetches come back empty when this is short.",
        ),
    ] = DURABLE_FETCH_MAX_WAIT_MS,
) -> None:
    """Replay every event of TOPIC not replayed before; consumers' inboxes make repeats harmless."""
    from servicekit.events.replay import ReplayError, replay_dead_letters

    console = Console(highlight=False)
    try:
        report = asyncio.run(
            replay_dead_letters(bootstrap_servers, topic, limit=limit, fetch_max_wait_ms=fetch_max_wait_ms)
        )
    except ReplayError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:
        console.print(f"[red]error:[/red] cannot reach the broker at {bootstrap_servers}: {exc}")
        raise typer.Exit(1) from None
    if not report.replayed:
        console.print(f"{topic}: nothing to replay")
        return
    for target, count in sorted(report.by_target.items()):
        console.print(f"{topic}: replayed {count} event(s) to {target}")
