"""Choosing instance types (make instance-report, make predict, preflight): the cheapest
training instance this account can actually use, and the cheapest for batch transform.

Candidates are the training instance types botocore's own SageMaker model accepts, less
GPU and accelerator families and types with too little memory. For each: the applied
on-demand, spot and transform quotas (Service Quotas) and the on-demand price (Pricing API,
else the dated snapshot). The training choice is the cheapest type with a quota of at least 1
for the configured mode; the transform choice the cheapest that batch transform accepts with
a transform quota of at least 1. Transform is priced at the type's training price: the
Pricing API's transform products are not looked up (docs/cost.md). Written to
reports/instance-report.{md,json}.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from launcher.lib.config import Settings, instance_types
from launcher.lib.pricing import ACCELERATED, PriceBook, pricing_client, snapshot, usd

log = logging.getLogger("instance-report")
QUOTA_NAME = re.compile(r"^(ml\.[a-z0-9.]+) for (spot training|training|transform|processing) job usage$")
_QUOTA_KIND = {"spot training": "spot", "training": "on_demand", "transform": "transform", "processing": "processing"}
CONSOLE = "https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas/{code}"


@dataclass
class Row:
    instance_type: str
    vcpu: int | None
    memory_gib: float | None
    specs_source: str
    usd_per_hour: float | None
    price_source: str
    on_demand_quota: float | None
    spot_quota: float | None
    on_demand_code: str | None
    spot_code: str | None
    on_demand_quota_source: str = "unknown"
    spot_quota_source: str = "unknown"
    verdict: str = ""
    transform_quota: float | None = None
    transform_code: str | None = None
    transform_quota_source: str = "unknown"
    transform_verdict: str = ""


def _read_quotas(client: Any, operation: str, source: str, into: dict[str, dict[str, Any]]) -> None:
    for page in client.get_paginator(operation).paginate(ServiceCode="sagemaker"):
        for quota in page.get("Quotas", []):
            match = QUOTA_NAME.match(quota.get("QuotaName", ""))
            if not match:
                continue
            kind = _QUOTA_KIND[match.group(2)]
            entry = into.setdefault(match.group(1), {})
            if kind in entry:
                continue  # an applied value, read first, beats the default
            entry[kind] = float(quota.get("Value", 0))
            entry[f"{kind}_code"] = quota.get("QuotaCode")
            entry[f"{kind}_source"] = source


def training_quotas(client: Any) -> dict[str, dict[str, Any]]:
    """{type: {on_demand, spot, *_code, *_source}} from every page of the applied quotas, then
    the AWS defaults for every quota the first list left out: ListServiceQuotas omits quotas
    that still have their default value, so a missing type is not a quota of 0."""
    quotas: dict[str, dict[str, Any]] = {}
    _read_quotas(client, "list_service_quotas", "applied", quotas)
    _read_quotas(client, "list_aws_default_service_quotas", "AWS default", quotas)
    return quotas


def quota_for(
    quotas: dict[str, dict[str, Any]] | None, instance_type: str, spot: bool, kind: str = ""
) -> tuple[float | None, str, str]:
    """The quota for this type and mode (None when unknown), its quota code and where the
    number came from ('applied', 'AWS default', or 'not listed' for a type neither list has).
    `kind` names another quota than training's ('processing', 'transform')."""
    if quotas is None:
        return None, "", "unknown"
    entry = quotas.get(instance_type, {})
    kind = kind or ("spot" if spot else "on_demand")
    return entry.get(kind, 0.0), entry.get(f"{kind}_code") or "", entry.get(f"{kind}_source", "not listed")


def quota_message(instance_type: str, spot: bool, code: str) -> str:
    mode = "spot training job usage" if spot else "training job usage"
    where = CONSOLE.format(code=code) if code else "https://console.aws.amazon.com/servicequotas/ (service SageMaker)"
    return (
        f"'{instance_type} for {mode}' has a quota of 0 in this account; request an increase of quota "
        f"{code or '(search the name above)'} at {where}, or pick a type with quota (make instance-report)"
    )


