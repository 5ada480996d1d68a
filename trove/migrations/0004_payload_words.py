"""The words of each payload, for ``text`` queries, and on PostgreSQL a GIN index on them.

Trove computes the words itself (``trove.query.payload_words``: runs of Unicode letters
and digits, casefolded) and stores them space-separated, so that ``text`` means the same
on every backend whatever a database's own tokenizer does. Existing rows are filled in
here. On PostgreSQL a GIN index on ``string_to_array(words, ' ')`` of latest versions
answers ``text`` queries; SQLite tests the column row by row.
"""

from django.db import migrations, models

from trove.query import payload_words

INDEX = "trove_latest_words"


def fill_words(apps, schema_editor):
    rows = apps.get_model("trove", "Event").objects.using(schema_editor.connection.alias)
    for row in rows.only("pk", "payload").iterator(chunk_size=1000):
        rows.filter(pk=row.pk).update(words=" ".join(payload_words(row.payload)))


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    table = apps.get_model("trove", "Event")._meta.db_table
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(INDEX)} ON {quote(table)} "
        f"USING gin (string_to_array({quote('words')}, ' ')) WHERE {quote('is_latest')}"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(INDEX)}")


class Migration(migrations.Migration):
    dependencies = [("trove", "0003_positions")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="words",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(fill_words, migrations.RunPython.noop),
        migrations.RunPython(create_index, drop_index),
    ]
