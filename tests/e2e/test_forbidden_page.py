"""A signed-in user who opens a page their role may not see gets a 403 page that says which roles may and who
they are signed in as, with a link home (issue 11.6: it used to be a login form); anonymous visitors still go to
the login page."""

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from accounts.roles import Role
from tests.e2e.conftest import log_in

EXPERT_PAGES = ("/curation/", "/overview/", "/review/", "/models/")
ADMIN_PAGES = ("/ingest/", "/export/")


@pytest.mark.django_db
def test_a_page_the_role_may_not_see_answers_403_naming_the_roles(client, make_user):
    annotator = make_user(Role.ANNOTATOR, "crowd")
    expert = make_user(Role.EXPERT, "seer")
    roleless = make_user(Role.ANNOTATOR, "nobody")
    roleless.groups.clear()

    for url in ("/label/", *EXPERT_PAGES, *ADMIN_PAGES):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(f"/accounts/login/?next={url}")

    client.force_login(annotator)
    assert client.get("/label/").status_code == 200
    for url in EXPERT_PAGES:
        response = client.get(url)
        text = response.content.decode()
        assert response.status_code == 403, url
        assert "This page is for <strong id=\"forbidden-roles\">experts and admins</strong>" in text
        assert "signed in as\n    annotator <strong>‘crowd’</strong>" in text
        assert 'href="/" id="forbidden-home"' in text
    for url in ADMIN_PAGES:
        assert ">admins</strong>" in client.get(url).content.decode()

    client.force_login(expert)
    for url in EXPERT_PAGES:
        assert client.get(url).status_code == 200, url
    for url in ADMIN_PAGES:
        response = client.get(url)
        assert response.status_code == 403 and "expert <strong>‘seer’</strong>" in response.content.decode()

    client.force_login(roleless)
    response = client.get("/label/")
    text = response.content.decode()
    assert response.status_code == 403 and ">annotators, experts and admins</strong>" in text
    assert "‘nobody’</strong>, who has no role yet" in text


@pytest.mark.browser
@pytest.mark.services
@pytest.mark.one_mode  # page rendering: the same on either database
def test_an_annotator_meets_the_403_page_and_goes_home(page, make_user):
    make_user(Role.ANNOTATOR, "crowd")
    log_in(page, "crowd")
    response = page.goto("/review/")
    assert response.status == 403 and "/accounts/login/" not in page.url
    box = page.locator("#forbidden")
    expect(box).to_contain_text("This page is for experts and admins; you are signed in as annotator ‘crowd’.")
    expect(page.locator("#id_password")).to_have_count(0)  # no login form
    page.click("#forbidden-home")
    expect(page.locator("main h1")).to_contain_text("Welcome, crowd")
    assert urlparse(page.url).path == "/"
