"""Prints the serving image's figures beside their goals and their limits: cold start, latency,
throughput, and the libraries' size over the base image.

The server runs in its container as SageMaker runs it (`docker run IMAGE serve`, the model
mounted read-only, port published on 127.0.0.1). The client is this process over loopback,
with keep-alive connections and requests written as raw bytes from one thread (8 clients are 8
connections driven by one selector), so that the client costs little of the 2 CPUs it shares
with the server. Beside each figure: the same measurement of an empty WSGI app and of a server
in the style of AWS's bring-your-own-container sample, both in the same image under the same
gunicorn settings (benchmarks/serving_apps.py), and LightGBM's own prediction time for the same
model. Medians and percentiles over many requests, all in one run.
Usage: python benchmarks/serving.py --image titanic-lightgbm:local --split-dir build/data
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_LABEL = "com.titanic-toolkit.base-image"  # set by scripts/build-image.sh
TEST_CSV = Path(__file__).resolve().parent.parent / "data/titanic/test.csv"
APPS = Path(__file__).resolve().parent / "serving_apps.py"
# The comparison servers run under the settings the toolkit's server uses on 2 CPUs.
GUNICORN = [
    "-m",
    "gunicorn",
    "--chdir",
    "/opt/bench",
    "-b",
    "0.0.0.0:8080",
    "-w",
    "2",
    "-k",
    "gthread",
    "--threads",
    "4",
]


def image_size(image: str) -> float:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True, check=True
    ).stdout
    return int(out) / 1e6


def train_model(image: str, split_dir: Path, root: Path) -> Path:
    for sub in ("input/config", "model", "output"):
        (root / sub).mkdir(parents=True)
    for channel in ("train", "validation"):
        shutil.copytree(split_dir / channel, root / "input/data" / channel)
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{root}:/opt/ml", image, "train"],
        check=True,
        capture_output=True,
    )
    return root / "model"


def start(image: str, model_dir: Path, app: str = "") -> tuple[str, int]:
    """The image serving the model, as SageMaker starts it, or one of serving_apps.py's apps."""
    run = ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::8080", "-v", f"{model_dir}:/opt/ml/model:ro"]
    if app:
        run += ["-v", f"{APPS}:/opt/bench/serving_apps.py:ro", "--entrypoint", "python", image, *GUNICORN]
        run.append(f"serving_apps:{app}()")
    else:
        run += [image, "serve"]
    container = subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()
    port = (
        subprocess.run(["docker", "port", container, "8080/tcp"], capture_output=True, text=True, check=True)
        .stdout.split()[0]
        .rpartition(":")[2]
    )
    return container, int(port)


