"""Training prices and instance specs: the AWS Pricing API first, a dated snapshot second.

Every number carries its source, so a report can say which figures are live and which
came from the committed snapshot (launcher/data/price_snapshot.json).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from launcher.lib.config import Settings


def usd(value: float | None, digits: int = 6, unknown: str = "unknown") -> str:
    """A dollar amount as every report writes it ('$0.000639'), or `unknown` when there is none."""
    return unknown if value is None else f"${value:.{digits}f}"


log = logging.getLogger("pricing")
SNAPSHOT_FILE = Path(__file__).resolve().parents[1] / "data" / "price_snapshot.json"
# The Pricing API answers only from these two regions, for every region's prices.
PRICING_API_REGIONS = ("us-east-1", "ap-south-1")
# The usage-type prefix of each region in AWS's price list ("USE1-Train:ml.m5.large").
USAGE_PREFIX = {
    "us-east-1": "USE1",
    "us-east-2": "USE2",
    "us-west-1": "USW1",
    "us-west-2": "USW2",
    "ca-central-1": "CAN1",
    "sa-east-1": "SAE1",
    "eu-west-1": "EU",
    "eu-west-2": "EUW2",
    "eu-west-3": "EUW3",
    "eu-central-1": "EUC1",
    "eu-north-1": "EUN1",
    "eu-south-1": "EUS1",
    "ap-northeast-1": "APN1",
    "ap-northeast-2": "APN2",
    "ap-northeast-3": "APN3",
    "ap-southeast-1": "APS1",
    "ap-southeast-2": "APS2",
    "ap-south-1": "APS3",
    "ap-east-1": "APE1",
    "me-south-1": "MES1",
    "af-south-1": "AFS1",
}

# vCPUs by size, and GiB of memory per vCPU by family (AWS's documented ratios), for
# specs the Pricing API did not give. Burstable t3 sizes do not follow a ratio.
_VCPUS = {
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "9xlarge": 36,
    "10xlarge": 40,
    "12xlarge": 48,
    "16xlarge": 64,
    "18xlarge": 72,
    "24xlarge": 96,
    "32xlarge": 128,
    "48xlarge": 192,
}
_GIB_PER_VCPU = {
    "m4": 4,
    "m5": 4,
    "m5d": 4,
    "m6i": 4,
    "m7i": 4,
    "c5": 2,
    "c5d": 2,
    "c6i": 2,
    "c7i": 2,
    "r5": 8,
    "r5d": 8,
    "r6i": 8,
    "r7i": 8,
}
_T3 = {"medium": (2, 4), "large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32)}
# Families with GPUs or ML accelerators: not candidates for a CPU job.
ACCELERATED = re.compile(r"^ml\.(p\d|g\d|inf\d|trn\d|dl\d)")


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: str  # "Pricing API <time>" or "snapshot <date> (<source>)"

    @property
    def from_snapshot(self) -> bool:
        return self.source.startswith("snapshot")


@dataclass(frozen=True)
class Specs:
    vcpu: int
    memory_gib: float
    source: str


def usage_type(region: str, instance_type: str) -> str | None:
    prefix = USAGE_PREFIX.get(region)
    return f"{prefix}-Train:{instance_type}" if prefix else None


@cache
def snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT_FILE.read_text(encoding="utf-8"))


def snapshot_price(region: str, instance_type: str) -> Price | None:
    data = snapshot()
    entry = data["prices"].get(instance_type)
    if region != data["region"] or entry is None:
        return None
    return Price(entry["usd_per_hour"], f"snapshot {data['taken']} ({entry['source']})")


def derived_specs(instance_type: str) -> Specs | None:
    match = re.match(r"^ml\.([a-z0-9]+)\.([a-z0-9]+)$", instance_type)
    if not match:
        return None
    family, size = match.groups()
    if family == "t3" and size in _T3:
        vcpu, memory = _T3[size]
        return Specs(vcpu, memory, "derived from the type name")
    if family in _GIB_PER_VCPU and size in _VCPUS:
        return Specs(_VCPUS[size], _VCPUS[size] * _GIB_PER_VCPU[family], "derived from the type name")
    return None


def _gib(text: str) -> float | None:
    match = re.match(r"^\s*([0-9.]+)\s*GiB", text or "")
    return float(match.group(1)) if match else None


def parse_products(price_list: list[str], usage: str) -> tuple[float | None, Specs | None]:
    """The on-demand USD hourly price (and specs) of the product with exactly this usage type."""
    for raw in price_list:
        product = json.loads(raw)
        attributes = product.get("product", {}).get("attributes", {})
        if attributes.get("usagetype") != usage:
            continue
        specs = None
        vcpu, memory = attributes.get("vCpu"), _gib(attributes.get("memory", ""))
        if vcpu and str(vcpu).isdigit() and memory:
            specs = Specs(int(vcpu), memory, "Pricing API")
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd is not None and float(usd) > 0:
                    return float(usd), specs
        return None, specs
    return None, None


def api_price(pricing: Any, region: str, instance_type: str) -> tuple[Price | None, Specs | None]:
    """Ask the Pricing API (a client in us-east-1 or ap-south-1); None where it has no price."""
    usage = usage_type(region, instance_type)
    if pricing is None or usage is None:
        return None, None
    try:
        response = pricing.get_products(
            ServiceCode="AmazonSageMaker",
            Filters=[{"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage}],
            MaxResults=10,
        )
    except (BotoCoreError, ClientError) as exc:
        log.debug("Pricing API: %s", exc)
        raise PricingUnavailableError(str(exc)) from exc
    usd, specs = parse_products(response.get("PriceList", []), usage)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return (Price(usd, f"Pricing API {stamp}") if usd else None), specs


def pricing_client(session: Any, region: str) -> Any:
    """A Pricing API client: it answers only from two regions, for every region's prices."""
    return session.client("pricing", region_name=region if region in PRICING_API_REGIONS else PRICING_API_REGIONS[0])


