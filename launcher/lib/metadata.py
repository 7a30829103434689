"""A registry version's customer metadata: its keys, and values in the alphabet AWS accepts.

A version inside a model package group cannot carry tags of its own (botocore's
CreateModelPackageInput.Tags: "you cannot supply a tag argument"), so what ties a version to
its run, and who registered it, lives in CustomerMetadataProperties. Its values must match
[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]* with 1-256 characters (botocore's CustomerMetadataValue): a value
that breaks the rule would refuse the registration after training was paid for, so every
value is made to fit here rather than checked there.
"""

from __future__ import annotations

import unicodedata

TRAINING_JOB_KEY = "TrainingJob"  # ties a version to its run
REGISTERED_BY_KEY = "RegisteredBy"  # the principal that registered it: clean-up deletes only the caller's
VALUE_MAX = 256
_ALLOWED_PUNCTUATION = set("_.:/=+-@")


def _allowed(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in ("L", "N") or category == "Zs" or char in _ALLOWED_PUNCTUATION


def value(text: str) -> str:
    """`text` as a metadata value: other characters become '_', an empty value 'unknown', and
    a long one keeps its start and end around '...' (the end of an image URI is its tag)."""
    cleaned = "".join(c if _allowed(c) else "_" for c in text) or "unknown"
    if len(cleaned) <= VALUE_MAX:
        return cleaned
    head = VALUE_MAX // 2
    return f"{cleaned[:head]}...{cleaned[-(VALUE_MAX - head - 3) :]}"
