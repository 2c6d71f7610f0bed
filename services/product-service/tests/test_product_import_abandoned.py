"""Import jobs left behind by a process that stopped: a queued or running job without a sign of life for
STALE_AFTER is failed when jobs are read (its upload was not kept, so it cannot resume), a live job keeps
running, a job failed meanwhile stops writing, and a job stopped by a shutdown is failed with the rows it
got to."""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from inventory_support import Running
from product_support import unique
from sqlalchemy import func, select, update
from sqlmodel import col

from product_service.catalog.models import Variant
from product_service.common import utc_now
from product_service.transfer import service
from product_service.transfer.models import ImportJob

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _job(app: Running, *, status: str, last_sign_ago: timedelta, processed: int = 0) -> str:
    """A job row as a process would have left it, its last sign of life `last_sign_ago`."""
    job = await service.create_job(app.database, fmt="ndjson", size=10, actor="test")
    async with app.database.session() as session:
        await session.execute(
            update(ImportJob)
            .where(col(ImportJob.id) == job.id)
            .values(status=status, rows_processed=processed, heartbeat_at=utc_now() - last_sign_ago)
        )
    return job.id


async def _read(app: Running, job_id: str) -> dict[str, Any]:
    response = await app.client.get(f"/v1/imports/{job_id}", headers=app.reader())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_running_job_without_a_sign_of_life_is_failed_when_read(running: Running) -> None:
    stale = service.STALE_AFTER + timedelta(seconds=5)
    job_id = await _job(running, status="running", last_sign_ago=stale, processed=2000)
    job = await _read(running, job_id)
    assert job["status"] == "failed"
    assert job["finished_at"] is not None
    assert "The service stopped while this job ran" in job["error"]
    assert "The first 2000 rows were processed and stay imported" in job["error"]
    # Once failed it stays failed, with the same report.
    assert await _read(running, job_id) == job


async def test_a_queued_job_left_behind_is_failed_in_the_jobs_list(running: Running) -> None:
    job_id = await _job(running, status="queued", last_sign_ago=service.STALE_AFTER * 2)
    response = await running.client.get("/v1/imports", params={"limit": 500}, headers=running.reader())
    assert response.status_code == 200, response.text
    (listed,) = [job for job in response.json()["items"] if job["id"] == job_id]
    assert listed["status"] == "failed"
    assert "Nothing was imported; upload the file again." in listed["error"]


async def test_a_job_with_a_recent_sign_of_life_keeps_running(running: Running) -> None:
    job_id = await _job(running, status="running", last_sign_ago=service.STALE_AFTER - timedelta(seconds=30))
    job = await _read(running, job_id)
    assert (job["status"], job["error"], job["finished_at"]) == ("running", None, None)


async def test_readers_racing_fail_an_abandoned_job_once(running: Running) -> None:
    """Concurrent readers: each failing is a compare-and-set, so the job is failed by exactly one of them
    and every reader sees it failed."""
    job_id = await _job(running, status="running", last_sign_ago=service.STALE_AFTER * 3, processed=7)

    async def fail() -> int:
        async with running.database.session() as session:
            return await service.fail_abandoned(session)

    counts = await asyncio.gather(*(fail() for _ in range(6)), *(_read(running, job_id) for _ in range(4)))
    failed = [count for count in counts if isinstance(count, int)]
    assert sum(failed) <= 1  # other stale jobs of earlier tests are already failed
    assert all(job["status"] == "failed" for job in counts if isinstance(job, dict))
    assert (await _read(running, job_id))["status"] == "failed"


async def test_a_batch_of_a_job_failed_meanwhile_writes_nothing(running: Running) -> None:
    """The job was failed as abandoned (its heartbeat was late): its next batch rolls back and the job
    stops, instead of importing behind a report that says it stopped."""
    job_id = await _job(running, status="failed", last_sign_ago=timedelta(0))
    sku = unique("AB-")
    with pytest.raises(service.JobAbandoned):
        await service.process_batch(
            running.database, job_id, [(1, {"sku": sku, "title": "Late"})], service.JobContext()
        )
    async with running.database.session() as session:
        assert await session.scalar(select(func.count()).where(col(Variant.sku) == sku)) == 0
        job = await session.get(ImportJob, job_id)
        assert job is not None
        assert (job.status, job.rows_processed) == ("failed", 0)


async def test_a_job_stopped_by_a_shutdown_is_failed_with_the_rows_it_got_to(running: Running) -> None:
    job = await service.create_job(running.database, fmt="ndjson", size=0, actor="test")
    prefix = unique("SD-")
    lines = [
        json.dumps({"sku": f"{prefix}-{n:06d}", "title": f"Item {n}"}) for n in range(30 * service.BATCH_SIZE)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        upload = Path(tmp) / "upload.ndjson"
        upload.write_text("\n".join(lines) + "\n")
        task = asyncio.create_task(service.run_import(running.database, job.id, upload, "ndjson"))
        for _ in range(600):  # until the first batch is counted
            async with running.database.session() as session:
                row = await session.get(ImportJob, job.id)
                if row is not None and row.rows_processed > 0:
                    break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not upload.exists()  # the upload is deleted either way
    stopped = await _read(running, job.id)
    assert stopped["status"] == "failed"
    assert stopped["error"].startswith("The service shut down while this job ran.")
    processed = stopped["rows_processed"]
    assert 0 < processed < 30 * service.BATCH_SIZE
    assert f"The first {processed} rows were processed" in stopped["error"]
    async with running.database.session() as session:
        imported = await session.scalar(select(func.count()).where(col(Variant.sku).startswith(prefix)))
    assert imported == processed  # every counted row is in, nothing past them


async def test_a_batch_racing_the_abandonment_of_its_job_either_counts_or_writes_nothing(
    running: Running,
) -> None:
    """A job whose heartbeat is late commits a batch while a reader fails it as abandoned: one of the two
    compare-and-sets wins. Either the batch is in (its rows and the job's count, the job still running
    with a fresh heartbeat) or the job is failed and the batch wrote nothing; never a failed job whose
    rows went in after its report, nor a running job without a sign of life."""
    outcomes: set[str] = set()
    for _ in range(12):
        job_id = await _job(running, status="running", last_sign_ago=service.STALE_AFTER * 2)
        sku = unique("RC-")

        async def batch(job_id: str = job_id, sku: str = sku) -> str:
            try:
                await service.process_batch(
                    running.database, job_id, [(1, {"sku": sku, "title": "Racing"})], service.JobContext()
                )
            except service.JobAbandoned:
                return "abandoned"
            return "counted"

        async def abandon() -> int:
            async with running.database.session() as session:
                return await service.fail_abandoned(session)

        counted, _ = await asyncio.gather(batch(), abandon())
        async with running.database.session() as session:
            job = await session.get(ImportJob, job_id)
            imported = await session.scalar(select(func.count()).where(col(Variant.sku) == sku))
        assert job is not None
        if counted == "counted":
            assert (job.status, job.rows_processed, imported) == ("running", 1, 1)
            assert job.heartbeat_at is not None
            assert job.heartbeat_at > utc_now() - service.STALE_AFTER
        else:
            assert (job.status, job.rows_processed, imported) == ("failed", 0, 0)
            assert job.error is not None
            assert "Nothing was imported" in job.error
        outcomes.add(counted)
    assert outcomes  # at least one round ran; which side wins is the scheduler's choice
