"""A GIN index on the payload of latest versions, on PostgreSQL only.

Trove renders payload equality as ``payload @> '{"key": value}'`` on PostgreSQL, which a
GIN ``jsonb_path_ops`` index answers for any key, top-level or nested, without knowing the
keys in advance (a plain ``->`` key lookup cannot use it). It is partial, like the other
query indexes, because queries only ever see latest versions. SQLite has no GIN indexes:
there, index the payload paths you filter on (README, "Performance").
"""

from django.db import migrations

INDEX = "trove_latest_payload"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    table = apps.get_model("trove", "Event")._meta.db_table
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(INDEX)} ON {quote(table)} "
        f"USING gin ({quote('payload')} jsonb_path_ops) WHERE {quote('is_latest')}"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(INDEX)}")


class Migration(migrations.Migration):
    dependencies = [("trove", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
