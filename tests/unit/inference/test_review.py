"""inference/services/review.py and its API, the crowd queue's preference for uncertain items once a model is
active (annotations/services/votes.py), and automatic retraining (training/services/retrain.py).

The predictions are rows written here with known scores, one fixed set for every ordering:

    item  entropy  margin  confidence  MI     disagrees  notes
    a     0.90     0.05    0.20        0.10   no
    b     0.80     0.02    0.30        0.50   yes
    c     0.70     0.30    0.10        null   no
    d     0.60     0.20    0.60        0.30   yes
    h     0.10     0.90    0.95        0.00   no
    e     0.95     0.01    0.05        0.90   no         already reviewed: out of the queue
    f     0.99     0.00    0.00        0.95   no         not current (a later version predicted it): out
    g     0.97     ...                                   predicted by the old, inactive version only: out
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test import override_settings

from accounts.roles import Role
from annotations.models import Imagette, LabelDecision
from annotations.selectors import slugs_to_mask
from annotations.services.labels import LabelConflict, label_decide
from annotations.services.queue import queue_priority_set
from inference.models import Prediction
from inference.services.review import ReviewError, review_accept, review_correct, review_next
from jobs.models import Job
from tests.conftest import cast_vote
from training.models import ModelVersion, Snapshot, SnapshotItem
from training.services.snapshots import snapshot_create

pytestmark = [pytest.mark.django_db]

ROWS = {  # name: (entropy, margin, confidence, mutual information, disagrees, predicted mask)
    "a": (0.90, 0.05, 0.20, 0.10, False, 0b101),
    "b": (0.80, 0.02, 0.30, 0.50, True, 0b10),
    "c": (0.70, 0.30, 0.10, None, False, 0b1),
    "d": (0.60, 0.20, 0.60, 0.30, True, 0b100000),
    "h": (0.10, 0.90, 0.95, 0.00, False, 0b1),
    "e": (0.95, 0.01, 0.05, 0.90, False, 0b1),
    "f": (0.99, 0.00, 0.00, 0.95, False, 0b1),
}
OPEN = ["a", "b", "c", "d", "h"]


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Jobs are rows here; the tasks they would send are recorded, not sent."""
    from eoplatform.celery import app

    sent: list[str] = []
    monkeypatch.setattr(app, "send_task", lambda name, *a, **kw: sent.append(name))
    return sent


def _imagettes(names) -> dict[str, Imagette]:
    """Bare rows (no files: nothing here reads pixels), created in the order given."""
    rows = Imagette.objects.bulk_create([Imagette(
        key=f"test/{name}.tiff", content_hash=hashlib.sha256(name.encode()).hexdigest(),
        source_product=f"S1A_WV_{name}", source_path=f"/x/{name}", source_format="geotiff", width=64, height=64,
        data=f"imagettes/{name}.npy", preview=f"imagettes/{name}.png") for name in names])
    return {name: Imagette.objects.get(key=f"test/{name}.tiff") for name in names} if rows else {}


def _snapshot(number: int = 1, counts: dict | None = None) -> Snapshot:
    return Snapshot.objects.create(kind="imagettes", number=number, seed=0, fractions={"train": 0.75, "val": 0.2,
                                   "test": 0.05},
                                   agreement_threshold=0.6, counts=counts or {})


def _version(number: int, *, active: bool, snapshot: Snapshot | None = None) -> ModelVersion:
    return ModelVersion.objects.create(network="classifier", number=number, snapshot=snapshot or _snapshot(number),
                                       checkpoint=f"checkpoints/v{number}.pt", is_active=active)


def _predict(version, item, *, entropy, margin=0.5, confidence=0.5, mi=None, disagrees=False, mask=1,
             current=True, reviewed=False) -> Prediction:
    probabilities = [round(0.9 if mask >> i & 1 else 0.05, 4) for i in range(10)]
    if version.is_active and current:
        queue_priority_set({item.pk: entropy})  # as predictions_store does for the active version
    return Prediction.objects.create(
        imagette=item, model_version=version, probabilities=probabilities, label_mask=mask,
        top1=max(range(10), key=lambda i: probabilities[i]), confidence=confidence, entropy=entropy, margin=margin,
        mutual_information=mi, disagrees=disagrees, is_current=current, reviewed=reviewed)


