"""An expert curates where the crowd disagrees most, and reads the overview.

A small crowd (3 annotators, 10 imagettes) is built directly in the database, its majority consensus
computed; the expert then works in headless Chromium against the real Daphne and Celery worker."""

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.conftest import cast_vote
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]

# What each of the 3 annotators says on the 10 imagettes: 8 unanimous items, one where they split
# on a second class (agreement 2/3) and one where no two of them share a class (agreement 0).
UNANIMOUS = ["pure_ocean_waves"]
SPLIT = [["rain_cells"], ["rain_cells", "wind_streaks"], ["rain_cells"]]
DISAGREE = [["rain_cells"], ["wind_streaks"], ["sea_ice"]]


@pytest.fixture
def crowd(platform_imagettes, make_user):
    """Votes of 3 annotators on the first 10 imagettes and their majority consensus; returns the
    imagettes in order of agreement: (no agreement, split, a unanimous one)."""
    from annotations.models import Consensus
    from annotations.selectors import slugs_to_mask
    from annotations.services.consensus_run import consensus_run

    annotators = [make_user(Role.ANNOTATOR, f"crowd{i}") for i in range(3)]
    items = platform_imagettes[:10]
    disagree, split = items[6], items[3]
    for item in items:
        votes = DISAGREE if item == disagree else SPLIT if item == split else [UNANIMOUS] * 3
        for annotator, labels in zip(annotators, votes, strict=True):
            cast_vote(annotator, item, slugs_to_mask(labels))
    result = consensus_run(method="majority")
    assert result["items"] == 10
    agreement = dict(Consensus.objects.values_list("imagette_id", "agreement"))
    assert agreement[disagree.pk] == 0.0
    assert agreement[split.pk] == pytest.approx(2 / 3)
    return disagree, split, items[0]


def _list_ids(page) -> list[int]:
    return [
        int(i)
        for i in page.locator("#curation-list [data-imagette-id]").evaluate_all(
            "nodes => nodes.map(n => n.dataset.imagetteId)"
        )
    ]


def test_expert_overrides_the_crowd_where_it_disagrees(page, crowd, make_user):
    from annotations.models import Imagette
    from annotations.selectors import slugs_to_mask
    from annotations.services.labels import label_decide

    disagree, split, unanimous = crowd
    make_user(Role.EXPERT, "curator")
    log_in(page, "curator")
    page.goto("/curation/")

    # Lowest agreement first, already selected, with its three votes and its consensus.
    first = page.locator("#curation-list [data-imagette-id]").first
    expect(first).to_have_attribute("data-imagette-id", str(disagree.pk))
    assert _list_ids(page)[:2] == [disagree.pk, split.pk]
    assert len(_list_ids(page)) == 10
    expect(first).to_have_attribute("aria-selected", "true")
    expect(page.locator("#detail-id")).to_have_text(f"#{disagree.pk}")
    expect(page.locator("#votes-list [data-annotator]")).to_have_count(3)
    expect(page.locator("#votes-list")).to_contain_text("crowd1")
    # A three-way tie: the majority rule keeps every class named, each at 1/3.
    for slug in ("rain_cells", "wind_streaks", "sea_ice"):
        expect(first.locator(f".chip[data-slug={slug}]")).to_contain_text("33%")
        expect(page.locator(f".class-button[data-slug={slug}]")).to_have_attribute("aria-pressed", "true")

    # The expert keeps rain cells, drops the others with the keys, adds oceanic front with a click.
    page.keyboard.press("2")  # wind streaks off
    page.keyboard.press("6")  # sea ice off
    page.click(".class-button[data-slug=oceanic_front]")
    page.keyboard.press("0")  # oceanic front off again…
    page.keyboard.press("0")  # …and on
    pressed = page.locator(".class-button[aria-pressed=true]")
    expect(pressed).to_have_count(2)
    page.fill("#decision-note", "rain cells along an oceanic front")
    page.locator("#decision-note").press("Enter")

    expect(page.locator("#decision-message")).to_contain_text(f"Decided #{disagree.pk}")
    expect(page.locator(f"#curation-list [data-imagette-id='{disagree.pk}']")).to_have_count(0)
    expect(page.locator("#curation-list [data-imagette-id]")).to_have_count(9)
    item = Imagette.objects.get(pk=disagree.pk)
    assert item.label_source == Imagette.LabelSource.EXPERT
    assert item.label_mask == slugs_to_mask(["rain_cells", "oceanic_front"])
    assert item.decisions.get().note == "rain cells along an oceanic front"

    # The next lowest is selected; another expert decides it meanwhile: a clear conflict, no overwrite.
    expect(page.locator("#detail-id")).to_have_text(f"#{split.pk}")
    expect(page.locator(".class-button[aria-pressed=true]")).to_have_count(1)  # rain cells, the consensus
    other = make_user(Role.EXPERT, "other-expert")
    label_decide(imagette=split, label_mask=slugs_to_mask(["wind_streaks"]), source="expert", author=other)
    page.keyboard.press("2")  # wind streaks on: rain cells and wind streaks
    expect(page.locator(".class-button[aria-pressed=true]")).to_have_count(2)
    page.keyboard.press("Enter")
    message = page.locator("#decision-message")
    expect(message).to_contain_text("Conflict")
    expect(message).to_contain_text("decided by someone else")
    expect(message).to_contain_text("Wind Streaks")
    assert Imagette.objects.get(pk=split.pk).label_mask == slugs_to_mask(["wind_streaks"])
    # Pressing Enter again overrides, knowingly.
    page.keyboard.press("Enter")
    expect(message).to_contain_text(f"Decided #{split.pk}")
    assert Imagette.objects.get(pk=split.pk).label_mask == slugs_to_mask(["rain_cells", "wind_streaks"])
    expect(page.locator("#curation-list [data-imagette-id]")).to_have_count(8)
    assert unanimous.pk in _list_ids(page)

    # Experts are not admins: no gold button (the API would answer 403).
    assert page.locator("#mark-gold").count() == 0


