"""Fifty annotators at once against gunicorn on PostgreSQL: labels per second, the latency of
asking for the next pair and of submitting a label (p50, p95, p99), and the queue's
invariants afterwards (no pair over k annotators, no pair labelled twice by one person, no
accepted label missing).

Targets (issue: production-ready), on a 2-core machine: at least 60 labels/s with no think
time, and p95 at most 150 ms with 3 s of think time. Anchor: Label Studio, measured by the
issue's author on the same machine: 10.7 labels/s with 8 clients, p95 1.15 s (not re-run
here: it is not installed).

Each annotator is a thread with its own connection and API token. It works as the labelling
page does: POST /api/projects/{id}/next/ once, then POST /api/assignments/{id}/label/ with
"next": true, whose answer carries the next pair, in a loop (--separate asks for each next
pair in a request of its own, as an API client may). It thinks 0.5-1.5 times --think seconds
per pair; with think time the starts are spread over the first two think times (fifty
requests in one instant would measure the start). The machine's busy CPU per label counts
the web server, PostgreSQL and the clients together.

The activity log (every label is an entry) may add at most 10% machine CPU per label:
--activity-log both runs the same load four times, off, on, on, off (so that a drift of the
shared machine during the runs weighs on both sides alike), each on a project of its own,
and ends with each side's mean and their ratio.

    .venv/bin/python benchmarks/load.py [--annotators 50] [--seconds 30] [--think 0]
        [--web-workers 4] [--threads 1] [--pairs 6000] [--separate] [--activity-log on|off|both]
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

from _setup import ROOT, django_on_scratch_database
from next_pair import fill


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(n_annotators: int, n_pairs: int, prefix: str = "load") -> tuple[int, list[str]]:
    """A project of n_pairs pairs (k = 3, no gold or repeats) and annotators with tokens."""
    from django.contrib.auth import get_user_model

    from annotation.accounts.tokens import create_token
    from annotation.models import Membership, Project

    project = Project.objects.create(
        name=prefix, annotators_per_pair=3, gold_rate=0.0, repeat_rate=0.0
    )
    fill(project.pk, n_pairs, half_done=0, annotator_ids=[])
    User = get_user_model()
    tokens = []
    for i in range(n_annotators):
        user = User.objects.create_user(f"{prefix}-annotator{i}")
        Membership.objects.create(project=project, user=user)
        tokens.append(create_token(user, "load")[1])
    return project.pk, tokens


def start_server(
    port: int, web_workers: int, threads: int, database_url: str, activity_log: bool = True
) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "DATABASE_CONN_MAX_AGE": "60", "DJANGO_DEBUG": "0",
           "ACTIVITY_LOG": "1" if activity_log else "0"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
         "-w", str(web_workers), "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


class Annotator(threading.Thread):
    def __init__(self, port, project_id, token, deadline, think, start_gate, separate):
        super().__init__(daemon=True)
        self.separate = separate
        self.port, self.project_id, self.deadline, self.think = port, project_id, deadline, think
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.start_gate = start_gate
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.accepted = 0
        self.errors: list[str] = []

    def request(self, connection, path: str, body: dict | None = None):
        connection.request("POST", path, json.dumps(body or {}), self.headers)
        response = connection.getresponse()
        return response.status, response.read()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        rng = random.Random(self.name)
        self.start_gate.wait()
        if self.think:  # people do not all click in the same millisecond: spread the start
            time.sleep(rng.uniform(0, 2 * self.think))
        assignment = None
        while time.monotonic() < self.deadline:
            if assignment is None:
                started = time.perf_counter()
                status, body = self.request(connection, f"/api/projects/{self.project_id}/next/")
                self.next_ms.append(1000 * (time.perf_counter() - started))
                if status == 204:
                    return  # nothing left for this annotator
                if status != 200:
                    self.errors.append(f"next {status}: {body[:200]!r}")
                    return
                assignment = json.loads(body)["id"]
            if self.think:
                time.sleep(rng.uniform(0.5, 1.5) * self.think)
            started = time.perf_counter()
            status, body = self.request(
                connection, f"/api/assignments/{assignment}/label/",
                {"choice": rng.choice(["left", "right"]), "strength": rng.randint(0, 3),
                 "next": not self.separate},
            )  # fmt: skip
            self.submit_ms.append(1000 * (time.perf_counter() - started))
            assignment = None
            if status != 201:
                self.errors.append(f"label {status}: {body[:200]!r}")
                continue
            self.accepted += 1
            if not self.separate:
                following = json.loads(body)["next"]
                if following is None:
                    return
                assignment = following["id"]


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100)
    return f"p50 {cuts[49]:.0f} ms, p95 {cuts[94]:.0f} ms, p99 {cuts[98]:.0f} ms"


def machine_busy_seconds() -> float:
    """CPU seconds this machine has spent on anything but idling, all cores together (Linux):
    the server's cost per label, PostgreSQL's included, is this over the labels."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def invariants(project_id: int, accepted: int) -> dict:
    from django.db.models import Count, Max

    from annotation.models import Label

    labels = Label.objects.filter(pair__project_id=project_id, annotator__isnull=False)
    per_pair = labels.values("pair").annotate(n=Count("id")).aggregate(most=Max("n"))["most"]
    twice = labels.values("pair", "annotator").annotate(n=Count("id")).filter(n__gt=1).count()
    return {
        "labels_stored": labels.count(),
        "labels_accepted": accepted,
        "most_annotators_on_a_pair": per_pair,
        "pairs_labelled_twice_by_one": twice,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--think", type=float, default=0.0, help="Mean seconds per pair")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument(
        "--separate", action="store_true",
        help="Ask for the next pair in a request of its own after each label (the API's "
        "two-call flow) rather than in the label's answer (the labelling page's flow)",
    )  # fmt: skip
    parser.add_argument(
        "--activity-log", choices=["on", "off", "both"], default="on",
        help="The web server with the activity log on, off, or both: four runs, off, on, on, "
        "off, each on a project of its own",
    )  # fmt: skip
    options = parser.parse_args()

    database_url = django_on_scratch_database()
    runs = {"on": [True], "off": [False], "both": [False, True, True, False]}[options.activity_log]
    figures = {True: [], False: []}
    for number, activity_log in enumerate(runs):
        if number:
            print()
        figures[activity_log].append(
            measure(options, database_url, activity_log, prefix=f"load{number}")
        )
    if figures[True] and figures[False]:
        on, off = (
            {key: statistics.mean(run[key] for run in figures[side]) for key in figures[side][0]}
            for side in (True, False)
        )
        print(
            f"\nactivity log on vs off, mean of {len(figures[True])} runs each: machine CPU per "
            f"label {on['cpu_ms']:.1f} vs {off['cpu_ms']:.1f} ms "
            f"({on['cpu_ms'] / off['cpu_ms'] - 1:+.1%}; target at most +10%), labels per second "
            f"{on['labels_per_s']:.1f} vs {off['labels_per_s']:.1f}"
        )


