"""What the commands share: the error path, settings, names, AWS helpers, run records, watching,
pricing, the estimator and local-mode helpers. Modules here never import a command."""
