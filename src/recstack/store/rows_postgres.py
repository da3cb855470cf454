"""Online event writes on PostgreSQL: group commit (``group_commit``) with this SQL.

Per transaction, in the common case three round trips on the writer's own connection (no
pool checkout, ping or reset per call): users and items looked up in one query, the events of
every batch inserted from binary arrays with ``ON CONFLICT (event_id) DO NOTHING``, the
commit. Missing users (and items, where asked) are created without drawing sequence values
for ids that exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from recstack.store.group_commit import Batch, GroupCommitWriter, Outcome, item_checks, settle

_CREATE = (
    "INSERT INTO {table} (external_id) SELECT e FROM unnest(%b::text[]) WITH ORDINALITY "
    "AS u(e, n) WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.external_id = u.e) "
    "ORDER BY n ON CONFLICT (external_id) DO NOTHING"
)
_LOOKUP = (
    "SELECT 0, external_id, id FROM users WHERE external_id = ANY(%b::text[]) "
    "UNION ALL SELECT 1, external_id, id FROM items WHERE external_id = ANY(%b::text[])"
)
_INSERT = """
INSERT INTO interactions (event_id, user_id, item_id, event_type, value, "timestamp", context)
SELECT e, u, i, t, v, ts, c::json
FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::float8[], %b::bigint[],
            %b::text[]) AS r(e, u, i, t, v, ts, c)
ON CONFLICT (event_id) DO NOTHING
"""


def postgres_event_writer(engine: Engine) -> GroupCommitWriter:
    """The group-committing event writer of a PostgreSQL engine."""
    return GroupCommitWriter(engine, _transaction)


def _transaction(raw: Any, group: list[Batch]) -> None:
    """Write ``group`` in one transaction; outcomes are set only once it committed."""
    try:
        outcomes = _write(raw, group)
        raw.commit()
    except BaseException:
        if not (raw.broken or raw.closed):
            raw.rollback()
        raise
    settle(group, outcomes)


def _write(raw: Any, group: list[Batch]) -> list[Outcome]:
    """Users and items looked up in one query; items created for batches that ask, batches
    naming unknown items failed, missing users created; then one insert for every batch."""
    users, items = _lookup(
        raw,
        list(dict.fromkeys(u for b in group for u in b.columns[1])),
        list(dict.fromkeys(i for b in group for i in b.columns[2])),
    )
    wanted = (i for b in group if b.create_items for i in b.columns[2] if i not in items)
    create = list(dict.fromkeys(wanted))
    if create:
        raw.execute(_CREATE.format(table="items"), (create,))
        items.update(_lookup(raw, [], create)[1])
    outcomes = item_checks(group, items)
    ready = [b for b, o in zip(group, outcomes, strict=True) if not isinstance(o, Exception)]
    new_users = list(dict.fromkeys(u for b in ready for u in b.columns[1] if u not in users))
    if new_users:
        raw.execute(_CREATE.format(table="users"), (new_users,))
        users.update(_lookup(raw, new_users, [])[0])
    counts = iter(_insert(raw, ready, users, items))
    return [o if isinstance(o, Exception) else next(counts) for o in outcomes]


def _lookup(
    raw: Any, user_ids: list[str], item_ids: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    found: tuple[dict[str, int], dict[str, int]] = ({}, {})
    if user_ids or item_ids:
        for kind, external_id, sid in raw.execute(_LOOKUP, (user_ids, item_ids)).fetchall():
            found[kind][external_id] = sid
    return found


def _insert(raw: Any, ready: list[Batch], users: dict, items: dict) -> list[int]:
    """One ``INSERT ... SELECT FROM unnest`` for every batch. With several batches it returns
    the new event ids, and each counts as new for the first batch (in order) that holds it:
    rows go in in array order, so a later repeat is the one skipped."""
    if not ready:
        return []
    columns = [[v for b in ready for v in b.columns[j]] for j in range(7)]
    columns[1] = [users[u] for u in columns[1]]
    columns[2] = [items[i] for i in columns[2]]
    if len(ready) == 1:
        return [max(raw.execute(_INSERT, columns).rowcount, 0)]
    new = {row[0] for row in raw.execute(_INSERT + " RETURNING event_id", columns).fetchall()}
    counts = []
    for batch in ready:
        count = 0
        for event_id in batch.columns[0]:
            if event_id in new:
                new.discard(event_id)
                count += 1
        counts.append(count)
    return counts
