"""Schema rules Django's models cannot state, as migration operations.

`SameKindReference`: a row belongs to the kind of item of the row it references (a model version to its
snapshot's kind, a prediction to its version's). Django has no composite foreign key, so the migration adds it:

- PostgreSQL: a real foreign key on (reference, kind) -> the referenced table's (id, kind), which a unique
  constraint on that pair makes possible; deferred to the commit, as Django's own foreign keys are.
- SQLite (the embedded mode): triggers that refuse an insert or update whose kind differs from the referenced
  row's, and a change of the referenced row's kind while rows of the old kind point at it. SQLite drops a table's
  triggers when Django rebuilds the table (most AlterField operations do): a later migration that rebuilds
  one of these tables must run this operation again (tests/unit/test_kind_schema.py fails if it does not).

Both refuse with an IntegrityError, so the services' own checks are a second line, never the only one.
"""

from __future__ import annotations

from django.db.migrations.operations.base import Operation


class SameKindReference(Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, *, table: str, column: str, referenced: str, name: str) -> None:
        self.table, self.column, self.referenced, self.name = table, column, referenced, name

    def deconstruct(self):
        return (self.__class__.__qualname__, [],
                {"table": self.table, "column": self.column, "referenced": self.referenced, "name": self.name})

    def state_forwards(self, app_label, state) -> None:
        pass  # nothing Django's model state knows of

    def describe(self) -> str:
        return f"{self.table}.({self.column}, kind) references {self.referenced}.(id, kind)"

    def _forward_sql(self, vendor: str) -> list[str]:
        t, c, r, n = self.table, self.column, self.referenced, self.name
        if vendor == "postgresql":
            return [f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" FOREIGN KEY ("{c}", "kind") '
                    f'REFERENCES "{r}" ("id", "kind") DEFERRABLE INITIALLY DEFERRED']
        if vendor == "sqlite":
            refuse = f"SELECT RAISE(ABORT, '{n}: the kind of {t} differs from the kind of the {r} it references')"
            differs = f'NEW."kind" IS NOT (SELECT "kind" FROM "{r}" WHERE "id" = NEW."{c}")'
            return [
                f'CREATE TRIGGER "{n}_insert" BEFORE INSERT ON "{t}" FOR EACH ROW WHEN {differs} BEGIN {refuse}; END',
                f'CREATE TRIGGER "{n}_update" BEFORE UPDATE OF "kind", "{c}" ON "{t}" FOR EACH ROW WHEN {differs} '
                f"BEGIN {refuse}; END",
                f'CREATE TRIGGER "{n}_referenced" BEFORE UPDATE OF "kind" ON "{r}" FOR EACH ROW WHEN EXISTS '
                f'(SELECT 1 FROM "{t}" WHERE "{c}" = OLD."id" AND "kind" IS NOT NEW."kind") BEGIN {refuse}; END',
            ]
        return []  # another database: the services' checks only

    def _backward_sql(self, vendor: str) -> list[str]:
        if vendor == "postgresql":
            return [f'ALTER TABLE "{self.table}" DROP CONSTRAINT IF EXISTS "{self.name}"']
        if vendor == "sqlite":
            return [f'DROP TRIGGER IF EXISTS "{self.name}_{suffix}"' for suffix in ("insert", "update", "referenced")]
        return []

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        for sql in self._forward_sql(schema_editor.connection.vendor):
            schema_editor.execute(sql, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        for sql in self._backward_sql(schema_editor.connection.vendor):
            schema_editor.execute(sql, params=None)
