"""On SQLite, an FTS5 index of the events' words (migration 0004) for ``text`` queries.

It is an external-content table over ``trove_event.words``: it stores no second copy of
the words, and triggers keep it in step, so the code that writes events does not know it
exists: every 256th inserted row indexes the rows inserted since the last (one index write
per 256 rows, not per row), deletes and rewrites update it at once, and queries count the
rows not yet indexed as candidates. Queries use it to find candidate rows, then test the
words column exactly (``trove.storage.sql.WordIndex``). PostgreSQL already has its GIN index (0004): nothing
changes there.
"""

from django.db import migrations

from trove.storage.sql import WordIndex

INDEX = WordIndex(
    table="trove_event_words",
    content="trove_event",
    content_rowid="id",
    catch_up_every=256,
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in [*INDEX.statements(), *INDEX.rebuild()]:
        schema_editor.execute(statement)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for trigger in INDEX.triggers():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    schema_editor.execute(f"DROP TABLE IF EXISTS {INDEX.table}")
    schema_editor.execute(f"DROP TABLE IF EXISTS {INDEX.mark}")


class Migration(migrations.Migration):
    dependencies = [("trove", "0004_payload_words")]

    operations = [migrations.RunPython(create_index, drop_index)]