def ping_ok(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except OSError:
        return False


def cold_start(image: str, model_dir: Path) -> float:
    """From `docker run` to the first 200 from /ping."""
    began = time.perf_counter()
    container, port = start(image, model_dir)
    while not ping_ok(port):
        time.sleep(0.005)
    seconds = time.perf_counter() - began
    subprocess.run(["docker", "stop", container], capture_output=True)
    return seconds


def request(body: bytes) -> bytes:
    head = "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class Connection:
    """One keep-alive connection sending prepared requests and reading whole answers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.buffer = b""

    def answered(self) -> bool:
        """Read what has arrived; True once the whole answer (head and body) is in."""
        self.buffer += self.sock.recv(1 << 20)
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return False
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the server answered {head.splitlines()[0].decode()}")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        return len(body) >= length


def timed_requests(port: int, bodies: list[bytes]) -> list[float]:
    """Milliseconds per request, one keep-alive connection, in order."""
    conn, times = Connection(port), []
    for body in map(request, bodies):
        began = time.perf_counter()
        conn.send(body)
        while not conn.answered():
            pass
        times.append((time.perf_counter() - began) * 1000)
    conn.sock.close()
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def concurrent(port: int, rows: list[bytes], clients: int, total: int) -> tuple[float, list[float]]:
    """Requests per second with `clients` connections each keeping one request in flight, and
    every request's latency; one thread and a selector drive them all."""
    rng, selector = random.Random(1), selectors.DefaultSelector()
    prepared = [request(rng.choice(rows)) for _ in range(total)]
    sent, latencies = 0, []
    began = time.perf_counter()
    for _ in range(clients):
        conn = Connection(port)
        conn.send(prepared[sent])
        selector.register(conn.sock, selectors.EVENT_READ, (conn, time.perf_counter()))
        sent += 1
    while len(latencies) < total:
        for key, _ in selector.select():
            conn, started = key.data
            if not conn.answered():
                continue
            now = time.perf_counter()
            latencies.append((now - started) * 1000)
            if sent < total:
                conn.send(prepared[sent])
                selector.modify(conn.sock, selectors.EVENT_READ, (conn, time.perf_counter()))
                sent += 1
            else:
                selector.unregister(conn.sock)
                conn.sock.close()
    return total / (time.perf_counter() - began), latencies


def measure(image: str, model_dir: Path, rows: list[bytes], requests: int, app: str = "") -> dict[str, float]:
    """Latency and throughput of one server, started fresh and warmed up."""
    container, port = start(image, model_dir, app)
    try:
        while not ping_ok(port):
            time.sleep(0.01)
        timed_requests(port, rows[:200])  # warm-up: every worker and thread has answered
        rng = random.Random(0)
        single = timed_requests(port, [rng.choice(rows) for _ in range(requests)])
        whole = timed_requests(port, [TEST_CSV.read_bytes()] * 100)
        throughput, loaded = concurrent(port, rows, clients=8, total=requests)
    finally:
        subprocess.run(["docker", "stop", container], capture_output=True)
    return {
        "p50_ms": percentile(single, 0.5),
        "p99_ms": percentile(single, 0.99),
        "test_set_ms": statistics.median(whole),
        "throughput_8_clients": throughput,
        "p99_8_clients_ms": percentile(loaded, 0.99),
    }


def tree_time(image: str, model_dir: Path) -> dict[str, float]:
    """LightGBM's own predict for the same model, in the image: the work no server avoids."""
    out = subprocess.run(
        [
            *("docker", "run", "--rm", "--network", "none", "-v", f"{model_dir}:/opt/ml/model:ro"),
            *("-v", f"{APPS}:/opt/bench/serving_apps.py:ro", "-v", f"{TEST_CSV}:/opt/bench/test.csv:ro"),
            *("-e", "PYTHONPATH=/opt/program", "--entrypoint", "python", image, "/opt/bench/serving_apps.py", "trees"),
            "/opt/ml/model",
            "/opt/bench/test.csv",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {key: float(value) for key, value in (line.split("=") for line in out.split())}


def line(name: str, value: str, goal: str, met: bool | None, beside: str = "") -> None:
    verdict = "" if met is None else ("ok" if met else "MISSED")
    print(f"  {name:<38} {value:>11}  {goal:<14} {verdict:<7} {beside}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--cold-starts", type=int, default=7)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    header = TEST_CSV.read_text().splitlines()[0]
    rows = [f"{header}\n{row}\n".encode() for row in TEST_CSV.read_text().splitlines()[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = train_model(args.image, args.split_dir, Path(tmp) / "ml")
        cold_start(args.image, model_dir)  # warm the page cache once, as every later start on one host
        colds = [cold_start(args.image, model_dir) for _ in range(args.cold_starts)]
        ours = measure(args.image, model_dir, rows, args.requests)
        floor = measure(args.image, model_dir, rows, args.requests, app="empty")
        byoc = measure(args.image, model_dir, rows, args.requests, app="byoc")
        trees = tree_time(args.image, model_dir)
    labels = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", args.image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    base = (json.loads(labels) or {}).get(BASE_LABEL)
    if base is None:
        print(f"{args.image} has no {BASE_LABEL} label; rebuild it with 'make build'", file=sys.stderr)
        return 1
    added = image_size(args.image) - image_size(base)
    cold = statistics.median(colds)
    print(f"serving {args.image}: client over loopback, keep-alive, {args.requests} one-row requests per figure")
    print(f"  {'figure':<38} {'value':>11}  {'goal':<14} {'':<7} beside it: limit | BYOC-style server")
    line("cold start: docker run -> 200 /ping", f"{cold:.2f} s", "<= 2 s", cold <= 2)

    def latency(name: str, key: str, goal: float) -> None:
        beside = f"empty app {floor[key]:.2f} ms ({ours[key] / floor[key]:.1f}x) | BYOC {byoc[key]:.2f} ms "
        beside += f"(ours {ours[key] / byoc[key]:.2f}x)"
        line(name, f"{ours[key]:.2f} ms", f"<= {goal:g} ms", ours[key] <= goal, beside)

    latency("one client, one row: p50", "p50_ms", 1.5)
    latency("one client, one row: p99", "p99_ms", 4)
    latency("418 rows in one request: median", "test_set_ms", 5)
    key = "throughput_8_clients"
    beside = f"empty app {floor[key]:.0f} ({ours[key] / floor[key]:.2f}x) | BYOC {byoc[key]:.0f} "
    beside += f"(ours {ours[key] / byoc[key]:.2f}x)"
    line("8 clients, one row each: throughput", f"{ours[key]:.0f} req/s", ">= 1500 req/s", ours[key] >= 1500, beside)
    latency("8 clients, one row each: p99", "p99_8_clients_ms", 15)
    line("trees alone (LightGBM), one row", f"{trees['one_row_us']:.0f} us", "(limit)", None)
    line("trees alone (LightGBM), 418 rows", f"{trees['rows_418_us'] / 1000:.2f} ms", "(limit)", None)
    line(f"libraries over the base ({base})", f"{added:.0f} MB", "<= 320 MB", added <= 320)
    print(
        json.dumps({"cold_start_s": cold, **ours, "empty": floor, "byoc": byoc, "trees": trees, "libraries_mb": added})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
