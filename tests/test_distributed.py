"""Multi-instance training (titanic_model.cluster and .distributed).

Fast tier: the pieces in-process (hosts, name resolution, shares, bounded waits). Container
tier: two containers of the image on a private Docker network, each with its own /opt/ml and
resourceconfig.json as SageMaker lays them out, train one model together; a host that cannot
reach the others fails with the reason within a bounded time.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import joblib
import pandas as pd
import pytest
from checkout import free_port
from conftest import make_sm_root
from sklearn.metrics import roc_auc_score
from titanic_model.cluster import Cluster, ClusterError, accept, connect, resolve
from titanic_model.data import features_and_label, read_channel
from titanic_model.distributed import REPLICATED, SHARDED, block, share_mode
from titanic_model.features import TitanicFeatures
from titanic_model.hyperparameters import Hyperparameters
from titanic_model.model import fit_model, survival_probability

# How far the distributed model's validation AUC may be from one machine's on the same rows:
# LightGBM's data-parallel learner finds bin boundaries from each host's own sample.
AUC_TOLERANCE = 0.02


def resource_config(path: Path, current: str, hosts: list[str]) -> Path:
    path.write_text(json.dumps({"current_host": current, "hosts": hosts, "network_interface_name": "eth0"}))
    return path


# ---- fast tier ----------------------------------------------------------------------------


def test_hosts_come_sorted_and_the_first_leads(tmp_path: Path) -> None:
    cluster = Cluster.from_file(resource_config(tmp_path / "rc.json", "algo-1", ["algo-2", "algo-1", "algo-3"]))
    assert cluster.hosts == ("algo-1", "algo-2", "algo-3")
    assert (cluster.leader, cluster.rank, cluster.is_leader, cluster.distributed) == ("algo-1", 0, True, True)
    follower = Cluster.from_file(resource_config(tmp_path / "rc.json", "algo-3", ["algo-2", "algo-1", "algo-3"]))
    assert (follower.rank, follower.is_leader) == (2, False)


def test_no_resource_config_is_one_host(tmp_path: Path) -> None:
    assert not Cluster.from_file(tmp_path / "missing.json").distributed


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"hosts": ["algo-1"]}', "needs 'current_host' and 'hosts'"),
        ("not json", "is not SageMaker's resource configuration"),
        ('{"current_host": "algo-9", "hosts": ["algo-1", "algo-2"]}', "current_host 'algo-9' is not one of"),
    ],
)
def test_a_broken_resource_config_is_named(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "rc.json").write_text(content)
    with pytest.raises(ClusterError, match=expected):
        Cluster.from_file(tmp_path / "rc.json")


def test_names_that_resolve_late_are_retried() -> None:
    attempts: dict[str, int] = {}

    def lookup(host: str) -> str:
        attempts[host] = attempts.get(host, 0) + 1
        if host == "algo-2" and attempts[host] < 3:
            raise socket.gaierror(-2, "Name or service not known")
        return f"10.0.0.{host[-1]}"

    slept: list[float] = []
    addresses = resolve(("algo-1", "algo-2"), 60, lookup=lookup, sleep=slept.append)
    assert addresses == {"algo-1": "10.0.0.1", "algo-2": "10.0.0.2"}
    assert attempts == {"algo-1": 1, "algo-2": 3}
    assert len(slept) == 2


def test_a_name_that_never_resolves_fails_at_the_deadline() -> None:
    now = [0.0]

    def never(host: str) -> str:
        raise socket.gaierror(-2, "Name or service not known")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ClusterError, match=r"host algo-2 did not resolve within 5 s .*raise cluster_timeout"):
        resolve(("algo-2",), 5, lookup=never, clock=lambda: now[0], sleep=sleep)
    assert now[0] == 5


def test_a_follower_that_cannot_reach_the_leader_gives_up_in_time() -> None:
    cluster = Cluster(current_host="algo-2", hosts=("algo-1", "algo-2"))
    port = free_port()  # nothing listens there
    now = [0.0]

    def clock() -> float:  # each refused attempt moves the injected clock by a second
        now[0] += 1.0
        return now[0]

    with pytest.raises(ClusterError, match=rf"algo-2 could not reach the leader algo-1 at 127.0.0.1:{port} within 2 s"):
        connect(cluster, "127.0.0.1", 2, port=port, clock=clock)
    assert now[0] <= 1.0 + 2 + 2  # gave up at the deadline by its own clock, not after it


def test_a_leader_whose_follower_never_comes_names_it() -> None:
    cluster = Cluster(current_host="algo-1", hosts=("algo-1", "algo-2", "algo-3"))
    with pytest.raises(ClusterError, match="heard nothing from algo-2, algo-3 within 1 s"):
        accept(cluster, 1, port=free_port(), address="127.0.0.1")  # a test listens on loopback only


def test_same_files_everywhere_is_replicated_distinct_files_sharded() -> None:
    same = {"algo-1": {"train.csv": "a"}, "algo-2": {"train.csv": "a"}}
    assert share_mode(same) == REPLICATED
    assert share_mode({"algo-1": {"part-0.csv": "a"}, "algo-2": {"part-1.csv": "b"}}) == SHARDED
    with pytest.raises(ClusterError, match="hold some of the same train files but not all"):
        share_mode({"algo-1": {"p0": "a", "p1": "b"}, "algo-2": {"p1": "b", "p2": "c"}})


@pytest.mark.parametrize(("rows", "size"), [(712, 2), (712, 3), (5, 4), (10, 1)])
def test_blocks_cover_every_row_once(rows: int, size: int) -> None:
    frame = pd.DataFrame({"i": range(rows)})
    blocks = [block(frame, rank, size) for rank in range(size)]
    assert pd.concat(blocks)["i"].tolist() == list(range(rows))
    assert max(len(b) for b in blocks) - min(len(b) for b in blocks) <= 1


def test_a_share_transformed_alone_equals_the_same_rows_of_the_whole(split_dir: Path) -> None:
    """What lets each host transform only its own rows: a row's training features depend on
    the fitted transformer and its own label, not on which other rows are beside it."""
    X, y = features_and_label(read_channel("train", split_dir / "train").frame)
    whole = TitanicFeatures().fit_transform(X, y)
    fitted = TitanicFeatures().fit(X, y)
    share = block(X, 1, 2)
    alone = fitted.transform_training(share, y.loc[share.index])
    pd.testing.assert_frame_equal(alone, whole.loc[share.index], check_exact=True)


# ---- container tier ---------------------------------------------------------------------


@pytest.fixture
def private_network() -> Iterator[str]:
    """An internal Docker network (no route off this host) for one test's containers."""
    name = f"titanic-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", "--internal", name], check=True, capture_output=True)
    yield name
    running = subprocess.run(["docker", "ps", "-aq", "--filter", f"network={name}"], capture_output=True, text=True)
    if running.stdout.split():
        subprocess.run(["docker", "rm", "-f", *running.stdout.split()], capture_output=True)
    subprocess.run(["docker", "network", "rm", name], capture_output=True)