def measure(options, database_url: str, activity_log: bool, prefix: str) -> dict:
    """One run: a project of its own, a fresh server, the annotators, the figures printed;
    returns the machine's CPU per label and the labels per second."""
    project_id, tokens = prepare(options.annotators, options.pairs, prefix)
    port = free_port()
    server = start_server(port, options.web_workers, options.threads, database_url, activity_log)
    try:
        gate = threading.Barrier(len(tokens) + 1)
        deadline = time.monotonic() + options.seconds + 1
        annotators = [Annotator(port, project_id, token, deadline, options.think, gate,
                                options.separate) for token in tokens]  # fmt: skip
        for annotator in annotators:
            annotator.start()
        gate.wait()
        started, client_cpu = time.monotonic(), time.process_time()
        busy = machine_busy_seconds()
        for annotator in annotators:
            annotator.join()
        elapsed = time.monotonic() - started
        busy = machine_busy_seconds() - busy
        client_cpu = time.process_time() - client_cpu
    finally:
        server.terminate()
        server.wait(timeout=30)
    accepted = sum(a.accepted for a in annotators)
    errors = [e for a in annotators for e in a.errors]
    checks = invariants(project_id, accepted)
    flow = "next in its own request" if options.separate else "next in the label's answer"
    print(f"activity log {'on' if activity_log else 'off'}: {options.annotators} annotators, "
          f"think {options.think:g} s, {flow}, {options.web_workers} gunicorn workers, "
          f"{elapsed:.1f} s")  # fmt: skip
    print(f"labels per second: {accepted / elapsed:.1f} ({accepted} labels)")
    print(
        f"the clients' own CPU: {client_cpu / elapsed:.2f} cores of the machine's {os.cpu_count()}"
    )
    print(
        f"machine CPU per label: {busy / max(accepted, 1) * 1000:.1f} ms "
        f"(web, PostgreSQL and clients; {busy / elapsed:.2f} cores busy)"
    )
    print(f"next pair: {percentiles([m for a in annotators for m in a.next_ms])}")
    submit = "submit" if options.separate else "submit and next"
    print(f"{submit}: {percentiles([m for a in annotators for m in a.submit_ms])}")
    print(f"invariants: {json.dumps(checks)}; errors: {len(errors)}")
    for error in errors[:5]:
        print("  ", error)
    ok = (checks["labels_stored"] == accepted and checks["most_annotators_on_a_pair"] <= 3
          and checks["pairs_labelled_twice_by_one"] == 0)  # fmt: skip
    print("invariants hold" if ok else "INVARIANTS BROKEN")
    return {"cpu_ms": busy / max(accepted, 1) * 1000, "labels_per_s": accepted / elapsed}


if __name__ == "__main__":
    main()
