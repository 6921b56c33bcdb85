"""The item-kind spine in the schema: the migration that gave snapshots, model versions, exports and predictions
their kind keeps every row of a database filled by the demo (migrated back and forth over it), and afterwards the
database itself refuses a row whose kind is not the kind of what it references. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import hashlib

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from annotations import kinds
from annotations.models import Imagette
from inference.models import Prediction
from inference.services.predict import predictions_store
from training.models import Export, ModelVersion, Snapshot

BEFORE = [("training", "0003_export_pruned"), ("inference", "0003_review_leases")]
APPS = ("accounts", "annotations", "jobs", "training", "inference")


def _table_digests() -> dict[str, tuple[int, str]]:
    """Rows and a digest of their values, per table of the platform's apps, read with plain SQL (the models may
    not match the schema in between migrations). Columns added by the migration are left out."""
    added = {"kind", "primary_metric"}
    digests = {}
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        for model in apps.get_models():
            if model._meta.app_label not in APPS or model._meta.proxy or not model._meta.managed:
                continue
            table = model._meta.db_table
            if table not in existing:  # a table of a later migration, while migrated back before it
                continue
            columns = [f.column for f in model._meta.local_concrete_fields
                       if not (table in ("training_modelversion", "training_export", "training_snapshot",
                                         "inference_prediction") and f.column in added)]
            cols = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(f"SELECT {cols} FROM {connection.ops.quote_name(table)} ORDER BY 1")
            rows = cursor.fetchall()
            digests[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return digests


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _leaf_targets():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def demo_filled(transactional_db, settings, tmp_path):
    """A database as `make demo` leaves it (a smaller demo), plus a snapshot, a version with predictions and an
    export, which the demo makes only once someone trains and exports."""
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("demo_setup", labelled=40, unlabelled=24, crowd_items=12, gold=4, workers=1, scenes=0, verbosity=0)
    snapshot = kinds.part("imagettes", "snapshot_create")(note="migration test")
    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot, checkpoint="v1.pt",
                                          val_score=0.5, is_active=True)
    rows = [{"item_id": pk, "probabilities": [0.1] * 10, "label_mask": 1, "top1": 0, "confidence": 0.5,
             "entropy": 0.5, "margin": 0.1, "mutual_information": None}
            for pk in Imagette.objects.values_list("pk", flat=True)[:30]]
    predictions_store(version=version, rows=rows)
    Export.objects.create(number=1, snapshot=snapshot, format="csv", path="exports/one", items=snapshot.size)
    return snapshot


def test_the_kind_migration_keeps_every_row_of_the_demo(demo_filled) -> None:
    before = _table_digests()
    assert before["annotations_imagette"][0] >= 64 and before["annotations_vote"][0] > 0
    assert before["inference_prediction"][0] == 30 and before["training_modelversion"][0] == 1
    try:
        _migrate(BEFORE)
        with connection.cursor() as cursor:
            columns = [c.name for c in connection.introspection.get_table_description(cursor, "training_modelversion")]
        assert "kind" not in columns and "primary_metric" not in columns
        back = _table_digests()
        assert back == {t: d for t, d in before.items() if t in back}  # the way back keeps every row too
        assert all(before[t][0] == 0 for t in set(before) - set(back))  # (the later tables are empty in a demo)
    finally:
        _migrate(_leaf_targets())
    assert _table_digests() == before
    assert set(Snapshot.objects.values_list("kind", flat=True)) == {"imagettes"}
    assert list(ModelVersion.objects.values_list("kind", "primary_metric")) == [("imagettes", "top1")]
    assert set(Export.objects.values_list("kind", flat=True)) == {"imagettes"}
    assert Prediction.objects.filter(kind="imagettes").count() == 30


def _refused(make) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


def test_the_database_refuses_a_row_of_another_kind_than_what_it_references(transactional_db) -> None:
    imagettes = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={}, agreement_threshold=0.5)
    scenes = Snapshot.objects.create(kind="scenes", number=2, seed=0, fractions={}, agreement_threshold=0.5)
    _refused(lambda: Snapshot.objects.create(kind="rivers", number=3, seed=0, fractions={}, agreement_threshold=0.5))

    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=imagettes, checkpoint="v1.pt")
    assert version.kind == "imagettes"  # from its snapshot
    _refused(lambda: ModelVersion.objects.create(network="classifier", kind="scenes", number=2, snapshot=imagettes,
                                                 checkpoint="v2.pt"))  # fmt: skip
    _refused(lambda: ModelVersion.objects.filter(pk=version.pk).update(snapshot=scenes))
    _refused(lambda: Snapshot.objects.filter(pk=imagettes.pk).update(kind="tracks"))  # its version says imagettes
    scene_version = ModelVersion.objects.create(network="sic", number=1, snapshot=scenes, checkpoint="s1.pt")
    assert scene_version.kind == "scenes"

    _refused(lambda: Export.objects.create(number=1, kind="imagettes", snapshot=scenes, format="csv", path="x"))
    assert Export.objects.create(number=2, snapshot=scenes, format="csv", path="y").kind == "scenes"

    item = Imagette.objects.create(key="k", content_hash="0" * 64, source_product="p", source_path="/x",
                                   source_format="png", width=8, height=8, data="d.npy", preview="p.png")
    fields = dict(imagette=item, probabilities=[0.5] * 10, label_mask=1, top1=0, confidence=0.5, entropy=0.5,
                  margin=0.1)
    Prediction.objects.create(model_version=version, **fields)
    _refused(lambda: Prediction.objects.create(model_version=scene_version, **fields))  # imagettes' table
    _refused(lambda: Prediction.objects.create(model_version=scene_version, kind="scenes", **fields))