@pytest.fixture
def fixed():
    """The table above: returns (items by name, active version)."""
    items = _imagettes([*ROWS, "g"])
    old = _version(1, active=False)
    active = _version(2, active=True)
    for name, (entropy, margin, confidence, mi, disagrees, mask) in ROWS.items():
        _predict(active, items[name], entropy=entropy, margin=margin, confidence=confidence, mi=mi,
                 disagrees=disagrees, mask=mask, reviewed=name == "e", current=name != "f")
    _predict(old, items["g"], entropy=0.97, margin=0.0, confidence=0.0, mi=0.99)
    _predict(old, items["a"], entropy=0.99, current=False)  # an older version's row for a queued item
    return items, active


def _names(items, predictions) -> list[str]:
    by_pk = {item.pk: name for name, item in items.items()}
    return [by_pk[p.imagette_id] for p in predictions]


# --- the orderings --------------------------------------------------------------------------------
@pytest.mark.parametrize(("strategy", "measure", "expected"), [
    ("uncertain", "entropy", ["a", "b", "c", "d", "h"]),
    ("uncertain", "margin", ["b", "a", "d", "c", "h"]),
    ("uncertain", "confidence", ["c", "a", "b", "d", "h"]),
    ("uncertain", "mutual_information", ["b", "d", "a", "h", "c"]),  # no MI (c): last
    ("disagreement", "entropy", ["b", "d", "a", "c", "h"]),
])
def test_orderings_on_a_fixed_set(fixed, expert, strategy, measure, expected):
    items, active = fixed
    got = review_next(reviewer=expert, strategy=strategy, measure=measure, count=10)
    assert _names(items, got) == expected
    assert all(p.model_version_id == active.pk for p in got)
    # One at a time gives the head; excluding what the caller holds gives the next ones.
    assert _names(items, review_next(reviewer=expert, strategy=strategy, measure=measure)) == expected[:1]
    held = [items[n].pk for n in expected[:2]]
    assert _names(items, review_next(reviewer=expert, strategy=strategy, measure=measure, count=2,
                                     exclude=held)) == expected[2:4]


def test_mutual_information_orders_the_most_uncertain_by_entropy(fixed, expert, monkeypatch):
    """MI has no index: its order is taken among the _MI_WINDOW highest entropies (exact above the window's
    lowest entropy, MI being at most the entropy). With the whole set in the window it is the full order; with a
    window of 2 (a, b) it can only see those two; without MI at all it is the entropy order."""
    from inference.services import review

    items, _ = fixed
    full = review_next(reviewer=expert, measure="mutual_information", count=5)
    assert _names(items, full) == ["b", "d", "a", "h", "c"]
    monkeypatch.setattr(review, "_MI_WINDOW", 2)
    assert _names(items, review_next(reviewer=expert, measure="mutual_information", count=5)) == ["b", "a"]
    monkeypatch.undo()
    Prediction.objects.update(mutual_information=None)
    got = review_next(reviewer=expert, measure="mutual_information", count=5)
    assert _names(items, got) == ["a", "b", "c", "d", "h"]


def test_random_audit_is_uniform_over_the_open_predictions(fixed, expert):
    items, _ = fixed
    rng = random.Random(7)
    draws = Counter()
    for _ in range(600):
        got = review_next(reviewer=expert, strategy="random", rng=rng)
        assert len(got) == 1
        draws.update(_names(items, got))
    assert set(draws) == set(OPEN)  # never a reviewed, non-current or old-version row
    assert min(draws.values()) > 600 / 5 * 0.6, draws  # 120 expected each; a biased draw would starve some
    everything = review_next(reviewer=expert, strategy="random", count=10, rng=rng)
    assert sorted(_names(items, everything)) == sorted(OPEN)
    rest = review_next(reviewer=expert, strategy="random", count=10, exclude=[items["a"].pk, items["b"].pk], rng=rng)
    assert sorted(_names(items, rest)) == ["c", "d", "h"]


def test_random_audit_walks_on_when_the_probes_miss(expert):
    """Open predictions sparse in a wide id range (most ids belong to another version): the probes miss, the
    walk from a random id (wrapping round) still finds every one of them."""
    items = _imagettes(["x", "y", "z"])
    old, active = _version(1, active=False), _version(2, active=True)
    filler = _imagettes([f"old{i}" for i in range(3000)])
    Prediction.objects.bulk_create([Prediction(
        imagette=item, model_version=old, probabilities=[0.5] * 10, label_mask=1, top1=0, confidence=0.5,
        entropy=0.5, margin=0.0) for item in filler.values()])
    for item in items.values():
        _predict(active, item, entropy=0.5)
    seen = Counter()
    for seed in range(30):
        seen.update(_names(items, review_next(reviewer=expert, strategy="random", count=2,
                                               rng=random.Random(seed))))
    assert set(seen) == {"x", "y", "z"}


