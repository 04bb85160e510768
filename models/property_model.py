"""Composition -> property models (energy above hull, band gap) with intervals and class probabilities.

One estimator serves both tasks: gradient-boosted trees (xgboost) on the composition features, plus, for stability,
the reference-hull features (where the composition sits relative to the known phases; see
:mod:`features.reference_hull`). Around the point model:

* **uncertainty**: a second, shallower booster predicts the size of the out-of-fold error, and a normalised
  split-conformal multiplier (:mod:`models.uncertainty`) turns it into a nominal-coverage interval and a
  Gaussian-equivalent standard deviation;
* **class probability** (``p_stable``, ``p_insulator``): a booster classifier of the useful class (optionally a few
  seed bags averaged), which for stability also decides the point mass at 0 (the hurdle), while a second classifier
  sends the long tail (E_hull > 0.5 eV/atom) to its own regressor;
* **cross-validation**: the out-of-fold predictions that calibrate the intervals also give the CV metrics.

Persistence is a bundle of xgboost UBJ boosters plus JSON metadata (:mod:`models.model_bundle`); no pickle. The
out-of-fold loop, the error-size booster and the seeds are shared with the conductivity model
(:mod:`models.boosting`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from sse_screen.features.formula import as_formula_list
from sse_screen.models.boosting import base_seed, fit_final_scale, out_of_fold, predict_rows, tree_params
from sse_screen.models.derived_features import E_FORM_FEATURES, HULL_FEATURES, hull_features, predicted_e_form
from sse_screen.models.explain import explain_branches
from sse_screen.models.feature_table import composition_feature_names, composition_features
from sse_screen.models.metrics import regression_report
from sse_screen.models.model_bundle import bundle_params, restore_fitted, save_model
from sse_screen.models.persistence import Bundle, load_bundle
from sse_screen.models.reference import hull_from_bundle, hull_of, save_reference
from sse_screen.models.tasks import TaskSpec, task_spec
from sse_screen.models.uncertainty import ConformalCalibration

BOOSTERS = ("regressor", "scale", "classifier")
#: Boosters of the body/tail split (``tail_threshold``).
TAIL_BOOSTERS = ("tail_classifier", "tail_regressor")


class PropertyModel(RegressorMixin, BaseEstimator):
    """Gradient-boosted composition model of one property, with interval and class probability.

    Args:
        task: ``"stability"`` (energy above hull, eV/atom) or ``"band_gap"`` (PBE gap, eV).
        preset: Composition feature preset (:class:`features.composition.CompositionFeaturizer`).
        use_reference_hull: Add the reference-hull features of the bundled known phases (``data/mp_e_form``);
            leave-self-out, so a known composition is featurized like a new candidate.
        formation_energy_feature: Add a predicted formation energy (an auxiliary booster trained on
            ``data/mp_e_form``, out-of-fold for training rows; :mod:`models.formation_energy`) and, with the
            reference hull, the E_hull it implies.
        hurdle: Predict exactly 0 where the classifier gives ``p >= 0.5`` for the useful class "at or below the
            threshold" (the point mass of E_hull at 0); only for tasks whose useful class is below the threshold.
        tail_threshold: Split the target at this value (target units) into a body and a tail, each with its own
            regressor: a classifier of ``y > tail_threshold`` picks the branch (``p >= 0.5``: tail), a squared-error
            regressor fitted on the tail rows predicts there, and the main regressor is fitted on the body rows
            only. For E_hull's long tail of hypothetical compounds 1-5 eV/atom above the hull, which a robust loss
            fitted to all rows shrinks towards the bulk. None: one regressor for every row.
        classifier_bags: Classifiers of the useful class trained with different seeds, their probabilities
            averaged: less variance where ``p`` is near 0.5, which is where the hurdle decides.
        bag_seed_stride: Bag ``b`` (0-based) of the classifier is seeded ``seed + bag_seed_stride * b``.
        hurdle_probability: The hurdle predicts the floor where the class probability is at least this.
        tail_probability: A row goes to the tail regressor where the tail classifier's probability is at least this.
        n_estimators: Boosting rounds of the point model.
        learning_rate: Shrinkage.
        max_depth: Tree depth.
        min_child_weight: Minimum hessian per leaf.
        subsample: Row subsampling per tree.
        colsample_bytree: Feature subsampling per tree.
        objective: xgboost regression objective, e.g. ``"reg:pseudohubererror"`` or ``"reg:squarederror"``.
        huber_slope: Slope (target units) of the pseudo-Huber loss.
        classifier_n_estimators: Boosting rounds of each classifier (None: ``max(200, n_estimators // 3)``).
        scale_n_estimators: Boosting rounds of the error-size (interval) booster.
        scale_max_depth: Tree depth of the error-size booster.
        scale_learning_rate: Shrinkage of the error-size booster.
        threshold: Class threshold in target units (None: the task's default, 0.025 eV/atom or 1 eV).
        coverage: Nominal coverage of the prediction intervals.
        n_folds: Folds of the out-of-fold predictions that calibrate the intervals (and give CV metrics).
        random_state: Seed.
        n_jobs: Threads for xgboost (None: all cores).
    """

    def __init__(
        self,
        *,
        task: str = "stability",
        preset: str = "electrolyte",
        use_reference_hull: bool = True,
        formation_energy_feature: bool = False,
        hurdle: bool = False,
        tail_threshold: float | None = None,
        classifier_bags: int = 1,
        bag_seed_stride: int = 1000,
        hurdle_probability: float = 0.5,
        tail_probability: float = 0.5,
        n_estimators: int = 1500,
        learning_rate: float = 0.03,
        max_depth: int = 8,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        objective: str = "reg:pseudohubererror",
        huber_slope: float = 0.1,
        classifier_n_estimators: int | None = None,
        scale_n_estimators: int = 300,
        scale_max_depth: int = 5,
        scale_learning_rate: float = 0.05,
        threshold: float | None = None,
        coverage: float = 0.8,
        n_folds: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.task = task
        self.preset = preset
        self.use_reference_hull = use_reference_hull
        self.formation_energy_feature = formation_energy_feature
        self.hurdle = hurdle
        self.tail_threshold = tail_threshold
        self.classifier_bags = classifier_bags
        self.bag_seed_stride = bag_seed_stride
        self.hurdle_probability = hurdle_probability
        self.tail_probability = tail_probability
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.objective = objective
        self.huber_slope = huber_slope
        self.classifier_n_estimators = classifier_n_estimators
        self.scale_n_estimators = scale_n_estimators
        self.scale_max_depth = scale_max_depth
        self.scale_learning_rate = scale_learning_rate
        self.threshold = threshold
        self.coverage = coverage
        self.n_folds = n_folds
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------------------------------------- features
    @property
    def spec(self) -> TaskSpec:
        """The task's output contract."""
        return task_spec(self.task)

    @property
    def threshold_(self) -> float:
        return self.spec.threshold if self.threshold is None else float(self.threshold)

    def _features(
        self, formulas: list[object], *, e_form: np.ndarray | None = None, features: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, list[str | None], list[str]]:
        """Feature matrix, per-row errors and (stability) decomposition strings, in input order.

        ``e_form``: the training rows' out-of-fold formation energies; at prediction time they come from the
        fitted formation-energy booster. ``features``: the rows' composition features, already computed (see
        :meth:`predict_table`); the reference-hull and formation-energy features are computed here either way.
        """
        matrix, errors = composition_features(formulas, preset=self.preset, features=features)
        composition = matrix
        decomposition = [""] * len(formulas)
        if self.use_reference_hull:
            hull, decomposition = hull_features(hull_of(self), formulas, errors)
            matrix = np.hstack([matrix, hull])
        if self.formation_energy_feature:
            if e_form is None:
                e_form = predicted_e_form(self.boosters_["formation_energy"], composition, errors)
            columns = [e_form]
            if self.use_reference_hull:
                columns.append(e_form - matrix[:, composition.shape[1]])  # E_form - E_hull_ref: the implied E_hull
            matrix = np.hstack([matrix, np.column_stack(columns)])
        return matrix, errors, decomposition

    def feature_names(self) -> list[str]:
        """Names of the model's input features, in order."""
        names = composition_feature_names(self.preset)
        names += list(HULL_FEATURES) if self.use_reference_hull else []
        if self.formation_energy_feature:
            names += list(E_FORM_FEATURES[: 2 if self.use_reference_hull else 1])
        return names

    # ---------------------------------------------------------------------------------------------- training
    def _regressor_params(self, *, squared: bool = False) -> dict[str, Any]:
        params = tree_params(self, 0) | {"n_estimators": self.n_estimators}
        params.pop("random_state")
        if squared or self.objective != "reg:pseudohubererror":
            return params | {"objective": "reg:squarederror" if squared else self.objective}
        return params | {"objective": self.objective, "huber_slope": self.huber_slope}

    def _fit_regressor(self, x: np.ndarray, y: np.ndarray, seed: int) -> xgb.XGBRegressor:
        model = xgb.XGBRegressor(**self._regressor_params(), random_state=seed)
        if self.objective == "reg:pseudohubererror":
            model.set_params(base_score=float(np.median(y)))
        return model.fit(x, y)

    def _scale_params(self, seed: int) -> dict[str, Any]:
        """xgboost parameters of the error-size booster (:func:`models.boosting.fit_scale_booster`)."""
        return tree_params(self, seed) | {
            "max_depth": self.scale_max_depth,
            "learning_rate": self.scale_learning_rate,
        }

    def _positive(self, y: np.ndarray) -> np.ndarray:
        return y <= self.threshold_ if self.spec.positive == "below" else y >= self.threshold_

    def fit(
        self, X: Sequence[object], y: Sequence[float], *, progress: Any = None, holdout: Sequence[str] = ()
    ) -> PropertyModel:
        """Fit the point model, the interval model and the classifier.

        Args:
            X: Formulas (one row per composition; aggregate polymorphs first).
            y: Target values in the task's unit.
            progress: Optional callable ``progress(message)`` for long steps.
            holdout: Compositions the model must never see (the validation rows): removed from the auxiliary
                formation-energy model's training data.

        Returns:
            self, with ``cv_metrics_`` (out-of-fold scores), ``calibration_`` and the fitted boosters.

        Raises:
            ValueError: A training formula cannot be featurized, or the target has non-finite values.
        """
        task_spec(self.task)
        say = progress or (lambda message: None)
        formulas = as_formula_list(X)
        y = np.asarray(y, dtype=float)
        if len(formulas) != len(y):
            raise ValueError(f"{len(formulas)} formulas but {len(y)} targets")
        if not np.all(np.isfinite(y)):
            raise ValueError("the training target has non-finite values")
        seed = base_seed(self.random_state)
        e_form, aux = None, {}
        if self.formation_energy_feature:
            from sse_screen.models.formation_energy import fit_formation_energy

            aux["formation_energy"], e_form = fit_formation_energy(
                [str(f) for f in formulas],
                exclude=holdout,
                preset=self.preset,
                params=self._regressor_params(squared=True),
                n_folds=self.n_folds,
                seed=seed,
                say=say,
            )
        say("featurizing")
        x, errors, _ = self._features(formulas, e_form=e_form)
        bad = [(i, e) for i, e in enumerate(errors) if e]
        if bad:
            raise ValueError(f"{len(bad)} training formulas cannot be featurized, e.g. row {bad[0][0]}: {bad[0][1]}")
        oof_p = np.full_like(y, np.nan)

        def fit_predict(train: np.ndarray, test: np.ndarray, fold_seed: int) -> np.ndarray:
            fold = self._fit_point(x[train], y[train], fold_seed, classifier=self._uses_classifier_point)
            raw = self._average_bags({name: booster.inplace_predict(x[test]) for name, booster in fold.items()})
            if "classifier" in raw:
                oof_p[test] = raw["classifier"]
            return self._point(raw)

        folds = list(KFold(self.n_folds, shuffle=True, random_state=seed).split(x))
        oof = out_of_fold(
            x, y, folds, fit_predict=fit_predict, scale_params=self._scale_params,
            scale_rounds=self.scale_n_estimators, seed=seed, coverage=self.coverage, say=say,
        )  # fmt: skip
        self.calibration_ = oof.calibration
        scale = fit_final_scale(x, oof, self._scale_params(seed), n_estimators=self.scale_n_estimators)
        say("final model")
        self.boosters_ = self._fit_point(x, y, seed, classifier=True) | {"scale": scale}
        for booster in self.boosters_.values():
            booster.feature_names = self.feature_names()
        self.boosters_ |= aux
        p_cv = oof_p if np.isfinite(oof_p).all() else None
        lower, upper = oof.interval()
        self.cv_metrics_ = self._report(y, oof.prediction, p_cv, self._clip(lower), self._clip(upper))
        self.n_features_in_ = x.shape[1]
        self.feature_names_in_ = np.asarray(self.feature_names(), dtype=object)
        return self

    @property
    def _uses_classifier_point(self) -> bool:
        """Whether the class probability changes the point prediction (the hurdle)."""
        return bool(self.hurdle) and self.spec.positive == "below" and self.spec.floor is not None

    def _fit_point(self, x: np.ndarray, y: np.ndarray, seed: int, *, classifier: bool) -> dict[str, xgb.Booster]:
        """The boosters of the point prediction (and the class probability when ``classifier``)."""
        boosters: dict[str, xgb.Booster] = {}
        body = np.ones(len(y), dtype=bool)
        if self.tail_threshold is not None:
            body = y <= self.tail_threshold
            if body.all() or not body.any():
                raise ValueError(f"tail_threshold={self.tail_threshold} leaves no training row on one side")
            boosters["tail_classifier"] = self._fit_classifier(x, ~body, seed)
            boosters["tail_regressor"] = (
                xgb.XGBRegressor(**self._regressor_params(squared=True), random_state=seed)
                .fit(x[~body], y[~body])
                .get_booster()
            )
        boosters["regressor"] = self._fit_regressor(x[body], y[body], seed).get_booster()
        if classifier:
            for bag, name in enumerate(self._classifier_names()):
                boosters[name] = self._fit_classifier(x, self._positive(y), seed + self.bag_seed_stride * bag)
        return boosters

    def _classifier_names(self) -> list[str]:
        """``classifier`` plus ``classifier_2``... for the extra bags."""
        if int(self.classifier_bags) < 1:
            raise ValueError(f"classifier_bags must be >= 1, got {self.classifier_bags}")
        return ["classifier"] + [f"classifier_{b}" for b in range(2, int(self.classifier_bags) + 1)]

    def _average_bags(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Replace the classifier bags' outputs by their mean probability under ``classifier``."""
        bags = [name for name in self._classifier_names() if name in raw]
        if len(bags) > 1:
            mean = np.mean([np.asarray(raw.pop(name), dtype=float) for name in bags], axis=0)
            raw["classifier"] = mean
        return raw

    def _fit_classifier(self, x: np.ndarray, label: np.ndarray, seed: int) -> xgb.Booster:
        rounds = self.classifier_n_estimators
        rounds = max(200, self.n_estimators // 3) if rounds is None else rounds
        model = xgb.XGBClassifier(n_estimators=rounds, objective="binary:logistic", **tree_params(self, seed))
        return model.fit(x, label.astype(int)).get_booster()

    def _point(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Point prediction from the boosters' raw outputs: body/tail branch, then the hurdle."""
        point = self._clip(np.asarray(raw["regressor"], dtype=float))
        if "tail_regressor" in raw:
            tail = np.asarray(raw["tail_classifier"]) >= self.tail_probability
            point = np.where(tail, self._clip(np.asarray(raw["tail_regressor"], dtype=float)), point)
        if self._uses_classifier_point:
            point = np.where(np.asarray(raw["classifier"]) >= self.hurdle_probability, self.spec.floor, point)
        return point

    def _report(self, y, pred, p, lower, upper) -> dict[str, float]:
        kind = "positive_below" if self.spec.positive == "below" else "positive_above"
        return regression_report(y, pred, p_positive=p, lower=lower, upper=upper, **{kind: self.threshold_})

    def _clip(self, values: np.ndarray) -> np.ndarray:
        return values if self.spec.floor is None else np.maximum(values, self.spec.floor)

    # -------------------------------------------------------------------------------------------- prediction
    def _predict_matrix(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Raw booster outputs per row; each regressor only on the rows whose point it decides (NaN elsewhere).

        The classifiers run first: rows the hurdle sets to the floor skip both regressors, and each remaining row
        runs the regressor of its branch (body or tail) only. The points equal those of evaluating every booster
        on every row (:meth:`_point` never reads a skipped value); it saves most of the regressors' trees where
        the hurdle fires, e.g. on the ~70% of enumerated candidates predicted stable.
        """

        def run(name: str, rows: np.ndarray | None = None) -> np.ndarray:
            return predict_rows(self.boosters_[name], x, where=rows)

        out = self._average_bags({name: run(name) for name in ("scale", *self._classifier_names())})
        needed = np.ones(len(x), dtype=bool)
        if self._uses_classifier_point:
            needed &= ~(out["classifier"] >= self.hurdle_probability)
        if self.tail_threshold is None:
            out["regressor"] = run("regressor", needed)
            return out
        out["tail_classifier"] = run("tail_classifier")
        tail = out["tail_classifier"] >= self.tail_probability
        out["regressor"] = run("regressor", needed & ~tail)
        out["tail_regressor"] = run("tail_regressor", needed & tail)
        return out

    def output_columns(self) -> list[str]:
        """Columns of :meth:`predict_table`, ``error`` excluded."""
        spec = self.spec
        columns = [spec.target, spec.std_column, spec.lower_column, spec.upper_column, spec.probability_column]
        return columns + (["decomposition"] if self.use_reference_hull else [])

    def predict(self, X: Sequence[object]) -> np.ndarray:
        """Point predictions in the task's unit (NaN for rows that cannot be featurized)."""
        return self.predict_table(X)[self.spec.target].to_numpy(dtype=float)

    def predict_table(self, X: Sequence[object], *, features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predictions as a table, one row per input row, in order.

        Args:
            X: Formulas (strings or pymatgen Compositions).
            features: The rows' composition features, already computed: one row per item of ``X`` (same order),
                holding at least the columns of ``CompositionFeaturizer(preset=self.preset)`` by name; the formulas
                are then not featurized again (the reference-hull and formation-energy features still are
                computed here). An all-NaN row is an error row. None: featurize ``X``.

        Returns:
            Columns: the target (e.g. ``e_hull_ev_per_atom``), its ``..._std_...`` (Gaussian-equivalent standard
            deviation), ``..._lower``/``..._upper`` (nominal-coverage interval), the class probability
            (``p_stable``/``p_insulator``), ``decomposition`` for stability, and ``error`` (empty when fine; the
            prediction columns are NaN otherwise).

        Raises:
            ValueError: ``features`` has another number of rows or lacks a needed column (named).
        """
        check_is_fitted(self, "boosters_")
        formulas = as_formula_list(X)
        x, errors, decomposition = self._features(formulas, features=features)
        columns = self.output_columns()[:5]  # target, std, lower, upper, class probability
        out = {column: np.full(len(formulas), np.nan) for column in columns}
        good = np.array([e is None for e in errors], dtype=bool)
        if good.any():
            raw = self._predict_matrix(x[good])
            scale = np.maximum(raw["scale"], 0)
            point = self._point(raw)
            lower, upper = self.calibration_.interval(point, scale)
            values = (point, self.calibration_.std(scale), self._clip(lower), self._clip(upper), raw["classifier"])
            for column, value in zip(columns, values, strict=True):
                out[column][good] = value
        table = pd.DataFrame(out)
        if self.use_reference_hull:
            table["decomposition"] = [d if e is None else "" for d, e in zip(decomposition, errors, strict=True)]
        table["error"] = [e or "" for e in errors]
        return table

    def explain(self, X: Sequence[object], *, top: int = 3, features: pd.DataFrame | None = None) -> list[str]:
        """The features that pushed each row's point prediction most, from xgboost's per-row contributions (Saabas).

        With a body/tail split (``tail_threshold``) each row is explained by the regressor of its branch. Rows the
        hurdle sets to 0 are explained by the body regressor (what the value would have been). ``features``: as in
        :meth:`predict_table`.

        Returns:
            Per row, e.g. ``"e_hull_ref_ev_per_atom +0.042; Li atomic fraction -0.013"`` (target units), or "" for
            rows that cannot be featurized.
        """
        check_is_fitted(self, "boosters_")
        x, errors, _ = self._features(as_formula_list(X), features=features)
        good = np.array([e is None for e in errors], dtype=bool)
        served_by = np.array(["regressor" if g else "" for g in good], dtype=object)
        names = ["regressor"] + (["tail_regressor"] if self.tail_threshold is not None else [])
        if len(names) > 1 and good.any():
            tail = predict_rows(self.boosters_["tail_classifier"], x[good]) >= self.tail_probability
            served_by[good] = np.where(tail, "tail_regressor", "regressor")
        return explain_branches({name: (self.boosters_[name], x) for name in names}, list(served_by), top=top)

    def score_table(self, X: Sequence[object], y: Sequence[float]) -> dict[str, float]:
        """Screening metrics on held-out data: MAE, Spearman, ROC-AUC/F1/DAF of the class, interval coverage."""
        table = self.predict_table(X)
        spec = self.spec
        lower, upper = table[spec.lower_column].to_numpy(), table[spec.upper_column].to_numpy()
        return self._report(
            np.asarray(y, float), table[spec.target].to_numpy(), table[spec.probability_column].to_numpy(), lower, upper
        )

    # ------------------------------------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, metadata: dict[str, Any], overwrite: bool = False) -> Path:
        """Save as a bundle (xgboost UBJ boosters + ``metadata.json``).

        Args:
            path: Bundle directory.
            metadata: Caller metadata: at least ``training_data_sha256`` and ``metrics``.
            overwrite: Replace an existing bundle.
        """
        check_is_fitted(self, "boosters_")
        spec, uncertainty = self.spec, self.calibration_.to_dict()
        saved = save_model(
            path, self, "property", task=self.task, target=(spec.target, spec.unit), uncertainty=uncertainty,
            metadata=metadata, overwrite=overwrite,
        )  # fmt: skip
        return save_reference(saved, self) if self.use_reference_hull else saved  # known phases travel with it

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> PropertyModel:
        """Rebuild a fitted model from a loaded bundle (``ValueError`` for a bundle of another model type)."""
        model = cls(**bundle_params(bundle, "property"))
        required = set(BOOSTERS) | ({"formation_energy"} if model.formation_energy_feature else set())
        required |= set(TAIL_BOOSTERS) if model.tail_threshold is not None else set()
        required |= set(model._classifier_names())
        calibration = ConformalCalibration.from_dict(bundle.metadata["uncertainty"])
        restore_fitted(model, bundle, required=required, calibration=calibration)
        model.reference_ = hull_from_bundle(bundle) if model.use_reference_hull else None
        return model

    @classmethod
    def load(cls, path: str | Path, *, task: str | None = None) -> PropertyModel:
        """Load a saved bundle directory."""
        return cls.from_bundle(load_bundle(path, task=task))


def load_property_model(task: str, *, model_uri: str | None = None) -> PropertyModel:
    """The property model that serves ``task``: explicit URI, else ``SSE_SCREEN_<TASK>_MODEL_URI``, else shipped.

    Raises:
        models.registry.ModelNotFoundError: Nothing could be loaded (the message lists what was tried).
    """
    from sse_screen.models.registry import resolve_model

    return PropertyModel.from_bundle(resolve_model(task, model_uri=model_uri))
