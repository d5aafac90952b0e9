"""MaskletRevision.label: the object's label when the revision was made (a draft may rename
it). Existing revisions take their masklet's current label."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_labels(apps, schema_editor):
    Masklet = apps.get_model("engine", "Masklet")
    MaskletRevision = apps.get_model("engine", "MaskletRevision")
    label = Masklet.objects.filter(pk=OuterRef("masklet_id")).values("label")[:1]
    MaskletRevision.objects.update(label=Subquery(label))


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0010_project_memory_policy"),
    ]

    operations = [
        migrations.AddField(
            model_name="maskletrevision",
            name="label",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(fill_labels, migrations.RunPython.noop),
    ]
