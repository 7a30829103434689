"""make deploy on TARGET=aws, against botocore's API model with the Stubber: the requests as
they leave botocore (serverless and instance configs), waiting for InService, and the update
that fails and leaves the old version serving."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from conftest import OneClientSession, aws_settings, offline_client

from launcher import endpoint
from launcher.lib import hosting, names

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/titanic-survival/3"
ROLE = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-execution"
VERSION = {"ModelPackageArn": ARN, "ModelPackageVersion": 3}
TAGS = [{"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}]
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/titanic-survival"
CONFIG_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"
OLD_CONFIG = {
    "EndpointConfigName": "old-config",
    "EndpointConfigArn": CONFIG_ARN,
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "ModelName": "old-model",
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
        }
    ],
    "CreationTime": datetime(2026, 11, 25, tzinfo=UTC),
}
INSTANCE_CONFIG = {
    **OLD_CONFIG,
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "ModelName": "old-model",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        }
    ],
}


def client() -> Any:
    return offline_client("sagemaker")


aws = aws_settings


def described(status: str, config: str, **extra: Any) -> dict[str, Any]:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    return {
        "EndpointName": "titanic-survival",
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
        **extra,
    }


NAME = "titanic-survival-v3-20261126000000"  # what names.endpoint_object makes for version 3 then


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fixed clock for the version's one name; each name made is recorded."""
    calls: list[str] = []

    def object_name(settings: Any, version: int) -> str:
        calls.append(names.endpoint_object(settings.endpoint_name, version, datetime(2026, 11, 26, tzinfo=UTC)))
        return calls[-1]

    monkeypatch.setattr(endpoint, "object_name", object_name)
    return calls


def expect_records(stub: Stubber, config: dict[str, Any], serverless: bool = True, name: str = NAME) -> None:
    """CreateModel as each endpoint type needs it, then CreateEndpointConfig, both named `name`
    and the config's variant naming that model."""
    if serverless:  # no network isolation (serverless excludes it) and one server worker
        model = {
            "ModelName": name,
            "ExecutionRoleArn": ROLE,
            "Tags": TAGS,
            "PrimaryContainer": {"ModelPackageName": ARN, "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}},
        }
    else:
        model = {
            "ModelName": name,
            "PrimaryContainer": {"ModelPackageName": ARN},
            "ExecutionRoleArn": ROLE,
            "EnableNetworkIsolation": True,
            "Tags": TAGS,
        }
    config = {**config, "ModelName": name}
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"}, model)
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": CONFIG_ARN},
        {"EndpointConfigName": name, "ProductionVariants": [config], "Tags": TAGS},
    )


def expect_update_of_a_serving_endpoint(stub: Stubber) -> None:
    """What a redeploy asks before UpdateEndpoint: the endpoint, its config (read once: the
    type it serves and the model it replaces), the new version's records."""
    stub.add_response("describe_endpoint", described("InService", "old-config"))
    stub.add_response("describe_endpoint_config", OLD_CONFIG, {"EndpointConfigName": "old-config"})
    expect_records(stub, {"VariantName": "AllTraffic", "ServerlessConfig": ANY})


def not_found(stub: Stubber) -> None:
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint", 400)


