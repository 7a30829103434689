"""What SageMaker runs: `docker run IMAGE train` and `docker run IMAGE serve` reach this as
`python entrypoint.py train|serve`. `serve` is dispatched before anything heavy is imported,
so the server binds its port at once and only its workers load pandas and LightGBM."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        from titanic_model.server import main

        sys.exit(main(sys.argv[2:]))
    from titanic_model.cli import main

    sys.exit(main())
