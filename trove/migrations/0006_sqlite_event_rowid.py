"""On SQLite, ``trove_event`` without ``AUTOINCREMENT``: one page less written per commit.

Django declares every auto primary key ``AUTOINCREMENT`` on SQLite, which makes each insert
also rewrite the table's row of ``sqlite_sequence``: one more page in the write-ahead log
of every commit, for a guarantee events do not need. Without it a new row's id is one
more than the highest, so ids still only grow, as long as the newest rows are never
deleted; Trove never deletes an event (only emptying the whole table, as a test flush
does, starts them again from 1, which the word index's triggers follow, migration 0005).

The table is remade as Django's SQLite schema editor remakes one it alters: a copy with
the same columns and ids, then its indexes and triggers again. Nothing changes on
PostgreSQL, nor in Django's migration state. A later migration that makes Django remake
the table declares ``AUTOINCREMENT`` again; the table then works as before, only writes
cost that page again.
"""

from django.db import migrations

TABLE = "trove_event"
REMADE = "trove_event__rowid"


def remake_without_autoincrement(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [TABLE])
        (create,) = cursor.fetchone()
        if "AUTOINCREMENT" not in create:
            return
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = %s "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            [TABLE],
        )
        dependents = [sql for (sql,) in cursor.fetchall()]
        head, columns = create.split("(", 1)
        if head.strip() != f'CREATE TABLE "{TABLE}"':
            return  # not the table Django created: left as it is
        schema_editor.execute(
            f'CREATE TABLE "{REMADE}" (' + columns.replace(" AUTOINCREMENT", "", 1)
        )
        schema_editor.execute(f'INSERT INTO "{REMADE}" SELECT * FROM "{TABLE}"')
        schema_editor.execute(f'DROP TABLE "{TABLE}"')
        schema_editor.execute(f'ALTER TABLE "{REMADE}" RENAME TO "{TABLE}"')
        for sql in dependents:
            schema_editor.execute(sql)


def catch_the_counter_up(apps, schema_editor):
    """Backwards, for the release before this one, which numbers single writes from the
    position counter too: since this migration they take the position after the highest
    stored without stepping the counter, which therefore lags behind (the table keeps
    having no ``AUTOINCREMENT``, which that release does not need)."""
    if schema_editor.connection.vendor != "sqlite":
        return
    counter = apps.get_model("trove", "PositionCounter")._meta.db_table
    schema_editor.execute(
        f'INSERT INTO "{counter}" (id, last) '
        f'SELECT 1, coalesce(max(position), 0) FROM "{TABLE}" WHERE true '
        "ON CONFLICT (id) DO UPDATE SET last = max(last, excluded.last)"
    )


class Migration(migrations.Migration):
    dependencies = [("trove", "0005_word_index")]

    operations = [migrations.RunPython(remake_without_autoincrement, catch_the_counter_up)]
