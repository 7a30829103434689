"""SageMaker runs `docker run IMAGE train`; the Dockerfile's entrypoint is `python train.py`."""

import sys

from titanic_model.cli import main

if __name__ == "__main__":
    sys.exit(main())
