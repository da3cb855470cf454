"""``make demo``: the whole job on embedded defaults, through the same library calls as the CLI.

Generates a synthetic e-learning catalogue, ingests it into the SQLite store under
``RECSTACK_HOME`` (default ``./.recstack``), compares models offline, trains the winner of that
comparison and registers it as champion in the local MLflow registry (with a content model
beside it for semantic search and new items, when the ``text`` extra is installed), creates an
API key and serves the API, printing curl lines that work and the dashboard's URL (log in
with the printed key). Re-running is cheap: ingest is idempotent.

Environment knobs: ``RECSTACK_DEMO_USERS/ITEMS/EVENTS`` for the data size,
``RECSTACK_DEMO_SERVE=0`` to stop before serving, ``RECSTACK_DEMO_PORT`` for the port.
"""

from __future__ import annotations

import importlib.util
import os

from rich.console import Console

from recstack.settings import Settings

console = Console()


def run_demo(
    settings: Settings, *, users: int, items: int, events: int, serve: bool, port: int
) -> dict:
    """Run every step; returns what a caller (a test) may check."""
    from recstack.data.synthetic import generate_synthetic
    from recstack.evaluation.protocol import evaluate_models
    from recstack.serving.runtime.loader import CONTENT_SUFFIX
    from recstack.store import Store
    from recstack.workflows.train import train_and_register

    settings.ensure_home()
    store = Store.from_settings(settings)
    console.rule("[bold]1. Data")
    data = generate_synthetic(users, items, events, seed=7, progress=True)
    result = store.ingest(data, progress=True)
    console.print(
        f"ingested {result.interactions_inserted:,} new events "
        f"({result.duplicates:,} already stored) into {settings.store_url}"
    )
    console.print(store.stats())

    console.rule("[bold]2. Offline evaluation (per-user 75/25 split, k=10)")
    dataset = store.snapshot(settings.weighting(), progress=True)
    evaluation = evaluate_models(
        dataset, ["popularity", "itemknn", "ease", "als"], ratio=0.75, seed=42, k=10, progress=True
    )
    console.print(evaluation.to_markdown(), soft_wrap=True)

    console.rule("[bold]3. Train and register the champion")
    winner = max(evaluation.models, key=lambda result: result.metrics["ndcg"])
    console.print(
        f"{winner.name} wins the evaluation above (NDCG@10 {winner.metrics['ndcg']:.4f}); "
        "training it on all the data"
    )
    version = train_and_register(
        settings,
        winner.name,
        winner.params,
        evaluate=False,
        promote="champion",
        progress=True,
        dataset=dataset,
    )
    console.print(f"registered {version.name} v{version.version} ({winner.name}) as champion")
    search = None
    if importlib.util.find_spec("sentence_transformers") is not None:
        content = train_and_register(
            settings,
            "content",
            evaluate=False,
            promote="champion",
            progress=True,
            name=settings.model_name + CONTENT_SUFFIX,
            dataset=dataset,
        )
        console.print(f"registered {content.name} v{content.version} (semantic search)")
        search = f"http://127.0.0.1:{port}/v1/search?q=learn%20databases&k=5"

    key, _ = store.create_api_key("admin", name="demo")
    curl = (
        f"curl -H 'Authorization: Bearer {key}' "
        f"'http://127.0.0.1:{port}/v1/users/{dataset.users.external(0)}/recommendations?k=5'"
    )
    console.rule("[bold]4. Serve")
    console.print(f"API key (admin): [bold]{key}[/bold]", soft_wrap=True)
    console.print(f"Try:  {curl}", soft_wrap=True, highlight=False)
    if search is not None:
        console.print(
            f"      curl -H 'Authorization: Bearer {key}' '{search}'",
            soft_wrap=True,
            highlight=False,
        )
    console.print(f"Docs: http://127.0.0.1:{port}/docs")
    dashboard = f"http://127.0.0.1:{port}/ui/"
    console.print(f"Dashboard: {dashboard}  (log in with the admin key above)", highlight=False)
    if serve:
        import uvicorn

        from recstack.app import create_app

        uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="info")
    return {
        "key": key,
        "curl": curl,
        "version": version,
        "evaluation": evaluation,
        "search": search,
        "dashboard": dashboard,
    }


def main() -> None:
    env = os.environ.get
    run_demo(
        Settings(),
        users=int(env("RECSTACK_DEMO_USERS", "3000")),
        items=int(env("RECSTACK_DEMO_ITEMS", "1000")),
        events=int(env("RECSTACK_DEMO_EVENTS", "200000")),
        serve=env("RECSTACK_DEMO_SERVE", "1") != "0",
        port=int(env("RECSTACK_DEMO_PORT", "8000")),
    )


if __name__ == "__main__":
    main()
