"""/api/v1/jobs/ and the pages: authentication, roles and bad input change nothing."""

import pytest

from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """These tests look at the API only; the broker is exercised by the integration tests."""
    from eoplatform.celery import app

    monkeypatch.setattr(app, "send_task", lambda *a, **kw: None)


def test_anonymous_gets_401_and_nothing_changes(api_client):
    assert api_client.get("/api/v1/jobs/").status_code == 401
    response = api_client.post("/api/v1/jobs/", {"kind": "worker_check"}, format="json")
    assert response.status_code == 401 and Job.objects.count() == 0


def test_wrong_role_gets_403_and_nothing_changes(client_as, annotator, expert):
    for user in (annotator, expert):
        response = client_as(user).post("/api/v1/jobs/", {"kind": "worker_check"}, format="json")
        assert response.status_code == 403, response.content
        assert "role" in response.json()["detail"]
    assert Job.objects.count() == 0


def test_malformed_json_gets_400_and_nothing_changes(client_as, admin_user):
    client = client_as(admin_user)
    response = client.post("/api/v1/jobs/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]
    response = client.post("/api/v1/jobs/", {"kind": "worker_check", "params": {"steps": "many"}}, format="json")
    assert response.status_code == 400 and "steps" in response.json()["params"]
    response = client.post("/api/v1/jobs/", {"params": {}}, format="json")
    assert response.status_code == 400 and "kind" in response.json()
    response = client.post("/api/v1/jobs/", {"kind": "nope"}, format="json")
    assert response.status_code == 400 and "unknown job kind" in response.json()["kind"][0]
    response = client.post("/api/v1/jobs/", {"kind": "worker_check", "params": [1, 2]}, format="json")
    assert response.status_code == 400 and "params" in response.json()
    assert Job.objects.count() == 0


def test_unknown_job_id_is_404(client_as, admin_user):
    client = client_as(admin_user)
    assert client.get("/api/v1/jobs/12345/").status_code == 404
    assert client.get("/api/v1/jobs/abc/").status_code == 404
    assert client.post("/api/v1/jobs/12345/cancel/").status_code == 404


def test_admin_submits_a_job_and_sees_it(client_as, admin_user):
    client = client_as(admin_user)
    response = client.post(
        "/api/v1/jobs/", {"kind": "worker_check", "params": {"steps": 2}, "reason": "smoke"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "queued" and body["params"]["steps"] == 2 and body["reason"] == "smoke"
    listed = client.get("/api/v1/jobs/?state=queued").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]
    assert client.get("/api/v1/jobs/?state=failed").json()["count"] == 0


def test_annotator_sees_only_own_jobs_expert_sees_all(client_as, annotator, expert, admin_user):
    job = Job.objects.create(kind="worker_check", created_by=admin_user)
    mine = Job.objects.create(kind="worker_check", created_by=annotator)
    annotator_view = client_as(annotator).get("/api/v1/jobs/").json()
    assert [j["id"] for j in annotator_view["results"]] == [mine.pk]
    assert client_as(annotator).get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert client_as(expert).get(f"/api/v1/jobs/{job.pk}/").status_code == 200


def test_cancel_rules(client_as, expert, admin_user, monkeypatch):
    from eoplatform.celery import app

    monkeypatch.setattr(app.control, "revoke", lambda task_id: None)
    job = Job.objects.create(kind="worker_check", created_by=admin_user)
    assert client_as(expert).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403
    assert Job.objects.get(pk=job.pk).state == Job.State.QUEUED
    assert client_as(admin_user).post(f"/api/v1/jobs/{job.pk}/cancel/").json()["state"] == "cancelled"
    assert client_as(admin_user).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 409


def test_token_auth(api_client, annotator):
    token = api_client.force_authenticate(annotator) or None
    api_client.force_authenticate(None)
    from accounts.services import token_for

    token = token_for(user=annotator)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api_client.get("/api/v1/me/").json()
    assert me["username"] == "ann" and me["role"] == "annotator" and me["capabilities"] == ["label"]
    api_client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_pages_need_login(client, annotator):
    for url in ("/", "/jobs/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/accounts/login/").status_code == 200
    client.force_login(annotator)
    page = client.get("/jobs/")
    assert page.status_code == 200 and b"jobs-body" in page.content
    assert b"data-start-kind" not in page.content  # annotators may not start a worker check


def test_schema_docs_and_root(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/jobs/" in paths and "/api/v1/jobs/{id}/cancel/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()
    root = client.get("/api/v1/").json()
    assert {"jobs", "train", "predict", "predictions", "review_next", "exports", "map_points"} <= set(root)


def test_admin_site(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/jobs/job/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200