def build_rows(book: PriceBook, quotas: dict[str, dict[str, Any]] | None, min_memory_gib: float) -> list[Row]:
    rows = []
    for instance_type in instance_types("TrainingInstanceType"):
        if ACCELERATED.match(instance_type):
            continue
        price, specs = book.lookup(instance_type)
        entry = (quotas or {}).get(instance_type, {})
        unknown = quotas is None
        row = Row(
            instance_type=instance_type,
            vcpu=specs.vcpu if specs else None,
            memory_gib=specs.memory_gib if specs else None,
            specs_source=specs.source if specs else "unknown",
            usd_per_hour=price.usd_per_hour if price else None,
            price_source=price.source if price else "no price",
            on_demand_quota=None if unknown else entry.get("on_demand", 0.0),
            spot_quota=None if unknown else entry.get("spot", 0.0),
            on_demand_code=entry.get("on_demand_code"),
            spot_code=entry.get("spot_code"),
            on_demand_quota_source="unknown" if unknown else entry.get("on_demand_source", "not listed"),
            spot_quota_source="unknown" if unknown else entry.get("spot_source", "not listed"),
            transform_quota=None if unknown else entry.get("transform", 0.0),
            transform_code=entry.get("transform_code"),
            transform_quota_source="unknown" if unknown else entry.get("transform_source", "not listed"),
        )
        if row.memory_gib is None:
            continue  # not a type whose size we know: neither priced nor derivable
        if row.memory_gib < min_memory_gib:
            row.verdict = f"too small ({row.memory_gib:g} GiB < {min_memory_gib:g})"
        rows.append(row)
    return rows


def choose(rows: list[Row], spot: bool) -> Row | None:
    """The cheapest priced type that fits and has quota >= 1 (or unknown quota) for the mode."""
    usable = []
    for row in rows:
        if row.verdict:
            continue
        quota = row.spot_quota if spot else row.on_demand_quota
        if row.usd_per_hour is None:
            row.verdict = "no price"
        elif quota is not None and quota < 1:
            row.verdict = "no quota"
        else:
            row.verdict = "fits"
            usable.append(row)
    best = _cheapest(usable)
    if best is None:
        return None
    best.verdict = (
        "CHOSEN: cheapest with quota" if best.on_demand_quota is not None else "CHOSEN: cheapest (quota unknown)"
    )
    return best


def _cheapest(usable: list[Row]) -> Row | None:
    """Lowest price, then least memory, then name: the same choice on every run."""
    return min(usable, key=lambda r: (r.usd_per_hour or 0.0, r.memory_gib or 0.0, r.instance_type), default=None)


def choose_transform(rows: list[Row]) -> Row | None:
    """The cheapest priced type that fits, that batch transform accepts, with transform quota
    >= 1 (or unknown quota)."""
    accepted = set(instance_types("TransformInstanceType"))
    usable = []
    for row in rows:
        if row.verdict.startswith("too small") or row.usd_per_hour is None:
            row.transform_verdict = row.verdict or "no price"
        elif row.instance_type not in accepted:
            row.transform_verdict = "not for transform"
        elif row.transform_quota is not None and row.transform_quota < 1:
            row.transform_verdict = "no quota"
        else:
            row.transform_verdict = "fits"
            usable.append(row)
    best = _cheapest(usable)
    if best is None:
        return None
    best.transform_verdict = "CHOSEN" if best.transform_quota is not None else "CHOSEN (quota unknown)"
    return best


def _fmt(value: float | None, pattern: str = "{:g}") -> str:
    return "unknown" if value is None else pattern.format(value)