def test_admin_marks_gold_and_expert_reads_the_overview(page, crowd, make_user):
    from annotations.models import GoldLabel, Imagette
    from annotations.selectors import slugs_to_mask

    disagree, _, _ = crowd
    make_user(Role.ADMIN, "boss")
    log_in(page, "boss")
    page.goto("/curation/")
    expect(page.locator("#detail-id")).to_have_text(f"#{disagree.pk}")
    page.keyboard.press("6")  # sea ice off: rain cells and wind streaks
    page.click("#mark-gold")
    expect(page.locator("#decision-message")).to_contain_text("gold item")
    expect(page.locator("#detail-gold")).to_be_visible()
    gold = GoldLabel.objects.get(imagette_id=disagree.pk)
    assert gold.label_mask == slugs_to_mask(["rain_cells", "wind_streaks"])
    assert Imagette.objects.get(pk=disagree.pk).label_source == "consensus"  # gold is not a decision

    # Recompute the consensus as a job and watch it finish here.
    page.select_option("#consensus-method", "majority")
    page.click("#recompute")
    expect(page.locator("#consensus-job")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(page.locator("#consensus-job-message")).to_contain_text("majority consensus over 10 imagettes")

    make_user(Role.EXPERT, "reader")
    page.context.clear_cookies()
    log_in(page, "reader")
    page.goto("/overview/")
    counts = page.locator("#overview-counts")
    expect(counts.locator("[data-count=total] .n")).to_have_text("60")
    expect(counts.locator("[data-count=open] .n")).to_have_text("50")
    expect(counts.locator("[data-count=complete] .n")).to_have_text("10")
    expect(counts.locator("[data-count=settled] .n")).to_have_text("10")
    expect(counts.locator("[data-count=votes] .n")).to_have_text("30")
    expect(counts.locator("[data-count=gold_items] .n")).to_have_text("1")
    expect(page.locator("#consensus-meta")).to_contain_text("majority")

    chart = page.locator("#class-chart svg")
    expect(chart.locator("rect.bar[data-series=consensus]")).to_have_count(10)
    expect(chart.locator("rect.bar[data-series=settled]")).to_have_count(10)
    expect(chart.locator(".bar-group")).to_have_count(10)
    ocean = chart.locator(".bar-group[data-slug=pure_ocean_waves] rect[data-series=consensus]")
    expect(ocean).to_have_attribute("data-value", "8")
    expect(chart.locator(".bar-group[data-slug=pure_ocean_waves]")).to_contain_text("8")
    expect(chart.locator(".axis-title").first).to_have_text("imagettes")

    alpha = page.locator("#alpha-chart svg")
    expect(alpha.locator(".alpha-row")).to_have_count(10)
    # Nobody named icebergs: alpha is undefined there, shown as a dash with its reason.
    icebergs = alpha.locator(".alpha-row[data-slug=icebergs] [data-null]")
    expect(icebergs).to_contain_text("—")
    expect(icebergs.locator("title")).to_have_text("not enough votes yet")
    assert alpha.locator(".alpha-row[data-slug=rain_cells] rect.bar").count() == 1

    # Each annotator voted once on the gold item (rain cells + wind streaks) and none matched it.
    rows = page.locator("#annotator-table tbody tr[data-annotator]")
    expect(rows).to_have_count(3)
    for i in range(3):
        expect(rows.nth(i).locator("td").nth(3)).to_have_text("1")
        expect(rows.nth(i).locator("td").nth(4)).to_have_text("0.0%")

    # Refresh picks up a change made meanwhile.
    GoldLabel.objects.all().delete()
    page.click("#refresh")
    expect(counts.locator("[data-count=gold_items] .n")).to_have_text("0")
