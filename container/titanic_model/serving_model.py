"""The trained pipeline as the server runs it: the same features and LightGBM's own trees, without
building pandas frames and without scikit-learn's wrapper around LightGBM.

For a one-row request the pipeline's predict_proba spends about 1.3 ms building frames and in the
wrapper's checks, and the trees themselves about 30 microseconds. For the default feature set,
ServingModel computes the features from plain lists with the very code the pipeline runs
(TitanicFeatures.group_columns) and hands them, as the same float64 matrix, to the same
Booster.predict the wrapper calls: each probability is the pipeline's own, bit for bit
(tests/test_inference.py holds every request format to that, and tests/test_serving_model.py
every Kaggle row). A model with another feature set is served through its pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from titanic_model.data import typed_frame
from titanic_model.features import GROUP_COLUMNS


@dataclass(frozen=True)
class ServingModel:
    pipeline: Any  # the scikit-learn pipeline training saved: features, then LGBMClassifier
    direct: bool  # True: features from lists, then Booster.predict; False: the pipeline itself

    @classmethod
    def of(cls, pipeline: Any) -> ServingModel:
        features = pipeline.named_steps["features"]
        direct = features.feature_set == "groups" and list(features.feature_names_out_) == list(GROUP_COLUMNS)
        return cls(pipeline=pipeline, direct=direct)

    def probabilities(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """P(survived) per row of typed columns (data.typed_columns), in row order."""
        if not self.direct:
            return self.pipeline.predict_proba(typed_frame(columns))[:, 1]
        features, classifier = self.pipeline.named_steps["features"], self.pipeline.named_steps["model"]
        pclass = np.asarray(columns["Pclass"], dtype=float)
        matrix = np.column_stack(list(features.group_columns(columns, pclass).values()))
        # What LGBMClassifier.predict_proba asks of the booster for a binary model: the output is
        # the probability of class 1 itself. The thread count changes only the speed (0: OpenMP's).
        threads = classifier.n_jobs if isinstance(classifier.n_jobs, int) and classifier.n_jobs > 0 else 0
        return classifier.booster_.predict(matrix, num_threads=threads)
