"""The run record's one typed definition (launcher/lib/records.py): what it accepts, what it
names when a file does not fit, and the summary printed beside it. Records written by real runs
are checked against it in tests/test_make_all.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_record

from launcher.lib import records


def test_a_started_record_fits() -> None:
    assert records.shape_problems(run_record()) == []


def test_missing_unknown_and_nested_keys_are_named() -> None:
    record = run_record()
    del record["region"]
    record["record_path"] = "runs/x.json"  # the private key records once carried
    record["data"]["train"].pop("sha256")
    record["transforms"] = [{"name": "t"}]
    problems = records.shape_problems(record)
    assert "missing region" in problems
    assert "unknown record_path" in problems
    assert "missing data.train.sha256" in problems
    assert "missing transforms[0].input" in problems


def test_read_record_refuses_a_file_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text(json.dumps({"hello": 1}), encoding="utf-8")
    with pytest.raises(records.RecordError, match=r"notes.json is not a run record this toolkit wrote \(missing"):
        records.read_record(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(records.RecordError, match=r"\(not JSON\); move it out of"):
        records.read_record(path)


def test_write_then_read_gives_the_same_record(tmp_path: Path) -> None:
    record = run_record()
    path = records.write_record(tmp_path, record)
    assert path == records.record_path(tmp_path, record["job_name"])
    assert records.read_record(path) == record


def test_the_summary_names_the_record_file(tmp_path: Path) -> None:
    record = run_record()
    text = records.summary(record, tmp_path / "x.json")
    assert f"record       {tmp_path / 'x.json'}" in text
    assert "time         training - s" in text  # no outcome yet: nothing invented
