"""The `demo_setup` command and demo/data.py: the demo's data and crowd, made once, resumed when interrupted."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from annotations.models import ConsensusRun, GoldLabel, Imagette, Scene, ScenePolygon, Track, Vote
from demo.data import INGESTED, DemoSet, demo_data_ensure
from demo.tasks import demo_ingest_job
from jobs.models import Job
from jobs.runner import run_job


@pytest.fixture
def fast(settings):
    # Through the settings fixture, not an override_settings decorator: the test changes settings too, and mixing
    # the two leaks the decorator's settings into every later test.
    settings.CRYOLABEL_CONSENSUS_METHOD, settings.CRYOLABEL_GOLD_RATE = "majority", 0.3
    return settings


def _state() -> tuple:
    return (Imagette.objects.count(), Vote.objects.count(), GoldLabel.objects.count(), ConsensusRun.objects.count(),
            Job.objects.count(), User.objects.count())


@pytest.mark.django_db
def test_demo_setup_makes_data_and_crowd_once(fast, settings, tmp_path):
    settings.VAR_DIR, settings.MEDIA_ROOT = tmp_path, tmp_path / "media"
    out = io.StringIO()
    call_command("demo_setup", labelled=12, unlabelled=30, crowd_items=6, gold=4, workers=1, scenes=2, scene_size=128,
                 tracks=1, stdout=out)

    text = out.getvalue()
    # The scenes, their synthetic chart and the tracks are queued for the worker, which writes them (seconds of CPU
    # off the demo's start) and ingests them in one demo ingest job: scenes, chart, the demo people's lead
    # polygons, then the tracks, collocated with them; the chart stays there for a user to upload from the polar
    # map too.
    demo = tmp_path / "demo"
    scene_job = Job.objects.get(kind="demo_ingest", params__paths=[
        str(demo / "scenes"), str(demo / "charts" / "demo_ice_chart_20201102.geojson"), str(demo / "tracks")])
    assert scene_job.state == Job.State.QUEUED and f"queued (job {scene_job.pk})" in text
    assert scene_job.params["write"] == {"scenes": 2, "size": 128, "tracks": 1}
    assert not (demo / "scenes").exists()
    assert "crowd8     crowd8-demo     annotator  careless" in text
    assert Imagette.objects.filter(label_source=Imagette.LabelSource.IMPORTED).count() == 12
    imported = Imagette.objects.filter(label_source=Imagette.LabelSource.IMPORTED).first()
    assert (imported.width, imported.height) == (128, 128)  # the imported set: 128 px of 256 px scenes
    assert Imagette.objects.filter(queue_state=Imagette.QueueState.COMPLETE).count() >= 5
    assert GoldLabel.objects.count() == 4 and ConsensusRun.objects.count() == 1
    assert User.objects.filter(username__startswith="crowd").count() == 8
    made = _state()

    again = io.StringIO()
    call_command("demo_setup", labelled=12, unlabelled=30, crowd_items=6, gold=4, workers=1, scenes=2, scene_size=128,
                 tracks=1, stdout=again)
    assert _state() == made
    assert "crowd1     crowd1-demo" in again.getvalue()
    assert f"queued for ingest (job {scene_job.pk})" in again.getvalue()  # not queued twice

    # The worker's job: written, then ingested.
    assert run_job(scene_job.pk, demo_ingest_job) == Job.State.SUCCEEDED, Job.objects.get(pk=scene_job.pk).error
    assert len(list((demo / "scenes").glob("*.SAFE"))) == 2
    assert (demo / "charts" / "demo_ice_chart_20201102.geojson").is_file()
    assert Scene.objects.count() == 2 and Track.objects.count() == 1
    assert ScenePolygon.objects.filter(label="lead", source="person").exists()  # the demo tracer's leads


@pytest.mark.django_db(transaction=True)
def test_demo_data_in_worker_processes_and_resumed(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    sets = [DemoSet("imported", 4, "tengeop", 1, size=64), DemoSet("crowd", 5, "mixed", 2, size=64)]
    (tmp_path / "crowd").mkdir()
    (tmp_path / "crowd" / "stray.tif").write_bytes(b"left by an interrupted start")
    lines = []

    steps = []
    truth = demo_data_ensure(root=tmp_path, sets=sets, workers=2, report=lines.append,
                             prepare=lambda: steps.append(("prepare", Imagette.objects.count())),
                             ingested=lambda s: steps.append((s.name, Imagette.objects.count())))

    assert len(lines) == 2 and all(path.exists() for path in truth)
    # The migration's turn comes before any ingest; each set is announced once it is in.
    assert steps[0] == ("prepare", 0) and sorted(name for name, _ in steps[1:]) == ["crowd", "imported"]
    assert all(count >= {"crowd": 5, "imported": 4}[name] for name, count in steps[1:])
    assert Imagette.objects.count() == 9 and Job.objects.filter(kind="ingest", state="succeeded").count() == 2
    assert not (tmp_path / "crowd" / "stray.tif").exists()
    # An ingest interrupted before its mark is run again: the same pixels count once.
    (tmp_path / "crowd" / INGESTED).unlink()
    assert demo_data_ensure(root=tmp_path, sets=sets, workers=2, report=lines.append) == truth
    assert Imagette.objects.count() == 9 and len(lines) == 3
