"""Who the credentials belong to: account, partition and principal ARN, asked of STS.

Everything account-specific (policy ARNs, the trust policy's conditions, stamps, the tag
that marks which principal launched a job) comes from here, never from ROLE_ARN's text.
Beside it, the small call helpers every stage shares: a SageMaker resource's tags and an S3
object's bytes. An error from STS itself (denied, throttled, expired) goes to the shared
error path (launcher/lib/errors.py), which names the code and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import NoCredentialsError

from launcher.lib.errors import ToolkitError


def s3_bytes(s3: Any, uri: str) -> bytes:
    """The bytes of the object at s3://bucket/key (a ClientError when it cannot be read)."""
    parsed = urlparse(uri)
    return s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()


def sagemaker_tags(sm: Any, arn: str) -> dict[str, str]:
    """A SageMaker resource's tags as a mapping (ListTags)."""
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn).get("Tags", [])}


class CallerError(ToolkitError):
    """No usable credentials; the message says how to provide them."""


@dataclass(frozen=True)
class Caller:
    account: str
    partition: str  # aws, aws-cn or aws-us-gov
    arn: str


def whoami(session: Any) -> Caller:
    try:
        identity = session.client("sts").get_caller_identity()
    except NoCredentialsError:
        raise CallerError(
            "no AWS credentials found; run 'aws configure', set AWS_PROFILE, or export assumed-role keys"
        ) from None
    arn = identity["Arn"]
    return Caller(account=identity["Account"], partition=arn.split(":")[1], arn=arn)
