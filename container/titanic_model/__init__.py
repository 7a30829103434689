"""Titanic survival model trained under SageMaker's bring-your-own-container contract."""
