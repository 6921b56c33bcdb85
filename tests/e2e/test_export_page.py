"""The Export page: an admin picks a format, presses Export, follows the job live to its download link,
downloads the zip, and unfolds the dataset card of the export in the list; with nothing curated the page says
why nothing was exported; roles without `export` do not get the page."""

import io
import zipfile

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]


def _label(imagettes) -> None:
    from annotations.services.labels import label_decide

    for position, item in enumerate(imagettes):
        mask = 1 << (position % 10) | (1 << ((position + 2) % 10) if position % 6 == 0 else 0)
        label_decide(imagette=item, label_mask=mask, source="imported")


def _open(page, username: str) -> None:
    log_in(page, username)
    page.goto("/export/")
    expect(page.locator("#live")).to_have_text("live")


def test_export_from_the_page_to_the_download(page, platform_imagettes, make_user, tmp_path):
    _label(platform_imagettes)
    make_user(Role.ADMIN, "boss")
    _open(page, "boss")
    expect(page.locator("#exports-table tbody")).to_contain_text("No export yet")

    page.check("input[name=format][value=csv]")
    page.click("#export-button")
    job = page.locator("#export-job")
    expect(job).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(page.locator("#export-job-pct")).to_have_text("100%")
    expect(page.locator("#export-job-message")).to_contain_text("60 imagettes")
    link = page.locator("#export-download")
    expect(link).to_contain_text("Download export #1")

    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "cryolabel-export-1-csv.zip"
    target = tmp_path / "export.zip"
    download.save_as(target)
    archive = zipfile.ZipFile(io.BytesIO(target.read_bytes()))
    names = archive.namelist()
    assert "cryolabel-export-1-csv/manifest.csv" in names and sum(n.endswith(".tif") for n in names) == 60

    row = page.locator("#export-1")
    expect(row).to_contain_text("CSV")
    expect(row).to_contain_text("60")
    row.locator("[data-card]").click()
    card = page.locator("#export-card-1")
    expect(card).to_contain_text("of which multi-label")
    # 60 imagettes, 6 per class, and every 6th also labelled with the class two further on.
    icebergs_total = card.locator("tr[data-slug=icebergs] td.num").nth(3)
    expect(icebergs_total).to_have_text("8")
    expect(page.locator("#export-snapshot option[data-snapshot]")).to_have_count(1)
    page.screenshot(path=str(tmp_path / "export-page.png"), full_page=True)


def test_scenes_exported_as_chips_from_the_page(page, platform, make_user, tmp_path):
    """Scenes with polygons: the page's Scenes choice offers their formats; chips are written by the job, the zip
    downloads, and the export's card counts its scenes, polygons and chips."""
    from shapely.geometry import shape

    from annotations.services.ingest import ingest_paths
    from annotations.services.scene_polygons import polygon_create
    from demo.synthetic import write_demo_scenes

    report = ingest_paths(write_demo_scenes(tmp_path / "ew", 2, seed=6, size=200))
    assert not report.errors and len(report.scenes) == 2
    from annotations.models import Scene

    for scene in Scene.objects.all():
        c = shape(scene.footprint).centroid
        square = [[c.x - 0.3, c.y - 0.1], [c.x + 0.3, c.y - 0.1], [c.x + 0.3, c.y + 0.1], [c.x - 0.3, c.y + 0.1]]
        polygon_create(scene=scene, geometry={"type": "Polygon", "coordinates": [[*square, square[0]]]},
                       label="ice", sic=60)
    make_user(Role.ADMIN, "chief")
    _open(page, "chief")
    page.check("input[name=kind][value=scenes]")
    expect(page.locator("input[name=format][value=imagefolder]")).to_be_hidden()
    page.check("input[name=format-scenes][value=chips]")
    page.click("#export-button")
    expect(page.locator("#export-job")).to_have_attribute("data-state", "succeeded", timeout=60_000)
    with page.expect_download() as info:
        page.locator("#export-download").click()
    target = tmp_path / "scenes.zip"
    info.value.save_as(target)
    names = zipfile.ZipFile(target).namelist()
    assert any(n.endswith("_sic.tif") for n in names) and any(n.endswith("_class.tif") for n in names)
    row = page.locator("#export-1")
    expect(row).to_contain_text("Scenes · Chips")
    row.locator("[data-card]").click()
    card = page.locator("#export-card-1")
    expect(card.locator("tr", has_text="ice polygons")).to_contain_text("2")
    expect(card.locator("tr", has_text="chips")).to_be_visible()


def test_nothing_curated_shows_why(page, platform_imagettes, make_user):
    make_user(Role.ADMIN, "boss")
    _open(page, "boss")
    page.click("#export-button")
    expect(page.locator("#export-job")).to_have_attribute("data-state", "failed", timeout=60_000)
    expect(page.locator("#export-job-error")).to_contain_text("nothing to export")
    expect(page.locator("#export-job-download")).to_be_hidden()


def test_an_expert_gets_no_export_page(page, make_user):
    make_user(Role.EXPERT, "exp")
    log_in(page, "exp")
    response = page.goto("/export/")
    assert response.status == 403 or "/accounts/login/" in page.url
    page.goto("/")
    expect(page.locator("nav")).not_to_contain_text("Export")