def start_host(image: str, network: str, host: str, root: Path, *command: str) -> str:
    """One SageMaker host: its name resolvable on the network, its own /opt/ml."""
    name = f"{network}-{host}"
    started = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--network",
            network,
            "--network-alias",
            host,
            "--hostname",
            host,
            "--name",
            name,
            "-v",
            f"{root}:/opt/ml",
            image,
            *command,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return started.stdout.strip()


def finish(container: str, timeout: float = 300) -> tuple[int, str]:
    code = subprocess.run(["docker", "wait", container], capture_output=True, text=True, timeout=timeout)
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    return int(code.stdout.strip()), logs.stdout + logs.stderr


def host_root(tmp_path: Path, split_dir: Path, host: str, hosts: list[str], hp: dict[str, str]) -> Path:
    root = make_sm_root(tmp_path / host, split_dir)
    resource_config(root / "input/config/resourceconfig.json", host, hosts)
    (root / "input/config/hyperparameters.json").write_text(json.dumps(hp))
    return root


def single_machine_val_auc(split_dir: Path) -> float:
    X, y = features_and_label(read_channel("train", split_dir / "train").frame)
    X_val, y_val = features_and_label(read_channel("validation", split_dir / "validation").frame)
    model = fit_model(Hyperparameters(), X, y)
    return float(roc_auc_score(y_val, survival_probability(model, X_val)))


def shard(root: Path, split_dir: Path, rank: int, size: int) -> None:
    """ShardedByS3Key as SageMaker delivers it: this host gets its own files of the channel."""
    train = pd.read_csv(split_dir / "train/train.csv")
    shutil.rmtree(root / "input/data/train")
    (root / "input/data/train").mkdir()
    for part in range(rank, 2 * size, size):  # 2 files per host
        block(train, part, 2 * size).to_csv(root / f"input/data/train/part-{part:05d}.csv", index=False)


