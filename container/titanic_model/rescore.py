"""`<image> rescore`: score the model in /opt/ml/model on the train and validation channels.

`make verify` runs this inside the training image, offline (--network none) and with every
mount read-only, so the pickled model from S3 is loaded only where it was made and never by
the operator's own Python. The metrics go to stdout as one JSON object.
"""

from __future__ import annotations

import joblib

from titanic_model import contract
from titanic_model.data import DataError, features_and_label, read_channel
from titanic_model.metrics import binary_metrics
from titanic_model.model import survival_probability


def rescore(paths: contract.Paths) -> dict[str, float]:
    model_file = paths.model_dir / contract.MODEL_FILE
    if not model_file.is_file():
        raise DataError(f"{model_file} is missing; mount the unpacked model.tar.gz at {paths.model_dir}")
    model = joblib.load(model_file)
    scored: dict[str, float] = {}
    for prefix, channel in (("train", "train"), ("val", "validation")):
        X, y = features_and_label(read_channel(channel, paths.channel(channel)).frame)
        scored.update(binary_metrics(prefix, y.to_numpy(), survival_probability(model, X)))
    return scored
