"""AlgorithmImage.uid/gid (the resolved, never-root user every container of the image runs as) and AlgorithmRun.key
(a fresh UUID per run naming its folder, so a run never reuses another run's folder). Existing runs get a key each."""

import uuid

from django.db import migrations, models


def give_each_run_a_key(apps, schema_editor):
    AlgorithmRun = apps.get_model("algorithms", "AlgorithmRun")
    for run in AlgorithmRun.objects.filter(key__isnull=True).only("pk"):
        AlgorithmRun.objects.filter(pk=run.pk).update(key=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="algorithmimage",
            name="uid",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="The USER resolved through the image's /etc/passwd (never 0); every container of the image "
                "runs with this explicit uid."),
        ),
        migrations.AddField(
            model_name="algorithmimage",
            name="gid",
            field=models.PositiveIntegerField(blank=True, null=True, help_text="The USER's group, resolved (never 0)."),
        ),
        migrations.AddField(model_name="algorithmrun", name="key", field=models.UUIDField(null=True, editable=False)),
        migrations.RunPython(give_each_run_a_key, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="algorithmrun",
            name="key",
            field=models.UUIDField(
                default=uuid.uuid4, editable=False, unique=True,
                help_text="Names the run's folder: never shared with another run, even one whose submission had the "
                "same id in another database."),
        ),
    ]