def test_items_an_expert_settled_stay_out_under_a_new_version(fixed, expert):
    """v3 predicts again what an expert decided under v2: its fresh rows are not `reviewed`, the item stays out."""
    items, active = fixed
    review_accept(reviewer=expert, imagette_id=items["a"].pk, expected_version=0)
    review_correct(reviewer=expert, imagette_id=items["b"].pk, label_mask=0b1, expected_version=0)
    label_decide(imagette=items["c"], label_mask=0b1, source="imported")  # imported labels are still reviewed
    ModelVersion.objects.filter(pk=active.pk).update(is_active=False)
    newer = _version(3, active=True)
    Prediction.objects.filter(model_version=active).update(is_current=False)
    for name in ("a", "b", "c", "d"):
        _predict(newer, items[name], entropy=ROWS[name][0])
    for strategy in ("uncertain", "disagreement", "random"):
        got = review_next(reviewer=expert, strategy=strategy, count=10)
        assert sorted(_names(items, got)) == ["c", "d"], strategy
        assert {p.model_version_id for p in got} == {newer.pk}


def test_experts_on_the_same_order_get_different_items_while_leased(fixed, expert, make_user):
    """What one expert was shown is leased to them: a second expert gets the next item, the first gets theirs
    again (a reload loses nothing); when the lease expires or the item is decided, it is free again."""
    from datetime import timedelta

    from django.utils import timezone

    from inference.models import ReviewLease

    items, _ = fixed
    second = make_user(Role.EXPERT, "second-expert")
    assert _names(items, review_next(reviewer=expert)) == ["a"]
    assert _names(items, review_next(reviewer=second)) == ["b"]
    assert _names(items, review_next(reviewer=expert)) == ["a"]  # their own lease does not hide it from them
    assert _names(items, review_next(reviewer=second, count=2)) == ["b", "c"]
    assert ReviewLease.objects.filter(reviewer=second).count() == 2
    ReviewLease.objects.filter(reviewer=expert).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _names(items, review_next(reviewer=second)) == ["a"]  # expired: free for the others
    assert ReviewLease.objects.get(imagette=items["a"]).reviewer == second  # taken over, one row per item
    review_accept(reviewer=second, imagette_id=items["a"].pk, expected_version=0)
    assert not ReviewLease.objects.filter(imagette=items["a"]).exists()  # decided: the lease goes with it
    # A lease never stops a decision: the item's label_version is the guard.
    review_correct(reviewer=expert, imagette_id=items["c"].pk, label_mask=0b1, expected_version=0)
    assert _names(items, review_next(reviewer=expert, count=10)) == ["d", "h"]


@override_settings(CRYOLABEL_REVIEW_LEASE_SECONDS=0)
def test_without_leases_every_expert_sees_the_same_order(fixed, expert, make_user):
    items, _ = fixed
    second = make_user(Role.EXPERT, "second-expert")
    assert _names(items, review_next(reviewer=expert)) == _names(items, review_next(reviewer=second)) == ["a"]


def test_bad_strategy_and_no_model(db, expert):
    with pytest.raises(ReviewError, match="unknown strategy"):
        review_next(reviewer=expert, strategy="loudest")
    with pytest.raises(ReviewError, match="unknown measure"):
        review_next(reviewer=expert, measure="vibes")
    assert review_next(reviewer=expert) == []  # no model version at all: nothing to review


@pytest.mark.postgres_only
@pytest.mark.parametrize(("strategy", "measure", "index"), [
    ("uncertain", "entropy", "prediction_entropy_id"), ("uncertain", "margin", "prediction_margin_id"),
    ("uncertain", "confidence", "prediction_conf_id"), ("disagreement", "entropy", "prediction_disagreement_id"),
])
def test_the_queue_queries_walk_the_prediction_indexes(fixed, strategy, measure, index):
    """The ordering's index can deliver the next item in order: with sequential scans and full sorts priced out
    (a plan on a few rows would rightly sort them; bench/bench_review_queue.py prints the plan on 1 000 000),
    PostgreSQL reads that index, and the index holds the id tie-break too: no sort at all (an incremental sort on
    the id read every row of a tie: 234 rows for one item on the bench's saturated margins)."""
    from inference.services import review

    _, active = fixed
    base = review._open_for_review(active, [])
    if strategy == "disagreement":
        base = base.filter(disagrees=True)
    sql, params = review._with_item(base).order_by(*review.MEASURES[measure])[:1].query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
    nodes = [line.strip().removeprefix("->").strip() for line in plan.splitlines()]
    assert not [n for n in nodes if n.startswith(("Sort  (", "Incremental Sort  ("))], plan


