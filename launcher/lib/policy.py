"""IAM's own matching, for the checks the emulator does not make: whether a trust policy lets
SageMaker assume the role for a given aws:SourceArn, and whether an identity policy grants an
action on a resource.

IAM compares an ARN with `ArnLike` (and `ArnEquals`, which behaves the same) component by
component: the six colon-separated parts, each a case-sensitive glob where `*` is any run of
characters and `?` one character. A pattern `model/NAME*` therefore never matches the literal
`arn:aws:sagemaker:REGION:ACCOUNT:*` that SageMaker presents for hosting. Only the condition
operators the toolkit's trust policy uses are evaluated; any other makes a statement not match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


def as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def _glob(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """IAM's ArnLike: the six components of each ARN compared one by one as case-sensitive globs."""
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(given) == 6 and all(_glob(w, g) for w, g in zip(wanted, given, strict=True))


def _condition_holds(operator: str, key_values: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for key, values in key_values.items():
        present = context.get(key)
        if present is None:
            return False  # IAM: a condition on a key the request lacks does not match
        if operator in ("ArnLike", "ArnEquals") and not any(arn_like(v, present) for v in as_list(values)):
            return False
        if operator == "StringEquals" and present not in as_list(values):
            return False
        if operator not in ("ArnLike", "ArnEquals", "StringEquals"):
            return False
    return True


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    return all(_condition_holds(op, kv, context) for op, kv in (statement.get("Condition") or {}).items())


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A policy's statements (IAM also takes a single statement without the list)."""
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def statement_admits(statement: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    services = as_list((statement.get("Principal") or {}).get("Service"))
    return (
        statement.get("Effect") == "Allow"
        and SAGEMAKER_PRINCIPAL in services
        and "sts:AssumeRole" in as_list(statement.get("Action"))
        and _conditions_hold(statement, context)
    )


def admits(trust_policy: Mapping[str, Any], source_arn: str, source_account: str | None = None) -> bool:
    """Whether SageMaker, presenting this aws:SourceArn (and aws:SourceAccount, when it sends
    one), may assume the role."""
    context = {"aws:SourceArn": source_arn}
    if source_account is not None:
        context["aws:SourceAccount"] = source_account
    return any(statement_admits(s, context) for s in _statements(trust_policy))


def grants(document: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
    """Whether an identity policy's Allow statements grant `action` on `resource` (exact action
    names, resource globs, the condition operators above). Denies are not weighed: the
    toolkit's own policies have none."""
    return any(
        s.get("Effect") == "Allow"
        and action in as_list(s.get("Action"))
        and any(_glob(pattern, resource) for pattern in as_list(s.get("Resource")))
        and _conditions_hold(s, context or {})
        for s in _statements(document)
    )
