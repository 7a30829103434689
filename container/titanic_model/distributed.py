"""Multi-instance training: one LightGBM model learnt by every host from its share of the rows.

1. Shares. Each host tells the leader which files its train channel holds. The same files
   everywhere (FullyReplicated, or SDK local mode, which ignores ShardedByS3Key) means each
   host takes its own contiguous block of the rows; files no two hosts share (ShardedByS3Key on
   SageMaker) means each host's files are its share. Anything else is an error.
2. One transformer. The feature step learns from the rows (imputation values, category levels,
   how each family fared), so it must be the same on every host: the followers send their
   shares to the leader, which fits it once on all of them, in host order, and sends it back.
   With replicated files that is exactly the single-machine fit.
3. Boosting. LightGBM's data-parallel tree learner over its own socket network: each host
   builds histograms of its rows, LightGBM sums them across hosts, and every host grows the
   same trees. Where bins come from a sample of each host's rows, the result can differ a
   little from one machine's; tests/test_distributed.py measures how much.
4. Artifacts. The leader (first host in sorted order) writes the model, metrics and output
   data, then tells the followers, which write nothing and exit only then: SDK local mode
   stops every container when the first one exits, and shares one model folder between hosts.
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline

from titanic_model.cluster import LIGHTGBM_PORT, Cluster, ClusterError, Link
from titanic_model.data import LABEL, ChannelData, features_and_label
from titanic_model.hyperparameters import Hyperparameters
from titanic_model.model import build_model

log = logging.getLogger(__name__)

SHARDED, REPLICATED = "sharded", "replicated"
# LightGBM's network settings: needed to train, meaningless (and unsafe to keep) in the model.
NETWORK_PARAMS = ("machines", "num_machines", "local_listen_port", "time_out", "tree_learner", "pre_partition")


def share_mode(files_by_host: dict[str, dict[str, str]]) -> str:
    """REPLICATED when every host holds the same files, SHARDED when no two hosts hold the same
    content; anything in between would count some rows twice, so it is refused."""
    contents = {host: set(files.values()) for host, files in files_by_host.items()}
    first = next(iter(files_by_host.values()))
    if all(files == first for files in files_by_host.values()):
        return REPLICATED
    hosts = sorted(contents)
    for i, a in enumerate(hosts):
        for b in hosts[i + 1 :]:
            if contents[a] & contents[b]:
                raise ClusterError(
                    f"hosts {a} and {b} hold some of the same train files but not all: use S3DistributionType "
                    "FullyReplicated (every host all files) or ShardedByS3Key (each file on one host)"
                )
    return SHARDED


def block(frame: pd.DataFrame, rank: int, size: int) -> pd.DataFrame:
    """The rank-th of `size` contiguous blocks of rows (sizes differ by one at most)."""
    bounds = np.linspace(0, len(frame), size + 1).round().astype(int)
    return frame.iloc[bounds[rank] : bounds[rank + 1]]


def network_params(cluster: Cluster, addresses: dict[str, str], timeout: float) -> dict[str, Any]:
    return {
        "tree_learner": "data",
        "num_machines": cluster.size,
        "machines": ",".join(f"{addresses[host]}:{LIGHTGBM_PORT}" for host in cluster.hosts),
        "local_listen_port": LIGHTGBM_PORT,
        "time_out": max(1, math.ceil(timeout / 60)),  # minutes, LightGBM's unit
        "pre_partition": True,  # each host passes its own share: LightGBM must not split again
    }


def _forget_network(classifier: LGBMClassifier) -> None:
    """A pickled model must not carry the training cluster's addresses, nor try to rejoin that
    cluster if someone refits it."""
    classifier.booster_.free_network()
    for name in NETWORK_PARAMS:
        classifier._other_params.pop(name, None)  # where LightGBM keeps extra params
        if hasattr(classifier, name):
            delattr(classifier, name)


def _agree_on_shares(cluster: Cluster, links: dict[str, Link], train: ChannelData) -> tuple[str, dict[str, str]]:
    """(how the rows are shared, every host's train files on the leader, else this host's)."""
    if cluster.is_leader:
        files = {cluster.leader: train.files, **{host: link.receive("files") for host, link in links.items()}}
        mode = share_mode(files)
        for link in links.values():
            link.send("mode", mode)
        return mode, {name: digest for host in cluster.hosts for name, digest in files[host].items()}
    link = links[cluster.leader]
    link.send("files", train.files)
    return link.receive("mode"), train.files


def _check_share(cluster: Cluster, share: pd.DataFrame) -> None:
    if share[LABEL].nunique() < 2:
        raise ClusterError(
            f"host {cluster.current_host}'s share of the train channel ({len(share)} rows) holds only one class; "
            "use fewer instances, more rows, or shuffle the rows across the shard files"
        )


def _one_transformer(
    cluster: Cluster, links: dict[str, Link], hp: Hyperparameters, share: pd.DataFrame
) -> tuple[Any, pd.DataFrame | None, dict[str, int]]:
    """(the fitted transformer, all rows in host order on the leader else None, rows per host)."""
    if cluster.is_leader:
        shares = {cluster.leader: share, **{host: links[host].receive("rows") for host in cluster.hosts[1:]}}
        everything = pd.concat([shares[host] for host in cluster.hosts], ignore_index=True)
        X, y = features_and_label(everything)
        transformer = build_model(hp).named_steps["features"].fit(X, y)
        blob = pickle.dumps(transformer, protocol=pickle.HIGHEST_PROTOCOL)
        for link in links.values():
            link.send("transformer", blob)
        rows = {host: len(frame) for host, frame in shares.items()}
    else:
        links[cluster.leader].send("rows", share)
        blob = links[cluster.leader].receive("transformer")
        transformer, everything, rows = pickle.loads(blob), None, {}  # from the leader
    # Every host logs it: the same digest in each host's log is the evidence they agree.
    log.info("feature transformer sha256 %s", hashlib.sha256(blob).hexdigest())
    return transformer, everything, rows


def fit(
    cluster: Cluster, links: dict[str, Link], addresses: dict[str, str], hp: Hyperparameters, train: ChannelData
) -> tuple[Pipeline, ChannelData | None, dict[str, Any]]:
    """The model every host learnt together, and on the leader all train rows (for its metrics)
    and the facts of the run for the model card."""
    mode, files = _agree_on_shares(cluster, links, train)
    share = train.frame if mode == SHARDED else block(train.frame, cluster.rank, cluster.size)
    _check_share(cluster, share)
    log.info(
        "host %s (%d of %d): %d rows of the train channel (%s)",
        cluster.current_host,
        cluster.rank + 1,
        cluster.size,
        len(share),
        mode,
    )
    transformer, everything, rows = _one_transformer(cluster, links, hp, share)
    X, y = features_and_label(share)
    classifier = LGBMClassifier(**hp.lightgbm_params(), **network_params(cluster, addresses, hp.cluster_timeout))
    classifier.fit(transformer.transform_training(X, y), y)
    _forget_network(classifier)
    model = Pipeline([("features", transformer), ("model", classifier)])
    if everything is None:
        return model, None, {}
    facts = {
        "hosts": list(cluster.hosts),
        "shares": mode,
        "rows_per_host": rows,
        "tree_learner": "LightGBM data-parallel",
        "transformer": "fitted once on the leader over every host's rows",
    }
    return model, ChannelData(name="train", frame=everything, files=dict(sorted(files.items()))), facts


def release(links: dict[str, Link]) -> None:
    """The leader's last word: the artifacts are written; the followers may exit."""
    for link in links.values():
        link.send("done")


def await_leader(cluster: Cluster, links: dict[str, Link]) -> None:
    links[cluster.leader].receive("done")
    log.info("the leader %s has written the model; this host writes nothing", cluster.leader)
