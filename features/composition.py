"""Vectorised composition featurizer: formulas in, a float64 feature matrix out.

A drop-in, much faster replacement for matminer's ``ElementProperty.from_preset("magpie")`` (same labels, order
and values), plus electrolyte screening descriptors. Features are matrix operations over a padded
``(n_compositions x n_elements_per_row)`` layout and ``(118 x n_properties)`` element tables; formulas are parsed
once per distinct string.

Example:
    >>> from features.composition import CompositionFeaturizer
    >>> feat = CompositionFeaturizer(preset="magpie").fit(["Li7La3Zr2O12"])
    >>> feat.transform(["Li7La3Zr2O12", "Li6PS5Cl"]).shape
    (2, 132)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sse_screen.features import presets
from sse_screen.features.formula import FormulaError, as_formula_list, parse_batch

__all__ = ["CompositionFeaturizer", "FormulaError", "featurized_rows"]

ErrorMode = Literal["raise", "nan"]
_CHUNK_ROWS = 50_000  # bounds peak memory (about k x 22 x 8 B per row) on million-row inputs
_ROWS_FEATURIZED = [0]  # process-wide statistic, see featurized_rows()


def featurized_rows() -> int:
    """Rows featurized by every :class:`CompositionFeaturizer` of this process so far (a statistic).

    Screening featurizes each distinct composition of a batch once; tests and benchmarks read the difference of
    this count around a call to check it.
    """
    return _ROWS_FEATURIZED[0]


class CompositionFeaturizer(TransformerMixin, BaseEstimator):
    """Featurize chemical formulas (strings or pymatgen Compositions) into element-property statistics.

    Presets:
        - ``"magpie"``: the 132 features of matminer's ``ElementProperty.from_preset("magpie")`` with matminer's
          labels (``"MagpieData minimum Number"``, ...) and order, equal to matminer's values (matminer's default
          ``impute_nan=True``: element data gaps are filled with the property's mean over all elements, so these
          features are never NaN for a parsed formula).
        - ``"electrolyte"`` (default): the Magpie block plus stoichiometry norms, valence-orbital fractions, ionic
          character, Li/Na content, anion fractions, cost (USD/kg) and supply risk (HHI). See
          :meth:`feature_units` for every label's meaning and unit; a feature is NaN only where the element data
          truly lack a value (documented per feature).

    Args:
        preset: Feature set, ``"electrolyte"`` or ``"magpie"``.
        errors: ``"raise"`` (default) raises :class:`FormulaError` on the first bad row, naming its index and the
            reason; ``"nan"`` returns a NaN row for it and records the reason in ``errors_`` (use
            :meth:`featurize` to get the reasons directly).

    Attributes:
        n_features_in_: Always 1 (one formula column).
        feature_names_out_: Feature labels, in column order.
        errors_: Per-row rejection reasons (None for good rows) of the last ``transform`` with ``errors="nan"``.
    """

    def __init__(self, *, preset: presets.Preset = "electrolyte", errors: ErrorMode = "raise") -> None:
        self.preset = preset
        self.errors = errors

    def _check_params(self) -> None:
        if self.preset not in presets.PRESETS:
            raise ValueError(f"Unknown preset={self.preset!r}; expected one of {presets.PRESETS}")
        if self.errors not in ("raise", "nan"):
            raise ValueError(f"Unknown errors={self.errors!r}; expected 'raise' or 'nan'")

    def fit(self, X: Iterable[object] | None = None, y: object = None) -> CompositionFeaturizer:
        """Validate the parameters and fix the output columns (nothing is learned from ``X``).

        Args:
            X: Formulas (ignored apart from sklearn bookkeeping; may be None).
            y: Ignored.

        Returns:
            self
        """
        self._check_params()
        self.n_features_in_ = 1
        self.feature_names_out_ = np.asarray(list(presets.feature_info(self.preset)), dtype=object)
        return self

    def featurize(self, X: Iterable[object]) -> tuple[np.ndarray, list[str | None]]:
        """Featurize and return the per-row rejection reasons, whatever ``errors`` is set to.

        Args:
            X: Formula strings and/or pymatgen Compositions: list, tuple, numpy array, pandas Series, or a
                one-column DataFrame.

        Returns:
            ``(n, n_features)`` float64 features (NaN rows for rejected formulas; units in
            :meth:`feature_units`) and a list of ``n`` reasons (None for rows that featurized).
        """
        return self._featurize_items(as_formula_list(X))

    def _featurize_items(self, items: list[object]) -> tuple[np.ndarray, list[str | None]]:
        check_is_fitted(self, "feature_names_out_")
        self._check_params()
        _ROWS_FEATURIZED[0] += len(items)
        blocks: list[np.ndarray] = []
        reasons: list[str | None] = []
        for start in range(0, max(len(items), 1), _CHUNK_ROWS):
            batch = parse_batch(items[start : start + _CHUNK_ROWS])
            blocks.append(presets.compute(batch, self.preset))
            reasons.extend(batch.errors)
        out = np.vstack(blocks) if blocks else np.empty((0, len(self.feature_names_out_)))
        return out.astype(np.float64, copy=False), reasons

    def transform(self, X: Iterable[object]) -> np.ndarray:
        """Featurize formulas.

        Args:
            X: Formula strings and/or pymatgen Compositions (list, numpy array, pandas Series, 1-column DataFrame).

        Returns:
            ``(n, n_features)`` float64 array, columns ``get_feature_names_out()`` (units: :meth:`feature_units`).

        Raises:
            FormulaError: With ``errors="raise"``, for the first row that cannot be featurized (its index, input and
                reason are in the message and in ``.row``/``.formula``/``.reason``).
        """
        items = as_formula_list(X)
        out, reasons = self._featurize_items(items)
        if self.errors == "raise":
            bad = next((i for i, r in enumerate(reasons) if r is not None), None)
            if bad is not None:
                raise FormulaError(reasons[bad] or "", formula=items[bad], row=bad)
        self.errors_ = reasons
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Feature labels in column order (matminer's labels for the Magpie block)."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def feature_units(self) -> dict[str, tuple[str, str]]:
        """Label -> (description, unit) for every output column, in column order."""
        self._check_params()
        return presets.feature_info(self.preset)

    def citations(self) -> list[str]:
        """BibTeX entries for the element data and descriptors used by the preset."""
        self._check_params()
        return presets.citations(self.preset)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags
