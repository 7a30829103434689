"""Prints the serving image's figures beside the issue's goals: cold start, latency, throughput,
and the libraries' size over the base image.

The server runs in its container as SageMaker runs it (`docker run IMAGE serve`, the model
mounted read-only, port published on 127.0.0.1); the client is this process, over loopback,
with keep-alive connections. Medians and percentiles over many requests, all in one run.
Usage: python benchmarks/serving.py --image titanic-lightgbm:local --split-dir build/data
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_LABEL = "com.titanic-toolkit.base-image"  # set by scripts/build-image.sh
TEST_CSV = Path(__file__).resolve().parent.parent / "data/titanic/test.csv"


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


def start(image: str, model_dir: Path) -> tuple[str, int]:
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::8080", "-v", f"{model_dir}:/opt/ml/model:ro", image, "serve"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
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


def timed_requests(port: int, bodies: list[bytes]) -> list[float]:
    """Milliseconds per request, one keep-alive connection, in order."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for body in bodies:
        began = time.perf_counter()
        conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}")
        times.append((time.perf_counter() - began) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def concurrent(port: int, rows: list[bytes], clients: int, per_client: int) -> tuple[float, list[float]]:
    """Requests per second with `clients` connections at once, and every request's latency."""
    results: list[list[float]] = [[] for _ in range(clients)]

    def client(i: int) -> None:
        rng = random.Random(i)
        results[i] = timed_requests(port, [rng.choice(rows) for _ in range(per_client)])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return clients * per_client / elapsed, [t for r in results for t in r]


def line(name: str, value: str, goal: str, met: bool | None) -> None:
    verdict = "" if met is None else ("  ok" if met else "  MISSED")
    print(f"  {name:<44} {value:>12}   goal {goal}{verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--cold-starts", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    header = TEST_CSV.read_text().splitlines()[0]
    lines = TEST_CSV.read_text().splitlines()[1:]
    rows = [f"{header}\n{row}\n".encode() for row in lines]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = train_model(args.image, args.split_dir, Path(tmp) / "ml")
        cold_start(args.image, model_dir)  # warm the page cache once, as every later start on one host
        colds = [cold_start(args.image, model_dir) for _ in range(args.cold_starts)]
        container, port = start(args.image, model_dir)
        try:
            while not ping_ok(port):
                time.sleep(0.01)
            timed_requests(port, rows[:50])  # warm-up
            rng = random.Random(0)
            single = timed_requests(port, [rng.choice(rows) for _ in range(args.requests)])
            whole = timed_requests(port, [TEST_CSV.read_bytes()] * 100)
            throughput, loaded = concurrent(port, rows, clients=8, per_client=args.requests // 8)
        finally:
            subprocess.run(["docker", "stop", container], capture_output=True)
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
    print(f"serving {args.image} (client over loopback, keep-alive; {args.requests} single-row requests)")
    line(
        "cold start: docker run -> first 200 /ping",
        f"{statistics.median(colds):.2f} s",
        "<= 2 s",
        statistics.median(colds) <= 2,
    )
    line("one client, one row: p50", f"{percentile(single, 0.5):.2f} ms", "<= 5 ms", percentile(single, 0.5) <= 5)
    line("one client, one row: p99", f"{percentile(single, 0.99):.2f} ms", "<= 20 ms", percentile(single, 0.99) <= 20)
    line(
        "418 rows in one request: median",
        f"{statistics.median(whole):.2f} ms",
        "<= 50 ms",
        statistics.median(whole) <= 50,
    )
    line("8 clients, one row each: throughput", f"{throughput:.0f} req/s", "(reported)", None)
    line(
        "8 clients, one row each: p50 / p99",
        f"{percentile(loaded, 0.5):.1f}/{percentile(loaded, 0.99):.1f} ms",
        "(reported)",
        None,
    )
    line(f"libraries over the base ({base})", f"{added:.0f} MB", "<= 320 MB", added <= 320)
    print(
        json.dumps(
            {
                "cold_start_s": statistics.median(colds),
                "p50_ms": percentile(single, 0.5),
                "p99_ms": percentile(single, 0.99),
                "test_set_ms": statistics.median(whole),
                "throughput_8_clients": throughput,
                "libraries_mb": added,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
