"""annotations/api.py: roles, blind voting, bad input changes nothing."""

import pytest
from django.test import override_settings

from accounts.roles import Role
from annotations.models import GoldLabel, Imagette, LabelDecision, Vote
from annotations.services.consensus_run import consensus_run
from tests.conftest import cast_vote

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def no_broker(monkeypatch):
    from eoplatform.celery import app

    monkeypatch.setattr(app, "send_task", lambda *a, **kw: None)


@override_settings(CRYOLABEL_GOLD_RATE=0.0)
def test_annotator_flow_is_blind(client_as, ingested, annotator):
    client = client_as(annotator)
    items = client.get("/api/v1/queue/next/?count=3").json()
    assert len(items) == 3 and set(items[0]) >= {"id", "preview_url", "swath"}
    assert not {"labels", "consensus", "votes", "vote_count", "label_source"} & set(items[0])
    preview = client.get(items[0]["preview_url"])
    assert preview.status_code == 200 and preview["Content-Type"] == "image/png"
    # No way for an annotator to see labels, consensus or others' votes.
    for url in ("/api/v1/imagettes/", f"/api/v1/imagettes/{items[0]['id']}/",
                f"/api/v1/imagettes/{items[0]['id']}/votes/", "/api/v1/consensus/", "/api/v1/overview/"):
        assert client.get(url).status_code == 403, url
    response = client.post("/api/v1/votes/", {"imagette": items[0]["id"], "labels": ["sea_ice", "icebergs"],
                                              "seconds": 1.5}, format="json")
    assert response.status_code == 201 and response.json()["labels"] == ["sea_ice", "icebergs"]
    assert response.json()["suggested"] is False  # a blind vote unless the page says the model's classes were shown
    swayed = client.post("/api/v1/votes/", {"imagette": items[1]["id"], "labels": ["sea_ice"], "suggested": True},
                         format="json")
    assert swayed.status_code == 201 and Vote.objects.get(pk=swayed.json()["id"]).suggested
    assert not Vote.objects.get(pk=response.json()["id"]).suggested
    again = client.post("/api/v1/votes/", {"imagette": items[0]["id"], "labels": ["sea_ice"]}, format="json")
    vote_id = response.json()["id"]
    assert again.status_code == 409 and again.json() == {"detail": "you have already voted on this imagette",
                                                         "code": "already_voted", "vote_id": vote_id}
    amended = client.patch(f"/api/v1/votes/{vote_id}/", {"labels": ["rain_cells"]}, format="json")
    assert amended.json()["labels"] == ["rain_cells"]
    mine = client.get("/api/v1/votes/").json()
    assert mine["count"] == 2 and mine["stats"]["total"] == 2


def test_bad_votes_are_400_and_write_nothing(client_as, ingested, annotator):
    client = client_as(annotator)
    item = ingested[0].pk
    cases = (({"imagette": item, "labels": []}, "labels"), ({"imagette": item, "labels": ["snow"]}, "labels"),
             ({"labels": ["sea_ice"]}, "imagette"), ({"imagette": "x", "labels": ["sea_ice"]}, "imagette"),
             ({"imagette": item, "labels": ["sea_ice"], "suggested": "perhaps"}, "suggested"))
    for body, field in cases:
        response = client.post("/api/v1/votes/", body, format="json")
        assert response.status_code == 400 and field in response.json(), (body, response.content)
    assert client.post("/api/v1/votes/", "{oops", content_type="application/json").status_code == 400
    assert client.post("/api/v1/votes/", {"imagette": 10**8, "labels": ["sea_ice"]}, format="json").status_code == 404
    assert client.get("/api/v1/queue/next/?count=99").status_code == 400
    assert Vote.objects.count() == 0


def test_anonymous_and_wrong_roles(api_client, client_as, ingested, annotator, expert):
    item = ingested[0].pk
    assert api_client.get("/api/v1/queue/next/").status_code == 401
    vote = {"imagette": item, "labels": ["sea_ice"]}
    assert api_client.post("/api/v1/votes/", vote, format="json").status_code == 401
    decision = {"labels": ["sea_ice"]}
    assert client_as(annotator).post(f"/api/v1/imagettes/{item}/decision/", decision, format="json").status_code == 403
    assert client_as(expert).put(f"/api/v1/imagettes/{item}/gold/", decision, format="json").status_code == 403
    assert LabelDecision.objects.count() == 0 and GoldLabel.objects.count() == 0


