"""Room-temperature Li-ion conductivity model (log10 S/cm) from composition, and from structure when a CIF is given.

Design (small, noisy, censored data from two sources spanning 15 decades; chosen on chemical-system-grouped CV,
``experiments/conductivity_cv.py``):

* **a random forest in xgboost** (``num_parallel_tree`` trees, one round, squared error): forests extrapolate across
  chemical systems better than the boosted model did, and the xgboost form ships as a compact UBJ file (no pickle).
  Censored values (``<1E-10``) count at their bound; training rows flagged ``extrapolated`` (McHaffie values
  extrapolated from higher-temperature Arrhenius data) get ``extrapolated_weight`` (default 0: chemsys and
  leave-one-family-out CV were better without them). Targets and outputs are clipped to :data:`LOG10_SIGMA_RANGE`.
* **features**: the shared ``electrolyte`` composition features without price or supply risk
  (:data:`EXCLUDED_FEATURES`), plus the ion-chemistry block of :mod:`features.ion_chemistry` (anion identity and
  polarisability, polyanions, framework cation charge and radius, element embeddings).
* **two models in one bundle**: ``composition`` and ``structure`` (the same plus :mod:`features.structure`
  features); :meth:`ConductivityModel.predict_table` uses the structure model for rows that come with a structure.
* **grouped out-of-fold CV** (groups = chemical system, so a doping series never straddles folds) gives the CV
  metrics and calibrates a normalised split-conformal interval (:mod:`models.uncertainty`) whose scale is a second
  booster's predicted error size times ``1 + interval_distance_weight x`` the distance to the training data
  (:mod:`models.domain`), so intervals widen away from the data.
* **applicability domain** (:mod:`models.domain`): ``in_domain`` is False without Li, with an element never seen in
  training, or beyond the atomic-fraction distance threshold calibrated on leave-chemical-system-out neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_is_fitted

from sse_screen.features.conductivity_data import chemical_systems
from sse_screen.features.formula import as_formula_list, parse_batch
from sse_screen.features.ion_chemistry import FEATURES as ION_FEATURES
from sse_screen.features.ion_chemistry import ion_chemistry_block
from sse_screen.features.structure import LATTICE_COLUMNS, StructureError, StructureFeaturizer, read_cif
from sse_screen.models.boosting import OutOfFold, base_seed, fit_final_scale, margin, out_of_fold
from sse_screen.models.domain import domain_distance, fit_domain, in_domain, nearest_distance
from sse_screen.models.explain import explain_branches
from sse_screen.models.feature_table import checked_feature_table, composition_feature_names, composition_features
from sse_screen.models.metrics import conductivity_report
from sse_screen.models.model_bundle import bundle_params, restore_fitted, save_model
from sse_screen.models.persistence import Bundle, BundleError, load_bundle
from sse_screen.models.uncertainty import ConformalCalibration, calibrate

Kind = Literal["composition", "structure"]
KINDS: tuple[Kind, ...] = ("composition", "structure")
TARGET = "log10_sigma_s_per_cm"
INTERVAL_COLUMNS = ("log10_sigma_std", "log10_sigma_lower", "log10_sigma_upper")
OUTPUT_COLUMNS = (TARGET, *INTERVAL_COLUMNS, "conductivity_model", "in_domain")
#: Physical range of room-temperature Li-ion conductivity (log10 S/cm) that targets, predictions and interval bounds
#: are clipped to: the best known Li conductors reach ~2.5e-2 S/cm (-1.6); below ~1e-14 S/cm nothing is measurable
#: at room temperature (McHaffie's Arrhenius extrapolations down to 1e-31 are artefacts).
LOG10_SIGMA_RANGE = (-14.0, -1.0)
#: Composition features of the shared ``electrolyte`` preset the model does not read: price and supply risk are
#: not physics of ion transport (they were spurious proxies for chemistry, among the old model's top features).
EXCLUDED_FEATURES = ("cost_usd_per_kg", "hhi_production", "hhi_reserve")


class ConductivityModel(RegressorMixin, BaseEstimator):
    """Random-forest model of log10 room-temperature Li-ion conductivity (S/cm), with intervals and a domain flag.

    Args:
        preset: Composition feature preset of the shared feature table (:data:`EXCLUDED_FEATURES` are dropped).
        use_structure: Also fit the structure-aware model (used for rows given a structure).
        n_estimators: Trees of the forest (xgboost ``num_parallel_tree``, one round).
        max_depth: Tree depth of the forest.
        min_child_weight: Minimum (weighted) rows per leaf.
        subsample: Rows sampled (without replacement) per tree.
        colsample_bynode: Features sampled per split.
        max_bin: Histogram bins per feature (fewer: faster, coarser splits).
        extrapolated_weight: Weight of training rows flagged ``extrapolated`` (a column of ``X``).
        scale_n_estimators: Boosting rounds of the error-size (interval) boosters.
        scale_max_depth: Tree depth of the error-size boosters.
        scale_learning_rate: Shrinkage of the error-size boosters.
        interval_distance_weight: Interval scale multiplier per unit of domain distance (distance / threshold).
        coverage: Nominal coverage of the prediction intervals.
        n_folds: Chemical-system-grouped folds of the out-of-fold predictions (CV metrics, interval calibration).
        domain_quantile: Quantile of the leave-chemical-system-out nearest distances that bounds the domain.
        random_state: Seed.
        n_jobs: xgboost threads.
    """

    def __init__(
        self,
        *,
        preset: str = "electrolyte",
        use_structure: bool = True,
        n_estimators: int = 150,
        max_depth: int = 8,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bynode: float = 0.33,
        max_bin: int = 64,
        extrapolated_weight: float = 0.0,
        scale_n_estimators: int = 200,
        scale_max_depth: int = 3,
        scale_learning_rate: float = 0.05,
        interval_distance_weight: float = 1.0,
        coverage: float = 0.8,
        n_folds: int = 5,
        domain_quantile: float = 0.85,
        random_state: int | None = 0,
        n_jobs: int | None = 1,
    ) -> None:
        self.preset = preset
        self.use_structure = use_structure
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bynode = colsample_bynode
        self.max_bin = max_bin
        self.extrapolated_weight = extrapolated_weight
        self.scale_n_estimators = scale_n_estimators
        self.scale_max_depth = scale_max_depth
        self.scale_learning_rate = scale_learning_rate
        self.interval_distance_weight = interval_distance_weight
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
        names = [n for n in composition_feature_names(self.preset) if n not in EXCLUDED_FEATURES]
        return names + list(ION_FEATURES) + list(StructureFeaturizer().fit().get_feature_names_out())

    def _design(
        self,
        formulas: list[object],
        structures: Sequence[Any] | None,
        lattice: pd.DataFrame | None,
        features: pd.DataFrame | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
        """Composition matrix, structure matrix, per-row errors, and which rows have structure features.

        ``features``: the rows' composition features, already computed (see :meth:`predict_table`).
        """
        comp, errors = composition_features(formulas, preset=self.preset, features=features)
        keep = [i for i, n in enumerate(composition_feature_names(self.preset)) if n not in EXCLUDED_FEATURES]
        comp = np.hstack([comp[:, keep], ion_chemistry_block(parse_batch(formulas))])
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
    def _forest_params(self, seed: int) -> dict[str, Any]:
        return {
            "objective": "reg:squarederror", "num_parallel_tree": self.n_estimators, "learning_rate": 1.0,
            "max_depth": self.max_depth, "min_child_weight": self.min_child_weight, "subsample": self.subsample,
            "colsample_bynode": self.colsample_bynode, "reg_lambda": 1e-5, "tree_method": "hist",
            "max_bin": self.max_bin, "random_state": seed, "n_jobs": self.n_jobs,
        }  # fmt: skip

    def _fit_point(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray, seed: int) -> xgb.Booster:
        data = xgb.DMatrix(x, label=y, weight=weight)
        params = self._forest_params(seed) | {"base_score": float(np.average(y, weights=weight))}
        return xgb.train(params, data, num_boost_round=1)

    def _scale_params(self, seed: int) -> dict[str, Any]:
        """xgboost parameters of the error-size boosters (:func:`models.boosting.fit_scale_booster`)."""
        shared = {"tree_method": "hist", "max_bin": self.max_bin, "random_state": seed, "n_jobs": self.n_jobs}
        return {"max_depth": self.scale_max_depth, "learning_rate": self.scale_learning_rate, "subsample": 0.8} | shared

    def _oof(self, x, y, weight, measured, folds, seed, say, kind) -> OutOfFold:
        def fit_predict(train: np.ndarray, test: np.ndarray, fold_seed: int) -> np.ndarray:
            return margin(self._fit_point(x[train], y[train], weight[train], fold_seed), x[test])

        rounds = self.scale_n_estimators
        return out_of_fold(
            x, y, folds, fit_predict=fit_predict, scale_params=self._scale_params, scale_rounds=rounds, seed=seed,
            coverage=self.coverage, measured=measured, say=say, label=f"{kind} model:",
        )  # fmt: skip

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
        flag = X["extrapolated"].to_numpy(bool) if isinstance(X, pd.DataFrame) and "extrapolated" in X else False
        extrapolated = np.zeros(len(lo), dtype=bool) | flag
        weight = np.where(extrapolated, self.extrapolated_weight, 1.0)
        if len(formulas) != len(lo):
            raise ValueError(f"{len(formulas)} formulas but {len(lo)} targets")
        comp, struct, errors, _ = self._design(formulas, structures if structures is not None else cifs, lattice)
        bad = [(i, e) for i, e in enumerate(errors) if e]
        if bad:
            raise ValueError(f"{len(bad)} training rows cannot be featurized, e.g. row {bad[0][0]}: {bad[0][1]}")
        systems = pd.factorize(pd.Series(list(chemical_systems(formulas)), dtype=object))[0]
        groups = systems if groups is None else pd.factorize(pd.Series(list(groups), dtype=object))[0]
        seed = base_seed(self.random_state)
        folds = list(GroupKFold(self.n_folds, shuffle=True, random_state=seed).split(comp, groups=groups))
        y = np.clip(hi, *LOG10_SIGMA_RANGE)  # censored rows count at their bound
        exact = (lo == hi) & ~extrapolated  # rows that fit the error model and calibrate the intervals
        return formulas, lo, hi, y, weight, exact, comp, struct, folds, seed, systems

    def _oof_distance(self, formulas, systems, folds) -> np.ndarray:
        """Each row's domain distance (in threshold units) to its own fold's training rows."""
        out = np.empty(len(formulas))
        dense = parse_batch(formulas).dense()
        for train, test in folds:
            domain = fit_domain([formulas[i] for i in train], systems[train], quantile=self.domain_quantile)
            out[test] = nearest_distance(dense[test], dense[train]) / max(domain["threshold"], 1e-9)
        return out

    def cross_validate(
        self, X: Any, y: Any = None, *, y_lower=None, y_upper=None, structures=None, groups=None, progress=None
    ) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
        """Grouped out-of-fold scores of each model kind, without fitting final models (arguments as :meth:`fit`).

        Returns:
            ``{kind: conductivity_report(...)}`` and a table of out-of-fold ``<kind>_pred``, ``<kind>_lower``,
            ``<kind>_upper`` per row (log10 S/cm).
        """
        say = progress or (lambda message: None)
        formulas, lo, hi, y, weight, exact, comp, struct, folds, seed, systems = self._prepare(
            X, y, y_lower, y_upper, structures, groups
        )
        distance = self._oof_distance(formulas, systems, folds)
        reports, columns = {}, {}
        for kind in self.kinds:
            oof = self._oof(self._matrix(kind, comp, struct), y, weight, exact, folds, seed, say, kind)
            _, reports[kind], columns[kind] = self._oof_scores(lo, hi, y, oof, distance, kind)
        return reports, pd.concat(list(columns.values()), axis=1)

    def _oof_scores(self, lo, hi, y, oof: OutOfFold, distance, kind: Kind):
        """Distance-widened calibration, CV report and out-of-fold columns of one model kind."""
        scale, rows = (
            oof.scale * (1.0 + self.interval_distance_weight * distance),
            oof.measured,
        )  # widened, recalibrated
        calibration = calibrate(y[rows], oof.prediction[rows], scale[rows], coverage=self.coverage)
        pred, low, high = self._bounded(oof.prediction, scale, calibration)
        report = conductivity_report(lo, hi, pred, pred_lower=low, pred_upper=high)
        return calibration, report, pd.DataFrame({f"{kind}_pred": pred, f"{kind}_lower": low, f"{kind}_upper": high})

    @staticmethod
    def _bounded(point, scale, calibration: ConformalCalibration):
        """Point, lower and upper bounds clipped to :data:`LOG10_SIGMA_RANGE`."""
        low, high = calibration.interval(point, scale)
        return tuple(np.clip(v, *LOG10_SIGMA_RANGE) for v in (point, low, high))

    def fit(
        self, X: Any, y: Any = None, *, y_lower=None, y_upper=None, structures=None, groups=None, progress=None
    ) -> ConductivityModel:
        """Fit the composition (and structure) models, their interval models and the applicability domain.

        Args:
            X: Formulas, or a table with ``formula``, optionally the lattice columns of
                :data:`features.structure.LATTICE_COLUMNS`, ``cif_path`` and ``extrapolated`` (bool: the value was
                extrapolated to room temperature; weighted by ``extrapolated_weight``).
            y: log10 conductivity (log10 S/cm); may be NaN where ``y_lower``/``y_upper`` give the interval.
            y_lower: Interval lower bounds (``-inf`` for left-censored rows); default ``y``.
            y_upper: Interval upper bounds (a censored row counts at this bound); default ``y``.
            structures: Per-row pymatgen Structures / CIF paths / None (default: ``X["cif_path"]``). Training rows
                whose structure cannot be featurized use the lattice features, if ``X`` has them.
            groups: CV groups (default: the chemical system of each formula, so doping series stay together).
            progress: Optional callable ``progress(message)``.

        Returns:
            self, with ``cv_metrics_`` / ``oof_`` (grouped out-of-fold), ``calibration_``, ``boosters_``,
            ``domain_``.
        """
        say = progress or (lambda message: None)
        formulas, lo, hi, y, weight, exact, comp, struct, folds, seed, systems = self._prepare(
            X, y, y_lower, y_upper, structures, groups
        )
        distance = self._oof_distance(formulas, systems, folds)
        self.boosters_, self.calibration_, self.cv_metrics_, oof_columns = {}, {}, {}, []
        for kind in self.kinds:
            x = self._matrix(kind, comp, struct)
            oof = self._oof(x, y, weight, exact, folds, seed, say, kind)
            self.calibration_[kind], self.cv_metrics_[kind], columns = self._oof_scores(lo, hi, y, oof, distance, kind)
            oof_columns.append(columns)
            say(f"{kind} model: final fit")
            self.boosters_[kind] = self._fit_point(x, y, weight, seed)
            self.boosters_[f"{kind}_scale"] = fit_final_scale(
                x, oof, self._scale_params(seed), n_estimators=self.scale_n_estimators
            )
            for name in (kind, f"{kind}_scale"):
                self.boosters_[name].feature_names = self.feature_names()
        self.oof_ = pd.concat(oof_columns, axis=1)
        self.domain_ = fit_domain(formulas, systems, quantile=self.domain_quantile)
        self.n_features_in_ = len(self.feature_names())
        self.feature_names_in_ = np.asarray(self.feature_names(), dtype=object)
        return self

    # -------------------------------------------------------------------------------------------- prediction
    def output_columns(self) -> list[str]:
        """Columns of :meth:`predict_table`, ``error`` excluded."""
        return list(OUTPUT_COLUMNS)

    def _serve(
        self, formulas: Any, structures: Sequence[Any] | None, features: pd.DataFrame | None
    ) -> tuple[list[object], np.ndarray, np.ndarray, list[str | None], np.ndarray]:
        """Formulas (filled from structures), composition and structure matrices, errors, and per row the booster
        that serves it (``"structure"``/``"composition"``; "" for error rows)."""
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
            filled = [i for i, (f, s) in enumerate(zip(formulas, structures, strict=True)) if s is not None and not f]
            for i in filled:
                formulas[i] = structures[i].composition.element_composition
            if features is not None and filled:  # the caller's table cannot know a composition read from a CIF
                features = checked_feature_table(features, n_rows=n, preset=self.preset).copy()
                own, _ = composition_features([formulas[i] for i in filled], preset=self.preset)
                features.iloc[filled] = own
        comp, struct, errors, has = self._design(formulas, structures, None, features)
        errors = [r or e for r, e in zip(read_errors, errors, strict=True)]
        good = np.array([e is None for e in errors], dtype=bool)
        served_by = np.where(good, np.where(has, "structure", "composition"), "")
        return formulas, comp, struct, errors, served_by

    def explain(
        self,
        formulas: Any,
        *,
        structures: Sequence[Any] | None = None,
        features: pd.DataFrame | None = None,
        top: int = 3,
    ) -> list[str]:
        """Top feature contributions (log10 S/cm) to each row's prediction, from the booster that served the row.

        Arguments as in :meth:`predict_table`: rows predicted from a structure are explained by the structure
        model, the others by the composition model. Returns "" for rows that cannot be predicted.
        """
        check_is_fitted(self, "boosters_")
        _, comp, struct, _, served_by = self._serve(formulas, structures, features)
        branches = {kind: (self.boosters_[kind], self._matrix(kind, comp, struct)) for kind in self.kinds}
        return explain_branches(branches, served_by.tolist(), top=top)

    def predict(self, X: Any, *, structures: Sequence[Any] | None = None) -> np.ndarray:
        """Point predictions in log10 S/cm (NaN for rows that cannot be featurized)."""
        return self.predict_table(X, structures=structures)[TARGET].to_numpy(dtype=float)

    def predict_table(
        self, formulas: Any, *, structures: Sequence[Any] | None = None, features: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Predictions, one row per input row, in order.

        Args:
            formulas: Formulas (strings or pymatgen Compositions). An empty or None formula with a structure is
                taken from the structure's composition.
            structures: Optional per-row pymatgen Structure, CIF path or None. Rows with a structure use the
                structure model (``use_structure=True``); a structure that cannot be featurized (unreadable CIF,
                bad occupancy, no Li) is that row's error.
            features: The rows' composition features, already computed: one row per formula (same order), holding
                at least the columns of ``CompositionFeaturizer(preset=self.preset)`` by name; the formulas are
                then not featurized again (rows whose formula is taken from a structure still are). An all-NaN
                row is an error row. None: featurize the formulas.

        Returns:
            ``log10_sigma_s_per_cm`` (log10 S/cm), ``log10_sigma_std`` (Gaussian-equivalent standard deviation,
            log10 S/cm), ``log10_sigma_lower``/``log10_sigma_upper`` (nominal-coverage interval),
            ``conductivity_model`` (``"composition"``/``"structure"``), ``in_domain`` (bool) and ``error`` (empty
            when fine; prediction columns NaN and ``in_domain`` False otherwise).

        Raises:
            ValueError: ``structures`` or ``features`` has another number of rows, or ``features`` lacks a needed
                column (named).
        """
        check_is_fitted(self, "boosters_")
        formulas, comp, struct, errors, served_by = self._serve(formulas, structures, features)
        n = len(formulas)
        out = {c: np.full(n, np.nan) for c in OUTPUT_COLUMNS[:4]}
        good = served_by != ""
        distance = np.full(n, np.inf)
        if good.any():
            distance[good] = domain_distance(self.domain_, [formulas[i] for i in np.flatnonzero(good)])
        for name in self.kinds:
            rows = served_by == name
            if not rows.any():
                continue
            x = self._matrix(name, comp[rows], struct[rows])
            scale = np.maximum(margin(self.boosters_[f"{name}_scale"], x), 0)
            scale = scale * (1.0 + self.interval_distance_weight * distance[rows])
            point, low, high = self._bounded(margin(self.boosters_[name], x), scale, self.calibration_[name])
            out[TARGET][rows], out["log10_sigma_std"][rows] = (
                point,
                (high - low) / (2 * norm.ppf(0.5 + self.coverage / 2)),
            )
            out["log10_sigma_lower"][rows], out["log10_sigma_upper"][rows] = low, high
        table = pd.DataFrame(out)
        table["conductivity_model"] = served_by
        table["in_domain"] = np.zeros(n, dtype=bool)
        if good.any():
            rows = [formulas[i] for i in np.flatnonzero(good)]
            table.loc[good, "in_domain"] = in_domain(self.domain_, rows, distance=distance[good])
        table["error"] = [e or "" for e in errors]
        return table

    # ------------------------------------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, metadata: dict[str, Any], overwrite: bool = False) -> Path:
        """Save as a bundle (xgboost UBJ boosters + ``metadata.json``); ``metadata`` needs at least
        ``training_data_sha256`` and ``metrics``."""
        check_is_fitted(self, "boosters_")
        uncertainty = {kind: cal.to_dict() for kind, cal in self.calibration_.items()}
        return save_model(
            path, self, "conductivity", task="conductivity", target=(TARGET, "log10(S/cm)"), uncertainty=uncertainty,
            metadata=metadata, overwrite=overwrite, domain=self.domain_,
        )  # fmt: skip

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> ConductivityModel:
        """Rebuild a fitted model from a loaded bundle (``BundleError``, a ``ValueError``, for a bundle of another
        model type or of the older boosted design, e.g. one with ``aft_scale``: retrain it)."""
        params = bundle_params(bundle, "conductivity")
        if old := sorted(set(params) - set(cls().get_params())):
            raise BundleError(f"the bundle is of an older conductivity model (parameters {old}); retrain it")
        model = cls(**params)
        required = {name for kind in model.kinds for name in (kind, f"{kind}_scale")}
        calibration = {k: ConformalCalibration.from_dict(v) for k, v in bundle.metadata["uncertainty"].items()}
        restore_fitted(model, bundle, required=required, calibration=calibration)
        model.domain_ = bundle.metadata["domain"]
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
