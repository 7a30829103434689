"""`make report`: one Markdown document per run, generated from its run record and the
instance report, with the validation ROC curve and feature importances drawn beside it
from the artifact's own output data (runs/<job>/output/, unpacked by make verify)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import pandas as pd

from launcher.lib import errors, records
from launcher.lib.pricing import usd

log = logging.getLogger("report")
FLOW = """```
data/titanic/train.csv ─(SHA-256, stratified 80:20)─► {train} , {validation}
container/ ─(docker build --platform linux/amd64)─► {image}
Estimator.fit({{"train", "validation"}}) on {instance} ─► {model}
make verify: download, reload, rescore ─► {verified}
```"""
HINTS = {
    "exec format error": "the image was built for another CPU; build with `make build` (always linux/amd64)",
    "ResourceLimitExceeded": "the account's quota for this instance type is 0: see the instance evidence above",
    "AccessDenied": "the runner or the execution role lacks a permission: compare with `make iam-render`'s policies",
    "separated": "a channel file is not comma-separated CSV: check what is under the data prefix",
    "libgomp": "LightGBM needs libgomp1 in the image: use a Debian-based BASE_IMAGE",
    "hyperparameter": "a hyperparameter was refused: see the HP_* settings in config.env",
}


def _find(folder: Path, name: str) -> Path | None:
    found = sorted(folder.rglob(name)) if folder.is_dir() else []
    return found[0] if found else None


def draw_roc(csv: Path, target: Path, auc: float | None) -> None:
    points = pd.read_csv(csv)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(points["fpr"], points["tpr"], label=f"model (AUC {auc:.3f})" if auc is not None else "model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Validation ROC curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def draw_importance(csv: Path, target: Path, top: int = 15) -> None:
    table = pd.read_csv(csv).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.32 * len(table) + 1.2))
    ax.barh(table["feature"], table["gain"])
    ax.set(xlabel="total gain", title=f"Feature importance (top {len(table)})")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def pictures(record: records.RunRecord, runs_dir: Path, out_dir: Path) -> list[str]:
    """The ROC and importance PNGs, when make verify has unpacked the artifact's output data."""
    output = runs_dir / record["job_name"] / "output"
    drawn = []
    roc, importance = _find(output, "roc_curve.csv"), _find(output, "feature_importance.csv")
    out_dir.mkdir(parents=True, exist_ok=True)
    if roc:
        draw_roc(roc, out_dir / "roc.png", (record.get("metrics") or {}).get("val_auc"))
        drawn.append("roc.png")
    if importance:
        draw_importance(importance, out_dir / "importance.png")
        drawn.append("importance.png")
    return drawn


def reproduce(record: records.RunRecord) -> str:
    data_uri = urlparse(record["data"]["train"]["uri"])
    settings = [
        f"TARGET={record['target']}",
        f"AWS_REGION={record['region']}",
        f"BUCKET={data_uri.netloc}",
        f"DATA_PREFIX={data_uri.path.strip('/').removesuffix('/train').removesuffix('train').rstrip('/')}",
    ]
    if record["target"] == "aws":
        settings += [
            f"INSTANCE_TYPE={record['instance']['type']}",
            f"USE_SPOT={'yes' if record['instance']['spot'] else 'no'}",
        ]
    settings += [f"HP_{name.upper()}={value}" for name, value in sorted(record["hyperparameters"].items())]
    commit = record["toolkit_commit"].removesuffix("-dirty")
    dirty = record["toolkit_commit"].endswith("-dirty")
    lines = [
        "```bash",
        f"git checkout {commit}" + ("   # the run was made from uncommitted changes on top of this" if dirty else ""),
        "make all \\",
        *[f"  {s} \\" for s in settings[:-1]],
        f"  {settings[-1]}",
        f"make verify JOB={record['job_name']}",
        "```",
        "",
        f"The image is rebuilt from that commit; this run's was image id `{record['image'].get('image_id') or '?'}` "
        f"(manifest `{record['image']['digest']}`), and its training file had SHA-256 "
        f"`{record['data']['train']['sha256']}`: compare them with the new run's record.",
    ]
    return "\n".join(lines)


