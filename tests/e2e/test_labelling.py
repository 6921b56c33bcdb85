"""An annotator labels imagettes at the keyboard alone, goes back to amend a vote, cannot submit an
item with no class, switches to the grid, and sees the thank-you state once the queue is empty."""

import re

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from annotations.models import Vote
from annotations.selectors import mask_to_slugs
from annotations.wv_classes import WV_CLASSES
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]

SLUG_BY_KEY = {c.key: c.slug for c in WV_CLASSES}
AN_ID = re.compile(r"^\d+$")

# Keys pressed on each of 10 imagettes; a key pressed twice toggles its class off again.
PRESSES = [
    "1",
    "25",  # two classes
    "344",  # 4 on, then off again
    "4",
    "189",  # three classes
    "6",
    "7",
    "8",
    "9",
    "02",
]


def expected_labels(keys: str) -> set[str]:
    labels: set[str] = set()
    for key in keys:
        labels ^= {SLUG_BY_KEY[key]}
    return labels


def own_votes(user) -> dict[int, set[str]]:
    return {v.imagette_id: set(mask_to_slugs(v.label_mask)) for v in Vote.objects.filter(annotator=user)}


def open_label_page(page, username: str):
    log_in(page, username)
    page.goto("/label/")
    image = page.locator("#current-image")
    expect(image).to_have_attribute("data-imagette-id", AN_ID)
    expect(page.locator("#count-total")).to_have_text("0")
    return image


def expect_all_sent(page) -> None:
    sync = page.locator("#sync")
    expect(sync).to_have_attribute("data-pending", "0")
    expect(sync).to_have_attribute("data-failed", "0")


def expect_pressed(page, labels: set[str]) -> None:
    for c in WV_CLASSES:
        expect(page.locator(f".class-button[data-slug={c.slug}]")).to_have_attribute(
            "aria-pressed", "true" if c.slug in labels else "false"
        )


def test_annotator_labels_ten_with_the_keyboard_and_amends_one(page, platform_imagettes, make_user):
    user = make_user(Role.ANNOTATOR, "quick")
    image = open_label_page(page, "quick")
    hint = page.locator("#hint")

    # Enter with no class selected submits nothing and says why.
    first = image.get_attribute("data-imagette-id")
    page.keyboard.press("Enter")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("at least one class")
    expect(image).to_have_attribute("data-imagette-id", first)
    expect(page.locator("#count-total")).to_have_text("0")

    typed: dict[int, set[str]] = {}
    for n, keys in enumerate(PRESSES, start=1):
        shown = image.get_attribute("data-imagette-id")
        assert AN_ID.match(shown or ""), shown
        assert int(shown) not in typed, f"imagette {shown} shown twice"
        for key in keys:
            page.keyboard.press(key)
        labels = expected_labels(keys)
        expect_pressed(page, labels)
        page.keyboard.press("Enter")
        typed[int(shown)] = labels
        expect(image).not_to_have_attribute("data-imagette-id", shown)
        expect(page.locator("#count-total")).to_have_text(str(n))
        # The next item starts with nothing selected.
        expect_pressed(page, set())
    expect(page.locator("#count-today")).to_have_text("10")
    expect(page.locator("#pace")).not_to_have_text(re.compile(r"^(–|0\.0)$"))
    expect(hint).to_be_hidden()

    expect_all_sent(page)
    assert own_votes(user) == typed
    assert Vote.objects.filter(annotator=user).count() == 10
    assert not Vote.objects.filter(annotator=user, suggested=True).exists()  # suggestions off: blind votes
    assert set(Vote.objects.filter(annotator=user).values_list("imagette_id", flat=True)) == set(typed)

    # Backspace twice: the 9th vote, with its labels, in review mode.
    queue_item = image.get_attribute("data-imagette-id")
    voted = list(typed)
    page.keyboard.press("Backspace")
    expect(image).to_have_attribute("data-imagette-id", str(voted[-1]))
    expect_pressed(page, typed[voted[-1]])
    expect(page.locator("#labeller")).to_have_attribute("data-mode", "review")
    page.keyboard.press("Backspace")
    expect(image).to_have_attribute("data-imagette-id", str(voted[-2]))
    expect_pressed(page, typed[voted[-2]])

    # Change it (9 off, 3 and 0 on) and Enter: the vote is amended, and on to the 10th vote.
    for key in "930":
        page.keyboard.press(key)
    amended = {SLUG_BY_KEY["3"], SLUG_BY_KEY["0"]}
    expect_pressed(page, amended)
    page.keyboard.press("Enter")
    expect(image).to_have_attribute("data-imagette-id", str(voted[-1]))
    expect_pressed(page, typed[voted[-1]])
    # Enter on an unchanged earlier vote just goes on: back to the queue, where we were.
    page.keyboard.press("Enter")
    expect(image).to_have_attribute("data-imagette-id", queue_item)
    expect(page.locator("#labeller")).to_have_attribute("data-mode", "queue")
    expect_pressed(page, set())

    expect_all_sent(page)
    typed[voted[-2]] = amended
    assert own_votes(user) == typed
    assert Vote.objects.filter(annotator=user).count() == 10
    expect(page.locator("#count-total")).to_have_text("10")

    # And once more, Enter with nothing selected on the queue item does not submit it.
    page.keyboard.press("Enter")
    expect(hint).to_be_visible()
    expect(image).to_have_attribute("data-imagette-id", queue_item)
    expect(page.locator("#count-total")).to_have_text("10")
    expect_all_sent(page)
    assert Vote.objects.filter(annotator=user).count() == 10


