"""Drift reports and decisions persist in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd

from recstack.data.loaders import LoadedData
from recstack.store import Store
from recstack.store import monitoring as queries


def test_reports_and_decisions_round_trip(store_url) -> None:
    with Store(store_url) as store:
        store.migrate()
        for n in range(3):
            report = {
                "id": f"r{n}",
                "created_at": f"2026-01-0{n + 1}T00:00:00+00:00",
                "drifted": n == 2,
                "share": n / 4,
                "signals": [],
                "reference": {"start": 1, "end": 2},
                "current": {"start": 3, "end": 4},
                "model": {"name": "recstack", "version": 1},
            }
            queries.save_drift_report(store.engine, report, f"<p>{n}</p>")
        newest = queries.list_drift_reports(store.engine, limit=2)
        assert [r["id"] for r in newest] == ["r2", "r1"] and newest[0]["drifted"] is True
        assert queries.get_drift_report(store.engine, "r0") == (
            queries.list_drift_reports(store.engine)[2],
            "<p>0</p>",
        )
        assert queries.get_drift_report(store.engine, "nope") is None
        record = {
            "id": "d1",
            "created_at": "2026-01-05T00:00:00+00:00",
            "model_name": "recstack",
            "action": "retrain",
            "promoted": False,
            "reason": "refused: worse",
            "champion": {"version": 1},
            "challenger": {"version": 2},
            "drift_report_id": "r2",
        }
        queries.save_decision(store.engine, record)
        assert queries.list_decisions(store.engine) == [record]


def test_event_windows_and_time_range(store_url) -> None:
    events = pd.DataFrame(
        {
            "event_id": ["a", "b", "c"],
            "user_id": ["u1", "u2", "u1"],
            "item_id": ["i1", "i1", "i2"],
            "event_type": ["view", "click", "view"],
            "value": [None, None, None],
            "timestamp": [100, 200, 300],
        }
    )
    with Store(store_url) as store:
        store.migrate()
        assert queries.time_range(store.engine) is None
        store.ingest(LoadedData(interactions=events, source="t"))
        assert queries.time_range(store.engine) == (100, 300)
        window = queries.events_between(store.engine, 150, 300)
        assert sorted(window["event_type"]) == ["click", "view"]
        assert window["user_id"].nunique() == 2
        assert queries.active_items(store.engine) == 2
        served = queries.served_between(store.engine, 0, 1e12)
        assert served is not None and served.empty  # the exposures table exists, empty


def test_served_lists_are_read_from_exposures(store_url) -> None:
    import sqlalchemy as sa

    from recstack.store.tables import exposures

    with Store(store_url) as store:
        store.migrate()
        shown = [{"item_id": "i1", "position": 0, "score": 0.9}, {"item_id": "i2", "position": 1}]
        with store.engine.begin() as conn:
            for n, at in enumerate((100.0, 500.0)):
                conn.execute(
                    sa.insert(exposures).values(
                        recommendation_id=f"r{n}",
                        served_at=at,
                        user_id="u1",
                        surface="recs",
                        model="als",
                        model_version=1,
                        items=shown,
                    )
                )
        served = queries.served_between(store.engine, 50, 200)
        assert served["item_id"].tolist() == ["i1", "i2"]
        assert served["score"].iloc[0] == 0.9 and pd.isna(served["score"].iloc[1])
        assert len(queries.served_between(store.engine, 0, 1000)) == 4