class PricingUnavailableError(RuntimeError):
    """The Pricing API could not be asked (no credentials, no network, no permission)."""


class PriceBook:
    """Prices for one region: the API while it answers, then the snapshot for the rest."""

    def __init__(self, region: str, pricing_client: Any | None) -> None:
        self.region = region
        self.client = pricing_client
        self.api_failed: str | None = None if pricing_client is not None else "not asked (TARGET=local)"

    def lookup(self, instance_type: str) -> tuple[Price | None, Specs | None]:
        price = specs = None
        if self.api_failed is None:
            try:
                price, specs = api_price(self.client, self.region, instance_type)
            except PricingUnavailableError as exc:
                self.api_failed = str(exc)
                log.warning("Pricing API unavailable (%s); using the snapshot of %s", exc, snapshot()["taken"])
        return price or snapshot_price(self.region, instance_type), specs or derived_specs(instance_type)


def run_cost(
    training_seconds: float | None, billable_seconds: float | None, price: Price | None, spot: bool, instances: int = 1
) -> dict[str, Any]:
    """What a run cost. BillableTimeInSeconds already has the spot discount applied and counts
    one instance (AWS: "multiply BillableTimeInSeconds by InstanceCount"), so
    cost = instances x billable seconds x on-demand hourly price / 3600, and the same run on
    demand would have cost the training seconds at that price. Unknown inputs give None."""
    result: dict[str, Any] = {
        "usd_per_hour": price.usd_per_hour if price else None,
        "price_source": price.source if price else "no price known",
        "spot_savings": None,
        "cost_usd": None,
        "on_demand_cost_usd": None,
        "instances": instances,
    }
    if training_seconds and billable_seconds is not None:
        result["spot_savings"] = round(1 - billable_seconds / training_seconds, 4) if spot else 0.0
    if price is not None:
        if billable_seconds is not None:
            result["cost_usd"] = round(instances * billable_seconds * price.usd_per_hour / 3600, 8)
        if training_seconds is not None:
            result["on_demand_cost_usd"] = round(instances * training_seconds * price.usd_per_hour / 3600, 8)
    return result


def job_cost(settings: Settings, boto_session: Any, priced_type: str, seconds: float | None) -> dict[str, Any]:
    """A transform's or a processing job's cost: seconds x the type's training on-demand price
    (the Pricing API's transform and processing products are not looked up: docs/cost.md).
    Local runs are not billed (cost None); the on-demand figure is what the same seconds would
    cost on AWS on `priced_type`."""
    book = PriceBook(settings.region, None if settings.local else pricing_client(boto_session, settings.region))
    price, _ = book.lookup(priced_type)
    cost = run_cost(seconds, None if settings.local else seconds, price, spot=False)
    cost.update(instance_type=priced_type, price_basis="the type's training on-demand price (docs/cost.md)")
    return cost
