"""quota usage: per-scope byte counters kept by triggers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 07:55:00

Every repository and namespace (first path component) is a scope, keyed `repository:<name>`
and `namespace:<name>`. `quota_contents` counts, per scope and digest, the references to that
content (blob links and manifests of the scope's repositories); `quota_usage` holds the bytes
of the distinct contents of each scope. Triggers on repository_blobs and manifests keep both
in the same transaction as the change, whichever code path makes it (pushes, mounts, DELETE,
garbage collection), so a quota check is one primary-key read however large the scope.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (table, expression of the content's size in an AFTER INSERT trigger)
_COUNTED = (
    ("repository_blobs", "(SELECT size FROM blobs WHERE digest = NEW.digest)"),
    ("manifests", "NEW.size"),
)


def upgrade() -> None:
    op.create_table(
        "quota_contents",
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("refs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "digest", name=op.f("pk_quota_contents")),
    )
    op.create_table(
        "quota_usage",
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_quota_usage")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()
    _backfill()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in _COUNTED:
            op.execute(f"DROP TRIGGER IF EXISTS quota_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS berth_quota_{table}()")
        op.execute("DROP FUNCTION IF EXISTS berth_quota_count(integer, text, bigint, integer)")
    else:
        for table, _ in _COUNTED:
            op.execute(f"DROP TRIGGER IF EXISTS quota_{table}_added")
            op.execute(f"DROP TRIGGER IF EXISTS quota_{table}_removed")
    op.drop_table("quota_usage")
    op.drop_table("quota_contents")


def _namespace_sql(name: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"split_part({name}, '/', 1)"
    slash = f"instr({name}, '/')"
    return f"CASE WHEN {slash} > 0 THEN substr({name}, 1, {slash} - 1) ELSE {name} END"


def _sqlite_triggers() -> None:
    # SQLite triggers have no variables and no WITH: the row's two scopes come from a subquery.
    def scopes(row: str) -> str:
        namespace = _namespace_sql("name", "sqlite")
        return (
            f"(SELECT 'repository:' || name AS scope FROM repositories"
            f" WHERE id = {row}.repository_id"
            f" UNION ALL SELECT 'namespace:' || {namespace} FROM repositories"
            f" WHERE id = {row}.repository_id)"
        )

    def counted(row: str) -> str:
        return (
            f"FROM {scopes(row)} s JOIN quota_contents c "
            f"ON c.scope = s.scope AND c.digest = {row}.digest WHERE c.refs = 1"
        )

    for table, size in _COUNTED:
        added = [
            f"INSERT INTO quota_contents (scope, digest, size, refs) "
            f"SELECT s.scope, NEW.digest, {size}, 1 FROM {scopes('NEW')} s WHERE true "
            "ON CONFLICT (scope, digest) DO UPDATE SET refs = refs + 1;",
            f"INSERT INTO quota_usage (scope, bytes) SELECT c.scope, c.size {counted('NEW')} "
            "ON CONFLICT (scope) DO UPDATE SET bytes = bytes + excluded.bytes;",
        ]
        removed = [
            f"UPDATE quota_usage SET bytes = bytes - (SELECT c.size {counted('OLD')} "
            "AND c.scope = quota_usage.scope) "
            f"WHERE scope IN (SELECT c.scope {counted('OLD')});",
            f"DELETE FROM quota_contents WHERE digest = OLD.digest AND refs = 1 "
            f"AND scope IN (SELECT scope FROM {scopes('OLD')});",
            f"UPDATE quota_contents SET refs = refs - 1 WHERE digest = OLD.digest "
            f"AND scope IN (SELECT scope FROM {scopes('OLD')});",
        ]
        op.execute(
            f"CREATE TRIGGER quota_{table}_added AFTER INSERT ON {table} FOR EACH ROW BEGIN\n"
            + "\n".join(added)
            + "\nEND"
        )
        op.execute(
            f"CREATE TRIGGER quota_{table}_removed AFTER DELETE ON {table} FOR EACH ROW BEGIN\n"
            + "\n".join(removed)
            + "\nEND"
        )


def _postgresql_triggers() -> None:
    op.execute(
        """
CREATE FUNCTION berth_quota_count(repo_id integer, content text, content_size bigint,
                                  delta integer) RETURNS void AS $$
DECLARE
    repo text;
    key text;
    remaining integer;
BEGIN
    SELECT name INTO repo FROM repositories WHERE id = repo_id;
    IF repo IS NULL THEN
        RETURN;
    END IF;
    -- repository first, then namespace: every transaction locks counters in one order
    FOREACH key IN ARRAY ARRAY['repository:' || repo, 'namespace:' || split_part(repo, '/', 1)]
    LOOP
        IF delta > 0 THEN
            INSERT INTO quota_contents (scope, digest, size, refs)
                VALUES (key, content, content_size, 1)
                ON CONFLICT (scope, digest) DO UPDATE SET refs = quota_contents.refs + 1
                RETURNING refs INTO remaining;
            IF remaining = 1 THEN
                INSERT INTO quota_usage (scope, bytes) VALUES (key, content_size)
                    ON CONFLICT (scope) DO UPDATE SET bytes = quota_usage.bytes + EXCLUDED.bytes;
            END IF;
        ELSE
            UPDATE quota_contents SET refs = refs - 1 WHERE scope = key AND digest = content
                RETURNING refs, size INTO remaining, content_size;
            IF remaining = 0 THEN
                DELETE FROM quota_contents WHERE scope = key AND digest = content;
                UPDATE quota_usage SET bytes = bytes - content_size WHERE scope = key;
            END IF;
        END IF;
    END LOOP;
END
$$ LANGUAGE plpgsql
"""
    )
    for table, size in _COUNTED:
        op.execute(
            f"""
CREATE FUNCTION berth_quota_{table}() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM berth_quota_count(NEW.repository_id, NEW.digest, {size}, 1);
    ELSE
        PERFORM berth_quota_count(OLD.repository_id, OLD.digest, 0, -1);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
        )
        op.execute(
            f"CREATE TRIGGER quota_{table} AFTER INSERT OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION berth_quota_{table}()"
        )


def _backfill() -> None:
    """Count what the registry holds already, as the triggers would have."""
    namespace = _namespace_sql("r.name", op.get_bind().dialect.name)
    op.execute(
        f"""
WITH contents AS (
    SELECT rb.repository_id AS repository_id, rb.digest AS digest, b.size AS size
    FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
    UNION ALL
    SELECT m.repository_id, m.digest, m.size FROM manifests m
), scoped AS (
    SELECT 'repository:' || r.name AS scope, c.digest AS digest, c.size AS size
    FROM contents c JOIN repositories r ON r.id = c.repository_id
    UNION ALL
    SELECT 'namespace:' || {namespace}, c.digest, c.size
    FROM contents c JOIN repositories r ON r.id = c.repository_id
)
INSERT INTO quota_contents (scope, digest, size, refs)
SELECT scope, digest, max(size), count(*) FROM scoped GROUP BY scope, digest
"""
    )
    op.execute(
        "INSERT INTO quota_usage (scope, bytes) "
        "SELECT scope, sum(size) FROM quota_contents GROUP BY scope"
    )
