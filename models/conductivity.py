"""Room-temperature Li-ion conductivity model (log10 S/cm) from composition, and from structure when a CIF is given.

Design (small, noisy, censored data: OBELiX has 599 measurements spanning 15 decades, 37 of them only an upper
bound such as ``<1E-10``):

* **censored targets as censored**: an accelerated-failure-time objective (xgboost ``survival:aft``, normal errors)
  fits interval targets: a measured value is the interval ``[v, v]``, ``<1E-10`` is ``(-inf, -10]``. Labels are
  passed as ``exp(log10 sigma)`` so that xgboost's log-time is log10 sigma and the boosters' margin *is* the
  prediction in log10 S/cm. No number is invented for a censored row.
* **two models in one bundle**: ``composition`` (composition features only) and ``structure`` (composition +
  :mod:`features.structure` features). :meth:`ConductivityModel.predict_table` uses the structure model for rows
  that come with a structure and the composition model otherwise, and says which in ``conductivity_model``.
* **grouped out-of-fold CV** (groups = composition, so repeat measurements never straddle folds) gives the CV
  metrics and calibrates a normalised split-conformal interval (:mod:`models.uncertainty`) from a second booster
  that predicts the size of the error. Calibration and coverage use the exactly measured rows; for censored rows
  :func:`conductivity_report` says how often the interval reaches below the bound.
* **applicability domain**: ``in_domain`` is False without Li, with an element never seen in training, or when the
  composition's mean distance to its 3 nearest training compositions (robust-scaled top features) exceeds the
  ``domain_quantile`` of the same distance among the training compositions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_is_fitted

from sse_screen.features.composition import CompositionFeaturizer
from sse_screen.features.formula import ELEMENT_SYMBOLS, as_formula_list, parse_batch
from sse_screen.features.structure import LATTICE_COLUMNS, StructureError, StructureFeaturizer, read_cif
from sse_screen.models.explain import explain_rows
from sse_screen.models.metrics import discovery_acceleration_factor, regression_report
from sse_screen.models.persistence import Bundle, load_bundle, save_bundle
from sse_screen.models.uncertainty import ConformalCalibration, calibrate

Kind = Literal["composition", "structure"]
KINDS: tuple[Kind, ...] = ("composition", "structure")
TARGET = "log10_sigma_s_per_cm"
INTERVAL_COLUMNS = ("log10_sigma_std", "log10_sigma_lower", "log10_sigma_upper")
OUTPUT_COLUMNS = (TARGET, *INTERVAL_COLUMNS, "conductivity_model", "in_domain")
SUPERIONIC_LOG10 = -4.0  # sigma >= 1e-4 S/cm
UPSTREAM_CENSORED_LOG10 = -15.0  # OBELiX's own loader maps "<1E-10" to 1e-15: used only for comparable figures
DOMAIN_FEATURES, DOMAIN_K = 20, 3


def conductivity_report(
    lower: np.ndarray, upper: np.ndarray, pred: np.ndarray, *, pred_lower=None, pred_upper=None
) -> dict[str, float]:
    """Score conductivity predictions against interval targets (log10 S/cm).

    Rows with ``lower == upper`` are measured; the others censored. ``mae``, ``rmse``, ``r2``, ``spearman``,
    ``roc_auc``/``f1``/``daf_top10`` (sigma >= 1e-4 S/cm) and ``coverage`` are over measured rows.
    ``precision_top10`` is over all rows (the top 10% by prediction; censored rows are all below 1e-8 S/cm, so
    they count as negatives). ``mae_upstream``/``spearman_upstream`` score all rows with censored values set to
    1e-15 S/cm (OBELiX's loader convention, for comparison with published numbers). ``censored_below_bound``: the
    fraction of censored rows predicted at or below their bound; ``censored_interval_reaches``: the fraction whose
    interval reaches below the bound.
    """
    lower, upper, pred = (np.asarray(a, dtype=float) for a in (lower, upper, pred))
    exact = lower == upper
    cens = ~exact
    lo = None if pred_lower is None else np.asarray(pred_lower, float)[exact]
    hi = None if pred_upper is None else np.asarray(pred_upper, float)[exact]
    report = regression_report(upper[exact], pred[exact], positive_above=SUPERIONIC_LOG10, lower=lo, upper=hi)
    positive = lower >= SUPERIONIC_LOG10
    daf = discovery_acceleration_factor(positive, pred)
    report["precision_top10"] = daf * float(positive.mean()) if np.isfinite(daf) else float("nan")
    upstream = np.where(exact, upper, UPSTREAM_CENSORED_LOG10)
    upstream_report = regression_report(upstream, pred)
    report["mae_upstream"], report["spearman_upstream"] = upstream_report["mae"], upstream_report["spearman"]
    report["n"], report["n_censored"] = float(len(pred)), float(cens.sum())
    if cens.any():
        report["censored_below_bound"] = float(np.mean(pred[cens] <= upper[cens]))
        if pred_lower is not None:
            report["censored_interval_reaches"] = float(np.mean(np.asarray(pred_lower, float)[cens] <= upper[cens]))
    return report


class ConductivityModel(RegressorMixin, BaseEstimator):
    """Censored-aware gradient-boosted model of log10 room-temperature Li-ion conductivity (S/cm).

    Args:
        preset: Composition feature preset (:class:`features.composition.CompositionFeaturizer`).
        use_structure: Also fit the structure-aware model (used for rows given a structure).
        n_estimators: Boosting rounds of the point models.
        learning_rate: Shrinkage.
        max_depth: Tree depth.
        min_child_weight: Minimum hessian per leaf.
        subsample: Row subsampling per tree.
        colsample_bytree: Feature subsampling per tree.
        aft_scale: Scale (log10 S/cm) of the AFT normal error distribution.
        coverage: Nominal coverage of the prediction intervals.
        n_folds: Grouped folds of the out-of-fold predictions (CV metrics and interval calibration).
        domain_quantile: Training-distance quantile beyond which a composition is out of domain.
        random_state: Seed.
        n_jobs: xgboost threads.
    """

    def __init__(
        self,
        *,
        preset: str = "electrolyte",
        use_structure: bool = True,
        n_estimators: int = 500,
        learning_rate: float = 0.03,
        max_depth: int = 4,
        min_child_weight: float = 2.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        aft_scale: float = 1.0,
        coverage: float = 0.8,
        n_folds: int = 5,
        domain_quantile: float = 0.95,
        random_state: int | None = 0,
        n_jobs: int | None = 1,
    ) -> None:
        self.preset = preset
        self.use_structure = use_structure
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.aft_scale = aft_scale
        self.coverage = coverage
        self.n_folds = n_folds
        self.domain_quantile = domain_quantile
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------------------------------------- features
    @property
    def kinds(self) -> tuple[Kind, ...]:
        return KINDS if self.use_structure else ("composition",)

    def feature_names(self) -> list[str]:
        """Input feature names of every booster, in order: composition features, then structure features.

        Both models see the same columns, so the bundle has one feature list; the composition model is trained
        with the structure columns missing (NaN), so its trees never split on them.
        """
        names = list(CompositionFeaturizer(preset=self.preset).fit().get_feature_names_out())
        return names + list(StructureFeaturizer().fit().get_feature_names_out())

    def _design(
        self, formulas: list[object], structures: Sequence[Any] | None, lattice: pd.DataFrame | None
    ) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
        """Composition matrix, structure matrix, per-row errors, and which rows have structure features."""
        comp, errors = CompositionFeaturizer(preset=self.preset, errors="nan").fit().featurize(formulas)
        featurizer = StructureFeaturizer(errors="nan").fit()
        n = len(formulas)
        struct = np.full((n, len(featurizer.get_feature_names_out())), np.nan)
        has = np.zeros(n, dtype=bool)
        if lattice is not None:  # training: lattice data for every row, replaced by CIF features where readable
            struct, lattice_errors = featurizer.featurize_lattice(lattice)
            has = np.array([e is None for e in lattice_errors])
        if structures is not None:
            given = [i for i, s in enumerate(structures) if s is not None]
            values, reasons = featurizer.featurize([structures[i] for i in given])
            for row, i in enumerate(given):
                if reasons[row] is None:
                    struct[i], has[i] = values[row], True
                elif lattice is None:  # prediction: a bad structure is the row's error, not a silent fallback
                    errors[i] = errors[i] or reasons[row]
        return comp, struct, errors, has

    def feature_table(self, X: Any, *, structures: Sequence[Any] | None = None) -> pd.DataFrame:
        """The boosters' input features (columns :meth:`feature_names`; ``X``, ``structures`` as in :meth:`fit`)."""
        formulas, lattice, cifs = self._inputs(X)
        comp, struct, _, _ = self._design(formulas, structures if structures is not None else cifs, lattice)
        return pd.DataFrame(np.hstack([comp, struct]), columns=self.feature_names())

    def _matrix(self, kind: Kind, comp: np.ndarray, struct: np.ndarray) -> np.ndarray:
        return np.hstack([comp, struct if kind == "structure" else np.full_like(struct, np.nan)])

    @staticmethod
    def _inputs(X: Any) -> tuple[list[object], pd.DataFrame | None, list[Any] | None]:
        if isinstance(X, pd.DataFrame) and "formula" in X.columns:
            lattice = X[list(LATTICE_COLUMNS)] if set(LATTICE_COLUMNS) <= set(X.columns) else None
            cifs = X["cif_path"].tolist() if "cif_path" in X.columns else None
            return X["formula"].tolist(), lattice, cifs
        return as_formula_list(X), None, None

    # ---------------------------------------------------------------------------------------------- training
    def _params(self, seed: int) -> dict[str, Any]:
        return {
            "objective": "survival:aft",
            "aft_loss_distribution": "normal",
            "aft_loss_distribution_scale": self.aft_scale,
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "tree_method": "hist",
            "seed": seed,
            "nthread": self.n_jobs or 0,
        }

    def _fit_point(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, seed: int) -> xgb.Booster:
        data = xgb.DMatrix(x)
        data.set_float_info("label_lower_bound", np.exp(lo))  # exp(-inf) = 0: left-censored
        data.set_float_info("label_upper_bound", np.exp(hi))
        params = self._params(seed) | {"base_score": float(np.exp(np.median(hi)))}
        return xgb.train(params, data, num_boost_round=self.n_estimators)

    def _fit_scale(self, x: np.ndarray, abs_residual: np.ndarray, seed: int) -> xgb.Booster:
        params = self._params(seed) | {"objective": "reg:absoluteerror", "max_depth": 3, "learning_rate": 0.05}
        for key in ("aft_loss_distribution", "aft_loss_distribution_scale"):
            params.pop(key)
        return xgb.train(params, xgb.DMatrix(x, label=abs_residual), num_boost_round=200)

    @staticmethod
    def _margin(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(x, predict_type="margin"), dtype=float)

    def _oof(self, x, lo, hi, folds, seed, say, kind) -> tuple[np.ndarray, np.ndarray, ConformalCalibration]:
        exact = lo == hi
        oof, oof_scale = np.empty(len(x)), np.empty(len(x))
        for k, (train, test) in enumerate(folds):
            say(f"{kind} model: fold {k + 1}/{len(folds)}")
            oof[test] = self._margin(self._fit_point(x[train], lo[train], hi[train], seed + k), x[test])
        abs_res = np.abs(hi - oof)
        for k, (train, test) in enumerate(folds):
            train = train[exact[train]]
            oof_scale[test] = np.maximum(self._margin(self._fit_scale(x[train], abs_res[train], seed + k), x[test]), 0)
        return oof, oof_scale, calibrate(hi[exact], oof[exact], oof_scale[exact], coverage=self.coverage)

    @staticmethod
    def _targets(y: Any, y_lower: Any, y_upper: Any) -> tuple[np.ndarray, np.ndarray]:
        y = None if y is None else np.asarray(y, dtype=float)
        lo = y if y_lower is None else np.asarray(y_lower, dtype=float)
        hi = y if y_upper is None else np.asarray(y_upper, dtype=float)
        if lo is None or hi is None:
            raise ValueError("give y, or y_lower and y_upper")
        if np.isnan(lo).any() or np.isnan(hi).any() or not np.isfinite(hi).all() or (lo > hi).any():
            raise ValueError("targets need lower <= upper, finite upper bounds and no NaN (censored: lower=-inf)")
        return lo, hi

    def _prepare(self, X, y, y_lower, y_upper, structures, groups):
        formulas, lattice, cifs = self._inputs(X)
        lo, hi = self._targets(y, y_lower, y_upper)
        if len(formulas) != len(lo):
            raise ValueError(f"{len(formulas)} formulas but {len(lo)} targets")
        comp, struct, errors, has = self._design(formulas, structures if structures is not None else cifs, lattice)
        bad = [(i, e) for i, e in enumerate(errors) if e]
        if bad:
            raise ValueError(f"{len(bad)} training rows cannot be featurized, e.g. row {bad[0][0]}: {bad[0][1]}")
        if groups is None:
            groups = X["composition_key"] if isinstance(X, pd.DataFrame) and "composition_key" in X else formulas
        groups = pd.factorize(pd.Series(list(groups), dtype=object))[0]
        seed = 0 if self.random_state is None else int(self.random_state)
        folds = list(GroupKFold(self.n_folds, shuffle=True, random_state=seed).split(comp, groups=groups))
        return formulas, lo, hi, comp, struct, has, folds, seed

    def cross_validate(
        self, X: Any, y: Any = None, *, y_lower=None, y_upper=None, structures=None, groups=None, progress=None
    ) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
        """Grouped out-of-fold scores of each model kind, without fitting final models (arguments as :meth:`fit`).

        Returns:
            ``{kind: conductivity_report(...)}`` and a table of out-of-fold ``<kind>_pred``, ``<kind>_lower``,
            ``<kind>_upper`` per row (log10 S/cm).
        """
        say = progress or (lambda message: None)
        _, lo, hi, comp, struct, _, folds, seed = self._prepare(X, y, y_lower, y_upper, structures, groups)
        reports, columns = {}, {}
        for kind in self.kinds:
            oof, scale, cal = self._oof(self._matrix(kind, comp, struct), lo, hi, folds, seed, say, kind)
            low, high = cal.interval(oof, scale)
            reports[kind] = conductivity_report(lo, hi, oof, pred_lower=low, pred_upper=high)
            columns |= {f"{kind}_pred": oof, f"{kind}_lower": low, f"{kind}_upper": high}
        return reports, pd.DataFrame(columns)

    def fit(
        self, X: Any, y: Any = None, *, y_lower=None, y_upper=None, structures=None, groups=None, progress=None
    ) -> ConductivityModel:
        """Fit the composition (and structure) models, their interval models and the applicability domain.

        Args:
            X: Formulas, or a table with ``formula`` and optionally ``composition_key`` (CV groups), the
                lattice columns of :data:`features.structure.LATTICE_COLUMNS` and ``cif_path`` (an OBELiX table).
            y: log10 conductivity (log10 S/cm); may be NaN where ``y_lower``/``y_upper`` give the interval.
            y_lower: Interval lower bounds (``-inf`` for left-censored rows); default ``y``.
            y_upper: Interval upper bounds; default ``y``.
            structures: Per-row pymatgen Structures / CIF paths / None (default: ``X["cif_path"]``). Training rows
                whose structure cannot be featurized use the lattice features, if ``X`` has them.
            groups: CV groups (default: ``X["composition_key"]``, else the formula string).
            progress: Optional callable ``progress(message)``.

        Returns:
            self, with ``cv_metrics_`` / ``oof_`` (grouped out-of-fold), ``calibration_``, ``boosters_``,
            ``domain_``.
        """
        say = progress or (lambda message: None)
        formulas, lo, hi, comp, struct, _, folds, seed = self._prepare(X, y, y_lower, y_upper, structures, groups)
        exact = lo == hi
        self.boosters_, self.calibration_, self.cv_metrics_, oof_columns = {}, {}, {}, {}
        for kind in self.kinds:
            x = self._matrix(kind, comp, struct)
            oof, scale, self.calibration_[kind] = self._oof(x, lo, hi, folds, seed, say, kind)
            low, high = self.calibration_[kind].interval(oof, scale)
            self.cv_metrics_[kind] = conductivity_report(lo, hi, oof, pred_lower=low, pred_upper=high)
            oof_columns |= {f"{kind}_pred": oof, f"{kind}_lower": low, f"{kind}_upper": high}
            say(f"{kind} model: final fit")
            self.boosters_[kind] = self._fit_point(x, lo, hi, seed)
            self.boosters_[f"{kind}_scale"] = self._fit_scale(x[exact], np.abs(hi - oof)[exact], seed)
            for name in (kind, f"{kind}_scale"):
                self.boosters_[name].feature_names = self.feature_names()
        self.oof_ = pd.DataFrame(oof_columns)
        self.domain_ = self._fit_domain(formulas, comp)
        self.n_features_in_ = len(self.feature_names())
        self.feature_names_in_ = np.asarray(self.feature_names(), dtype=object)
        return self

    # ------------------------------------------------------------------------------------------------ domain
    def _fit_domain(self, formulas: list[object], comp: np.ndarray) -> dict[str, Any]:
        gain = self.boosters_["composition"].get_score(importance_type="total_gain")
        names = self.feature_names()
        top = sorted(gain, key=gain.get, reverse=True)[:DOMAIN_FEATURES]
        cols = [names.index(name) for name in top]
        x = comp[:, cols]
        center = np.nanmedian(x, axis=0)
        q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
        scale = np.where(q75 - q25 > 0, q75 - q25, np.nanstd(x, axis=0) + 1e-9)
        points = np.unique(np.round(np.nan_to_num((x - center) / scale), 3), axis=0)
        distance = self._knn_distance(points, points, exclude_self=True)
        batch = parse_batch(formulas)
        elements = sorted({int(i) for i in batch.index[batch.mask]})
        return {
            "features": top,
            "center": center.tolist(),
            "scale": scale.tolist(),
            "points": points.tolist(),
            "threshold": float(np.quantile(distance, self.domain_quantile)),
            "element_indices": elements,
        }

    @staticmethod
    def _knn_distance(x: np.ndarray, points: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
        squared = (x**2).sum(axis=1)[:, None] + (points**2).sum(axis=1)[None, :] - 2.0 * x @ points.T
        d = np.sqrt(np.maximum(squared, 0.0) / x.shape[1])  # RMS distance via one matrix product
        if exclude_self:
            np.fill_diagonal(d, np.inf)
        k = min(DOMAIN_K, points.shape[0] - int(exclude_self))
        return np.sort(d, axis=1)[:, :k].mean(axis=1)

    def _in_domain(self, formulas: list[object], comp: np.ndarray) -> np.ndarray:
        dom = self.domain_
        names = self.feature_names()
        x = comp[:, [names.index(name) for name in dom["features"]]]
        z = np.nan_to_num((x - np.asarray(dom["center"])) / np.asarray(dom["scale"]))
        points = np.asarray(dom["points"], dtype=float)
        near = np.concatenate([self._knn_distance(z[s : s + 2000], points) for s in range(0, len(z), 2000)] or [[]])
        batch = parse_batch(formulas)
        seen = np.zeros(len(ELEMENT_SYMBOLS), dtype=bool)
        seen[dom["element_indices"]] = True
        known = np.where(batch.mask, seen[batch.index], True).all(axis=1)
        li = comp[:, names.index("Li atomic fraction")] > 0
        return (near <= dom["threshold"]) & known & li

    # -------------------------------------------------------------------------------------------- prediction
    def output_columns(self) -> list[str]:
        """Columns of :meth:`predict_table`, ``error`` excluded."""
        return list(OUTPUT_COLUMNS)

    def explain(self, formulas: Any, *, top: int = 3) -> list[str]:
        """Top feature contributions (log10 S/cm) to each row's composition-model prediction; "" for bad rows."""
        check_is_fitted(self, "boosters_")
        comp, struct, errors, _ = self._design(as_formula_list(formulas), None, None)
        return explain_rows(self.boosters_["composition"], self._matrix("composition", comp, struct), errors, top=top)

    def predict(self, X: Any, *, structures: Sequence[Any] | None = None) -> np.ndarray:
        """Point predictions in log10 S/cm (NaN for rows that cannot be featurized)."""
        return self.predict_table(X, structures=structures)[TARGET].to_numpy(dtype=float)

    def predict_table(self, formulas: Any, *, structures: Sequence[Any] | None = None) -> pd.DataFrame:
        """Predictions, one row per input row, in order.

        Args:
            formulas: Formulas (strings or pymatgen Compositions). An empty or None formula with a structure is
                taken from the structure's composition.
            structures: Optional per-row pymatgen Structure, CIF path or None. Rows with a structure use the
                structure model (``use_structure=True``); a structure that cannot be featurized (unreadable CIF,
                bad occupancy, no Li) is that row's error.

        Returns:
            ``log10_sigma_s_per_cm`` (log10 S/cm), ``log10_sigma_std`` (Gaussian-equivalent standard deviation,
            log10 S/cm), ``log10_sigma_lower``/``log10_sigma_upper`` (nominal-coverage interval),
            ``conductivity_model`` (``"composition"``/``"structure"``), ``in_domain`` (bool) and ``error`` (empty
            when fine; prediction columns NaN and ``in_domain`` False otherwise).
        """
        check_is_fitted(self, "boosters_")
        formulas = as_formula_list(formulas)
        n = len(formulas)
        if structures is not None and len(structures) != n:
            raise ValueError(f"{n} formulas but {len(structures)} structures")
        read_errors: list[str | None] = [None] * n
        if not self.use_structure or structures is None:
            structures = None
        else:
            structures = list(structures)
            for i, item in enumerate(structures):
                if isinstance(item, str | Path):
                    try:
                        structures[i] = read_cif(item)
                    except StructureError as exc:
                        structures[i], read_errors[i] = None, str(exc)
            formulas = [
                s.composition.element_composition if s is not None and (f is None or f == "") else f
                for f, s in zip(formulas, structures, strict=True)
            ]
        comp, struct, errors, has = self._design(formulas, structures, None)
        errors = [r or e for r, e in zip(read_errors, errors, strict=True)]
        good = np.array([e is None for e in errors], dtype=bool)
        kind = np.where(has & good, "structure", "composition")
        out = {c: np.full(n, np.nan) for c in OUTPUT_COLUMNS[:4]}
        for name in self.kinds:
            rows = good & (kind == name)
            if not rows.any():
                continue
            x = self._matrix(name, comp[rows], struct[rows])
            point = self._margin(self.boosters_[name], x)
            scale = np.maximum(self._margin(self.boosters_[f"{name}_scale"], x), 0)
            low, high = self.calibration_[name].interval(point, scale)
            out[TARGET][rows], out["log10_sigma_std"][rows] = point, self.calibration_[name].std(scale)
            out["log10_sigma_lower"][rows], out["log10_sigma_upper"][rows] = low, high
        table = pd.DataFrame(out)
        table["conductivity_model"] = np.where(good, kind, "")
        in_domain = np.zeros(n, dtype=bool)
        if good.any():
            in_domain[good] = self._in_domain([formulas[i] for i in np.flatnonzero(good)], comp[good])
        table["in_domain"] = in_domain
        table["error"] = [e or "" for e in errors]
        return table

    # ------------------------------------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, metadata: dict[str, Any], overwrite: bool = False) -> Path:
        """Save as a bundle (xgboost UBJ boosters + ``metadata.json``); ``metadata`` needs at least
        ``training_data_sha256`` and ``metrics``."""
        check_is_fitted(self, "boosters_")
        meta = {
            "task": "conductivity",
            "features_preset": self.preset,
            "feature_names": self.feature_names(),
            "target_name": TARGET,
            "target_unit": "log10(S/cm)",
            # not "params": experiments.pyfunc_model treats a bundle with "params" as a PropertyModel
            "conductivity_params": self.get_params(),
            "uncertainty": {kind: cal.to_dict() for kind, cal in self.calibration_.items()},
            "cv_metrics": self.cv_metrics_,
            "domain": self.domain_,
            **metadata,
        }
        return save_bundle(path, boosters=self.boosters_, metadata=meta, overwrite=overwrite)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> ConductivityModel:
        """Rebuild a fitted model from a loaded bundle."""
        meta = bundle.metadata
        if meta["task"] != "conductivity":
            raise ValueError(f"bundle holds a {meta['task']!r} model, not 'conductivity'")
        model = cls(**meta["conductivity_params"])
        missing = {n for kind in model.kinds for n in (kind, f"{kind}_scale")} - set(bundle.boosters)
        if missing:
            raise ValueError(f"bundle lacks booster(s) {sorted(missing)}")
        if meta["feature_names"] != model.feature_names():
            raise ValueError("the bundle's feature names differ from this version's featurizers; retrain the model")
        model.boosters_ = dict(bundle.boosters)
        model.calibration_ = {k: ConformalCalibration.from_dict(v) for k, v in meta["uncertainty"].items()}
        model.cv_metrics_ = meta.get("cv_metrics", {})
        model.domain_ = meta["domain"]
        model.feature_names_in_ = np.asarray(meta["feature_names"], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.source_ = bundle.source
        return model

    @classmethod
    def load(cls, path: str | Path) -> ConductivityModel:
        """Load a saved bundle directory."""
        return cls.from_bundle(load_bundle(path, task="conductivity"))


def load_conductivity_model(model_uri: str | None = None) -> ConductivityModel:
    """The conductivity model to serve: explicit URI, else ``SSE_SCREEN_CONDUCTIVITY_MODEL_URI``, else shipped.

    Raises:
        models.registry.ModelNotFoundError: Nothing could be loaded (the message lists what was tried).
    """
    from sse_screen.models.registry import resolve_model

    return ConductivityModel.from_bundle(resolve_model("conductivity", model_uri=model_uri))
