"""The Makefile's own promises: settings precedence, no setting ever run as code, help for
every target, a printable plan, and stamps that neither miss nor repeat work.

Everything that could write runs in a copy of the repository, never in the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import boto3
import pytest
from checkout import PARENT_MAKE_VARS, copy_repository
from conftest import REPO, shipped

from launcher.lib.config import CONFIG_LINE_RE

CONFIG_VARS = list(shipped())


def make(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in (*CONFIG_VARS, *PARENT_MAKE_VARS) and not k.startswith("AWS_")
    }
    return subprocess.run(
        ["make", "--no-print-directory", f"VENV={REPO / '.venv'}", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


# The machine check runs before the stages that need Docker (silently, changing nothing when
# everything is there): it is in every plan, and not a stage that redoes work.
MACHINE_CHECK = re.compile(r"^scripts/setup-machine\.sh (stack|docker)$")


def planned(*args: str, **kwargs: object) -> str:
    """What `make -n` would run, without make's own 'Nothing to be done' remarks and the
    machine check."""
    result = make("-n", *args, **kwargs)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    return "\n".join(
        line
        for line in result.stdout.splitlines()
        if not re.match(r"make(\[\d+\])?: ", line) and not MACHINE_CHECK.match(line)
    )


def setting(output: str, name: str) -> str:
    return re.search(rf"^{name}=(.*)$", output, re.M).group(1)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return copy_repository(tmp_path / "repo")


def test_config_env_then_environment_then_command_line() -> None:
    assert setting(make("config").stdout, "BUCKET") == "titanic-sagemaker-toolkit-demo"
    assert setting(make("config", BUCKET="from-the-environment").stdout, "BUCKET") == "from-the-environment"
    both = make("config", "BUCKET=from-the-command-line", BUCKET="from-the-environment")
    assert setting(both.stdout, "BUCKET") == "from-the-command-line"


@pytest.mark.parametrize("how", ["environment", "command line"])
@pytest.mark.parametrize(
    "value",
    ["x';echo INJECTED;'", 'x";echo INJECTED;"', "$(shell echo INJECTED >&2)", "`echo INJECTED`", "$$(echo INJECTED)"],
)
def test_no_setting_value_is_ever_run_as_code(tmp_path: Path, how: str, value: str) -> None:
    """The reference run's `TAGS="x';echo INJECTED;'" make config` printed INJECTED."""
    marker = tmp_path / "ran"
    value = value.replace("echo INJECTED", f"touch {marker}")
    args, env = (["config"], {"TAGS": value}) if how == "environment" else (["config", f"TAGS={value}"], {})
    result = make(*args, **env)
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), f"{value!r} was executed"
    assert setting(result.stdout, "TAGS") == value  # printed as it is, literally
    plan = make("-n", "validate", *args[1:], **env)
    assert not marker.exists() and plan.returncode == 0


def test_no_recipe_expands_a_setting() -> None:
    """Recipes pass settings through the environment ("$$NAME"), where a shell reads them as
    data; a $(NAME) in a recipe would paste the value into the command line as code."""
    offenders = []
    for number, line in enumerate((REPO / "Makefile").read_text().splitlines(), start=1):
        if line.startswith("\t"):
            for name in CONFIG_VARS:
                offenders += [f"line {number}: {form}" for form in (f"$({name})", f"${{{name}}}") if form in line]
    assert offenders == []


@pytest.mark.parametrize("name", ["RUNS", "REPORTS", "BUILD", "VENV", "PYTHON_HOST"])
@pytest.mark.parametrize("value", ["x; touch {planted}", "$(shell touch {planted})", "a b", "it's"])
def test_an_overridable_path_that_is_not_a_plain_path_is_refused_before_anything_runs(
    name: str, value: str, tmp_path: Path
) -> None:
    """These paths are pasted into recipes as words: make refuses any other value at parse time,
    reading it raw, so neither the recipe nor make itself ever runs it."""
    planted = tmp_path / "planted"
    result = make("-n", "all", f"{name}={value.format(planted=planted)}")
    assert result.returncode != 0
    assert f"{name}=" in result.stderr and "is not a plain path" in result.stderr, result.stderr
    assert not planted.exists()