@override_settings(CRYOLABEL_GOLD_RATE=0.0)
def test_expert_overrides_consensus_and_races_are_refused(client_as, ingested, make_user, expert):
    item = ingested[0]
    for i, mask in enumerate((0b1, 0b1, 0b10)):
        cast_vote(make_user(Role.ANNOTATOR, f"a{i}"), item, mask)
    consensus_run(method="majority")
    item.refresh_from_db()
    assert item.label_source == "consensus" and item.label_mask == 0b1
    listed = client_as(expert).get("/api/v1/consensus/").json()["results"]
    assert listed[0]["id"] == item.pk and listed[0]["consensus"]["labels"] == ["pure_ocean_waves"]
    assert len(client_as(expert).get(f"/api/v1/imagettes/{item.pk}/votes/").json()) == 3
    version = listed[0]["label_version"]
    body = {"labels": ["wind_streaks"], "expected_version": version}
    decided = client_as(expert).post(f"/api/v1/imagettes/{item.pk}/decision/", body, format="json")
    assert decided.status_code == 200 and decided.json()["labels"] == ["wind_streaks"]
    assert decided.json()["label_source"] == "expert"
    late = client_as(make_user(Role.EXPERT, "late")).post(f"/api/v1/imagettes/{item.pk}/decision/", body,
                                                            format="json")
    assert late.status_code == 409 and LabelDecision.objects.filter(imagette=item).count() == 1
    consensus_run(method="majority")  # the crowd never overrides the expert
    assert Imagette.objects.get(pk=item.pk).label_mask == 0b10
    assert client_as(expert).get("/api/v1/consensus/").json()["count"] == 0


def test_imagette_filters_and_gold(client_as, ingested, admin_user):
    client = client_as(admin_user)
    gold = client.put(f"/api/v1/imagettes/{ingested[1].pk}/gold/", {"labels": ["sea_ice"]}, format="json")
    assert gold.status_code == 200
    assert client.get("/api/v1/imagettes/?gold=true").json()["count"] == 1
    client.post(f"/api/v1/imagettes/{ingested[2].pk}/decision/", {"labels": ["sea_ice"]}, format="json")
    assert [r["id"] for r in client.get("/api/v1/imagettes/?class=sea_ice").json()["results"]] == [ingested[2].pk]
    assert client.get("/api/v1/imagettes/?label_source=expert").json()["count"] == 1
    # The expert's decision settles the item: it leaves the crowd's open items.
    assert client.get("/api/v1/imagettes/?status=open").json()["count"] == len(ingested) - 1
    assert [r["id"] for r in client.get("/api/v1/imagettes/?status=settled").json()["results"]] == [ingested[2].pk]
    assert client.get("/api/v1/imagettes/?class=snow").status_code == 400
    overview = client.get("/api/v1/overview/").json()
    assert overview["imagettes"]["total"] == len(ingested) and overview["gold_items"] == 1
    assert overview["class_distribution"]["sea_ice"]["settled"] == 1
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in ("/api/v1/imagettes/", "/api/v1/votes/", "/api/v1/queue/next/", "/api/v1/consensus/",
                 "/api/v1/imagettes/{id}/gold/", "/api/v1/overview/"):
        assert path in schema["paths"], path


@override_settings(CRYOLABEL_GOLD_RATE=0.0, CRYOLABEL_CONSENSUS_EVERY=2)
def test_consensus_is_scheduled_after_every_n_completed_items(ingested, make_user, django_capture_on_commit_callbacks):
    from jobs.models import Job

    voters = [make_user(Role.ANNOTATOR, f"v{i}") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        for item in ingested[:2]:
            for voter in voters:
                cast_vote(voter, item, 1)
    job = Job.objects.get(kind="consensus")
    assert "2 imagettes completed" in job.reason
