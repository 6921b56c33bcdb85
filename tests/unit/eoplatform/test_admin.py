"""/admin/ shows the platform's core rows (imported explicitly by eoplatform/urls.py: no autodiscovery): every
changelist and a change page answer 200 for a superuser, searches with any text too, hostile text stored in a
field comes back escaped, and rows kept by services cannot be added, changed or deleted there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from annotations.models import (
    Assignment,
    Consensus,
    ConsensusRun,
    GoldLabel,
    Imagette,
    LabelDecision,
    Track,
    TrackCollocation,
    TrackLabelRange,
    Vote,
)
from inference.models import Prediction, ReviewLease, TrackPrediction
from jobs.models import Job
from training.models import Export, ModelVersion, Snapshot, SnapshotItem

pytestmark = pytest.mark.django_db
HOSTILE = '<img src=x onerror="alert(1)">'
ESCAPED = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
CORE = [Imagette, Vote, Assignment, Consensus, ConsensusRun, GoldLabel, LabelDecision, Snapshot, SnapshotItem,
        ModelVersion, Export, Prediction, ReviewLease, Job, Track, TrackCollocation, TrackLabelRange, TrackPrediction]


@pytest.fixture
def rows(db):
    user = get_user_model().objects.create_user("crowd-1", password="x")
    job = Job.objects.create(kind="export", message=HOSTILE, params={"format": "csv"})
    items = [Imagette.objects.create(key=f"{HOSTILE}-{i}", content_hash=f"{i:064x}", source_product=HOSTILE,
                                     source_path="/data/x.tif", source_format="geotiff", width=8, height=8,
                                     data=f"imagettes/{i}.npy", preview=f"previews/{i}.png", label_mask=1 << i,
                                     label_source="consensus", label_agreement=0.8, vote_count=1)
             for i in range(3)]
    now = timezone.now()
    for item in items:
        Vote.objects.create(imagette=item, annotator=user, label_mask=item.label_mask, seconds=2.0)
        Consensus.objects.create(imagette=item, label_mask=item.label_mask, method="majority", agreement=0.8,
                                 n_votes=1)
        LabelDecision.objects.create(imagette=item, label_mask=item.label_mask, source="expert", note=HOSTILE)
    Assignment.objects.create(imagette=items[0], annotator=user, expires_at=now + timedelta(minutes=5))
    ConsensusRun.objects.create(method="majority", items=3, votes=3)
    GoldLabel.objects.create(imagette=items[1], label_mask=2)
    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0.6, size=3,
                                       note=HOSTILE)
    for item in items:
        SnapshotItem.objects.create(snapshot=snapshot, imagette=item, label_mask=item.label_mask,
                                    label_source="consensus", agreement=0.8, split="train")
    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot, checkpoint="c.pt",
                                          activation_reason=HOSTILE, job=job)
    Export.objects.create(number=1, snapshot=snapshot, format="csv", path=f"exports/{HOSTILE}", job=job,
                          pruned_reason=HOSTILE, created_by=user)
    Prediction.objects.create(imagette=items[0], model_version=version, probabilities=[0.5] * 10, label_mask=1,
                              top1=0, confidence=0.5, entropy=0.9, margin=0.1, job=job)
    ReviewLease.objects.create(imagette=items[2], reviewer=user, expires_at=now + timedelta(minutes=5))
    track = Track.objects.create(
        key=HOSTILE, source_path="/x.nc", source_format="saral_sgdr", mission=HOSTILE[:20], instrument="AltiKa",
        band="Ka", rate_hz=40, gates=128, time_start=now, time_stop=now, n_waveforms=10,
        geometry={"type": "LineString", "coordinates": [[0, 70], [1, 71]]}, min_lat=70, max_lat=71, min_lon=0,
        max_lon=1, data="tracks/x", attributes={"title": HOSTILE})
    TrackCollocation.objects.create(track=track, window_s=3600, threshold_m=200, counts={"lead": 1})
    TrackLabelRange.objects.create(track=track, start=0, stop=5, label="lead", author=user, note={"why": HOSTILE})
    tracks_snapshot = Snapshot.objects.create(kind="tracks", number=2, seed=0, fractions={"train": 1.0},
                                              agreement_threshold=0, size=1)
    leads = ModelVersion.objects.create(network="leads", kind="tracks", number=1, snapshot=tracks_snapshot,
                                        checkpoint="l.pt")
    TrackPrediction.objects.create(track=track, model_version=leads, data="predictions/x.npz", confidence=0.9,
                                   uncertainty=0.1)


@pytest.fixture
def superuser_client(client, rows):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
    return client


def test_every_core_model_is_registered():
    import eoplatform.urls  # noqa: F401 (it imports the admin modules: no autodiscovery)

    assert [m.__name__ for m in CORE if m not in admin.site._registry] == []


@pytest.mark.parametrize("model", CORE, ids=lambda m: m.__name__)
def test_pages_answer_and_escape(superuser_client, model):
    meta = model._meta
    changelist = superuser_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert changelist.status_code == 200
    html = changelist.content.decode()
    assert HOSTILE not in html
    obj = model.objects.order_by("pk").first()
    change = superuser_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
    assert change.status_code == 200
    assert HOSTILE not in change.content.decode()
    if model in (Imagette, LabelDecision, Job, ModelVersion, Snapshot, Export):
        assert ESCAPED in html or ESCAPED in change.content.decode()
    # Any search text is answered (no 500 for text on an '=id' search field), hostile text too.
    for term in (HOSTILE, "12", "x' OR 1=1 --"):
        found = superuser_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"), {"q": term})
        assert found.status_code == 200, term
        assert HOSTILE not in found.content.decode()
    # Read-only: services keep these rows in step, so no add, change or delete here.
    assert superuser_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add")).status_code == 403
    assert superuser_client.post(reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[obj.pk]),
                                 {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
