"""The instance choice and the cost arithmetic.

moto implements neither Service Quotas for SageMaker nor the Pricing API, so these use
botocore's Stubber with response shapes from the AWS API reference: the clients are real
and validate every request and response against the API model; only the answers are canned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from conftest import OneClientSession, offline_client, shipped
from titanic_model import cli, contract

from launcher import costs, preflight, report
from launcher.lib import instance_choice, records
from launcher.lib.config import instance_types, load
from launcher.lib.pricing import Price, PriceBook, parse_products, run_cost, snapshot_price


def quota(name: str, value: float, code: str) -> dict[str, Any]:
    return {
        "ServiceCode": "sagemaker",
        "ServiceName": "Amazon SageMaker",
        "QuotaArn": f"arn:aws:servicequotas:us-east-1:123456789012:sagemaker/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


def product(usage: str, usd: str | None, vcpu: str = "2", memory: str = "8 GiB") -> str:
    dimensions = {}
    if usd is not None:
        dimensions = {
            "SKU.TERM.RATE": {
                "unit": "Hrs",
                "pricePerUnit": {"USD": usd},
                "description": f"${usd} per Training {usage}",
            }
        }
    return json.dumps(
        {
            "product": {
                "productFamily": "ML Instance",
                "attributes": {"usagetype": usage, "vCpu": vcpu, "memory": memory, "component": "Training"},
                "sku": "SKU",
            },
            "serviceCode": "AmazonSageMaker",
            "terms": {"OnDemand": {"SKU.TERM": {"priceDimensions": dimensions, "sku": "SKU"}}},
        }
    )


def _add_pages(stub: Stubber, operation: str, pages: list[list[dict[str, Any]]]) -> None:
    for i, page in enumerate(pages):
        response: dict[str, Any] = {"Quotas": page}
        params: dict[str, Any] = {"ServiceCode": "sagemaker"}
        if i + 1 < len(pages):
            response["NextToken"] = f"page-{i + 1}"
        if i > 0:
            params["NextToken"] = f"page-{i}"
        stub.add_response(operation, response, params)


def quota_client(
    pages: list[list[dict[str, Any]]], defaults: list[list[dict[str, Any]]] | None = None
) -> tuple[Any, Stubber]:
    """Applied quotas (ListServiceQuotas), then AWS's defaults (ListAWSDefaultServiceQuotas)."""
    client = offline_client("service-quotas")
    stub = Stubber(client)
    _add_pages(stub, "list_service_quotas", pages)
    _add_pages(stub, "list_aws_default_service_quotas", defaults or [[]])
    return client, stub


SAMPLE_QUOTAS = [
    [
        quota("ml.m5.large for training job usage", 1, "L-611FA074"),
        quota("ml.m5.large for spot training job usage", 0, "L-M5SPOT"),
        quota("ml.m5.large for endpoint usage", 4, "L-ENDPOINT"),
    ],
    [
        quota("ml.c5.xlarge for training job usage", 0, "L-C5OD"),
        quota("ml.c5.xlarge for spot training job usage", 2, "L-C5SPOT"),
        quota("ml.m5.xlarge for training job usage", 1, "L-M5XL"),
    ],
]


def test_quotas_are_read_across_pages() -> None:
    client, stub = quota_client(SAMPLE_QUOTAS)
    with stub:
        quotas = instance_choice.training_quotas(client)
    stub.assert_no_pending_responses()
    assert quotas["ml.m5.large"] == {
        "on_demand": 1.0,
        "on_demand_code": "L-611FA074",
        "on_demand_source": "applied",
        "spot": 0.0,
        "spot_code": "L-M5SPOT",
        "spot_source": "applied",
    }
    assert quotas["ml.c5.xlarge"]["spot"] == 2.0
    assert "endpoint" not in json.dumps(quotas)


