"""A prediction belongs to the kind of its model version: this table holds the imagettes' predictions, so its
rows say "imagettes" (a check) and reference their version's (id, kind) (eoplatform.schema.SameKindReference).
Existing rows keep everything and take "imagettes", the only kind before this migration."""

from django.db import migrations, models

from eoplatform.schema import SameKindReference


class Migration(migrations.Migration):

    dependencies = [
        ('inference', '0003_review_leases'),
        ('training', '0004_item_kinds'),
    ]

    operations = [
        migrations.AddField(
            model_name='prediction',
            name='kind',
            field=models.CharField(choices=[('imagettes', 'Wave Mode imagettes'), ('scenes', 'Extra Wide scenes'),
                                            ('tracks', 'altimetry tracks')],
                                   db_default='imagettes', default='imagettes', editable=False,
                                   max_length=20),
        ),
        migrations.AddConstraint(
            model_name='prediction',
            constraint=models.CheckConstraint(condition=models.Q(kind='imagettes'), name='prediction_of_imagettes'),
        ),
        SameKindReference(table='inference_prediction', column='model_version_id',
                          referenced='training_modelversion', name='prediction_of_its_versions_kind'),
    ]
