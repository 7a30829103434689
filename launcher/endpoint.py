"""The live endpoint: `make deploy`, `invoke`, `undeploy`.

deploy puts the newest *Approved* version of MODEL_PACKAGE_GROUP behind ENDPOINT_NAME. The
model is made from the model package itself, so what serves is the approved version's image
(by digest) and artifact, byte for byte.

On AWS: a Model, an EndpointConfig (serverless by default, instance-backed with
ENDPOINT_TYPE=instance) and CreateEndpoint, or UpdateEndpoint when it exists, then waiting
for InService. When an update fails, SageMaker keeps the old configuration serving: the
command says so, removes the unused new objects, and exits 1.

On the embedded stack the container runs through SDK local mode, detached, its port on
127.0.0.1 and labelled with the endpoint and version, so that `invoke` and `undeploy` find it
from a new process. A redeploy starts the new version beside the old one, waits for its
/ping, and only then removes the old: a version that fails to start leaves the old serving.
moto holds the control-plane records (model, endpoint config, endpoint) so `make models` and
`make status` see them; local mode's own endpoint objects live only in the deploying process.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from launcher.lib import errors, model_registry, names, watch
from launcher.lib.caller import sagemaker_tags, whoami
from launcher.lib.config import TOOLKIT_TAG, Settings, is_toolkits, job_tags, load
from launcher.lib.errors import NOT_FOUND, ToolkitError, error_code
from launcher.lib.hosting import deploy_in_local_mode, describe
from launcher.lib.local_mode import ENDPOINT_LABEL, STACK_LABEL, VERSION_LABEL, docker, local_containers, stack_id
from launcher.lib.pricing import PriceBook, pricing_client, usd

log = logging.getLogger("endpoint")
VERSION_TAG = "model-package-version"
# The image's server reads its worker count from this (container/titanic_model/server.py).
SERVER_WORKERS_VARIABLE = "SAGEMAKER_MODEL_SERVER_WORKERS"
SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack")
DEFAULT_ROWS = Path(__file__).resolve().parent.parent / "data/titanic/test.csv"
# Serverless inference, us-east-1, from AWS's price page (not read through the Pricing API
# here): per GB-second of compute while a request runs, and per GB of data in and out.
SERVERLESS_USD_PER_GB_SECOND = 0.0000200
SERVERLESS_USD_PER_GB_DATA = 0.016


class EndpointError(ToolkitError):
    """The endpoint cannot be deployed, reached or removed; the message says why and what next."""


def object_name(settings: Settings, version: int) -> str:
    return names.endpoint_object(settings.endpoint_name, version, datetime.now(UTC))


def variant(settings: Settings, model_name: str) -> dict[str, Any]:
    if settings.endpoint_type == "serverless":
        return {
            "VariantName": "AllTraffic",
            "ModelName": model_name,
            "ServerlessConfig": {
                "MemorySizeInMB": settings.serverless_memory_mb,
                "MaxConcurrency": settings.serverless_max_concurrency,
            },
        }
    return {
        "VariantName": "AllTraffic",
        "ModelName": model_name,
        "InstanceType": settings.endpoint_instance_type,
        "InitialInstanceCount": 1,
    }


def cost_words(settings: Settings, session: boto3.Session | None) -> str:
    """What the endpoint costs while it exists."""
    if settings.endpoint_type == "serverless":
        gb = settings.serverless_memory_mb / 1024
        per_request = gb * SERVERLESS_USD_PER_GB_SECOND * 0.05  # a 50 ms request
        return (
            f"serverless, {settings.serverless_memory_mb} MB: {usd(SERVERLESS_USD_PER_GB_SECOND, 7)} per GB-second "
            f"while a request runs (about {usd(per_request, 9)} for a 50 ms request) + "
            f"${SERVERLESS_USD_PER_GB_DATA}/GB of data; nothing while idle (AWS's price page, "
            "us-east-1)"
        )
    pricing = None if settings.local or session is None else pricing_client(session, settings.region)
    price, _ = PriceBook(settings.region, pricing).lookup(settings.endpoint_instance_type)
    if price is None:
        return f"instance {settings.endpoint_instance_type}: no price known; billed per hour while it exists"
    return (
        f"instance {settings.endpoint_instance_type}: ${price.usd_per_hour}/hour, "
        f"{usd(price.usd_per_hour * 730, 2)}/month while it exists ({price.source}; its training price)"
    )


def wait_until_settled(sm: Any, name: str, *, sleep: Any = time.sleep, poll_seconds: float = 20.0) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        found = describe(sm, name)
        if found is None:
            raise EndpointError(f"endpoint {name} disappeared while it was being deployed")
        return found

    return watch.until_settled(
        read,
        "EndpointStatus",
        lambda status: status not in SETTLING,
        f"endpoint {name}",
        sleep=sleep,
        poll_seconds=poll_seconds,
    )


def _unless_gone(delete: Any, **name: str) -> None:
    """A deletion for which 'not found' is success."""
    try:
        delete(**name)
    except ClientError as exc:
        if error_code(exc) not in NOT_FOUND:
            raise


def _delete(sm: Any, config: str | None, model: str | None) -> None:
    """Remove an endpoint config and model the toolkit made (missing ones are fine)."""
    if config is not None:
        _unless_gone(sm.delete_endpoint_config, EndpointConfigName=config)
    if model is not None:
        _unless_gone(sm.delete_model, ModelName=model)


def _serving_objects(sm: Any, endpoint: dict[str, Any]) -> tuple[str, str | None]:
    config = endpoint["EndpointConfigName"]
    try:
        variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    except ClientError:
        return config, None
    return config, variants[0]["ModelName"] if variants else None


def model_request(settings: Settings, version: dict[str, Any], name: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    """CreateModel's arguments for a version. Serverless endpoints support neither network
    isolation (serverless-endpoints.md, "Feature exclusions") nor more than the one worker AWS
    recommends per container, each worker holding its own model within SERVERLESS_MEMORY_MB."""
    container: dict[str, Any] = {"ModelPackageName": version["ModelPackageArn"]}
    request: dict[str, Any] = {
        "ModelName": name,
        "PrimaryContainer": container,
        "ExecutionRoleArn": settings.role_arn,
        "Tags": tags,
    }
    if settings.endpoint_type == "serverless":
        container["Environment"] = {SERVER_WORKERS_VARIABLE: "1"}
    else:
        request["EnableNetworkIsolation"] = True  # the container needs nothing but its model and the rows
    return request


def create_records(settings: Settings, sm: Any, version: dict[str, Any], name: str, tags: list[dict[str, str]]) -> None:
    """The Model (from the package itself) and the EndpointConfig for a version."""
    sm.create_model(**model_request(settings, version, name, tags))
    try:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant(settings, name)], Tags=tags)
    except (ClientError, BotoCoreError):
        _delete(sm, None, name)
        raise


def serving_variant(sm: Any, endpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The production variant the endpoint's current config serves (its model and its type)."""
    variants = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])["ProductionVariants"]
    return variants[0] if variants else None