@pytest.mark.docker
@pytest.mark.parametrize("delivery", ["FullyReplicated", "ShardedByS3Key"])
def test_two_hosts_train_one_model_together(
    image: str, private_network: str, tmp_path: Path, split_dir: Path, delivery: str
) -> None:
    hosts = ["algo-1", "algo-2"]
    roots = {host: host_root(tmp_path, split_dir, host, hosts, {"cluster_timeout": "60"}) for host in hosts}
    if delivery == "ShardedByS3Key":
        for rank, host in enumerate(hosts):
            shard(roots[host], split_dir, rank, len(hosts))
    # The follower first: it must wait for a leader that starts late.
    containers = {host: start_host(image, private_network, host, roots[host], "train") for host in reversed(hosts)}
    results = {host: finish(container) for host, container in containers.items()}
    for host, (code, log) in results.items():
        assert code == 0, f"{host}:\n{log[-3000:]}"

    # One model, from the leader; the follower wrote nothing SageMaker would merge into it.
    assert sorted(p.name for p in (roots["algo-1"] / "model").iterdir()) == [
        "metrics.json",
        "model.joblib",
        "model_card.json",
    ]
    for folder in ("model", "output"):
        assert not any((roots["algo-2"] / folder).rglob("*")), f"the follower wrote into /opt/ml/{folder}"
    # Every host used the very same fitted transformer.
    digests = {
        host: [line.split()[-1] for line in log.splitlines() if "feature transformer sha256" in line]
        for host, (_, log) in results.items()
    }
    assert len(digests["algo-1"]) == 1 and digests["algo-1"] == digests["algo-2"]

    card = json.loads((roots["algo-1"] / "model/model_card.json").read_text())
    assert card["distributed"]["hosts"] == hosts
    assert card["distributed"]["shares"] == ("replicated" if delivery == "FullyReplicated" else "sharded")
    assert sum(card["distributed"]["rows_per_host"].values()) == card["data"]["train"]["rows"] == 712
    metrics = json.loads((roots["algo-1"] / "model/metrics.json").read_text())
    assert f"val_auc: {metrics['val_auc']:.6f}" in results["algo-1"][1]
    assert "val_auc" not in results["algo-2"][1]

    # The model serves on its own: no trace of the training cluster's network in it.
    model = joblib.load(roots["algo-1"] / "model/model.joblib")
    assert "machines" not in model.named_steps["model"].get_params()
    X_val, y_val = features_and_label(read_channel("validation", split_dir / "validation").frame)
    distributed_auc = float(roc_auc_score(y_val, survival_probability(model, X_val)))
    assert distributed_auc == pytest.approx(metrics["val_auc"], abs=1e-6)
    single_auc = single_machine_val_auc(split_dir)
    print(
        f"validation AUC: distributed ({delivery}) {distributed_auc:.4f}, one machine {single_auc:.4f}, "
        f"difference {distributed_auc - single_auc:+.4f}"
    )
    assert abs(distributed_auc - single_auc) <= AUC_TOLERANCE


@pytest.mark.docker
def test_a_leader_whose_follower_never_connects_fails_in_bounded_time(
    image: str, private_network: str, tmp_path: Path, split_dir: Path
) -> None:
    hosts = ["algo-1", "algo-2"]
    root = host_root(tmp_path, split_dir, "algo-1", hosts, {"cluster_timeout": "5"})
    # algo-2 resolves (a container by that name is on the network) but never runs the job.
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--network",
            private_network,
            "--network-alias",
            "algo-2",
            "--entrypoint",
            "sleep",
            image,
            "600",
        ],
        check=True,
        capture_output=True,
    )
    code, log = finish(start_host(image, private_network, "algo-1", root, "train"), timeout=120)
    assert code == 1, log[-3000:]
    failure = (root / "output/failure").read_text()
    assert "the leader algo-1 heard nothing from algo-2 within 5 s" in failure
    assert "security group" in failure
    assert not any((root / "model").iterdir())


@pytest.mark.docker
def test_a_host_whose_peers_never_resolve_fails_in_bounded_time(
    image: str, private_network: str, tmp_path: Path, split_dir: Path
) -> None:
    root = host_root(tmp_path, split_dir, "algo-2", ["algo-1", "algo-2"], {"cluster_timeout": "5"})
    code, log = finish(start_host(image, private_network, "algo-2", root, "train"), timeout=120)
    assert code == 1, log[-3000:]  # ended by itself (finish fails past 120 s), at cluster_timeout's event
    assert "host algo-1 did not resolve within 5 s" in (root / "output/failure").read_text()
