"""Turning moto's request recording into the IAM actions the requests needed.

JSON-protocol services name the operation in X-Amz-Target, query-protocol ones (IAM, STS)
in the form body's Action; S3 is REST, so its action comes from the method, the query
string and whether the path names an object.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlparse

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
_SERVICE_PREFIX = {"servicequotas": "servicequotas", "ecr": "ecr", "sagemaker": "sagemaker", "logs": "logs"}

# (method, sub-resource in the query) -> action, for bucket-level S3 requests.
_S3_BUCKET = {
    ("GET", "location"): "s3:GetBucketLocation",
    ("GET", "tagging"): "s3:GetBucketTagging",
    ("PUT", "tagging"): "s3:PutBucketTagging",
    ("PUT", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("GET", "publicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("PUT", "encryption"): "s3:PutEncryptionConfiguration",
    ("GET", "encryption"): "s3:GetEncryptionConfiguration",
    ("PUT", "policy"): "s3:PutBucketPolicy",
    ("GET", "policy"): "s3:GetBucketPolicy",
    ("GET", "uploads"): "s3:ListBucketMultipartUploads",
    ("POST", "delete"): "s3:DeleteObject",
    ("PUT", ""): "s3:CreateBucket",
    ("DELETE", ""): "s3:DeleteBucket",
    ("GET", ""): "s3:ListBucket",
    ("HEAD", ""): "s3:ListBucket",
}
_S3_OBJECT = {
    "GET": "s3:GetObject",
    "HEAD": "s3:GetObject",
    "PUT": "s3:PutObject",
    "POST": "s3:PutObject",
    "DELETE": "s3:DeleteObject",
}


def _s3_action(method: str, url: str) -> str:
    parsed = urlparse(url)
    parts = parsed.path.lstrip("/").split("/", 1)
    query = parse_qs(parsed.query, keep_blank_values=True)
    if len(parts) == 2 and parts[1]:  # an object key
        if method == "DELETE" and "uploadId" in query:
            return "s3:AbortMultipartUpload"
        if method == "GET" and "uploadId" in query:
            return "s3:ListMultipartUploadParts"
        if "tagging" in query:
            return f"s3:{'Get' if method == 'GET' else 'Put'}ObjectTagging"
        return _S3_OBJECT[method]
    sub = next(
        (
            k
            for k in query
            if k
            not in (
                "list-type",
                "prefix",
                "delimiter",
                "encoding-type",
                "max-keys",
                "continuation-token",
                "start-after",
                "fetch-owner",
            )
        ),
        "",
    )
    return _S3_BUCKET.get((method, sub), f"s3:UNMAPPED {method} ?{sub}")


def action_of(request: dict) -> str | None:
    """The IAM action one recorded request needed; None for moto's own API and unsigned calls."""
    url = request["url"]
    if "/moto-api/" in url:
        return None
    headers = {k.lower(): v for k, v in request["headers"].items()}
    scope = _SCOPE.search(headers.get("authorization", ""))
    if not scope:
        return None
    service = scope.group(1)
    if "x-amz-target" in headers:
        operation = headers["x-amz-target"].rsplit(".", 1)[1]
        return f"{_SERVICE_PREFIX.get(service, service)}:{operation}"
    if service == "s3":
        return _s3_action(request["method"], url)
    body = request.get("body") or ""
    if request.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    action = parse_qs(body).get("Action", [""])[0]
    return f"{service}:{action}" if action else f"{service}:UNMAPPED"


def actions_in(recording: str) -> dict[str, int]:
    """Action -> number of requests, over a downloaded recording (one JSON object a line)."""
    counts: dict[str, int] = {}
    for line in filter(None, recording.splitlines()):
        action = action_of(json.loads(line))
        if action:
            counts[action] = counts.get(action, 0) + 1
    return counts
