"""What SageMaker runs: `docker run IMAGE train` and `docker run IMAGE serve` reach this as
`python entrypoint.py train|serve`. `serve` is dispatched before anything heavy is imported,
so the server binds its port at once and only its workers load pandas and LightGBM."""

import logging
import os
import sys


def finish(code: int) -> None:
    """End a batch command once its files are written and its output flushed, without the
    interpreter's teardown of pandas, scikit-learn and LightGBM: that alone took 0.2 s of a
    1.4 s training job (benchmarks/image_startup.py), and nothing is left for it to do."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        from titanic_model.server import main

        sys.exit(main(sys.argv[2:]))
    from titanic_model.cli import main

    finish(main())