def test_grid_view_zoom_and_buffer(page, platform_imagettes, make_user):
    make_user(Role.ANNOTATOR, "gridder")
    image = open_label_page(page, "gridder")
    first = image.get_attribute("data-imagette-id")

    # Zoom with the keys, back to fit with Z.
    page.keyboard.press("+")
    expect(page.locator("#zoom-level")).to_have_text("125%")
    page.keyboard.press("z")
    expect(page.locator("#zoom-level")).to_have_text("100%")

    # G: the grid of the current and upcoming items, the current one highlighted.
    page.keyboard.press("g")
    grid = page.locator("#grid")
    expect(grid).to_be_visible()
    expect(page.locator("#viewer")).to_be_hidden()
    thumbs = grid.locator(".thumb")
    expect(thumbs).to_have_count(6)
    ids = [thumbs.nth(i).get_attribute("data-imagette-id") for i in range(6)]
    assert len(set(ids)) == 6, ids  # held items are never taken twice into the buffer
    expect(grid.locator(".thumb.current")).to_have_attribute("data-imagette-id", first)

    # Clicking a thumbnail makes it current; label it there and submit.
    thumbs.nth(2).click()
    expect(grid.locator(".thumb.current")).to_have_attribute("data-imagette-id", ids[2])
    expect(image).to_have_attribute("data-imagette-id", ids[2])
    page.keyboard.press("5")
    expect(grid.locator(".thumb.current .dot")).to_have_text("5")
    page.keyboard.press("Enter")
    expect(page.locator("#count-total")).to_have_text("1")
    expect(grid.locator(f'.thumb[data-imagette-id="{ids[2]}"]')).to_have_count(0)

    # The toggle button brings the single view back.
    page.click("#view-toggle")
    expect(page.locator("#viewer")).to_be_visible()
    expect(grid).to_be_hidden()
    expect_all_sent(page)
    assert list(Vote.objects.values_list("imagette_id", "label_mask")) == [(int(ids[2]), 1 << 4)]


def test_empty_queue_says_thank_you(page, platform, make_user):
    make_user(Role.ANNOTATOR, "early")
    log_in(page, "early")
    page.goto("/label/")
    expect(page.locator("#empty-state")).to_be_visible()
    expect(page.locator("#empty-state")).to_contain_text("Nothing left to label")
    expect(page.locator("#viewer")).to_be_hidden()
    page.keyboard.press("Enter")  # nothing to submit, nothing breaks
    expect(page.locator("#empty-state")).to_be_visible()
