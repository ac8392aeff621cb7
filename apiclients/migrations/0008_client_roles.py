import uuid

from django.db import migrations, models


def give_public_ids(apps, schema_editor):
    ApiClient = apps.get_model("apiclients", "ApiClient")
    for pk in ApiClient.objects.values_list("pk", flat=True).iterator():
        ApiClient.objects.filter(pk=pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("apiclients", "0007_personal_access_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="apiclient",
            name="role_assignments",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="apiclient",
            name="public_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(give_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apiclient",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