def instance_section(instance_report: dict[str, Any] | None, record: records.RunRecord) -> list[str]:
    if instance_report is None:
        return ["No instance report was found; run `make instance-report`."]
    rows = sorted(
        (r for r in instance_report["rows"] if r["usd_per_hour"] is not None),
        key=lambda r: (r["usd_per_hour"], r["instance_type"]),
    )[:8]
    configured = record["instance"]["configured_type"]
    lines = [
        f"Report taken {instance_report['taken_at']} in {instance_report['region']} "
        f"({'spot' if instance_report['spot'] else 'on-demand'}). Prices: {instance_report['price_note']}. "
        f"Quotas: {instance_report['quota_note']}.",
        "",
        f"Choice: **{instance_report['choice']}** ({instance_report['choice_reason']}). "
        + (
            "The run used it."
            if instance_report["choice"] == configured
            else f"The run was configured with {configured}."
        ),
        "",
        "| type | vCPU | GiB | USD/h | source | on-demand quota | spot quota | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        source = "snapshot" if r["price_source"].startswith("snapshot") else "API"
        lines.append(
            f"| {r['instance_type']} | {r['vcpu']} | {r['memory_gib']:g} | {r['usd_per_hour']:.4f} | {source} "
            f"| {r['on_demand_quota'] if r['on_demand_quota'] is not None else 'unknown'} "
            f"| {r['spot_quota'] if r['spot_quota'] is not None else 'unknown'} | {r['verdict']} |"
        )
    return lines


def cost_section(record: records.RunRecord) -> list[str]:
    cost = record.get("cost") or {}
    seconds = record.get("seconds") or {}
    lines = [f"- {records.cost_line(cost)}"]
    if cost.get("usd_per_hour") is not None and record["target"] == "aws" and seconds.get("billable") is not None:
        price = cost["usd_per_hour"]
        lines.append(
            f"- arithmetic: {seconds['billable']} billable s * ${price}/h / 3600 = {usd(cost['cost_usd'])}; "
            f"on demand {seconds['training']} s * ${price}/h / 3600 = {usd(cost['on_demand_cost_usd'])}"
        )
    if "snapshot" in cost.get("price_source", ""):
        lines.append("- the price is from the committed snapshot, not a live Pricing API answer")
    return lines


def troubleshooting(record: records.RunRecord) -> list[str]:
    notes = []
    reason = record.get("failure_reason") or ""
    if reason:
        notes.append(f"- the job failed: `{reason}`")
        notes += [f"- {hint}" for key, hint in HINTS.items() if key.lower() in reason.lower()]
    if record["target"] == "local":
        notes.append("- embedded stack: SDK local mode ignores spot and checkpoints and bills nothing (README, Gaps)")
    if not record.get("verification"):
        notes.append(
            f"- not verified yet: run `make verify JOB={record['job_name']}` for the metrics check and pictures"
        )
    return notes or ["- none: the run completed and was verified"]


def render(record: records.RunRecord, instance_report: dict[str, Any] | None, drawn: list[str]) -> str:
    job = record["job_name"]
    metrics = record.get("metrics") or {}
    checked = (record.get("verification") or {}).get("metrics", {})
    verified = "verified" if record.get("verification") else "not verified"
    flow = FLOW.format(
        train=record["data"]["train"]["uri"],
        validation=record["data"]["validation"]["uri"],
        image=record["image"]["uri"],
        instance=record["instance"]["type"],
        model=record.get("model_artifact") or "no model",
        verified=verified,
    )
    lines = [
        f"# Training run {job}",
        "",
        "## Summary",
        "",
        f"- status: **{record['status']}** on {record['target']} ({record['region']}), {verified}",
        "- validation: "
        + ", ".join(f"{k} {metrics[k]:.4f}" for k in ("val_accuracy", "val_f1", "val_auc") if k in metrics),
        f"- cost: {records.cost_line(record.get('cost') or {})}",
        "",
        "## Flow",
        "",
        flow,
        "",
        "## Resources",
        "",
        "| what | where |",
        "| --- | --- |",
        f"| region | {record['region']} |",
        f"| data | {record['data']['train']['uri']} ({record['data']['train']['rows']} rows, sha256 "
        f"`{record['data']['train']['sha256'][:16]}…`), {record['data']['validation']['uri']} "
        f"({record['data']['validation']['rows']} rows) |",
        f"| image | `{record['image']['uri']}` |",
        f"| image digest | `{record['image']['digest']}` |",
        f"| training job | {job} |",
        f"| model artifact | {record.get('model_artifact') or 'none'} |",
        f"| output data | {record.get('output_data') or 'none'} |",
        f"| toolkit commit | `{record['toolkit_commit']}` |",
        "",
        "## How to reproduce",
        "",
        reproduce(record),
        "",
        "## Instance evidence",
        "",
        *instance_section(instance_report, record),
        "",
        "## Metrics",
        "",
        "| metric | from the job | rescored by make verify |",
        "| --- | --- | --- |",
        *[
            f"| {name} | {value:.6f} | {checked[name]['rescored']:.6f} |"
            if name in checked
            else f"| {name} | {value:.6f} | - |"
            for name, value in sorted(metrics.items())
        ],
        "",
        *[f"![{name}]({job}/{name})" for name in drawn],
        "",
        "## Cost",
        "",
        *cost_section(record),
        "",
        "## Troubleshooting notes",
        "",
        *troubleshooting(record),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--reports-dir", type=Path, required=True)
    parser.add_argument("--instance-report", type=Path, required=True)
    parser.add_argument("--job", default="", help="one job (default: every run record)")
    args = parser.parse_args(argv)
    return errors.run("report", lambda: _write_reports(args))


def _write_reports(args: argparse.Namespace) -> int:
    paths = [records.record_path(args.runs_dir, args.job)] if args.job else sorted(args.runs_dir.glob("*.json"))
    paths = [p for p in paths if p.is_file()]
    if not paths:
        log.error(
            "ERROR: no run record%s in %s; run 'make train' first",
            f" for {args.job}" if args.job else "",
            args.runs_dir,
        )
        return 1
    instance_report = None
    if args.instance_report.is_file():
        instance_report = json.loads(args.instance_report.read_text(encoding="utf-8"))
    for path in paths:
        record = records.read_record(path)
        drawn = pictures(record, args.runs_dir, args.reports_dir / record["job_name"])
        target = args.reports_dir / f"{record['job_name']}.md"
        target.write_text(render(record, instance_report, drawn), encoding="utf-8")
        log.info("wrote %s%s", target, f" with {', '.join(drawn)}" if drawn else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