def _quota(value: float | None, source: str | None) -> str:
    return "unknown" if value is None else f"{value:g} ({source})"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Instance report: {report['region']}, {'spot' if report['spot'] else 'on-demand'} training",
        "",
        f"Taken {report['taken_at']} for TARGET={report['target']}. Prices: {report['price_note']}. "
        f"Quotas: {report['quota_note']}.",
        "",
        f"**Choice: {report['choice'] or 'none'}**"
        + (f" — {report['choice_reason']}" if report["choice_reason"] else ""),
        "",
        f"**Batch transform (make predict): {report.get('transform_choice') or 'none'}**, priced at its training "
        "price (transform products are not looked up).",
        "",
        "| type | vCPU | memory GiB | USD/hour | price source | on-demand quota | spot quota | verdict "
        "| transform quota | transform |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ordered = sorted(
        report["rows"], key=lambda r: (r["usd_per_hour"] is None, r["usd_per_hour"] or 0, r["instance_type"])
    )
    for r in ordered:
        source = "snapshot" if r["price_source"].startswith("snapshot") else ("API" if r["usd_per_hour"] else "-")
        price = _fmt(r["usd_per_hour"], "{:.4f}")
        lines.append(
            f"| {r['instance_type']} | {_fmt(r['vcpu'])} | {_fmt(r['memory_gib'])} | {price} "
            f"| {source} | {_quota(r['on_demand_quota'], r.get('on_demand_quota_source'))} "
            f"| {_quota(r['spot_quota'], r.get('spot_quota_source'))} | {r['verdict']} "
            f"| {_quota(r.get('transform_quota'), r.get('transform_quota_source'))} "
            f"| {r.get('transform_verdict', '')} |"
        )
    if any(r["price_source"].startswith("snapshot") for r in report["rows"]):
        data = snapshot()
        lines += ["", f"Prices marked snapshot are not live: {data['region']}, taken {data['taken']}."]
        lines += [f"- `{key}`: {text}" for key, text in data["sources"].items()]
    return "\n".join(lines) + "\n"


def aws_clients(settings: Settings, session: boto3.Session) -> tuple[Any, Any]:
    """(pricing, service-quotas) clients."""
    return pricing_client(session, settings.region), session.client("service-quotas", region_name=settings.region)


def make_report(settings: Settings, pricing_client: Any, quota_client: Any, min_memory_gib: float) -> dict[str, Any]:
    """The report; with no clients (TARGET=local) prices come from the snapshot, quotas unknown."""
    quotas = None
    quota_note = "unknown: the embedded stack has no Service Quotas (TARGET=local)"
    if quota_client is not None:
        try:
            quotas = training_quotas(quota_client)
            quota_note = (
                f"Service Quotas API ({len(quotas)} types): the account's applied value where it has one, "
                "else AWS's default (each row says which)"
            )
        except (BotoCoreError, ClientError) as exc:
            quota_note = f"unknown: Service Quotas could not be read ({exc})"
    book = PriceBook(settings.region, pricing_client)
    rows = build_rows(book, quotas, min_memory_gib)
    chosen = choose(rows, settings.use_spot)
    transform = choose_transform(rows)
    price_note = "Pricing API" if book.api_failed is None else f"snapshot where marked (Pricing API: {book.api_failed})"
    reason = ""
    if chosen:
        price = usd(chosen.usd_per_hour, 4)
        reason = f"{price}/h, {chosen.memory_gib:g} GiB, {chosen.vcpu} vCPU ({chosen.price_source})"
    return {
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "region": settings.region,
        "target": settings.target,
        "spot": settings.use_spot,
        "min_memory_gib": min_memory_gib,
        "configured_instance_type": settings.instance_type,
        "choice": chosen.instance_type if chosen else None,
        "choice_reason": reason,
        "transform_choice": transform.instance_type if transform else None,
        "price_note": price_note,
        "quota_note": quota_note,
        "rows": [asdict(r) for r in rows],
    }


def no_choice_message(report: dict[str, Any]) -> str:
    spot = report["spot"]
    configured = next((r for r in report["rows"] if r["instance_type"] == report["configured_instance_type"]), None)
    code = (configured or {}).get("spot_code" if spot else "on_demand_code") or ""
    return "no candidate instance type has quota for this job. " + quota_message(
        report["configured_instance_type"], spot, code
    )
