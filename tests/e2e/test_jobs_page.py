"""A person logs in, opens the Jobs page, starts a worker check and watches it finish live."""

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]


def test_admin_watches_a_job_progress_live(page, make_user):
    make_user(Role.ADMIN, "boss")
    page.goto("/jobs/")
    assert "/accounts/login/" in page.url  # anonymous: sent to the login page
    log_in(page, "boss")
    page.goto("/jobs/")
    expect(page.locator("#live")).to_have_text("live")
    page.click("[data-start-kind=worker_check]")
    row = page.locator("#jobs-body tr").first
    expect(row.locator(".badge")).to_have_text("running", timeout=20_000)
    widths = set()
    for _ in range(40):
        widths.add(row.locator(".progress").get_attribute("aria-valuenow"))
        if row.locator(".badge").inner_text() == "succeeded":
            break
        page.wait_for_timeout(150)
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=20_000)
    expect(row.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    assert len(widths - {"0", "100"}) >= 1, f"no intermediate progress seen: {widths}"
    expect(row.locator(".msg")).to_contain_text("worker answered 5 steps")


def test_annotator_cannot_start_jobs_and_logs_out(page, make_user):
    make_user(Role.ANNOTATOR, "crowd")
    log_in(page, "crowd")
    page.goto("/jobs/")
    expect(page.locator("#live")).to_have_text("live")
    assert page.locator("[data-start-kind]").count() == 0
    expect(page.locator(".role")).to_have_text("annotator")
    page.click("text=Log out")
    page.goto("/jobs/")
    assert "/accounts/login/" in page.url


def test_an_ingest_that_refused_files_does_not_look_green(page, make_user, platform):
    """Issue 11 §7: every file refused -> failed; some refused -> 'succeeded · N refused', in amber. The jobs run
    for real (the command line's way, in this process) on a batch made of bad and good files."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from annotations.tasks import ingest_job
    from demo.synthetic import write_geotiff_imagette
    from jobs.models import Job
    from jobs.runner import run_job

    bad = Path(tempfile.mkdtemp(prefix="ingest-bad-"))
    (bad / "a.tif").write_text("not a tiff")
    (bad / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    all_refused = Job.objects.create(kind="ingest", queue="cli", params={"paths": [str(bad)]})
    assert run_job(all_refused.pk, ingest_job) == Job.State.FAILED
    write_geotiff_imagette(bad / "c.tif", np.random.default_rng(5).normal(-12, 2, (32, 32)))
    some_refused = Job.objects.create(kind="ingest", queue="cli", params={"paths": [str(bad)]})
    assert run_job(some_refused.pk, ingest_job) == Job.State.SUCCEEDED

    make_user(Role.ADMIN, "boss")
    log_in(page, "boss")
    page.goto("/jobs/")
    failed = page.locator(f"#job-{all_refused.pk} .badge")
    expect(failed).to_have_text("failed")
    expect(page.locator(f"#job-{all_refused.pk} .msg")).to_contain_text("all 2 file(s) refused, nothing ingested")
    warned = page.locator(f"#job-{some_refused.pk} .badge")
    expect(warned).to_have_text("succeeded · 2 refused")
    expect(warned).to_have_class("badge succeeded warned")
    assert warned.evaluate("e => getComputedStyle(e).backgroundColor") != failed.evaluate(
        "e => getComputedStyle(e).backgroundColor")
