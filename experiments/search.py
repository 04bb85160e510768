"""Hyperparameter search for a property model: optuna TPE, every trial a nested MLflow run.

Trials are scored on their own out-of-fold cross-validation MAE (``PropertyModel.cv_metrics_``), never on the
validation split that decides the champion, so the search cannot tune on the data that judges it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sse_screen.experiments.store_access import retry_locked
from sse_screen.experiments.tracking import tracked_run
from sse_screen.models.property_model import PropertyModel


class SearchUnavailable(RuntimeError):
    """The search was asked for but optuna is not installed."""


def search_params(
    task: str,
    formulas: Sequence[str],
    y: Sequence[float],
    *,
    base: dict[str, Any],
    n_trials: int,
    holdout: Sequence[str] = (),
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Search the booster's main parameters; return ``base`` updated with the best trial's values.

    Must run inside an active MLflow run: each trial is logged as a nested run (its sampled parameters and
    ``cv_mae``), and the parent run gets ``search_best_cv_mae`` and ``search_n_trials``.

    Raises:
        SearchUnavailable: optuna is not installed (``pip install -e ".[tune]"``).
    """
    try:
        import optuna
    except ImportError:
        raise SearchUnavailable('hyperparameter search needs optuna: pip install -e ".[tune]"') from None
    import mlflow

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("search_params must run inside an active MLflow run")
    experiment_id = parent.info.experiment_id

    def objective(trial: optuna.Trial) -> float:
        sampled = {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 4, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 8.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 0.9),
        }
        with tracked_run(experiment_id, nested=True, run_name=f"trial-{trial.number}"):
            model = PropertyModel(task=task, **(base | sampled)).fit(formulas, y, holdout=holdout)
            cv_mae = float(model.cv_metrics_["mae"])
            retry_locked(mlflow.log_params, sampled)
            retry_locked(mlflow.log_metric, "cv_mae", cv_mae)
        log(f"  search trial {trial.number + 1}/{n_trials}: cv_mae={cv_mae:.4g} {sampled}")
        return cv_mae

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    retry_locked(
        mlflow.log_metrics, {"search_best_cv_mae": float(study.best_value), "search_n_trials": float(n_trials)}
    )
    return base | study.best_params
