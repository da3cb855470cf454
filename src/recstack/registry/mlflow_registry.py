"""Model registry on MLflow: one run per trained model, registered versions and aliases.

By default MLflow keeps its tracking and registry tables in ``<home>/mlflow.db`` (SQLite) and
artifacts under ``<home>/mlruns``; ``RECSTACK_MLFLOW_TRACKING_URI`` points at a tracking
server instead. A model version's artifact is the directory ``Recommender.save`` writes
(npy + json), so loading needs recstack, not MLflow's pickle flavours. Loaded versions are
cached under ``<home>/artifacts/<name>/<version>`` and memory-mapped from there.

Aliases (``champion``, ``challenger``...) are MLflow registered-model aliases. Each promotion
also appends the alias's previous version to a registered-model tag, so ``rollback`` can move
the alias back to the version that held it before.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from recstack.errors import ConfigError, NotFoundError, RecstackError
from recstack.models.base import Recommender, library_versions
from recstack.settings import Settings

EXPERIMENT = "recstack"
HISTORY_TAG = "recstack.alias_history."
HISTORY_LIMIT = 50
MODEL_ARTIFACT = "model"
# the columns of MLflow's SQLite registry that ``local_version`` reads
LOCAL_COLUMNS = {
    "registered_model_aliases": {"name", "alias", "version"},
    "model_versions": {"name", "version", "current_stage"},
}
DELETED_STAGE = "Deleted_Internal"  # MLflow's mark on a deleted model version
DEFAULT_WORKSPACE = "default"


@dataclass
class VersionInfo:
    """One registered model version: what it is, how it scored, which aliases point at it."""

    name: str
    version: int
    run_id: str
    aliases: list[str]
    metrics: dict[str, float]
    created_at: str
    model: str = ""
    params: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_silenced = {"warnings": False}


def _quiet_mlflow() -> None:
    """Keep MLflow's INFO chatter, migration logs, warnings and download bars off the console."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not _silenced["warnings"]:
        warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")
        _silenced["warnings"] = True


