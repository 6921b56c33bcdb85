"""Several SQL statements in one round trip to the database, where the database allows it.

Why: on the crowd queue's hot paths a request is a handful of short statements, and each costs a round trip to
PostgreSQL (0.4–1 ms on a shared machine, more than the statement itself). PostgreSQL's simple query protocol
takes several statements in one message (psycopg's client-side binding cursor, Django's default, sends it so), and
under READ COMMITTED each statement still takes its own snapshot when it starts: a statement after a lock-taking
one sees what was committed while the lock was awaited, exactly as if it had been sent on its own. SQLite runs
them one by one. The caller is inside a transaction (`transaction.atomic`): the batch is not a transaction of its
own.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

Statement = tuple[str, Sequence]


def execute_batch(cursor, statements: Sequence[Statement]) -> list[list[tuple] | None]:
    """Run `statements` in order, in one round trip on PostgreSQL; returns each one's rows (None for a statement
    that returns none, such as DELETE without RETURNING). An error in one statement raises, and the statements
    after it do not run."""
    if connection.vendor != "postgresql" or len(statements) == 1:
        results = []
        for sql, params in statements:
            cursor.execute(sql, params)
            results.append(cursor.fetchall() if cursor.description is not None else None)
        return results
    for sql, _params in statements:
        if ";" in sql:
            raise ValueError("a batched statement must not contain ';'")
    cursor.execute(";\n".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
    results = []
    for index in range(len(statements)):
        if index:
            cursor.nextset()
        results.append(cursor.fetchall() if cursor.description is not None else None)
    return results