def test_a_type_missing_from_the_applied_quotas_takes_awss_default() -> None:
    """AWS omits quotas still at their default from ListServiceQuotas: a missing type is not a
    quota of 0. The default fills the gap, an applied value always wins, and each says which."""
    defaults = [
        [
            quota("ml.m5.large for training job usage", 5, "L-611FA074"),  # applied (1) wins over this
            quota("ml.c5.2xlarge for training job usage", 2, "L-C52XL"),  # only here
            quota("ml.c5.2xlarge for spot training job usage", 0, "L-C52XLSPOT"),
        ]
    ]
    client, stub = quota_client(SAMPLE_QUOTAS, defaults)
    with stub:
        quotas = instance_choice.training_quotas(client)
    stub.assert_no_pending_responses()
    assert instance_choice.quota_for(quotas, "ml.m5.large", spot=False) == (1.0, "L-611FA074", "applied")
    assert instance_choice.quota_for(quotas, "ml.c5.2xlarge", spot=False) == (2.0, "L-C52XL", "AWS default")
    assert instance_choice.quota_for(quotas, "ml.c5.2xlarge", spot=True) == (0.0, "L-C52XLSPOT", "AWS default")
    assert instance_choice.quota_for(quotas, "ml.p3.2xlarge", spot=False) == (0.0, "", "not listed")