# --- accept / correct -----------------------------------------------------------------------------
def test_accept_and_correct_through_the_api_enter_the_next_snapshot(fixed, expert, client_as):
    items, active = fixed
    client = client_as(expert)
    first = client.get("/api/v1/review/next/?strategy=uncertain").json()
    assert first["model"] == {"id": active.pk, "network": "classifier", "number": 2, "is_active": True}
    (item,) = first["items"]
    assert item["imagette"]["id"] == items["a"].pk  # the most uncertain
    assert item["prediction"]["labels"] == ["pure_ocean_waves", "micro_convective_cells"]
    assert item["prediction"]["entropy"] == 0.9 and item["imagette"]["preview_url"].endswith("/preview/")
    accepted = client.post(f"/api/v1/review/{items['a'].pk}/accept/",
                           {"expected_version": item["imagette"]["label_version"],
                            "prediction": item["prediction"]["id"]}, format="json")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["label_source"] == "prediction"

    second = client.get("/api/v1/review/next/").json()["items"][0]
    assert second["imagette"]["id"] == items["b"].pk
    corrected = client.post(f"/api/v1/review/{items['b'].pk}/correct/",
                            {"labels": ["rain_cells", "sea_ice"], "expected_version": 0}, format="json")
    assert corrected.status_code == 200, corrected.content
    assert corrected.json()["labels"] == ["rain_cells", "sea_ice"] and corrected.json()["label_version"] == 1
    assert client.get("/api/v1/review/next/").json()["items"][0]["imagette"]["id"] == items["c"].pk

    # Both items left the queue (their predictions are reviewed) and both are in the next snapshot.
    assert set(Prediction.objects.filter(reviewed=True, model_version=active).values_list("imagette_id", flat=True)) \
        == {items["a"].pk, items["b"].pk, items["e"].pk}
    snapshot = snapshot_create()
    rows = {i.imagette_id: (i.label_mask, i.label_source) for i in SnapshotItem.objects.filter(snapshot=snapshot)}
    assert rows == {items["a"].pk: (0b101, "prediction"),
                    items["b"].pk: (slugs_to_mask(["rain_cells", "sea_ice"]), "expert")}
    notes = dict(LabelDecision.objects.values_list("imagette_id", "note"))
    assert notes[items["a"].pk] == "accepted the prediction of classifier v2"
    assert LabelDecision.objects.get(imagette=items["b"]).author == expert


def test_a_decision_taken_meanwhile_refuses_the_second_and_changes_nothing(fixed, expert, make_user, client_as):
    items, _ = fixed
    client = client_as(expert)
    shown = client.get("/api/v1/review/next/").json()["items"][0]
    seen_version = shown["imagette"]["label_version"]
    other = make_user(Role.EXPERT, "quicker")
    label_decide(imagette=items["a"], label_mask=0b1000, source="expert", author=other, expected_version=seen_version)
    before = (LabelDecision.objects.count(), list(Imagette.objects.values_list("pk", "label_mask", "label_version")),
              list(Prediction.objects.order_by("pk").values_list("pk", "reviewed")))
    for url, body in ((f"/api/v1/review/{items['a'].pk}/accept/", {"expected_version": seen_version}),
                      (f"/api/v1/review/{items['a'].pk}/correct/", {"labels": ["sea_ice"],
                                                                      "expected_version": seen_version})):
        refused = client.post(url, body, format="json")
        assert refused.status_code == 409, refused.content
        assert "decided by someone else" in refused.json()["detail"]
        assert refused.json()["imagette"] == {"id": items["a"].pk, "labels": ["rain_cells"],
                                              "label_source": "expert", "label_version": 1}
    after = (LabelDecision.objects.count(), list(Imagette.objects.values_list("pk", "label_mask", "label_version")),
             list(Prediction.objects.order_by("pk").values_list("pk", "reviewed")))
    assert after == before
    # The other expert's decision took the item out of the queue.
    assert client.get("/api/v1/review/next/").json()["items"][0]["imagette"]["id"] == items["b"].pk
    with pytest.raises(LabelConflict):
        review_accept(reviewer=expert, imagette_id=items["a"].pk, expected_version=seen_version)


