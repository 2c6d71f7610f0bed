"""`ecom events`: topics and their ends, consumer-group lag, outbox backlogs and dead letters."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ecom_cli.options import VarDirOption
from ecom_cli.stack import DEFAULT_VAR_DIR, STACK, broker_data_dir, sqlite_url

if TYPE_CHECKING:
    from servicekit.events.status import BrokerStatus, OutboxStatus

BootstrapOption = Annotated[
    str,
    typer.Option(
        "--bootstrap-servers",
        envvar="KAFKA_BOOTSTRAP_SERVERS",
        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092).",
    ),
]


def service_database_urls(var_dir: Path) -> dict[str, str]:
    """Each stack service's database: its `<PREFIX>DATABASE_URL` if set, else its SQLite file in var/."""
    urls = {}
    for service in STACK:
        url = os.environ.get(service.database_url_var)
        if url is None:
            path = var_dir.resolve() / f"{service.name}.db"
            if not path.exists():
                continue
            url = sqlite_url(var_dir, service.name)
        urls[service.name] = url
    return urls


async def gather_status(
    bootstrap_servers: str, database_urls: dict[str, str], timeout: float, groups: list[str]
) -> tuple[BrokerStatus, dict[str, OutboxStatus | str | None]]:
    from servicekit.events.status import broker_status, outbox_status

    status = await broker_status(bootstrap_servers, timeout=timeout, extra_groups=groups)
    outboxes: dict[str, OutboxStatus | str | None] = {}
    for name, url in database_urls.items():
        try:
            outboxes[name] = await outbox_status(url)
        except Exception as exc:
            outboxes[name] = f"unreadable: {exc}"
    return status, outboxes


def as_json(status: BrokerStatus, outboxes: dict[str, OutboxStatus | str | None]) -> dict[str, Any]:
    from servicekit.events.replay import REPLAY_GROUP_PREFIX

    return {
        "topics": {
            topic: {"end": sum(p.end for p in parts), "partitions": {str(p.partition): p.end for p in parts}}
            for topic, parts in status.topics().items()
            if not topic.endswith(".dlq")
        },
        "consumer_groups": {
            group: {
                "lag": sum(g.lag for g in status.groups if g.group == group),
                "partitions": [
                    {
                        "topic": g.topic,
                        "partition": g.partition,
                        "committed": g.committed,
                        "end": g.end,
                        "lag": g.lag,
                    }
                    for g in status.groups
                    if g.group == group
                ],
            }
            for group in status.group_names
            if not group.startswith(REPLAY_GROUP_PREFIX)
        },
        "outbox": {
            name: (
                {"error": outbox}
                if isinstance(outbox, str)
                else None
                if outbox is None
                else {
                    "backlog": outbox.backlog,
                    "failing": outbox.failing,
                    "oldest": outbox.oldest.isoformat() if outbox.oldest else None,
                }
            )
            for name, outbox in outboxes.items()
        },
        "dead_letters": {
            topic: {"events": sum(p.records for p in parts), "not_replayed": status.not_replayed(topic)}
            for topic, parts in status.dead_letter_topics().items()
        },
    }


def _age(oldest: datetime | None) -> str:
    if oldest is None:
        return "-"
    seconds = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}min"


def render(console: Console, report: dict[str, Any]) -> None:
    topics = Table(title="Topics", caption="end = high watermark, summed over partitions")
    for column, justify in (("topic", "left"), ("end", "right"), ("by partition", "left")):
        topics.add_column(column, justify=justify)  # type: ignore[arg-type]
    for topic, info in report["topics"].items():
        by_partition = "  ".join(f"{p}:{end}" for p, end in info["partitions"].items())
        topics.add_row(topic, str(info["end"]), by_partition)
    console.print(topics)

    groups = Table(title="Consumer groups", caption="lag = end - committed offset")
    for column, justify in (("group", "left"), ("topic", "left"), ("committed", "right"), ("lag", "right")):
        groups.add_column(column, justify=justify)  # type: ignore[arg-type]
    for group, info in report["consumer_groups"].items():
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for partition in info["partitions"]:
            by_topic.setdefault(partition["topic"], []).append(partition)
        if not by_topic:
            groups.add_row(group, "(nothing committed yet)", "", "")
        for topic, partitions in by_topic.items():
            committed = sum(p["committed"] for p in partitions)
            lag = sum(p["lag"] for p in partitions)
            groups.add_row(group, topic, str(committed), f"[bold red]{lag}[/]" if lag else "0")
    console.print(groups)

    outbox = Table(title="Outbox", caption="rows committed but not yet published, per service database")
    for column, justify in (
        ("service", "left"),
        ("backlog", "right"),
        ("failing", "right"),
        ("oldest", "right"),
    ):
        outbox.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, info in report["outbox"].items():
        if info is None:
            outbox.add_row(name, "no outbox", "", "")
        elif "error" in info:
            outbox.add_row(name, f"[red]{info['error']}[/]", "", "")
        else:
            oldest = datetime.fromisoformat(info["oldest"]) if info["oldest"] else None
            outbox.add_row(name, str(info["backlog"]), str(info["failing"]), _age(oldest))
    console.print(outbox)

    dead = Table(title="Dead letters", caption="replay with: ecom dlq replay <topic>")
    for column, justify in (("dlq topic", "left"), ("events", "right"), ("not replayed", "right")):
        dead.add_column(column, justify=justify)  # type: ignore[arg-type]
    for topic, info in report["dead_letters"].items():
        pending = info["not_replayed"]
        dead.add_row(topic, str(info["events"]), f"[bold red]{pending}[/]" if pending else "0")
    console.print(dead)


def events(
    bootstrap_servers: BootstrapOption = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
    as_json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the broker.")
    ] = 15.0,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="A consumer group to show even if the broker does not list it."),
    ] = None,
) -> None:
    """Topics with their end offsets, each consumer group's lag, each service's outbox backlog, the DLQs.

    Service databases: <PREFIX>DATABASE_URL when set (CUSTOMER_DATABASE_URL, ...), else VAR_DIR/<service>.db.
    Consumer groups: those the broker lists, those the dev broker keeps under VAR_DIR/broker, and --group.
    """
    from servicekit.events.status import groups_in_broker_data

    console = Console(highlight=False)
    try:
        groups = [*(group or []), *groups_in_broker_data(broker_data_dir(var_dir))]
        status, outboxes = asyncio.run(
            gather_status(bootstrap_servers, service_database_urls(var_dir), timeout, groups)
        )
    except Exception as exc:
        console.print(f"[red]error:[/red] cannot read the broker at {bootstrap_servers}: {exc}")
        raise typer.Exit(1) from None
    report = as_json(status, outboxes)
    if as_json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        render(console, report)
