"""One logging set-up for every launcher command: '[stage] message' on stderr, SDK chatter off."""

from __future__ import annotations

import logging

# The telemetry logger announces collection even when the config has opted out (it has).
_NOISY = ("botocore", "boto3", "urllib3", "sagemaker.config", "sagemaker.local.image", "sagemaker.telemetry")


def setup(stage: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"[{stage}] %(message)s")
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
