"""One logging set-up for every launcher command: '[stage] message' on stderr, SDK chatter off."""

from __future__ import annotations

import logging

# The telemetry logger announces collection even when the config has opted out (it has).
_NOISY = ("botocore", "boto3", "urllib3", "sagemaker.config", "sagemaker.local.image", "sagemaker.telemetry")


def setup(stage: str) -> None:
    # An SDK module (sagemaker.experiments, which sagemaker.workflow imports) calls
    # logging.basicConfig() when imported: its default handler would make ours a no-op. Only
    # that handler goes; any other (a test's capture) stays.
    for handler in list(logging.root.handlers):
        if type(handler) is logging.StreamHandler and getattr(handler.formatter, "_fmt", None) == logging.BASIC_FORMAT:
            logging.root.removeHandler(handler)
    logging.basicConfig(level=logging.INFO, format=f"[{stage}] %(message)s")
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def errors(logger: logging.Logger, message: str) -> int:
    """Log each line of a (possibly multi-line) problem as its own ERROR line; returns exit code 1."""
    for line in message.splitlines():
        logger.error("ERROR: %s", line)
    return 1
