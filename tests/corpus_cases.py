"""The bad-input corpus: which channel each file goes to and what the failure must say."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class BadInput:
    file: str
    channel: str  # the channel the bad file replaces; the other channel keeps good data
    reason: str  # a phrase the failure file must contain

    @property
    def path(self) -> Path:
        return CORPUS / self.file


CASES = [
    BadInput("empty.csv", "train", "train/empty.csv is empty"),
    BadInput("header_only.csv", "train", "has a header but no data rows"),
    BadInput("missing_survived.csv", "train", "lacks column(s) Survived"),
    BadInput("nonbinary_survived.csv", "train", "line 9: Survived is '2', expected 0 or 1"),
    BadInput("semicolon.csv", "train", "is semicolon-separated"),
    BadInput("nonnumeric_age.csv", "train", "line 5: Age is 'twenty', expected a number >= 0 or blank"),
    BadInput("unseen_category.csv", "validation", "validation/unseen_category.csv line 7: Embarked is 'X'"),
    BadInput("single_class.csv", "train", "has only Survived=0"),
    BadInput("ragged.csv", "train", "is not well-formed CSV"),
    BadInput("garbage.bin", "train", "is binary, not CSV text"),
    BadInput("latin1.csv", "validation", "is not UTF-8 text"),
]
