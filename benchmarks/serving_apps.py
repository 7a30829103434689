"""The servers benchmarks/serving.py measures beside the toolkit's own, run in the same image under
the same gunicorn settings (2 workers x 4 gthread threads) behind the same published port:

  empty   answers every request with a fixed body: the round trip's floor on this host
  byoc    in the style of AWS's bring-your-own-container sample: the body parsed by pandas,
          the pipeline's predict_proba, the answer written by pandas (the sample runs Flask in
          front; Flask is not in the image, so this one is a plain WSGI app and a little faster
          than the sample would be)
  trees   not a server: prints the microseconds LightGBM's own predict takes for one row and
          for 418 rows of the same model (python serving_apps.py trees MODEL_DIR TEST_CSV)

This file is mounted read-only into a container started from the image; it is not part of it.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def empty() -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/csv"), ("Content-Length", "6")])
        return [b"0.5,0\n"]

    return app


def byoc() -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    import joblib
    import pandas as pd

    model = joblib.load(os.path.join(os.environ.get("MODEL_DIR", "/opt/ml/model"), "model.joblib"))
    model.named_steps["model"].set_params(n_jobs=1)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/ping":
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        frame = pd.read_csv(io.BytesIO(environ["wsgi.input"].read(length)))
        probability = model.predict_proba(frame)[:, 1]
        out = pd.DataFrame({"probability": probability, "survived": (probability >= 0.5).astype(int)})
        body = out.to_csv(header=False, index=False).encode()
        start_response("200 OK", [("Content-Type", "text/csv"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def trees(model_dir: str, test_csv: str) -> None:
    """LightGBM's predict on the engineered features alone: the work no server can avoid."""
    import joblib
    import numpy as np
    import pandas as pd

    model = joblib.load(os.path.join(model_dir, "model.joblib"))
    features = model.named_steps["features"].transform(pd.read_csv(test_csv))
    booster = model.named_steps["model"].booster_
    whole = features.to_numpy(dtype=float)
    for label, matrix in (("one_row_us", whole[:1]), ("rows_418_us", whole)):
        times = []
        for _ in range(300):
            began = time.perf_counter()
            booster.predict(matrix, num_threads=1)
            times.append(time.perf_counter() - began)
        print(f"{label}={np.median(times) * 1e6:.1f}")


if __name__ == "__main__":
    trees(sys.argv[2], sys.argv[3])