def refuse_type_change(settings: Settings, endpoint: dict[str, Any], serving: dict[str, Any] | None) -> None:
    """An instance endpoint cannot become serverless (serverless-endpoints.md: a ValidationError);
    say so before anything is created. Serverless to instance works, but cannot be undone."""
    now = "serverless" if serving and "ServerlessConfig" in serving else "instance"
    if now == "instance" and settings.endpoint_type == "serverless":
        raise EndpointError(
            f"endpoint {settings.endpoint_name} is instance-backed and AWS cannot convert it to serverless; it still "
            f"serves {endpoint['EndpointConfigName']}. Either deploy with ENDPOINT_TYPE=instance, or 'make undeploy' "
            "then 'make deploy'"
        )
    if now == "serverless" and settings.endpoint_type == "instance":
        log.warning(
            "endpoint %s goes from serverless to instance-backed; AWS cannot convert it back", settings.endpoint_name
        )


def wait_until_gone(
    sm: Any, name: str, *, sleep: Any = time.sleep, poll_seconds: float = 10.0, polls: int = 90
) -> None:
    for _ in range(polls):
        if describe(sm, name) is None:
            return
        sleep(poll_seconds)
    raise EndpointError(
        f"endpoint {name} is still being deleted after {polls * poll_seconds:.0f} s; run 'make deploy' again"
    )


