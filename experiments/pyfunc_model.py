"""MLflow "model from code" wrapper around a saved model bundle (no pickle of our objects).

``experiments.tracking.log_and_register`` logs *this file* as the model's code and the bundle directory as
the artifact ``"bundle"``; MLflow executes the file on load and calls :meth:`BundleModel.load_context`, which
reads the bundle with :func:`models.persistence.load_bundle`. Loading it with ``mlflow.pyfunc.load_model``
therefore needs sse-screen installed (the ``models`` package); ``models.registry.resolve_model`` does not go
through pyfunc at all, it downloads the bundle and loads it directly.

A model bundle (``model_type`` ``"property"``: stability, band gap; ``"conductivity"``) predicts from a ``formula``
column and returns the same columns as ``sse-screen predict``; the class is picked by the metadata's ``model_type``
(bundles written before it existed: by the legacy rule of :func:`models.persistence.model_type_of`). Any other bundle
returns each booster's raw prediction on the feature columns given.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class BundleModel(PythonModel):
    """Pyfunc model serving the boosters of a bundle artifact."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the bundle from ``context.artifacts["bundle"]``."""
        from sse_screen.models.model_bundle import model_from_bundle
        from sse_screen.models.persistence import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"])
        self.model = model_from_bundle(self.bundle)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Predict with every booster of the bundle.

        Args:
            context: MLflow model context (unused; the bundle was loaded in ``load_context``).
            model_input: Table holding at least the bundle's feature columns (extra columns are ignored).
            params: Unused inference parameters.

        Returns:
            One column per booster name, one row per input row, in the target's unit
            (``metadata["target_unit"]``).

        Raises:
            ValueError: A feature column is missing.
        """
        import xgboost

        if self.model is not None:
            if "formula" not in model_input.columns:
                raise ValueError("model input lacks the 'formula' column")
            return self.model.predict_table(model_input["formula"].astype(str).tolist()).set_index(model_input.index)
        names = self.bundle.feature_names
        missing = [name for name in names if name not in model_input.columns]
        if missing:
            raise ValueError(f"model input lacks feature columns: {', '.join(missing[:10])}")
        matrix = xgboost.DMatrix(model_input[names].astype("float32"), feature_names=names)
        return pd.DataFrame(
            {name: booster.predict(matrix) for name, booster in self.bundle.boosters.items()},
            index=model_input.index,
        )


mlflow.models.set_model(BundleModel())