def test_bad_review_input_is_refused_with_its_reason(fixed, expert, annotator, client_as):
    items, _ = fixed
    client = client_as(expert)
    pk = items["c"].pk
    for query, field in (("strategy=loudest", "strategy"), ("count=0", "count"), ("count=21", "count"),
                         ("measure=vibes", "measure"), ("exclude=1,x", "exclude")):
        response = client.get(f"/api/v1/review/next/?{query}")
        assert response.status_code == 400 and field in response.json(), (query, response.content)
    for body in ({"labels": ["snow"], "expected_version": 0}, {"labels": [], "expected_version": 0},
                 {"expected_version": 0}, {"labels": ["sea_ice"], "label_mask": 4, "expected_version": 0},
                 {"label_mask": 0, "expected_version": 0}, {"label_mask": 1 << 10, "expected_version": 0},
                 {"labels": ["sea_ice"]}):
        response = client.post(f"/api/v1/review/{pk}/correct/", body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert client.post(f"/api/v1/review/{pk}/accept/", {}, format="json").status_code == 400
    assert client.post(f"/api/v1/review/{pk}/accept/", {"expected_version": 0, "prediction": 10**9},
                       format="json").status_code == 400
    assert client.post("/api/v1/review/999999/accept/", {"expected_version": 0}, format="json").status_code == 404
    assert LabelDecision.objects.count() == 0 and not Imagette.objects.exclude(label_mask=None).exists()
    # label_mask is the other way to say the classes.
    response = client.post(f"/api/v1/review/{pk}/correct/", {"label_mask": 0b11, "expected_version": 0},
                           format="json")
    assert response.status_code == 200 and response.json()["labels"] == ["pure_ocean_waves", "wind_streaks"]
    # Annotators label; they do not review.
    annotator_client = client_as(annotator)
    assert annotator_client.get("/api/v1/review/next/").status_code == 403
    assert annotator_client.post(f"/api/v1/review/{pk}/accept/", {"expected_version": 1},
                                 format="json").status_code == 403


def test_the_review_endpoints_are_in_the_openapi_schema(db, expert, client_as):
    schema = client_as(expert).get("/api/schema/?format=json").json()
    assert {"/api/v1/review/next/", "/api/v1/review/{imagette_id}/accept/",
            "/api/v1/review/{imagette_id}/correct/"} <= set(schema["paths"])
    strategy = next(p for p in schema["paths"]["/api/v1/review/next/"]["get"]["parameters"] if p["name"] == "strategy")
    assert strategy["schema"]["enum"] == ["uncertain", "disagreement", "random"]


def test_correcting_without_a_prediction_and_accepting_nothing(db, expert):
    items = _imagettes(["p", "q"])
    item = review_correct(reviewer=expert, imagette_id=items["p"].pk, label_mask=0b1, expected_version=0)
    assert item.label_source == "expert"
    with pytest.raises(ReviewError, match="no prediction"):
        review_accept(reviewer=expert, imagette_id=items["q"].pk, expected_version=0)
    with pytest.raises(ValueError, match="at least one of the 10 classes"):
        review_correct(reviewer=expert, imagette_id=items["q"].pk, label_mask=0, expected_version=0)
    assert Imagette.objects.get(pk=items["q"].pk).label_version == 0


# --- the crowd queue prefers uncertain items ------------------------------------------------------
@override_settings(CRYOLABEL_GOLD_RATE=0.0, CRYOLABEL_VOTES_PER_ITEM=3)
def test_crowd_queue_prefers_uncertain_items_once_a_model_is_active(db, make_user):
    from annotations.services.queue import next_items
    from annotations.services.votes import vote_submit

    items = _imagettes(["n1", "n2", "n3", "n4", "n5"])
    crowd = [make_user(Role.ANNOTATOR) for _ in range(3)]
    # Without a model: closest to completion, then by id.
    assert [i.pk for i in next_items(annotator=crowd[0], count=2)] == [items["n1"].pk, items["n2"].pk]
    for name in ("n1", "n2"):
        vote_submit(annotator=crowd[0], imagette_id=items[name].pk, label_mask=1)  # leased just above

    version = _version(1, active=True)
    for name, entropy in (("n3", 0.2), ("n4", 0.9), ("n5", 0.5)):
        _predict(version, items[name], entropy=entropy)
    _predict(version, items["n1"], entropy=0.1)
    # Started items first (n1, n2 have a vote), then fresh ones, least certain first; n2 (no prediction) and
    # n1 (certain) still come before fresh ones because they were started.
    got = [i.pk for i in next_items(annotator=crowd[1], count=5)]
    assert got == [items[n].pk for n in ("n1", "n2", "n4", "n5", "n3")]
    # Unpredicted fresh items come after the predicted ones.
    extra = _imagettes(["n0"])["n0"]  # fresh, never predicted
    got = [i.pk for i in next_items(annotator=crowd[2], count=6)]
    assert got[:5] == [items[n].pk for n in ("n1", "n2", "n4", "n5", "n3")] and got[5] == extra.pk


# --- automatic retraining -------------------------------------------------------------------------
def _decide(item, mask=1):
    return label_decide(imagette=item, label_mask=mask, source="expert")


@override_settings(CRYOLABEL_RETRAIN_AFTER=3)
def test_auto_retrain_submits_once_with_its_reason(db, no_broker, django_capture_on_commit_callbacks):
    items = list(_imagettes([f"r{i}" for i in range(12)]).values())
    with django_capture_on_commit_callbacks(execute=True):
        for item in items[:4]:  # no model and no training yet: the first training is someone's decision
            _decide(item)
    assert not Job.objects.exists()

    _version(1, active=True, snapshot=_snapshot(3))
    with django_capture_on_commit_callbacks(execute=True):
        _decide(items[4])
        _decide(items[5])
    assert not Job.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        _decide(items[6])
    job = Job.objects.get()
    assert job.kind == "train" and job.params == {"network": "classifier"} and job.state == "queued"
    assert job.reason == "auto: 3 new curated labels since snapshot #3 (CRYOLABEL_RETRAIN_AFTER=3)"
    assert no_broker == ["training.train"]
    with django_capture_on_commit_callbacks(execute=True):  # one is queued: never a second
        for item in items[7:9]:
            _decide(item)
    assert Job.objects.count() == 1 and no_broker == ["training.train"]

    # It failed before making a snapshot: counting goes on from the job (the 2 labels that came while it
    # waited, and one more), not from the old snapshot.
    Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        _decide(items[9])
    second = Job.objects.order_by("-id").first()
    assert second.pk != job.pk
    assert second.reason == f"auto: 3 new curated labels since training job #{job.pk} (CRYOLABEL_RETRAIN_AFTER=3)"
    # A training that keeps failing is not resubmitted at every decision.
    Job.objects.filter(pk=second.pk).update(state=Job.State.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        _decide(items[10])
        _decide(items[11])
    assert Job.objects.count() == 2


@override_settings(CRYOLABEL_RETRAIN_AFTER=0)
def test_auto_retrain_off(db, django_capture_on_commit_callbacks):
    items = list(_imagettes(["o1", "o2"]).values())
    _version(1, active=True)
    with django_capture_on_commit_callbacks(execute=True):
        for item in items:
            _decide(item)
    assert not Job.objects.exists()


@override_settings(CRYOLABEL_RETRAIN_AFTER=3, CRYOLABEL_VOTES_PER_ITEM=3, CRYOLABEL_GOLD_RATE=0.0,
                   CRYOLABEL_CONSENSUS_EVERY=0)
def test_crowd_consensus_counts_towards_retraining(db, make_user, django_capture_on_commit_callbacks):
    """A consensus run that settles 3 items (above the snapshot's agreement threshold) starts a training; the
    snapshot already held 2 consensus labels, which are not new."""
    from annotations.services.consensus_run import consensus_run

    items = list(_imagettes(["k1", "k2", "k3", "k4", "k5"]).values())
    Imagette.objects.filter(pk__in=[items[0].pk, items[1].pk]).update(
        label_source="consensus", label_mask=1, label_agreement=0.9, queue_state="complete")
    _version(1, active=True, snapshot=_snapshot(5, counts={"per_source": {"consensus": 2}}))
    crowd = [make_user(Role.ANNOTATOR) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        for item in items[2:4]:
            for annotator in crowd:
                cast_vote(annotator, item, 0b10)
        consensus_run(method="majority")
    assert not Job.objects.exists()  # 2 new consensus labels
    with django_capture_on_commit_callbacks(execute=True):
        for annotator in crowd:
            cast_vote(annotator, items[4], 0b10)
        consensus_run(method="majority")
    job = Job.objects.get()
    assert job.reason == "auto: 3 new curated labels since snapshot #5 (CRYOLABEL_RETRAIN_AFTER=3)"