def deploy_aws(
    settings: Settings, sm: Any, version: dict[str, Any], tags: list[dict[str, str]], *, sleep: Any = time.sleep
) -> str:
    name = object_name(settings, version["ModelPackageVersion"])
    endpoint = settings.endpoint_name
    existing = describe(sm, endpoint)
    if existing is not None and existing["EndpointStatus"] == "Failed":
        # UpdateEndpoint refuses a Failed endpoint: it is replaced (it serves nothing).
        log.info("endpoint %s is Failed (%s); deleting it to create it anew", endpoint, existing.get("FailureReason"))
        old_config, old_model = _serving_objects(sm, existing)
        sm.delete_endpoint(EndpointName=endpoint)
        _delete(sm, old_config, old_model)
        wait_until_gone(sm, endpoint, sleep=sleep)
        existing = None
    serving = serving_variant(sm, existing) if existing is not None else None  # read once: type and model
    if existing is not None:
        refuse_type_change(settings, existing, serving)
    create_records(settings, sm, version, name, tags)
    if existing is None:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name, Tags=tags)
        final = wait_until_settled(sm, endpoint, sleep=sleep)
        if final["EndpointStatus"] != "InService":
            raise EndpointError(
                f"endpoint {endpoint} is {final['EndpointStatus']}: {final.get('FailureReason')}; "
                "'make undeploy' removes it"
            )
        return f"endpoint {endpoint} is InService with version {version['ModelPackageVersion']} ({name})"
    old_config, old_model = existing["EndpointConfigName"], serving["ModelName"] if serving else None
    try:
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    except (ClientError, BotoCoreError):
        _delete(sm, name, name)  # refused: nothing of the new version may be left behind
        raise
    final = wait_until_settled(sm, endpoint, sleep=sleep)
    if final["EndpointStatus"] != "InService" or final["EndpointConfigName"] != name:
        _delete(sm, name, name)
        raise EndpointError(
            f"the update of {endpoint} to version {version['ModelPackageVersion']} failed "
            f"({final.get('FailureReason') or final['EndpointStatus']}); SageMaker keeps the old "
            f"configuration {final['EndpointConfigName']} serving"
        )
    _delete(sm, old_config, old_model)
    return f"endpoint {endpoint} now serves version {version['ModelPackageVersion']} ({name}); {old_config} removed"


# ---- the embedded stack ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def deploy_local(
    settings: Settings, session: boto3.Session, version: dict[str, Any], tags: list[dict[str, str]]
) -> str:
    from launcher.lib import sdk

    endpoint, number = settings.endpoint_name, version["ModelPackageVersion"]
    old = local_containers(endpoint)
    container = version["InferenceSpecification"]["Containers"][0]
    labels = ((ENDPOINT_LABEL, endpoint), (VERSION_LABEL, str(number)), (STACK_LABEL, stack_id()))
    serving = sdk.Serving(port=_free_port(), detach=True, labels=labels)
    local = sdk.session(settings, session, serving)
    name = object_name(settings, number)
    try:
        # Local mode's create_endpoint already waits for /ping; the SDK's own wait would only
        # sleep 30 s more before asking.
        deploy_in_local_mode(settings, local, container, name)
    except Exception as exc:
        for started in local_containers(endpoint):
            if started["id"] not in {o["id"] for o in old}:
                docker("rm", "-f", started["id"])
        kept = f"version {old[0]['version']} still serves" if old else "nothing was serving before"
        raise EndpointError(f"version {number} did not start ({exc}); {kept}") from exc
    for previous in old:
        docker("rm", "-f", previous["id"])
    sm = session.client("sagemaker")
    previous_records = describe(sm, endpoint)
    create_records(settings, sm, version, name, tags)
    if previous_records is not None:  # moto has no UpdateEndpoint: replace the record
        old_config, old_model = _serving_objects(sm, previous_records)
        sm.delete_endpoint(EndpointName=endpoint)
        _delete(sm, old_config, old_model)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name, Tags=tags)
    where = [c["address"] for c in local_containers(endpoint) if c["version"] == str(number)]
    if not where:
        raise EndpointError(
            f"version {number} answered /ping and then stopped; its log: docker logs of the last "
            f"container labelled {ENDPOINT_LABEL}={endpoint}"
        )
    return f"endpoint {endpoint} serves version {number} at http://{where[0]} (local mode; {name})"


def deploy(settings: Settings, session: boto3.Session, *, sleep: Any = time.sleep) -> str:
    sm = session.client("sagemaker")
    version = model_registry.pick_version(sm, settings.model_package_group, "", model_registry.APPROVED)
    tags = [
        *job_tags(settings, whoami(session).arn),
        {"Key": VERSION_TAG, "Value": str(version["ModelPackageVersion"])},
    ]
    log.info(
        "deploying version %s of %s to %s; it costs %s",
        version["ModelPackageVersion"],
        settings.model_package_group,
        settings.endpoint_name,
        cost_words(settings, session),
    )
    if settings.local:
        return deploy_local(settings, session, version, tags)
    return deploy_aws(settings, sm, version, tags, sleep=sleep)


