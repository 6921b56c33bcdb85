"""inference/api_map.py and map_selectors.py (the map of detections), and the predictions the imagette APIs
carry: experts always see them, annotators only when they ask for suggestions (blind voting by default)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from annotations.models import Consensus, GoldLabel, Imagette
from annotations.wv_classes import class_by_slug

pytestmark = pytest.mark.django_db

SEA_ICE, RAIN = class_by_slug("sea_ice").index, class_by_slug("rain_cells").index
WAVES, SLICKS = class_by_slug("pure_ocean_waves").index, class_by_slug("biological_slicks").index


def make_imagette(n: int, lat: float | None, lon: float | None, when: datetime | None = None, *,
                  label: int | None = None, source: str = "", queue_state: str = "complete") -> Imagette:
    """A row with no files behind it: the map and the APIs tested here never open them."""
    return Imagette.objects.create(
        key=f"map-{n}", content_hash=f"{n:064x}", source_product=f"S1A_WV_{n}", source_path=f"/x/{n}",
        source_format="geotiff", center_lat=lat, center_lon=lon,
        acquisition_time=when or datetime(2016, 1, 15, 12, tzinfo=UTC), width=8, height=8,
        data=f"d/{n}.npy", preview=f"p/{n}.png", label_mask=label, label_source=source, queue_state=queue_state,
    )


def make_version(number: int, *, active: bool):
    from training.models import ModelVersion, Snapshot

    snapshot = Snapshot.objects.get_or_create(number=1, defaults={"kind": "imagettes",
        "seed": 0, "fractions": {"train": 0.75, "val": 0.2, "test": 0.05}, "agreement_threshold": 0.5})[0]
    return ModelVersion.objects.create(network="classifier", number=number, snapshot=snapshot,
                                       checkpoint=f"models/classifier/v{number}.pt", is_active=active)


def predict(item: Imagette, version, mask: int, confidence: float, top1: int | None = None):
    from inference.models import Prediction

    top1 = top1 if top1 is not None else (mask & -mask).bit_length() - 1
    probabilities = [0.9 if mask >> i & 1 else 0.05 for i in range(10)]
    return Prediction.objects.create(imagette=item, model_version=version, probabilities=probabilities,
                                     label_mask=mask, top1=top1, confidence=confidence, entropy=0.2, margin=0.5)


@pytest.fixture
def world(db):
    """Eight imagettes: predicted, curated, both, neither, one without a position, two months, two versions."""
    active, old = make_version(2, active=True), make_version(1, active=False)
    jan, feb = datetime(2016, 1, 10, tzinfo=UTC), datetime(2016, 2, 3, tzinfo=UTC)
    items = {
        "ice_pred": make_imagette(1, 75.2, -10.4, jan),
        "rain_pred_low": make_imagette(2, 5.3, 150.1, jan),
        "waves_pred_feb": make_imagette(3, -40.0, 20.0, feb),
        "curated_ice": make_imagette(4, -65.5, 100.0, jan, label=1 << SEA_ICE, source="expert"),
        "both": make_imagette(5, 10.0, -30.0, jan, label=1 << SLICKS | 1 << RAIN, source="consensus"),
        "nothing": make_imagette(6, 20.0, 20.0, jan),
        "no_position": make_imagette(7, None, None, jan),
        "old_only": make_imagette(8, 30.0, 30.0, jan),
        "superseded": make_imagette(9, 40.0, 40.0, jan),
    }
    predict(items["ice_pred"], active, 1 << SEA_ICE, 0.93)
    predict(items["rain_pred_low"], active, 1 << RAIN, 0.35)
    predict(items["waves_pred_feb"], active, 0, 0.6, top1=WAVES)  # no class over threshold: drawn as its top-1
    predict(items["both"], active, 1 << WAVES, 0.8)
    predict(items["no_position"], active, 1 << SEA_ICE, 0.99)
    predict(items["old_only"], old, 1 << SEA_ICE, 0.99)  # not the active version: never shown
    predict(items["ice_pred"], old, 1 << WAVES, 0.5)
    superseded = predict(items["superseded"], active, 1 << SEA_ICE, 0.99)
    superseded.is_current = False  # another version predicted it since
    superseded.save(update_fields=["is_current"])
    return items, active


def points(client, query: str = "") -> dict:
    response = client.get(f"/api/v1/map/points/?{query}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert len({len(body[k]) for k in ("ids", "lat", "lon", "class_index", "mask", "confidence", "source")}) == 1
    return body


def by_id(body: dict) -> dict[int, dict]:
    keys = ("lat", "lon", "class_index", "mask", "confidence", "source")
    return {i: {k: body[k][n] for k in keys} for n, i in enumerate(body["ids"])}


def test_points_by_source(client_as, world, expert):
    items, active = world
    client = client_as(expert)
    predicted = points(client, "source=predicted")
    assert predicted["model_version"] == active.number and predicted["source_codes"] == ["curated", "predicted"]
    got = by_id(predicted)
    assert set(got) == {items[k].pk for k in ("ice_pred", "rain_pred_low", "waves_pred_feb", "both")}
    assert got[items["ice_pred"].pk] == {"lat": 75.2, "lon": -10.4, "class_index": SEA_ICE, "mask": 1 << SEA_ICE,
                                         "confidence": 0.93, "source": 1}
    assert got[items["waves_pred_feb"].pk]["class_index"] == WAVES and got[items["waves_pred_feb"].pk]["mask"] == 0
    assert got[items["both"].pk]["class_index"] == WAVES  # the prediction, not the crowd's label

    curated = by_id(points(client, "source=curated"))
    assert set(curated) == {items["curated_ice"].pk, items["both"].pk}
    assert curated[items["both"].pk]["mask"] == 1 << SLICKS | 1 << RAIN
    assert curated[items["both"].pk]["class_index"] == RAIN  # the lowest class of the label
    assert {p["source"] for p in curated.values()} == {0}

    # Any: the curated label where there is one, else the prediction; every item once.
    anything = points(client)
    assert len(anything["ids"]) == len(set(anything["ids"])) == anything["count"] == 5
    merged = by_id(anything)
    assert merged[items["both"].pk]["source"] == 0 and merged[items["ice_pred"].pk]["source"] == 1
    assert not {items[k].pk for k in ("nothing", "old_only", "superseded")} & set(merged)


def test_points_filters(client_as, world, expert):
    items, _ = world
    client = client_as(expert)
    ice = by_id(points(client, "classes=sea_ice"))
    assert set(ice) == {items["ice_pred"].pk, items["curated_ice"].pk}
    several = by_id(points(client, "classes=sea_ice,biological_slicks&source=any"))
    assert set(several) == {items["ice_pred"].pk, items["curated_ice"].pk, items["both"].pk}
    assert several[items["both"].pk]["class_index"] == SLICKS  # drawn in the class filtered for
    assert set(by_id(points(client, "classes=pure_ocean_waves&source=predicted"))) == {
        items["waves_pred_feb"].pk, items["both"].pk}

    february = by_id(points(client, "month=2016-02"))
    assert set(february) == {items["waves_pred_feb"].pk}
    assert points(client, "month=2015-12")["count"] == 0

    sure = by_id(points(client, "min_confidence=0.7&source=predicted"))
    assert set(sure) == {items["ice_pred"].pk, items["both"].pk}
    # min_confidence leaves curated labels alone.
    assert items["curated_ice"].pk in by_id(points(client, "min_confidence=0.99"))
    assert points(client, "classes=sea_ice&month=2016-01&min_confidence=0.95&source=predicted")["count"] == 0


def test_density_bins(client_as, world, expert):
    items, _ = world
    client = client_as(expert)
    make_imagette(20, 75.9, -10.1, label=1 << SEA_ICE, source="imported")  # same 10° cell as ice_pred
    response = client.get("/api/v1/map/density/?cell=10")
    assert response.status_code == 200
    body = response.json()
    cells = {(lat, lon): n for lat, lon, n in zip(body["lat"], body["lon"], body["count"], strict=True)}
    assert cells == {(70.0, -20.0): 2, (0.0, 150.0): 1, (-40.0, 20.0): 1, (-70.0, 100.0): 1, (10.0, -30.0): 1}
    assert body["total"] == points(client)["count"] == 6 and body["max"] == 2 and body["cell"] == 10
    assert body["model_version"] == world[1].number
    ice = client.get("/api/v1/map/density/?cell=0.5&classes=sea_ice&source=curated").json()
    # -65.5 is the south edge of its 0.5° cell.
    assert ice["total"] == 2 and set(zip(ice["lat"], ice["lon"], strict=True)) == {(75.5, -10.5), (-65.5, 100.0)}
    assert client.get("/api/v1/map/density/").json()["cell"] == 2  # the default cell


def test_months_and_no_active_version(client_as, world, expert):
    items, active = world
    client = client_as(expert)
    months = client.get("/api/v1/map/months/").json()
    assert months == {"months": ["2016-01", "2016-02"], "model_version": active.number}
    active.is_active = False
    active.save(update_fields=["is_active"])
    body = points(client)
    assert body["model_version"] is None and set(body["ids"]) == {items["curated_ice"].pk, items["both"].pk}
    assert points(client, "source=predicted")["count"] == 0


@pytest.mark.parametrize("query, field", [
    ("classes=snow", "classes"), ("classes=sea_ice,,nope", "classes"), ("month=2016-13", "month"),
    ("month=January", "month"), ("min_confidence=1.5", "min_confidence"), ("min_confidence=x", "min_confidence"),
    ("source=crowd", "source"),
])
def test_bad_filters_are_400_with_the_reason(client_as, world, expert, query, field):
    for endpoint in ("points", "density"):
        response = client_as(expert).get(f"/api/v1/map/{endpoint}/?{query}")
        assert response.status_code == 400 and field in response.json(), (endpoint, query, response.content)


def test_bad_cell_and_anonymous(api_client, client_as, world, expert):
    for cell in ("0", "31", "x"):
        response = client_as(expert).get(f"/api/v1/map/density/?cell={cell}")
        assert response.status_code == 400 and "cell" in response.json()
    api_client.force_authenticate(user=None)
    for endpoint in ("points", "density", "months"):
        assert api_client.get(f"/api/v1/map/{endpoint}/").status_code in (401, 403)


def test_annotators_map_leaves_out_what_they_may_still_vote_on(client_as, world, annotator, expert):
    items, _ = world
    open_item = make_imagette(30, 1.0, 1.0, queue_state="open")
    predict(open_item, world[1], 1 << RAIN, 0.9)
    GoldLabel.objects.create(imagette=items["curated_ice"], label_mask=1 << SEA_ICE)
    seen_by_expert = set(points(client_as(expert))["ids"])
    assert {open_item.pk, items["curated_ice"].pk} <= seen_by_expert
    seen_by_annotator = set(points(client_as(annotator))["ids"])
    assert seen_by_annotator == seen_by_expert - {open_item.pk, items["curated_ice"].pk}
    density = client_as(annotator).get("/api/v1/map/density/?cell=5").json()
    assert density["total"] == len(seen_by_annotator)


# --- predictions on the grids ----------------------------------------------------------------------------------
@override_settings(CRYOLABEL_GOLD_RATE=0.0)
def test_annotators_get_predictions_only_when_they_ask(client_as, db, annotator):
    version = make_version(1, active=True)
    queue = [make_imagette(40 + i, 0.0, float(i), queue_state="open") for i in range(3)]
    predict(queue[0], version, 1 << SEA_ICE | 1 << RAIN, 0.71)
    client = client_as(annotator)
    blind = client.get("/api/v1/queue/next/?count=3").json()
    assert len(blind) == 3 and all("prediction" not in item for item in blind)
    assert client.get("/api/v1/queue/next/?count=3&suggestions=0").json() == blind
    suggested = {item["id"]: item for item in client.get("/api/v1/queue/next/?count=3&suggestions=1").json()}
    assert set(suggested) == {i.pk for i in queue}  # the same held items, now with the model's answer
    assert suggested[queue[0].pk]["prediction"] == {
        "classes": ["rain_cells", "sea_ice"], "label_mask": 1 << SEA_ICE | 1 << RAIN, "top1": "rain_cells",
        "confidence": 0.71, "model_version": 1}
    assert suggested[queue[1].pk]["prediction"] is None
    assert not {"labels", "consensus", "label_source"} & set(suggested[queue[0].pk])
    assert client.get("/api/v1/queue/next/?suggestions=maybe").status_code == 400


def test_experts_always_see_the_active_prediction_without_n_plus_one(client_as, db, expert):
    active, old = make_version(2, active=True), make_version(1, active=False)
    items = [make_imagette(60 + i, 0.0, float(i), label=1, source="consensus") for i in range(12)]
    for item in items:
        Consensus.objects.create(imagette=item, label_mask=1, method="majority", agreement=0.5, n_votes=3)
        predict(item, active, 1 << SEA_ICE, 0.9)
        predict(item, old, 1 << WAVES, 0.4)
    client = client_as(expert)
    detail = client.get(f"/api/v1/imagettes/{items[0].pk}/").json()
    assert detail["prediction"]["classes"] == ["sea_ice"] and detail["prediction"]["model_version"] == 2

    def queries(url: str) -> tuple[int, list]:
        with CaptureQueriesContext(connection) as context:
            results = client.get(url).json()["results"]
        return len(context.captured_queries), results

    for url in ("/api/v1/imagettes/?limit={}", "/api/v1/consensus/?limit={}"):
        few, two = queries(url.format(2))
        many, twelve = queries(url.format(12))
        assert len(two) == 2 and len(twelve) == 12
        assert many == few, f"{url}: {many} queries for 12 items, {few} for 2"
        assert all(r["prediction"]["classes"] == ["sea_ice"] and r["prediction"]["confidence"] == 0.9
                   for r in twelve)
    decided = client.post(f"/api/v1/imagettes/{items[0].pk}/decision/", {"labels": ["sea_ice"]}, format="json")
    assert decided.status_code == 200 and decided.json()["prediction"]["model_version"] == 2
    make_imagette(99, 0.0, 0.0)
    bare = client.get("/api/v1/imagettes/?limit=100").json()["results"]
    assert [r["prediction"] for r in bare if r["key"] == "map-99"] == [None]
