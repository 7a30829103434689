"""What an endpoint is now: its description and a one-line summary with what it has cost so far
(`make status`, `make costs`); and a version deployed in SDK local mode (`make deploy`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from launcher.lib.config import Settings
from launcher.lib.errors import NOT_FOUND, error_code
from launcher.lib.pricing import PriceBook, pricing_client, usd


def describe(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise


def live_summary(settings: Settings, session: boto3.Session, now: datetime | None = None) -> str:
    """ENDPOINT_NAME if it exists: status, version, type and what it has cost so far (an
    instance endpoint bills per hour from its creation; a serverless one per request)."""
    now = now or datetime.now(UTC)
    sm = session.client("sagemaker")
    try:
        found = describe(sm, settings.endpoint_name)
    except (ClientError, BotoCoreError) as exc:
        return f"endpoint {settings.endpoint_name}: unknown ({exc})"
    if found is None:
        return f"endpoint {settings.endpoint_name}: none (nothing billed)"
    config = sm.describe_endpoint_config(EndpointConfigName=found["EndpointConfigName"])["ProductionVariants"][0]
    hours = (now - found["CreationTime"]).total_seconds() / 3600
    where = (
        f"endpoint {settings.endpoint_name}: {found['EndpointStatus']}, {found['EndpointConfigName']}, up {hours:.1f} h"
    )
    if settings.local:
        return f"{where}; local mode: not billed"
    if "ServerlessConfig" in config:
        return f"{where}; serverless: billed per request only (nothing while idle)"
    price, _ = PriceBook(settings.region, pricing_client(session, settings.region)).lookup(config["InstanceType"])
    so_far = "unknown" if price is None else usd(hours * price.usd_per_hour * config.get("InitialInstanceCount", 1), 4)
    return f"{where}; {config['InstanceType']}: {so_far} so far, billed while it exists"


def deploy_in_local_mode(settings: Settings, local_session: Any, container: dict[str, Any], name: str) -> None:
    """A registry version's container as a local-mode endpoint (the SDK's Model.deploy): its
    serving container starts on this host and answers /ping before this returns."""
    from sagemaker.model import Model  # the SDK loads only for make deploy, not status or costs

    Model(
        image_uri=container["Image"],
        model_data=container["ModelDataUrl"],
        role=settings.role_arn,
        name=name,
        sagemaker_session=local_session,
    ).deploy(initial_instance_count=1, instance_type="local", endpoint_name=name, wait=False)