# ---- invoke and undeploy ------------------------------------------------------------------


def _answers_table(body: bytes) -> str:
    """PassengerId, probability (as the model gave it, every digit) and prediction per row."""
    lines = [f"{'PassengerId':>11}  {'probability':<20}  survived"]
    for row in csv.reader(io.StringIO(body.decode())):
        pid, probability, survived = row if len(row) == 3 else ["-", *row]
        lines.append(f"{pid:>11}  {probability:<20}  {survived:>8}")
    return "\n".join(lines)


def default_rows(count: int = 5) -> bytes:
    return "".join(DEFAULT_ROWS.read_text().splitlines(keepends=True)[: count + 1]).encode()


def invoke(settings: Settings, session: boto3.Session, rows: bytes) -> str:
    """The endpoint's answers to `rows` (CSV), as a table; the contract's one-line error else."""
    if settings.local:
        serving = local_containers(settings.endpoint_name)
        if not serving:
            raise EndpointError(f"no container serves {settings.endpoint_name}; run 'make deploy'")
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            f"http://{serving[0]['address']}/invocations",
            data=rows,
            method="POST",
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return _answers_table(response.read())
        except urllib.error.HTTPError as exc:
            raise EndpointError(f"the endpoint refused the rows ({exc.code}): {exc.read().decode().strip()}") from None
    runtime = session.client("sagemaker-runtime")
    try:
        answer = runtime.invoke_endpoint(
            EndpointName=settings.endpoint_name, ContentType="text/csv", Accept="text/csv", Body=rows
        )
    except runtime.exceptions.ModelError as exc:
        raise EndpointError(model_error_line(settings, exc.response)) from None
    return _answers_table(answer["Body"].read())


def model_error_line(settings: Settings, response: dict[str, Any]) -> str:
    """InvokeEndpoint wraps the container's own answer (its status and one-line reason) in a
    ModelError (424): say the container's words, and where its log is."""
    status = response.get("OriginalStatusCode", "?")
    message = (response.get("OriginalMessage") or response.get("Error", {}).get("Message") or "").strip()
    log_stream = response.get("LogStreamArn") or names.endpoint_log_group(settings.endpoint_name)
    return (
        f"the endpoint's container refused the rows ({status}): {message}; its log: {log_stream} "
        f"('make logs JOB={settings.endpoint_name}')"
    )


def undeploy(settings: Settings, session: boto3.Session) -> str:
    """The endpoint, its config and its model; registry versions stay."""
    sm, endpoint = session.client("sagemaker"), settings.endpoint_name
    removed = []
    if settings.local:
        for container in local_containers(endpoint):
            docker("rm", "-f", container["id"])
            removed.append(f"container {container['id']} (version {container['version']})")
    found = describe(sm, endpoint)
    if found is not None:
        if not is_toolkits(sagemaker_tags(sm, found["EndpointArn"])):
            raise EndpointError(
                f"endpoint {endpoint} lacks the toolkit's {TOOLKIT_TAG[0]} tag: it is not ours; left alone"
            )
        config, model = _serving_objects(sm, found)
        sm.delete_endpoint(EndpointName=endpoint)
        _delete(sm, config, model)
        removed.append(f"endpoint {endpoint}, config {config}, model {model}")
    return "removed " + "; ".join(removed) if removed else f"nothing to remove: no endpoint {endpoint}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("deploy", "invoke", "undeploy"))
    parser.add_argument("--rows", default="", help="invoke: a CSV file of passengers (default: 5 rows of test.csv)")
    args = parser.parse_args(argv)
    return errors.run(args.verb, lambda: _endpoint(args))


def _endpoint(args: argparse.Namespace) -> int:
    settings = load()
    session = boto3.Session(region_name=settings.region)
    if args.verb == "deploy":
        log.info("%s", deploy(settings, session))
    elif args.verb == "undeploy":
        log.info("%s", undeploy(settings, session))
    else:
        path = Path(args.rows) if args.rows else None
        if path is not None and not path.is_file():
            raise EndpointError(f"ROWS={args.rows} is not a file; give a CSV of passengers (Kaggle's columns)")
        print(invoke(settings, session, path.read_bytes() if path else default_rows()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
