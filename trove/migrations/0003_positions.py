"""Positions (SPEC §9): a ``position`` per stored version, the counter that hands them out,
and the positions of processors.

Versions stored before this migration are numbered 1, 2, … in ``createdAt`` order (then
event id, then version), and the counter starts after the last of them.
"""

from django.db import migrations, models


def number_existing_versions(apps, schema_editor):
    quote = schema_editor.quote_name
    table = quote(apps.get_model("trove", "Event")._meta.db_table)
    counter = quote(apps.get_model("trove", "PositionCounter")._meta.db_table)
    schema_editor.execute(
        f"UPDATE {table} SET position = numbered.n FROM (SELECT id, row_number() OVER "
        "(ORDER BY created_at, event_id, version) AS n "
        f"FROM {table}) AS numbered WHERE {table}.id = numbered.id"
    )
    schema_editor.execute(
        f"INSERT INTO {counter} (id, last) SELECT 1, coalesce(max(position), 0) FROM {table}"
    )


class Migration(migrations.Migration):
    dependencies = [("trove", "0002_payload_gin_index")]

    operations = [
        migrations.CreateModel(
            name="PositionCounter",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("last", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="ProcessorPosition",
            fields=[
                ("name", models.CharField(max_length=200, primary_key=True, serialize=False)),
                (
                    "position",
                    models.BigIntegerField(default=0, help_text="The last position handled."),
                ),
                (
                    "failures",
                    models.PositiveIntegerField(
                        default=0, help_text="Failed attempts in a row at the next version."
                    ),
                ),
                ("last_error", models.TextField(blank=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="event",
            name="position",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunPython(number_existing_versions, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="event",
            name="position",
            field=models.BigIntegerField(unique=True),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["schema_id", "position"], name="trove_feed_schema"),
        ),
    ]
