"""`make cost`: one line per run record with its seconds, price and cost, and the totals."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import boto3

from launcher.lib import errors, records
from launcher.lib.errors import ToolkitError
from launcher.lib.hosting import live_summary
from launcher.lib.pricing import usd

COLUMNS = ("job", "target", "status", "instance", "spot", "train s", "bill s", "savings", "USD/h", "cost", "on demand")


def _num(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def row(record: records.RunRecord) -> list[str]:
    cost = record.get("cost") or {}
    seconds = record.get("seconds") or {}
    return [
        record["job_name"],
        record["target"],
        record["status"],
        cost.get("instance_type") or record["instance"]["configured_type"],
        "yes" if record["instance"]["spot"] else "no",
        _num(seconds.get("training"), "{:g}"),
        _num(None if record["target"] == "local" else seconds.get("billable"), "{:g}"),
        _num(cost.get("spot_savings"), "{:.0%}"),
        _num(cost.get("usd_per_hour"), "{:.4f}") + ("*" if "snapshot" in cost.get("price_source", "") else ""),
        usd(cost.get("cost_usd"), unknown="-") if record["target"] != "local" else "not billed",
        usd(cost.get("on_demand_cost_usd"), unknown="-"),
    ]


def table(records: list[dict[str, Any]]) -> str:
    rows = [list(COLUMNS), *[row(r) for r in records]]
    billed = [r["cost"]["cost_usd"] for r in records if (r.get("cost") or {}).get("cost_usd") is not None]
    on_demand = [r["cost"]["on_demand_cost_usd"] for r in records if (r.get("cost") or {}).get("on_demand_cost_usd")]
    rows.append(["total", "", f"{len(records)} runs", "", "", "", "", "", "", usd(sum(billed)), usd(sum(on_demand))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        "cost = billable seconds x on-demand USD/h / 3600 (billable seconds already include the spot discount);",
        "on demand = training seconds at the same price; * = price from the committed snapshot, not the Pricing API;",
        "local runs are not billed: their 'on demand' column is what the same training time would cost on AWS.",
    ]
    return "\n".join([*lines, "", *notes])


def load_records(runs_dir: Path) -> list[records.RunRecord]:
    found = [records.read_record(p) for p in sorted(runs_dir.glob("*.json"))]
    return sorted(found, key=lambda r: r.get("started_at", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return errors.run("cost", lambda: _costs(args))


def _costs(args: argparse.Namespace) -> int:
    records = load_records(args.runs_dir)
    if not records:
        raise ToolkitError(f"no run records in {args.runs_dir}; run 'make train' first")
    print(table(records))
    print(live_endpoint_line(), flush=True)
    return 0


def live_endpoint_line() -> str:
    """The live endpoint and its running cost: unlike a job, it costs money while it exists."""

    from launcher.lib.config import SettingsError, load

    try:
        settings = load()
    except SettingsError:
        return "endpoint: unknown (the settings do not check; make validate)"
    return live_summary(settings, boto3.Session(region_name=settings.region))


if __name__ == "__main__":
    sys.exit(main())
