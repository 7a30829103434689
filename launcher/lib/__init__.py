"""What the commands share: the error path, settings, names, AWS helpers, run records, watching,
pricing, and the SDK. Modules here never import a command. Only sdk, training, processing,
batch_transform and hosting call the SageMaker Python SDK (v2, in maintenance until July 2027):
a v3 back end replaces those and nothing else (tests/test_structure.py holds both rules)."""