def test_help_is_the_default_and_lists_every_phony_target() -> None:
    helped = make()
    assert helped.returncode == 0
    listed = set(re.findall(r"^  ([a-z-]+) ", helped.stdout, re.M))
    phony = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        if line.startswith(".PHONY:"):
            phony.update(line.split(":", 1)[1].split())
    assert phony - {"FORCE"} <= listed, phony - listed
    for target in ("all", "train", "clean-resources", "teardown", "bootstrap", "status", "logs", "stop", "describe"):
        assert target in listed


def test_every_action_target_is_phony() -> None:
    text = (REPO / "Makefile").read_text()
    phony = set(re.findall(r"^\.PHONY: (\S+)$", text, re.M))
    documented = set(re.findall(r"^([a-z-]+):.*## ", text, re.M))
    assert documented <= phony, documented - phony


def test_a_plan_is_printed_without_running_anything(tmp_path: Path, moto_endpoint: str) -> None:
    build = tmp_path / "build-never-made"
    plan = make("-n", "train", f"BUILD={build}", "TARGET=aws", **aws_env(moto_endpoint))
    assert plan.returncode == 0, plan.stderr
    assert "launcher.settings" in plan.stdout and "launcher.preflight" in plan.stdout
    assert "scripts/upload-data.sh" in plan.stdout and "scripts/push-image.sh" in plan.stdout
    assert "launcher.train" in plan.stdout
    assert not build.exists()


def aws_env(endpoint: str, **keys: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": keys.get("id", "testing"),
        "AWS_SECRET_ACCESS_KEY": keys.get("secret", "testing"),
        **({"AWS_SESSION_TOKEN": keys["token"]} if "token" in keys else {}),
    }


def test_aws_stamps_are_kept_per_account_and_region(tmp_path: Path, moto_endpoint: str) -> None:
    """Switching profiles must never reuse another account's upload or image."""
    build = tmp_path / "build"
    mine = make("-n", "upload", f"BUILD={build}", "TARGET=aws", **aws_env(moto_endpoint))
    assert f"{build}/aws/123456789012-us-east-1/uploaded" in mine.stdout, mine.stdout
    other = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn="arn:aws:iam::111122223333:role/ci", RoleSessionName="ci"
    )["Credentials"]
    keys = {"id": other["AccessKeyId"], "secret": other["SecretAccessKey"], "token": other["SessionToken"]}
    theirs = make("-n", "upload", f"BUILD={build}", "TARGET=aws", **aws_env(moto_endpoint, **keys))
    assert f"{build}/aws/111122223333-us-east-1/uploaded" in theirs.stdout, theirs.stdout
    west = make("-n", "upload", f"BUILD={build}", "TARGET=aws", "AWS_REGION=eu-west-1", **aws_env(moto_endpoint))
    assert f"{build}/aws/123456789012-eu-west-1/uploaded" in west.stdout


def _image_built(copy: Path) -> None:
    """The state after a build, without Docker: every input stamp current, the image stamp newer."""
    stamps = ("build/vars/CONTAINER_HASH", "build/vars/BASE_IMAGE", "build/vars/ECR_REPOSITORY", "build/stamps/config")
    made = make(*stamps, cwd=copy)
    assert made.returncode == 0, made.stderr
    (copy / "build/stamps/image").touch()
    assert planned("build", cwd=copy) == ""


@pytest.mark.parametrize("change", ["delete", "rename", "add", "edit"])
def test_any_change_under_container_rebuilds_the_image(copy: Path, change: str) -> None:
    _image_built(copy)
    code = copy / "container/titanic_model/metrics.py"
    if change == "delete":
        code.unlink()
    elif change == "rename":
        code.rename(code.with_name("scores.py"))
    elif change == "add":
        (copy / "container/titanic_model/extra.py").write_text("X = 1\n")
    else:
        code.write_text(code.read_text() + "\n# edited\n")
    assert "scripts/build-image.sh" in planned("build", cwd=copy)


def test_an_edit_to_the_data_code_runs_the_data_stage_once(copy: Path) -> None:
    first = make("data", cwd=copy)
    assert first.returncode == 0, first.stderr
    assert planned("data", cwd=copy) == ""
    script = copy / "launcher/prepare_data.py"
    script.write_text(script.read_text() + "\n# edited\n")
    again = make("data", cwd=copy)
    assert "launcher.prepare_data" in again.stdout
    assert planned("data", cwd=copy) == "", "the data stage would run on every make"


