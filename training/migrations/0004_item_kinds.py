"""Every snapshot, model version and export belongs to exactly one kind of item, and the database says so.

Existing rows keep everything: they are all of the imagettes (the only kind before this migration) and their
versions were judged on top-1 (the classifier's primary metric), which is what the new columns say of them. A
version's and an export's kind must be their snapshot's (eoplatform.schema.SameKindReference).
"""

from django.db import migrations, models

from eoplatform.schema import SameKindReference

KINDS = [("imagettes", "Wave Mode imagettes"), ("scenes", "Extra Wide scenes"), ("tracks", "altimetry tracks")]
KNOWN = models.Q(kind__in=["imagettes", "scenes", "tracks"])


def versions_take_their_snapshots_kind(apps, schema_editor):
    ModelVersion = apps.get_model("training", "ModelVersion")
    Snapshot = apps.get_model("training", "Snapshot")
    for kind in Snapshot.objects.values_list("kind", flat=True).distinct():
        ModelVersion.objects.filter(snapshot__kind=kind).exclude(kind=kind).update(kind=kind)


class Migration(migrations.Migration):

    dependencies = [
        ('training', '0003_export_pruned'),
    ]

    operations = [
        migrations.AlterField(
            model_name='snapshot',
            name='kind',
            field=models.CharField(choices=KINDS, max_length=20),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='kind',
            field=models.CharField(choices=KINDS, default='imagettes', help_text="What it learned: its snapshot's kind.",
                                   max_length=20),
            preserve_default=False,
        ),
        migrations.RunPython(versions_take_their_snapshots_kind, migrations.RunPython.noop),
        migrations.AddField(
            model_name='modelversion',
            name='primary_metric',
            field=models.CharField(default='top1', help_text='The metric val_score is (e.g. top1, r2, f1).',
                                   max_length=30),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name='modelversion',
            name='val_score',
            field=models.FloatField(blank=True, help_text="What activation compares: the validation score on the "
                                    "network's primary metric.", null=True),
        ),
        migrations.AlterField(
            model_name='export',
            name='kind',
            field=models.CharField(choices=KINDS, help_text="Its snapshot's kind.", max_length=20),
        ),
        migrations.AddConstraint(
            model_name='snapshot',
            constraint=models.CheckConstraint(condition=KNOWN, name='snapshot_kind_known'),
        ),
        migrations.AddConstraint(
            model_name='snapshot',
            constraint=models.UniqueConstraint(fields=('id', 'kind'), name='snapshot_id_kind'),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.CheckConstraint(condition=KNOWN, name='model_version_kind_known'),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.UniqueConstraint(fields=('id', 'kind'), name='model_version_id_kind'),
        ),
        migrations.AddConstraint(
            model_name='export',
            constraint=models.CheckConstraint(condition=KNOWN, name='export_kind_known'),
        ),
        SameKindReference(table='training_modelversion', column='snapshot_id', referenced='training_snapshot',
                          name='model_version_of_its_snapshots_kind'),
        SameKindReference(table='training_export', column='snapshot_id', referenced='training_snapshot',
                          name='export_of_its_snapshots_kind'),
    ]