class ModelRegistry:
    """Log, register, alias and load recstack models in MLflow.

    Args:
        settings: ``tracking_uri`` selects the backend; ``home`` holds the local artifact
            store and the load cache; ``model_name`` is the default registered name.
        experiment: MLflow experiment the training runs go to.
    """

    def __init__(self, settings: Settings, experiment: str = EXPERIMENT) -> None:
        self.settings = settings
        self.tracking_uri = settings.tracking_uri
        self.experiment = experiment
        self.cache_dir = settings.artifacts_dir

    @property
    def is_local(self) -> bool:
        """True when MLflow runs embedded (SQLite, a database URL or a file store), so this
        process writes the artifacts itself; False for a tracking server."""
        return not self.tracking_uri.startswith(("http://", "https://", "databricks"))

    @cached_property
    def client(self) -> Any:
        """The MlflowClient (MLflow is imported here, on first use: it is slow to import)."""
        _quiet_mlflow()
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:  # pragma: no cover - mlflow is a core dependency
            raise RecstackError("mlflow is not installed; pip install mlflow") from exc
        _quiet_mlflow()  # importing mlflow installs its own INFO-level log handler
        if self.is_local:
            self.settings.ensure_home()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # ---- logging and registering -----------------------------------------------------------
    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if self.is_local:
            location = (self.settings.home / "mlruns").resolve().as_uri()
        return self.client.create_experiment(self.experiment, artifact_location=location)

    def log_model(
        self,
        model: Recommender,
        *,
        name: str | None = None,
        metrics: Mapping[str, float] | None = None,
        dataset_stats: Mapping[str, Any] | None = None,
        plots: Iterable[Path | str] = (),
        tags: Mapping[str, str] | None = None,
    ) -> VersionInfo:
        """Log ``model`` as one MLflow run and register it as a new version of ``name``.

        The run records the model's params and name, ``metrics``, the data fingerprint and
        sizes, library versions, ``plots`` (files) and the saved model directory; the new
        version's source is that directory.
        """
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException

        name = name or self.settings.model_name
        metrics = {key: float(value) for key, value in (metrics or {}).items()}
        model.meta.metrics = dict(metrics)
        stats = dict(dataset_stats or {})
        fingerprint = str(stats.get("fingerprint") or model.meta.data_fingerprint)
        run_tags = {
            "recstack.model": model.name,
            "recstack.registered_name": name,
            "recstack.data_fingerprint": fingerprint,
            "recstack.library_versions": json.dumps(model.meta.versions or library_versions()),
            **{f"recstack.data.{key}": str(value) for key, value in stats.items()},
            **{str(key): str(value) for key, value in (tags or {}).items()},
        }
        params = {"model": model.name, **{k: _param_text(v) for k, v in model.get_params().items()}}
        now = int(datetime.now(UTC).timestamp() * 1000)
        run = self.client.create_run(
            self._experiment_id(),
            run_name=f"{model.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}",
            tags=run_tags,
        )
        run_id = run.info.run_id
        try:
            self.client.log_batch(
                run_id,
                metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
                params=[Param(key, value) for key, value in params.items()],
                tags=[RunTag("mlflow.runName", run.info.run_name)],
            )
            with tempfile.TemporaryDirectory(prefix="recstack-model-") as tmp:
                saved = model.save(Path(tmp) / MODEL_ARTIFACT)
                self.client.log_artifacts(run_id, str(saved), MODEL_ARTIFACT)
                for plot in plots:
                    self.client.log_artifact(run_id, str(plot), "plots")
                try:
                    self.client.get_registered_model(name)
                except MlflowException:
                    self.client.create_registered_model(name)
                version = self.client.create_model_version(
                    name,
                    source=f"{run.info.artifact_uri}/{MODEL_ARTIFACT}",
                    run_id=run_id,
                    tags={"recstack.model": model.name, "recstack.data_fingerprint": fingerprint},
                )
                self._fill_cache(name, int(version.version), saved)
            self.client.set_terminated(run_id)
        except Exception:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        return self.get_version(name, int(version.version))

    # ---- reading -------------------------------------------------------------------------
    def _info(self, mv: Any, aliases: Mapping[str, int] | None = None) -> VersionInfo:
        version = int(mv.version)
        if aliases is None:
            aliases = self._aliases(mv.name)
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        if mv.run_id:
            run = self.client.get_run(mv.run_id)
            metrics = dict(run.data.metrics)
            params = dict(run.data.params)
        return VersionInfo(
            name=mv.name,
            version=version,
            run_id=mv.run_id or "",
            aliases=sorted(a for a, v in aliases.items() if v == version),
            metrics=metrics,
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(
                timespec="seconds"
            ),
            model=params.get("model", (mv.tags or {}).get("recstack.model", "")),
            params={k: v for k, v in params.items() if k != "model"},
            source=mv.source or "",
        )

    def _registered(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException:
            raise NotFoundError(f"no registered model named {name!r}") from None

    def _aliases(self, name: str) -> dict[str, int]:
        return {a: int(v) for a, v in (self._registered(name).aliases or {}).items()}

    def exists(self) -> bool:
        """False when the local registry was never created (nothing registered yet); checking
        costs no MLflow start-up, which creates the database on first use."""
        if not self.is_local or self.settings.mlflow_tracking_uri:
            return True
        return (self.settings.home / "mlflow.db").exists()

    def aliases(self, name: str | None = None) -> dict[str, int]:
        """``{alias: version}`` of a registered model in one call (NotFoundError if unknown)."""
        return self._aliases(name or self.settings.model_name)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` without the checks and history of ``promote`` (for a
        caller that has just read the aliases and keeps its own record)."""
        _check_alias(alias)
        self.client.set_registered_model_alias(name, alias, str(int(version)))

    def get_version(self, name: str, version: int) -> VersionInfo:
        """Version ``version`` of ``name``; NotFoundError if either does not exist."""
        from mlflow.exceptions import MlflowException

        aliases = self._aliases(name)
        try:
            mv = self.client.get_model_version(name, str(int(version)))
        except MlflowException:
            raise NotFoundError(f"model {name!r} has no version {version}") from None
        return self._info(mv, aliases)

    def list_versions(self, name: str | None = None) -> list[VersionInfo]:
        """Every version of ``name`` (or of every registered model), oldest first."""
        if name is None:
            names = sorted(m.name for m in self.client.search_registered_models())
        else:
            self._registered(name)
            names = [name]
        out: list[VersionInfo] = []
        for model_name in names:
            aliases = self._aliases(model_name)
            versions = self.client.search_model_versions(f"name='{_quote(model_name)}'")
            out.extend(self._info(mv, aliases) for mv in versions)
        return sorted(out, key=lambda v: (v.name, v.version))

    def resolve(self, name: str | None = None, alias: str = "champion") -> VersionInfo:
        """The version ``alias`` points at; NotFoundError if the alias is not set."""
        name = name or self.settings.model_name
        aliases = self._aliases(name)
        if alias not in aliases:
            raise NotFoundError(f"model {name!r} has no version with alias {alias!r}")
        return self.get_version(name, aliases[alias])

    # ---- aliases -------------------------------------------------------------------------
    def _history(self, name: str, alias: str) -> list[int]:
        raw = (self._registered(name).tags or {}).get(HISTORY_TAG + alias)
        return [int(v) for v in json.loads(raw)] if raw else []

    def _set_history(self, name: str, alias: str, history: list[int]) -> None:
        value = json.dumps(history[-HISTORY_LIMIT:])
        self.client.set_registered_model_tag(name, HISTORY_TAG + alias, value)

    def promote(self, name: str, version: int, alias: str = "champion") -> VersionInfo:
        """Point ``alias`` at ``version``, remembering the version it pointed at before."""
        _check_alias(alias)
        self.get_version(name, version)
        current = self._aliases(name).get(alias)
        if current != int(version):
            if current is not None:
                self._set_history(name, alias, [*self._history(name, alias), current])
            self.client.set_registered_model_alias(name, alias, str(int(version)))
        return self.get_version(name, version)

    def rollback(self, name: str, alias: str = "champion") -> VersionInfo:
        """Move ``alias`` back to the version that held it before the last promotion.

        Raises NotFoundError when the alias has no earlier version (still registered) to go
        back to.
        """
        from mlflow.exceptions import MlflowException

        aliases = self._aliases(name)
        if alias not in aliases:
            raise NotFoundError(f"model {name!r} has no alias {alias!r} to roll back")
        history = self._history(name, alias)
        while history:
            previous = history.pop()
            if previous == aliases[alias]:
                continue
            try:
                self.client.get_model_version(name, str(previous))
            except MlflowException:
                continue
            self.client.set_registered_model_alias(name, alias, str(previous))
            self._set_history(name, alias, history)
            return self.get_version(name, previous)
        raise NotFoundError(
            f"alias {alias!r} of model {name!r} has no previous version to roll back to "
            f"(it points at version {aliases[alias]})"
        )

    # ---- loading -------------------------------------------------------------------------
    def _cache_path(self, name: str, version: int) -> Path:
        return self.cache_dir / _safe_dir(name) / str(int(version))

    def _fill_cache(self, name: str, version: int, saved: Path) -> Path:
        target = self._cache_path(name, version)
        if (target / "model.json").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            shutil.copytree(saved, staging, dirs_exist_ok=True)
            try:
                staging.rename(target)
            except OSError:
                if not (target / "model.json").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def fetch(
        self, name: str | None = None, alias: str = "champion", version: int | None = None
    ) -> tuple[Path, VersionInfo]:
        """The local directory of a version (downloaded once into the cache) and its info."""
        name = name or self.settings.model_name
        info = self.get_version(name, version) if version is not None else self.resolve(name, alias)
        target = self._cache_path(name, info.version)
        if not (target / "model.json").exists():
            with tempfile.TemporaryDirectory(prefix="recstack-download-") as tmp:
                local = self.client.download_artifacts(info.run_id, MODEL_ARTIFACT, tmp)
                self._fill_cache(name, info.version, Path(local))
        return target, info

    def load(
        self, name: str | None = None, alias: str = "champion", version: int | None = None
    ) -> Recommender:
        """The model a version or alias names, memory-mapped from the local cache."""
        path, _ = self.fetch(name, alias, version)
        return Recommender.load(path, mmap=True)

    def load_with_info(
        self, name: str | None = None, alias: str = "champion", version: int | None = None
    ) -> tuple[Recommender, VersionInfo]:
        """Like ``load``, also returning the version's info (the server shows it)."""
        path, info = self.fetch(name, alias, version)
        return Recommender.load(path, mmap=True), info

    def local_version(
        self, name: str | None = None, alias: str = "champion", version: int | None = None
    ) -> int | None:
        """The version an alias (or a version number) names, read from the local SQLite
        registry without starting MLflow, which costs a server worker about two seconds.

        None when it cannot be answered that way (a tracking server, MLflow workspaces, a
        schema without the columns read here, an unreadable file): ask ``resolve`` then.
        NotFoundError when the registry has no such alias or version.
        """
        name = name or self.settings.model_name
        path = self._sqlite_path()
        if path is None or _workspaces_on():
            return None
        try:
            with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
                columns = {
                    table: {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                    for table in LOCAL_COLUMNS
                }
                if any(not need <= columns[table] for table, need in LOCAL_COLUMNS.items()):
                    return None
                scoped = all("workspace" in found for found in columns.values())
                where = " AND workspace = ?" if scoped else ""
                extra = (DEFAULT_WORKSPACE,) if scoped else ()
                if version is None:
                    row = conn.execute(
                        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
                        + where,
                        (name, alias, *extra),
                    ).fetchone()
                    if row is None:
                        raise NotFoundError(f"model {name!r} has no version with alias {alias!r}")
                    version = int(row[0])
                row = conn.execute(
                    "SELECT current_stage FROM model_versions WHERE name = ? AND version = ?"
                    + where,
                    (name, int(version), *extra),
                ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] == DELETED_STAGE:
            raise NotFoundError(f"model {name!r} has no version {version}")
        return int(version)

    def load_cached(
        self, name: str | None = None, alias: str = "champion", version: int | None = None
    ) -> tuple[Recommender, int] | None:
        """The model a version or alias names and its version number, when ``local_version``
        can tell which and it is in the load cache already: no MLflow start. None otherwise
        (``load_with_info`` then); NotFoundError when the registry has no such version."""
        name = name or self.settings.model_name
        found = self.local_version(name, alias, version)
        if found is None:
            return None
        path = self._cache_path(name, found)
        if not (path / "model.json").exists():
            return None
        return Recommender.load(path, mmap=True), found

    def _sqlite_path(self) -> Path | None:
        """The file of a local SQLite registry (``sqlite:///path``), else None."""
        uri = self.tracking_uri
        prefix = "sqlite:///"
        if not uri.startswith(prefix) or "?" in uri:
            return None
        path = Path(uri[len(prefix) :])
        return path.resolve() if path.exists() else None


def _workspaces_on() -> bool:
    """Whether MLflow may scope the registry to a workspace other than the default one."""
    workspace = os.environ.get("MLFLOW_WORKSPACE")
    enabled = os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").lower() in ("1", "true", "yes")
    return enabled or bool(workspace and workspace != DEFAULT_WORKSPACE)


def _param_text(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text[:6000]


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _safe_dir(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _check_alias(alias: str) -> None:
    if not alias or not all(c.isalnum() or c in "_-" for c in alias):
        raise ConfigError(f"invalid alias {alias!r}: use letters, digits, '-' and '_'")
    if alias.lower() == "latest" or (alias[0] in "vV" and alias[1:].isdigit()):
        raise ConfigError(f"alias {alias!r} is reserved by MLflow")
