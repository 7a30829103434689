"""The hosts of a multi-instance training job, and how they talk before LightGBM does.

SageMaker writes /opt/ml/input/config/resourceconfig.json on every host: its own name
(`current_host`) and all of them (`hosts`). The names resolve through the job's private DNS,
sometimes only seconds after the container starts, so they are looked up with retries.

The first host in sorted order is the leader. Before any boosting, each follower connects to
the leader's rendezvous port, and every wait there is bounded by `cluster_timeout`: a host that
cannot reach the others fails with the reason (which host, which address, what error), instead
of waiting the two hours LightGBM's own network would before it gives up.

Messages are pickled Python objects behind an 8-byte length. The peers are this job's own
containers on the job's private network, the same trust LightGBM's socket protocol (which has
no authentication either) already places in them.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RENDEZVOUS_PORT = 12399
LIGHTGBM_PORT = 12400  # LightGBM's own default listen port
_HEADER = struct.Struct("!Q")
_RETRY_SECONDS = 1.0


class ClusterError(RuntimeError):
    """The hosts could not find or reach each other, or disagree; the message says which."""


@dataclass(frozen=True)
class Cluster:
    current_host: str
    hosts: tuple[str, ...]  # sorted: every host computes the same leader and ranks

    @classmethod
    def from_file(cls, path: Path) -> Cluster:
        """The job's hosts; one host (this one) when SageMaker wrote no resourceconfig.json."""
        if not path.is_file():
            return cls(current_host=socket.gethostname(), hosts=(socket.gethostname(),))
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            current, hosts = str(config["current_host"]), tuple(sorted(str(h) for h in config["hosts"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ClusterError(
                f"{path} is not SageMaker's resource configuration ({exc}); it needs 'current_host' and 'hosts'"
            ) from None
        if current not in hosts:
            raise ClusterError(f"{path}: current_host {current!r} is not one of the hosts {', '.join(hosts)}")
        return cls(current_host=current, hosts=hosts)

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def leader(self) -> str:
        return self.hosts[0]

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def is_leader(self) -> bool:
        return self.current_host == self.leader


Lookup = Callable[[str], str]


def ipv4(host: str) -> str:
    """The host's IPv4 address (LightGBM's machine list takes only literals)."""
    return socket.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_STREAM)[0][4][0]


def resolve(
    hosts: tuple[str, ...],
    timeout: float,
    *,
    lookup: Lookup = ipv4,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Every host's address, retrying names that do not resolve yet until `timeout` seconds."""
    deadline = clock() + timeout
    addresses: dict[str, str] = {}
    while True:
        errors = {}
        for host in hosts:
            if host in addresses:
                continue
            try:
                addresses[host] = lookup(host)
            except OSError as exc:
                errors[host] = exc
        if not errors:
            return addresses
        if clock() >= deadline:
            host, exc = next(iter(errors.items()))
            raise ClusterError(
                f"host {host} did not resolve within {timeout:g} s ({exc}); the hosts of a multi-instance job must "
                "resolve each other: check the job's VPC DNS settings, or raise cluster_timeout"
            )
        sleep(_RETRY_SECONDS)


class Link:
    """One connection between the leader and a follower: whole messages, each wait bounded."""

    def __init__(self, sock: socket.socket, peer: str, timeout: float) -> None:
        self.sock, self.peer, self.timeout = sock, peer, timeout
        sock.settimeout(timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def send(self, kind: str, payload: Any = None) -> None:
        body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.sock.sendall(_HEADER.pack(len(body)) + body)
        except OSError as exc:
            raise ClusterError(f"lost host {self.peer} while sending {kind} ({exc}); see that host's log") from None

    def receive(self, kind: str) -> Any:
        header = self._exactly(_HEADER.size, kind)
        got, payload = pickle.loads(self._exactly(_HEADER.unpack(header)[0], kind))  # our own peers (see above)
        if got == "failed":
            raise ClusterError(f"host {self.peer} failed: {payload}")
        if got != kind:
            raise ClusterError(f"host {self.peer} sent {got!r} where {kind!r} was due; both must run the same image")
        return payload

    def _exactly(self, size: int, kind: str) -> bytes:
        chunks, left = [], size
        while left:
            try:
                chunk = self.sock.recv(min(left, 1 << 20))
            except TimeoutError:
                raise ClusterError(
                    f"host {self.peer} sent no {kind} within {self.timeout:g} s; see that host's log, "
                    "or raise cluster_timeout"
                ) from None
            except OSError as exc:
                raise ClusterError(f"lost host {self.peer} while waiting for {kind} ({exc})") from None
            if not chunk:
                raise ClusterError(f"host {self.peer} closed the connection before sending {kind}; see its log")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def connect(
    cluster: Cluster,
    address: str,
    timeout: float,
    port: int = RENDEZVOUS_PORT,
    clock: Callable[[], float] = time.monotonic,
) -> Link:
    """A follower's link to the leader, retrying until the leader listens or `timeout` passes."""
    deadline = clock() + timeout
    while True:
        left = deadline - clock()
        try:
            sock = socket.create_connection((address, port), timeout=max(min(left, 5.0), 0.1))
        except OSError as exc:
            if clock() + _RETRY_SECONDS >= deadline:
                raise ClusterError(
                    f"host {cluster.current_host} could not reach the leader {cluster.leader} at {address}:{port} "
                    f"within {timeout:g} s ({exc}); the instances of a multi-instance job must reach each other on "
                    "TCP: check that the job's security group admits traffic from itself, or raise cluster_timeout"
                ) from None
            time.sleep(_RETRY_SECONDS)
            continue
        link = Link(sock, cluster.leader, timeout)
        link.send("hello", cluster.current_host)
        return link


def accept(cluster: Cluster, timeout: float, port: int = RENDEZVOUS_PORT, address: str = "") -> dict[str, Link]:
    """The leader's links to every follower, by host name, or an error naming who never came.
    It listens on every interface of its instance (address ''), where its peers reach it."""
    followers = set(cluster.hosts[1:])
    links: dict[str, Link] = {}
    deadline = time.monotonic() + timeout
    with socket.create_server((address, port), backlog=len(followers), reuse_port=False) as server:
        while set(links) != followers:
            server.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                sock, _ = server.accept()
            except TimeoutError:
                missing = ", ".join(sorted(followers - set(links)))
                for link in links.values():
                    link.close()
                raise ClusterError(
                    f"the leader {cluster.leader} heard nothing from {missing} within {timeout:g} s; the instances of "
                    "a multi-instance job must reach each other on TCP: check that the job's security group admits "
                    "traffic from itself, or raise cluster_timeout"
                ) from None
            link = Link(sock, "a follower", timeout)
            host = link.receive("hello")
            if host not in followers:
                link.close()
                raise ClusterError(f"host {host!r} connected to the leader but is not a follower of this job")
            link.peer = host
            links[host] = link
    return links


@contextmanager
def peers(cluster: Cluster, addresses: dict[str, str], timeout: float) -> Iterator[dict[str, Link]]:
    """The leader's links to the followers, or a follower's one link to the leader (by host).
    On an error, each peer is told why before the links close, so every host fails at once
    with the reason instead of waiting for a timeout."""
    if cluster.is_leader:
        links = accept(cluster, timeout)
    else:
        links = {cluster.leader: connect(cluster, addresses[cluster.leader], timeout)}
    try:
        yield links
    except Exception as exc:
        for link in links.values():
            with suppress(ClusterError):
                link.send("failed", f"{cluster.current_host}: {exc}")
        raise
    finally:
        for link in links.values():
            link.close()