def test_a_first_deploy_is_serverless_and_waits_for_in_service(made: list[str]) -> None:
    sm = client()
    serverless = {"VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    with Stubber(sm) as stub:
        not_found(stub)
        expect_records(stub, serverless)
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": ENDPOINT_ARN},
            {"EndpointName": "titanic-survival", "EndpointConfigName": NAME, "Tags": TAGS},
        )
        stub.add_response("describe_endpoint", described("Creating", "c"))
        stub.add_response("describe_endpoint", described("InService", "c"))
        done = endpoint.deploy_aws(aws(), sm, VERSION, TAGS, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert done == f"endpoint titanic-survival is InService with version 3 ({NAME})"
    assert made == [NAME]


def test_an_instance_endpoint_asks_for_one_instance_of_the_configured_type() -> None:
    config = endpoint.variant(aws(ENDPOINT_TYPE="instance", ENDPOINT_INSTANCE_TYPE="ml.c5.large"), "m")
    assert config == {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InstanceType": "ml.c5.large",
        "InitialInstanceCount": 1,
    }
    sm = client()
    with Stubber(sm) as stub:  # the shape is valid to botocore's model
        expect_records(stub, config, serverless=False)
        endpoint.create_records(
            aws(ENDPOINT_TYPE="instance", ENDPOINT_INSTANCE_TYPE="ml.c5.large"), sm, VERSION, NAME, TAGS
        )
        stub.assert_no_pending_responses()


def test_a_redeploy_updates_the_endpoint_and_removes_the_old_version(made: list[str]) -> None:
    sm = client()
    with Stubber(sm) as stub:
        expect_update_of_a_serving_endpoint(stub)  # one DescribeEndpointConfig, not two
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": ENDPOINT_ARN},
            {"EndpointName": "titanic-survival", "EndpointConfigName": NAME},
        )
        stub.add_response("describe_endpoint", described("Updating", "old-config"))
        stub.add_response("describe_endpoint", described("InService", NAME))
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "old-config"})
        stub.add_response("delete_model", {}, {"ModelName": "old-model"})
        done = endpoint.deploy_aws(aws(), sm, VERSION, TAGS, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert done == f"endpoint titanic-survival now serves version 3 ({NAME}); old-config removed"
    assert made == [NAME]  # one name, made once, for the model, the config and the update


def test_a_failed_update_leaves_the_old_version_serving_and_says_so(made: list[str]) -> None:
    sm = client()
    with Stubber(sm) as stub:
        expect_update_of_a_serving_endpoint(stub)
        stub.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN})
        stub.add_response("describe_endpoint", described("Updating", "old-config"))
        stub.add_response("describe_endpoint", described("RollingBack", "old-config"))
        stub.add_response(
            "describe_endpoint",
            described(
                "InService",
                "old-config",
                FailureReason="The primary container for production variant AllTraffic did "
                "not pass the ping health check.",
            ),
        )
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": NAME})
        stub.add_response("delete_model", {}, {"ModelName": NAME})
        with pytest.raises(
            endpoint.EndpointError,
            match=r"update of titanic-survival to version 3 failed \(The "
            r"primary container.*\); SageMaker keeps the old configuration old-config serving",
        ):
            endpoint.deploy_aws(aws(), sm, VERSION, TAGS, sleep=lambda _: None)
        stub.assert_no_pending_responses()  # the old config and model were not touched


def test_a_first_deploy_that_fails_says_why_and_how_to_remove_it(made: list[str]) -> None:
    sm = client()
    with Stubber(sm) as stub:
        not_found(stub)
        expect_records(stub, {"VariantName": "AllTraffic", "ServerlessConfig": ANY})
        stub.add_response("create_endpoint", {"EndpointArn": ENDPOINT_ARN})
        stub.add_response("describe_endpoint", described("Failed", NAME, FailureReason="image not found"))
        with pytest.raises(endpoint.EndpointError, match="is Failed: image not found; 'make undeploy' removes"):
            endpoint.deploy_aws(aws(), sm, VERSION, TAGS, sleep=lambda _: None)


