"""The Export page with the export quota: asking again for a snapshot already exported in a format shows the
existing export's download instead of writing it again, and an export whose files were pruned says so and why."""

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.e2e.conftest import log_in

# one_mode: page rendering: the same on either database
pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.one_mode]


def test_a_repeat_links_the_existing_export_and_a_pruned_one_says_why(page, platform_imagettes, make_user):
    from annotations.services.labels import label_decide
    from training.services.export import export_create
    from training.services.export_retention import exports_prune
    from training.services.snapshots import snapshot_create

    for position, item in enumerate(platform_imagettes[:20]):
        label_decide(imagette=item, label_mask=1 << (position % 10), source="imported")
    first, second = snapshot_create(seed=1), snapshot_create(seed=2)
    export_create(fmt="csv", snapshot_id=first.pk)  # export #1, pruned below
    stac = export_create(fmt="stac", snapshot_id=first.pk)  # export #2
    export_create(fmt="csv", snapshot_id=second.pk)  # export #3
    exports_prune(fmt="csv", keep=1)

    make_user(Role.ADMIN, "boss")
    log_in(page, "boss")
    page.goto("/export/")
    expect(page.locator("#live")).to_have_text("live")
    pruned = page.locator("#export-1 span[title]")
    expect(pruned).to_have_text("files pruned")
    expect(pruned).to_have_attribute("title", "its files were removed to keep the latest 1 csv export "
                                              "(CRYOLABEL_EXPORTS_KEEP); export its snapshot again to rebuild it")
    expect(page.locator("#export-2 .download-link")).to_be_visible()

    page.check("input[name=format][value=stac]")
    page.select_option("#export-snapshot", str(first.pk))
    page.click("#export-button")
    expect(page.locator("#export-flash")).to_contain_text("Not written again: snapshot #1 is already exported as stac")
    expect(page.locator("#export-existing")).to_have_attribute("href", f"/api/v1/exports/{stac.pk}/download/")
    expect(page.locator("#export-existing")).to_have_text("Download export #2 (zip)")
    expect(page.locator("#export-button")).to_be_enabled()
    expect(page.locator("#export-job")).to_be_hidden()  # no job was started
