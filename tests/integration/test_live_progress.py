"""A real Celery worker consumes a real job; its progress reaches a real websocket client on a real
Daphne server. Runs in both modes: PostgreSQL + Redis, and SQLite + the filesystem broker."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest
import websockets

from accounts.roles import Role
from jobs.models import Job
from tests.conftest import run_async, start_worker

pytestmark = pytest.mark.services


async def follow_job(ws_url: str, cookie: str, job_id: int | None, timeout: float = 60) -> list[dict]:
    """Every state of `job_id` (None: the first job the socket reports) it streams, until it finishes."""
    seen: list[dict] = []
    async with websockets.connect(f"{ws_url}/ws/jobs/", additional_headers={"Cookie": cookie},
                                  origin=ws_url.replace("ws://", "http://")) as ws:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
            jobs = message["jobs"] if message["type"] == "snapshot" else [message["job"]]
            for job in jobs:
                if job_id is None and message["type"] == "job":
                    job_id = job["id"]
                if job["id"] == job_id:
                    seen.append(job)
                    if job["state"] in ("succeeded", "failed", "cancelled"):
                        return seen
    raise AssertionError(f"job {job_id} did not finish in {timeout} s; saw {seen}")


def cookie_header(client) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def test_worker_progress_reaches_the_websocket(platform, make_user):
    make_user(Role.ADMIN, "boss")
    browser = platform.login("boss")

    async def run():
        # The socket is open before the job exists: everything it learns comes live.
        follower = asyncio.create_task(follow_job(platform.ws_url, cookie_header(browser), job_id=None))
        await asyncio.sleep(1.0)
        response = await asyncio.to_thread(
            browser.post, "/api/v1/jobs/", json={"kind": "worker_check", "params": {"steps": 5, "step_seconds": 0.6}}
        )
        assert response.status_code == 201, response.text
        seen = await follower
        assert seen[0]["id"] == response.json()["id"]
        return seen

    seen = run_async(run())
    states = [job["state"] for job in seen]
    progresses = [job["progress"] for job in seen]
    # The socket sends each change it reads; a worker quick to start may already run the job at the first read.
    assert states[0] in ("queued", "running") and states[-1] == "succeeded"
    assert "running" in states
    intermediate = {p for p in progresses if 0 < p < 1}
    assert len(intermediate) >= 2, f"expected live progress steps, saw {progresses}"
    assert progresses == sorted(progresses)
    assert seen[-1]["message"] == "worker answered 5 steps"
    job = Job.objects.get(pk=seen[0]["id"])
    assert job.state == Job.State.SUCCEEDED and job.worker == "main@cryolabel-tests"


def test_a_failing_job_ends_failed_with_its_error_on_the_socket(platform, make_user):
    make_user(Role.ADMIN, "boss")
    browser = platform.login("boss")
    response = browser.post(
        "/api/v1/jobs/", json={"kind": "worker_check", "params": {"steps": 3, "step_seconds": 0.1, "fail_at_step": 2}}
    )
    assert response.status_code == 201
    seen = run_async(follow_job(platform.ws_url, cookie_header(browser), response.json()["id"]))
    assert seen[-1]["state"] == "failed"
    assert seen[-1]["error"] == "RuntimeError: worker check asked to fail at step 2"


def test_annotator_socket_does_not_stream_others_jobs(platform, make_user):
    make_user(Role.ADMIN, "boss")
    make_user(Role.ANNOTATOR, "crowd")
    boss, crowd = platform.login("boss"), platform.login("crowd")

    async def crowd_sees():
        headers = {"Cookie": cookie_header(crowd)}
        async with websockets.connect(f"{platform.ws_url}/ws/jobs/", additional_headers=headers,
                                      origin=platform.base_url) as ws:
            snapshot = json.loads(await ws.recv())
            await asyncio.to_thread(boss.post, "/api/v1/jobs/", json={"kind": "worker_check",
                                                                       "params": {"steps": 1, "step_seconds": 0}})
            extra = []
            try:
                while True:
                    extra.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=3)))
            except TimeoutError:
                pass
            return snapshot, extra

    snapshot, extra = run_async(crowd_sees())
    assert snapshot == {"type": "snapshot", "jobs": []} and extra == []


def test_anonymous_socket_is_refused(platform):
    async def connect():
        async with websockets.connect(f"{platform.ws_url}/ws/jobs/", origin=platform.base_url) as ws:
            await ws.recv()

    with pytest.raises(websockets.ConnectionClosed) as closed:
        run_async(connect())
    assert closed.value.rcvd.code == 4401


def test_a_restarted_worker_fails_the_job_its_death_left_running(platform, make_user):
    make_user(Role.ADMIN, "boss")
    browser = platform.login("boss")
    doomed = start_worker(platform.log_dir, "doomed@cryolabel-tests", queues="doomed")
    try:
        from eoplatform.celery import app

        # A job on the doomed worker's own queue, so the main worker never takes it.
        job = Job.objects.create(kind="worker_check", queue="doomed", celery_task_id="doomed-1",
                                 params={"steps": 100, "step_seconds": 0.3, "fail_at_step": None})
        app.send_task("jobs.worker_check", args=[job.pk], queue="doomed", task_id=job.celery_task_id)
        deadline = time.monotonic() + 30
        while Job.objects.get(pk=job.pk).progress <= 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert Job.objects.get(pk=job.pk).state == Job.State.RUNNING
        doomed.stop(signal.SIGKILL)
        assert Job.objects.get(pk=job.pk).state == Job.State.RUNNING  # nobody knows yet
        reborn = start_worker(platform.log_dir, "doomed@cryolabel-tests", queues="doomed")
        platform.processes.append(reborn)
        deadline = time.monotonic() + 20
        while Job.objects.get(pk=job.pk).state == Job.State.RUNNING and time.monotonic() < deadline:
            time.sleep(0.2)
        job.refresh_from_db()
        assert job.state == Job.State.FAILED and "worker lost" in job.error
        assert browser.get(f"/api/v1/jobs/{job.pk}/").json()["state"] == "failed"
    finally:
        doomed.stop()