def test_the_cost_is_said_before_deploying(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert "per GB-second" in endpoint.cost_words(aws(), None) and "nothing while idle" in endpoint.cost_words(
        aws(), None
    )
    assert "/hour" in endpoint.cost_words(aws(ENDPOINT_TYPE="instance", TARGET="local"), None)
    # "Before": the cost line is logged before the first call that creates anything.
    events: list[str] = []
    caplog.set_level("INFO")
    monkeypatch.setattr(endpoint.model_registry, "pick_version", lambda *_: VERSION)
    monkeypatch.setattr(endpoint, "whoami", lambda _: type("C", (), {"arn": "arn:aws:iam::123456789012:user/me"}))

    def deploying(*_: Any, **__: Any) -> str:
        events.append("deploy" if any("it costs" in r.getMessage() for r in caplog.records) else "deploy-unannounced")
        return "done"

    monkeypatch.setattr(endpoint, "deploy_aws", deploying)
    session = OneClientSession(client())
    assert endpoint.deploy(aws(), session) == "done"
    assert events == ["deploy"]


class StubbedSession(boto3.Session):
    def __init__(self, sm: Any) -> None:
        super().__init__(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        self.sm = sm

    def client(self, name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if name == "sagemaker":
            return self.sm
        denied = offline_client(name)
        stub = Stubber(denied)
        stub.add_client_error("get_products", "AccessDeniedException", "no pricing here", 400)
        stub.activate()  # the Pricing API refuses: the dated snapshot answers
        return denied


def test_status_and_cost_show_a_live_instance_endpoints_running_cost() -> None:
    sm = client()
    created = datetime(2026, 11, 26, 8, tzinfo=UTC)
    with Stubber(sm) as stub:
        stub.add_response("describe_endpoint", described("InService", "c", CreationTime=created))
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": "m",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        }
        stub.add_response("describe_endpoint_config", {**OLD_CONFIG, "ProductionVariants": [variant]})
        line = hosting.live_summary(
            aws(ENDPOINT_TYPE="instance"), StubbedSession(sm), now=datetime(2026, 11, 26, 18, tzinfo=UTC)
        )
    assert (
        line
        == "endpoint titanic-survival: InService, c, up 10.0 h; ml.m5.large: $1.1500 so far, billed while it exists"
    )
    with Stubber(sm) as stub:
        not_found(stub)
        assert hosting.live_summary(aws(), StubbedSession(sm)) == "endpoint titanic-survival: none (nothing billed)"


def test_an_instance_endpoint_is_not_turned_serverless_and_nothing_is_created() -> None:
    """serverless-endpoints.md: an instance endpoint cannot be converted to serverless. The
    deploy stops before any model or config exists, and says what still serves."""
    sm = client()
    with Stubber(sm) as stub:
        stub.add_response("describe_endpoint", described("InService", "old-config"))
        stub.add_response("describe_endpoint_config", INSTANCE_CONFIG, {"EndpointConfigName": "old-config"})
        with pytest.raises(
            endpoint.EndpointError,
            match="instance-backed and AWS cannot convert it to serverless; it still serves old-config",
        ):
            endpoint.deploy_aws(aws(), sm, VERSION, TAGS, sleep=lambda _: None)
        stub.assert_no_pending_responses()  # no create_model, no create_endpoint_config


def test_a_failed_endpoint_is_replaced_not_updated(made: list[str]) -> None:
    sm = client()
    with Stubber(sm) as stub:
        stub.add_response("describe_endpoint", described("Failed", "old-config", FailureReason="ping failed"))
        stub.add_response("describe_endpoint_config", OLD_CONFIG, {"EndpointConfigName": "old-config"})
        stub.add_response("delete_endpoint", {}, {"EndpointName": "titanic-survival"})
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "old-config"})
        stub.add_response("delete_model", {}, {"ModelName": "old-model"})
        not_found(stub)  # gone
        expect_records(stub, {"VariantName": "AllTraffic", "ServerlessConfig": ANY})
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": ENDPOINT_ARN},
            {"EndpointName": "titanic-survival", "EndpointConfigName": NAME, "Tags": TAGS},
        )
        stub.add_response("describe_endpoint", described("InService", NAME))
        done = endpoint.deploy_aws(aws(), sm, VERSION, TAGS, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert done == f"endpoint titanic-survival is InService with version 3 ({NAME})"


def test_a_refused_update_leaves_no_new_model_or_config(made: list[str]) -> None:
    sm = client()
    with Stubber(sm) as stub:
        expect_update_of_a_serving_endpoint(stub)
        stub.add_client_error("update_endpoint", "ValidationException", "Cannot update in-progress endpoint", 400)
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": NAME})
        stub.add_response("delete_model", {}, {"ModelName": NAME})
        with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
            endpoint.deploy_aws(aws(), sm, VERSION, TAGS, sleep=lambda _: None)
        stub.assert_no_pending_responses()


def test_invoke_shows_the_containers_own_words_and_where_its_log_is() -> None:
    """InvokeEndpoint wraps the container's 4xx as ModelError (424); the line shows the
    container's status and message and the log stream, not the wrapper's text."""
    runtime = offline_client("sagemaker-runtime")
    stream = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/titanic-survival"
    session = OneClientSession(runtime)
    with Stubber(runtime) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            "ModelError",
            "Received client error (400) from primary",
            424,
            modeled_fields={
                "OriginalStatusCode": 400,
                "LogStreamArn": stream,
                "OriginalMessage": "row 1, column Age: 'x' is not a number",
            },
        )
        with pytest.raises(endpoint.EndpointError) as raised:
            endpoint.invoke(aws(), session, b"PassengerId,Age\n1,x\n")
    assert str(raised.value) == (
        f"the endpoint's container refused the rows (400): row 1, column Age: 'x' is not a number; its log: {stream} "
        "('make logs JOB=titanic-survival')"
    )