def stubbed_pricing(prices: dict[str, str | None]) -> Any:
    """A real Pricing client whose get_products answers come from `prices` (None: empty list)."""
    client = offline_client("pricing")
    stub = Stubber(client)
    for instance_type in instance_types("TrainingInstanceType"):
        if instance_choice.ACCELERATED.match(instance_type):
            continue
        usage = f"USE1-Train:{instance_type}"
        usd = prices.get(instance_type)
        stub.add_response(
            "get_products",
            {"PriceList": [] if usd is None else [product(usage, usd)], "FormatVersion": "aws_v1"},
            {
                "ServiceCode": "AmazonSageMaker",
                "Filters": [{"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage}],
                "MaxResults": 10,
            },
        )
    stub.activate()
    return client


def report_for(spot: bool, quota_pages: list, prices: dict[str, str | None]) -> dict[str, Any]:
    settings = load({**shipped(), "TARGET": "aws", "USE_SPOT": "yes" if spot else "no"})
    client, stub = quota_client(quota_pages)
    with stub:
        return instance_choice.make_report(settings, stubbed_pricing(prices), client, 4.0)


LIVE_PRICES = {"ml.m5.large": "0.1150000000", "ml.c5.xlarge": "0.2040000000", "ml.m5.xlarge": "0.2300000000"}


def test_spot_quota_zero_but_on_demand_one() -> None:
    spot = report_for(True, SAMPLE_QUOTAS, LIVE_PRICES)
    assert spot["choice"] == "ml.c5.xlarge"  # m5.large is cheaper but has no spot quota
    verdicts = {r["instance_type"]: r["verdict"] for r in spot["rows"]}
    assert verdicts["ml.m5.large"] == "no quota"
    on_demand = report_for(False, SAMPLE_QUOTAS, LIVE_PRICES)
    assert on_demand["choice"] == "ml.m5.large"
    assert on_demand["price_note"] == "Pricing API"
    chosen = next(r for r in on_demand["rows"] if r["instance_type"] == "ml.m5.large")
    assert chosen["usd_per_hour"] == 0.115 and chosen["price_source"].startswith("Pricing API")
    assert chosen["specs_source"] == "Pricing API"


def test_quota_zero_everywhere_names_the_quota_to_raise() -> None:
    zero = [[{**q, "Value": 0.0} for q in page] for page in SAMPLE_QUOTAS]
    result = report_for(False, zero, LIVE_PRICES)
    assert result["choice"] is None
    message = instance_choice.no_choice_message(result)
    assert "'ml.m5.large for training job usage' has a quota of 0" in message
    assert "L-611FA074" in message
    assert "https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas/L-611FA074" in message


def test_a_missing_price_falls_back_to_the_labelled_snapshot() -> None:
    result = report_for(False, SAMPLE_QUOTAS, {"ml.c5.xlarge": "0.2040000000"})  # no live m5.large price
    m5 = next(r for r in result["rows"] if r["instance_type"] == "ml.m5.large")
    assert m5["usd_per_hour"] == 0.115
    assert m5["price_source"].startswith("snapshot 2026-08")
    assert result["choice"] == "ml.m5.large"
    markdown = instance_choice.render_markdown(result)
    assert "| ml.m5.large | 2 | 8 | 0.1150 | snapshot |" in markdown
    assert "Prices marked snapshot are not live" in markdown


def test_pricing_api_unreachable_uses_the_snapshot_for_everything() -> None:
    client = offline_client("pricing")
    stub = Stubber(client)
    stub.add_client_error("get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts")
    stub.activate()
    book = PriceBook("us-east-1", client)
    price, specs = book.lookup("ml.m5.large")
    assert price == snapshot_price("us-east-1", "ml.m5.large")
    assert specs is not None and specs.memory_gib == 8
    assert "AccessDeniedException" in (book.api_failed or "")
    assert book.lookup("ml.m5.xlarge")[0].from_snapshot  # not asked again once it failed


def test_local_report_runs_without_aws() -> None:
    result = instance_choice.make_report(load(shipped()), None, None, 4.0)
    assert result["choice"] == "ml.m5.large"
    assert result["quota_note"].startswith("unknown: the embedded stack has no Service Quotas")
    assert all(r["on_demand_quota"] is None for r in result["rows"])
    assert not any(r["instance_type"].startswith(("ml.p", "ml.g")) for r in result["rows"])


def test_parse_products_reads_the_on_demand_price() -> None:
    usage = "USE1-Train:ml.m5.large"
    usd, specs = parse_products([product("USE1-Train:ml.m5.xlarge", "0.23"), product(usage, "0.1150000000")], usage)
    assert usd == 0.115 and specs is not None and (specs.vcpu, specs.memory_gib) == (2, 8.0)
    assert parse_products([product(usage, None)], usage)[0] is None


def test_preflight_refuses_a_zero_quota() -> None:
    client, stub = quota_client([[{**q, "Value": 0.0} for q in SAMPLE_QUOTAS[0]]])

    class Session:
        def client(self, name: str, region_name: str) -> Any:
            assert name == "service-quotas"
            return client

    with stub, pytest.raises(preflight.PreflightError, match="has a quota of 0 in this account; request an increase"):
        preflight.check_quota(Session(), load({**shipped(), "TARGET": "aws", "USE_SPOT": "no"}))


# ---- cost ------------------------------------------------------------------------------


def test_the_reference_runs_cost() -> None:
    """54 training s, 20 billable s (spot), ml.m5.large at $0.115/h: $0.00064, not $0.00019."""
    cost = run_cost(54, 20, Price(0.115, "Pricing API"), spot=True)
    assert cost["cost_usd"] == pytest.approx(20 * 0.115 / 3600, abs=1e-8)
    assert cost["cost_usd"] == pytest.approx(0.000639, abs=1e-6)
    assert cost["on_demand_cost_usd"] == pytest.approx(54 * 0.115 / 3600, abs=1e-8)
    assert cost["spot_savings"] == pytest.approx(1 - 20 / 54, abs=1e-4)
    assert cost["cost_usd"] != pytest.approx(0.00019, abs=1e-5)


def test_unknown_inputs_give_no_number() -> None:
    assert run_cost(54, None, Price(0.115, "x"), spot=True)["cost_usd"] is None
    assert run_cost(54, 54, None, spot=False) == {
        "usd_per_hour": None,
        "price_source": "no price known",
        "spot_savings": 0.0,
        "cost_usd": None,
        "on_demand_cost_usd": None,
        "instances": 1,
    }


def test_a_multi_instance_run_costs_every_instance() -> None:
    """AWS: multiply BillableTimeInSeconds by InstanceCount for a distributed job."""
    one = run_cost(54, 20, Price(0.115, "Pricing API"), spot=True)
    four = run_cost(54, 20, Price(0.115, "Pricing API"), spot=True, instances=4)
    assert four["cost_usd"] == pytest.approx(4 * one["cost_usd"], abs=1e-8)
    assert four["on_demand_cost_usd"] == pytest.approx(4 * 54 * 0.115 / 3600, abs=1e-8)
    assert four["spot_savings"] == one["spot_savings"]
    assert four["instances"] == 4


def aws_record(job: str = "titanic-lgbm-2026-11-26-00-00-00-000") -> dict[str, Any]:
    return {
        "job_name": job,
        "target": "aws",
        "region": "us-east-1",
        "status": "Completed",
        "started_at": "2026-11-26T00:00:00+00:00",
        "image": {"uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:abc", "digest": "sha256:0"},
        "data": {
            "train": {"uri": "s3://b/titanic/data/train/", "sha256": "a" * 64, "rows": 712},
            "validation": {"uri": "s3://b/titanic/data/validation/", "sha256": "b" * 64, "rows": 179},
        },
        "hyperparameters": {"n_estimators": "300"},
        "instance": {
            "type": "ml.m5.large",
            "configured_type": "ml.m5.large",
            "count": 1,
            "spot": True,
            "max_run": 900,
            "max_wait": 1800,
        },
        "seconds": {"training": 54, "billable": 20},
        "metrics": {"val_accuracy": 0.8156, "val_f1": 0.7481, "val_auc": 0.8644},
        "model_artifact": f"s3://b/titanic/output/{job}/output/model.tar.gz",
        "output_data": f"s3://b/titanic/output/{job}/output/output.tar.gz",
        "failure_reason": None,
        "toolkit_commit": "0123456789abcdef",
        "cost": {
            **run_cost(54, 20, Price(0.115, "Pricing API 2026-11-26T00:00Z"), spot=True),
            "instance_type": "ml.m5.large",
        },
    }


def test_cost_table_and_summary_line() -> None:
    record = aws_record()
    assert records.cost_line(record["cost"]).startswith("$0.000639 (on demand $0.001725, spot savings 63%) at $0.115/h")
    table = costs.table([record])
    assert "$0.000639" in table and "$0.001725" in table and "63%" in table
    assert table.splitlines()[-5].startswith("total")


def test_report_has_every_section_and_pictures(tmp_path: Path, sm_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.BASE_DIR_ENV, str(sm_root))
    assert cli.main(["train"]) == 0
    record = aws_record()
    runs = tmp_path / "runs"
    (runs / record["job_name"]).mkdir(parents=True)
    (sm_root / "output").rename(runs / record["job_name"] / "output")  # as make verify unpacks it
    instance_report = instance_choice.make_report(load({**shipped(), "TARGET": "aws"}), None, None, 4.0)
    drawn = report.pictures(record, runs, tmp_path / "reports" / record["job_name"])
    assert drawn == ["roc.png", "importance.png"]
    for name in drawn:
        assert (tmp_path / "reports" / record["job_name"] / name).read_bytes().startswith(b"\x89PNG")
    text = report.render(record, instance_report, drawn)
    for section in (
        "## Summary",
        "## Flow",
        "## Resources",
        "## How to reproduce",
        "## Instance evidence",
        "## Metrics",
        "## Cost",
        "## Troubleshooting notes",
    ):
        assert section in text
    assert "20 billable s * $0.115/h / 3600 = $0.000639" in text
    assert "make all \\" in text and "HP_N_ESTIMATORS=300" in text and "INSTANCE_TYPE=ml.m5.large" in text
    # the commands name the data's bucket and prefix, and the image and data to compare with
    assert "BUCKET=b \\" in text and "DATA_PREFIX=titanic/data \\" in text
    assert record["data"]["train"]["sha256"] in text
    assert f"![roc.png]({record['job_name']}/roc.png)" in text


def _eligible_prices(book: PriceBook, quota_of: dict[str, float] | None) -> dict[str, float]:
    """The test's own oracle: every type batch transform accepts, priced, with at least the
    memory asked, and (when quotas are known) a transform quota of at least 1."""
    prices = {}
    for instance_type in instance_types("TransformInstanceType"):
        price, specs = book.lookup(instance_type)
        if price is None or specs is None or specs.memory_gib < 4.0:
            continue
        if quota_of is not None and quota_of.get(instance_type, 0.0) < 1:
            continue
        prices[instance_type] = price.usd_per_hour
    return prices


def test_the_transform_choice_is_the_cheapest_type_with_transform_quota() -> None:
    book = PriceBook("us-east-1", None)  # the snapshot's prices
    unknown = instance_choice.build_rows(book, None, 4.0)
    cheapest = instance_choice.choose_transform(unknown)
    prices = _eligible_prices(book, None)
    assert cheapest is not None and cheapest.transform_verdict == "CHOSEN (quota unknown)"
    assert cheapest.usd_per_hour == min(prices.values()) and cheapest.instance_type in prices
    # Quota on three types (the cheapest overall has none): a pricier eligible type is present,
    # and the choice is the minimum over exactly the eligible ones.
    by_price = sorted(prices, key=lambda t: (prices[t], t))
    cheapest_type, second, third = by_price[0], by_price[1], by_price[-1]
    assert prices[third] > prices[second]
    quota_of = {cheapest_type: 0.0, second: 2.0, third: 5.0}
    quotas = {
        t: {"transform": q, "transform_code": f"L-{i}", "transform_source": "applied"}
        for i, (t, q) in enumerate(quota_of.items())
    }
    rows = instance_choice.build_rows(book, quotas, 4.0)
    chosen = instance_choice.choose_transform(rows)
    eligible = _eligible_prices(book, quota_of)
    assert set(eligible) == {second, third}
    assert chosen is not None and chosen.instance_type == min(eligible, key=lambda t: (eligible[t], t))
    assert next(r for r in rows if r.instance_type == cheapest_type).transform_verdict == "no quota"


def test_transform_quotas_are_read_beside_training_quotas() -> None:
    client, stub = quota_client([[quota("ml.m5.large for transform job usage", 3, "L-TRANSFORM")]])
    with stub:
        quotas = instance_choice.training_quotas(client)
    assert quotas["ml.m5.large"] == {"transform": 3.0, "transform_code": "L-TRANSFORM", "transform_source": "applied"}


@pytest.mark.parametrize(
    ("changes", "goals", "fails"),
    [
        ({"INSTANCE_COUNT": "2"}, "train", True),  # on-demand quota 1 < 2 instances
        ({"INSTANCE_COUNT": "1"}, "all", False),
        ({"INSTANCE_COUNT": "1", "TUNE_MAX_PARALLEL_JOBS": "2"}, "tune-jobs", True),  # 2 trials x 1 > 1
        ({"INSTANCE_COUNT": "1", "TUNE_MAX_PARALLEL_JOBS": "2"}, "train", False),  # training runs one job
    ],
)
def test_the_quota_covers_what_the_command_runs_at_once(changes: dict[str, str], goals: str, fails: bool) -> None:
    """INSTANCE_COUNT instances per job, TUNE_MAX_PARALLEL_JOBS jobs at once for make tune-jobs:
    a quota of 1 passes one instance, and refuses more before anything is spent."""
    client, stub = quota_client(SAMPLE_QUOTAS)
    session = OneClientSession(client)
    settings = load({**shipped(), "TARGET": "aws", "USE_SPOT": "no", "TUNE_MAX_JOBS": "4", **changes})
    with stub:
        if fails:
            with pytest.raises(preflight.PreflightError, match=r"quota for ml\.m5\.large \(on-demand training\) is 1 "):
                preflight.check_quota(session, settings, goals)
        else:
            preflight.check_quota(session, settings, goals)


@pytest.mark.parametrize(("processing", "fails"), [(0, True), (1, False)])
def test_make_evaluate_needs_processing_quota_for_the_type(processing: float, fails: bool) -> None:
    """make evaluate runs its processing job on INSTANCE_TYPE: a separate quota, checked only then."""
    pages = [[*SAMPLE_QUOTAS[0], quota("ml.m5.large for processing job usage", processing, "L-PROCESS")]]
    settings = load({**shipped(), "TARGET": "aws", "USE_SPOT": "no"})
    for goals, checked in (("evaluate", True), ("train", False)):
        client, stub = quota_client(pages)
        with stub:
            if fails and checked:
                with pytest.raises(preflight.PreflightError, match=r"'ml\.m5\.large for processing job usage' has a q"):
                    preflight.check_quota(OneClientSession(client), settings, goals)
            else:
                preflight.check_quota(OneClientSession(client), settings, goals)
