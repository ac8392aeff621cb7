"""Write implies read (apiclients.catalog.normalize_grants): a client saved
with "alerts:write" alone also holds "alerts:read", as the console and its
tokens now show it."""

from django.db import migrations


def add_read_to_write_grants(apps, schema_editor):
    ApiClient = apps.get_model("apiclients", "ApiClient")
    for client in ApiClient.objects.only("pk", "grants").iterator(chunk_size=500):
        grants = list(client.grants or [])
        missing = [
            g.rsplit(":", 1)[0] + ":read"
            for g in grants
            if isinstance(g, str) and g.endswith(":write")
        ]
        missing = [g for g in dict.fromkeys(missing) if g not in grants]
        if missing:
            ApiClient.objects.filter(pk=client.pk).update(grants=grants + missing)


class Migration(migrations.Migration):
    dependencies = [("apiclients", "0005_audit_lockouts")]

    operations = [migrations.RunPython(add_read_to_write_grants, migrations.RunPython.noop)]
