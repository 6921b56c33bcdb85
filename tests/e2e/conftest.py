"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against the real platform."""

import os

import pytest

# Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls are
# still plain synchronous ones (pytest-django's documented setting for Playwright).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, platform):
    context = browser.new_context(base_url=platform.base_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def log_in(page, username: str, password: str = "pw-for-tests-1") -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