def test_a_changed_setting_redoes_only_the_stages_that_use_it(copy: Path) -> None:
    _image_built(copy)
    plan = planned("build", "BASE_IMAGE=python:3.13-slim", cwd=copy)
    assert "scripts/build-image.sh" in plan and "prepare_data" not in plan
    assert "build-image" not in planned("build", "HP_N_ESTIMATORS=10", cwd=copy)


def test_a_config_line_that_is_not_key_value_is_refused_before_make_runs_it(tmp_path: Path) -> None:
    """`include` would run `$(shell ...)` while reading the file: the line is refused first, by number."""
    planted = tmp_path / "planted"
    config = tmp_path / "config.env"
    lines = (REPO / "config.env").read_text().splitlines()
    config.write_text("\n".join([*lines, f"EVIL=$(shell touch {planted})", "also not a setting"]) + "\n")
    result = make("help", f"CONFIG={config}")
    assert result.returncode != 0
    assert not planted.exists(), "make ran the planted line"
    errors = [line for line in result.stderr.splitlines() if "***" in line]
    assert len(errors) == 1, result.stderr
    assert f"line {len(lines) + 1} {len(lines) + 2} is not KEY=value" in errors[0]


def test_the_makefiles_config_line_pattern_is_the_settings_one() -> None:
    text = (REPO / "Makefile").read_text()
    pattern = re.search(r"^CONFIG_LINE := (.*)$", text, re.M).group(1).replace("$$", "$")
    assert pattern == CONFIG_LINE_RE.pattern


class Recording:
    """Settings that note which fields are read (to find what the set-up stack is made of)."""

    def __init__(self, real: object) -> None:
        self.real, self.seen = real, set()

    def __getattr__(self, name: str) -> object:
        self.seen.add(name)
        return getattr(self.real, name)


def test_the_bootstrap_stamp_depends_on_exactly_the_settings_the_stack_reads() -> None:
    """Too few and a changed setting leaves the stack stale; too many and a runner's `make all`
    redeploys it (which only an administrator may)."""
    from launcher.lib import stack
    from launcher.lib.config import load

    settings = Recording(load(shipped()))
    stack.template(settings)  # type: ignore[arg-type]
    stack.parameters(settings, create_bucket=True, create_repository=True)  # type: ignore[arg-type]
    stack.stack_name(settings)  # type: ignore[arg-type]
    read = settings.seen | {"create_bucket"}  # launcher/stack.py's creations() reads it too
    renamed = {"region": "AWS_REGION", "role": "ROLE_ARN", "pipeline_role": "PIPELINE_ROLE_ARN"}
    wanted = {renamed.get(name, name.upper()) for name in read}
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    (listed,) = re.findall(r"^STACK_SETTINGS := (.*)$", text, re.MULTILINE)
    assert set(listed.split()) == wanted


@pytest.mark.parametrize(
    ("register_with", "runs", "skips"),
    [
        ("pipeline", ["launcher.train", "launcher.pipeline"], ["launcher.evaluate", "launcher.registry"]),
        ("register", ["launcher.train", "launcher.evaluate", "launcher.registry register"], ["launcher.pipeline"]),
    ],
)
def test_ci_train_is_make_all_then_what_the_setting_chooses(register_with: str, runs: list, skips: list) -> None:
    """CI's train job registers a version one of two ways; the preflight and the lock see the
    goals spelled out (the pipeline role is checked only when `pipeline` is among them)."""
    show = "show-invocation: ; @echo 'invocation: $(MAKE_INVOCATION)'"
    plan = make("-n", f"--eval={show}", "ci-train", "show-invocation", CI_REGISTER_WITH=register_with)
    assert plan.returncode == 0, plan.stderr
    assert all(any(step in line for line in plan.stdout.splitlines()) for step in runs), plan.stdout
    assert not [line for line in plan.stdout.splitlines() for step in skips if step in line]
    goals = "all pipeline" if register_with == "pipeline" else "all evaluate register"
    assert f"invocation: {goals} show-invocation" in plan.stdout
