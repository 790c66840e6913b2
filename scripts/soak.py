#!/usr/bin/env python3
"""A bounded soak run of chatbridge: two busy sources, three sinks, reloads, a clean stop.

Run from the repository root after `swift build`:

    python3 scripts/soak.py --seconds 60

It starts two simulators (`chatbridge simulate --change-every 100ms`), a local webhook
receiver that fails about half of its requests, and `chatbridge run` with a config of two
sources and three sinks (stdout to a file, the webhook, an exec sink running /bin/true)
and `http.listen` on a free port. While it runs it sends SIGHUP every few seconds and
samples the RSS of the chatbridge process every second. At the end it stops chatbridge
with SIGTERM and checks:

- it exited with status 0 within 10 s;
- every stored event has its deliveries, each delivered, dead with a reason, or pending
  (none lost), and no delivery names an event that is not stored;
- no (event id, rule) pair appears twice on stdout, every stdout line is a stored event,
  every stdout delivery marked delivered is on stdout;
- every webhook delivery marked delivered reached the receiver with a 2xx answer;
- /metrics and /healthz answered while it ran (unless --no-http-check);
- no secret (API keys, the webhook URL's token) appears in the logs.

It reports RSS over time (first / peak / last) and the counts, and exits 1 when a check
fails. Python 3 standard library only; everything listens on 127.0.0.1.
"""

import argparse
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="how long chatbridge runs (default 60)")
    parser.add_argument("--binary", default=None,
                        help="the chatbridge executable (default: .build/debug/chatbridge, else `swift build --show-bin-path`)")
    parser.add_argument("--chats", type=int, default=300, help="chats per simulated source (default 300)")
    parser.add_argument("--reload-every", type=float, default=5, help="seconds between SIGHUPs (default 5)")
    parser.add_argument("--no-reload", action="store_true", help="send no SIGHUP")
    parser.add_argument("--no-http-check", action="store_true", help="do not require /metrics and /healthz to answer")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (its path is printed)")
    parser.add_argument("--metrics-out", default=None, help="also write the last /metrics answer to this file")
    return parser.parse_args()


def find_binary(given):
    if given:
        return os.path.abspath(given)
    default = os.path.join(".build", "debug", "chatbridge")
    if os.path.exists(default):
        return os.path.abspath(default)
    try:
        folder = subprocess.run(["swift", "build", "--show-bin-path"], capture_output=True, text=True,
                                timeout=120, check=True).stdout.strip()
        return os.path.join(folder, "chatbridge")
    except (OSError, subprocess.SubprocessError):
        sys.exit("soak: no chatbridge executable found: run `swift build` first or pass --binary")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid):
    """Resident set size of `pid` in KiB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:  # macOS and other systems without /proc
        text = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True,
                              timeout=5).stdout.strip()
        return int(text) if text else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


class Simulator:
    """`chatbridge simulate` on a free port, read from its `READY <port>` line."""

    def __init__(self, binary, folder, name, chats, seed, api_key):
        self.log = open(os.path.join(folder, f"simulator-{name}.log"), "wb")
        self.process = subprocess.Popen(
            [binary, "simulate", "--port", "0", "--chats", str(chats), "--seed", str(seed),
             "--change-every", "100ms", "--api-key", api_key],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        self.port = None
        found = []

        def read_ready():
            for raw in self.process.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("READY "):
                    found.append(int(line.split()[1]))
                    return

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(timeout=30)
        if not found:
            self.stop()
            raise RuntimeError(f"simulator {name} did not start within 30 s (see {self.log.name})")
        self.port = found[0]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


class WebhookReceiver:
    """Answers POSTs on 127.0.0.1: about half get a 500, the rest a 200."""

    def __init__(self, token, seed=7):
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.accepted = []      # (event id, rule) answered 2xx
        self.refused = 0
        self.malformed = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != f"/hook/{token}":
                    self.send_response(404)
                    self.end_headers()
                    return
                with receiver.lock:
                    fail = receiver.random.random() < 0.5
                    if fail:
                        receiver.refused += 1
                    else:
                        try:
                            event = json.loads(body)
                            receiver.accepted.append((event.get("id"), event.get("rule")))
                        except ValueError:
                            receiver.malformed += 1
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *arguments):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


CONFIG = """\
# Written by scripts/soak.py
sources:
  - name: alpha
    url: http://127.0.0.1:{port_a}
    api_key: ${{SOAK_KEY_ALPHA}}
    interval: 1s
    page_size: 100
    max_requests_per_second: 0
  - name: beta
    url: http://127.0.0.1:{port_b}
    api_key: ${{SOAK_KEY_BETA}}
    interval: 2s
    page_size: 50
    max_requests_per_second: 0

store: state/chatbridge.sqlite
rules: rules/
baseline: silent
retention: 30d

sinks:
  stdout:
    type: stdout
  hook:
    type: webhook
    url: ${{SOAK_WEBHOOK_URL}}
    timeout: 5s
  run-true:
    type: exec
    command: ["/bin/true"]
    timeout: 5s

delivery:
  max_attempts: 4
  initial_backoff: 200ms
  max_backoff: 2s
  concurrency: 4

http:
  listen: 127.0.0.1:{http_port}
"""

RULE_ALL = """\
name: everything
description: every event, to every sink
send: [stdout, hook, run-true]
"""

RULE_UNREAD = """\
name: unread
description: unread counts that rose, to stdout as well
on: [unread.increased]
send: [stdout]
"""

# The sinks every event goes to (rule `everything`).
SINKS_OF_EVERY_EVENT = {"stdout", "hook", "run-true"}


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as error:
        return None, str(error)


def json_lines(text, what, failures):
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError:
            failures.append(f"{what}: line {number} is not JSON: {line[:120]!r}")
    return items


def run_command(binary, arguments, folder):
    result = subprocess.run([binary] + arguments, capture_output=True, text=True, timeout=120, cwd=folder)
    if result.returncode != 0:
        raise RuntimeError(f"chatbridge {' '.join(arguments)} exited {result.returncode}: {result.stderr.strip()[:500]}")
    return result.stdout


def main():
    arguments = parse_arguments()
    binary = find_binary(arguments.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"soak: {binary} is not an executable: run `swift build` first")

    folder = tempfile.mkdtemp(prefix="chatbridge-soak-")
    secrets = {
        "SOAK_KEY_ALPHA": "soak-alpha-" + os.urandom(6).hex(),
        "SOAK_KEY_BETA": "soak-beta-" + os.urandom(6).hex(),
    }
    token = "tok" + os.urandom(8).hex()
    failures = []
    notes = []
    simulators = []
    receiver = None
    process = None
    samples = []        # (seconds since start, RSS KiB)
    reloads = 0
    metrics_text = None
    health = None
    try:
        simulators.append(Simulator(binary, folder, "alpha", arguments.chats, 1, secrets["SOAK_KEY_ALPHA"]))
        simulators.append(Simulator(binary, folder, "beta", arguments.chats, 2, secrets["SOAK_KEY_BETA"]))
        receiver = WebhookReceiver(token)
        http_port = free_port()
        os.makedirs(os.path.join(folder, "rules"))
        with open(os.path.join(folder, "rules", "everything.yaml"), "w") as rule:
            rule.write(RULE_ALL)
        with open(os.path.join(folder, "rules", "unread.yaml"), "w") as rule:
            rule.write(RULE_UNREAD)
        config = os.path.join(folder, "chatbridge.yaml")
        with open(config, "w") as file:
            file.write(CONFIG.format(port_a=simulators[0].port, port_b=simulators[1].port, http_port=http_port))

        environment = dict(os.environ)
        environment.update(secrets)
        environment["SOAK_WEBHOOK_URL"] = f"http://127.0.0.1:{receiver.port}/hook/{token}"
        environment.pop("CHATBRIDGE_CONFIG", None)
        stdout_path = os.path.join(folder, "stdout.jsonl")
        stderr_path = os.path.join(folder, "run.log")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen([binary, "run", "--config", config], stdout=out, stderr=err,
                                       stdin=subprocess.DEVNULL, env=environment, cwd=folder)
            started = time.monotonic()
            next_reload = started + arguments.reload_every
            next_sample = started
            deadline = started + arguments.seconds
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    failures.append(f"chatbridge ended early, {time.monotonic() - started:.1f} s in, "
                                    f"with status {process.returncode} (see {stderr_path})")
                    break
                now = time.monotonic()
                if now >= next_sample:
                    rss = rss_kib(process.pid)
                    if rss is not None:
                        samples.append((now - started, rss))
                    next_sample += 1
                if not arguments.no_reload and now >= next_reload:
                    process.send_signal(signal.SIGHUP)
                    reloads += 1
                    next_reload += arguments.reload_every
                time.sleep(max(0.0, min(next_sample, deadline) - time.monotonic()))

            if process.poll() is None:
                status, metrics_text = http_get(http_port, "/metrics")
                if status != 200:
                    (notes if arguments.no_http_check else failures).append(
                        f"/metrics did not answer 200: {status or 'no answer'}: {str(metrics_text)[:200]}")
                    metrics_text = None
                health = http_get(http_port, "/healthz")
                if health[0] not in (200, 503):
                    (notes if arguments.no_http_check else failures).append(
                        f"/healthz did not answer 200 or 503: {health[0] or 'no answer'}: {health[1][:200]}")
                    health = None
                elif health[0] == 503:
                    notes.append(f"/healthz answered 503: {health[1].strip()[:300]}")

                stop_asked = time.monotonic()
                process.send_signal(signal.SIGTERM)
                try:
                    status = process.wait(timeout=10)
                    notes.append(f"stopped {time.monotonic() - stop_asked:.2f} s after SIGTERM")
                    if status != 0:
                        failures.append(f"chatbridge exited with status {status} after SIGTERM (see {stderr_path})")
                except subprocess.TimeoutExpired:
                    failures.append("chatbridge did not exit within 10 s of SIGTERM")
                    process.kill()
                    process.wait(timeout=10)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for simulator in simulators:
            simulator.stop()
        if receiver is not None:
            receiver.stop()

    # What the store says, read by chatbridge's own commands.
    config = os.path.join(folder, "chatbridge.yaml")
    environment_for_reads = dict(secrets, SOAK_WEBHOOK_URL=f"http://127.0.0.1:{receiver.port}/hook/{token}")
    os.environ.update(environment_for_reads)
    events = json_lines(run_command(binary, ["events", "--config", config], folder), "events", failures)
    deliveries = json_lines(run_command(binary, ["deliveries", "--config", config], folder), "deliveries", failures)
    with open(os.path.join(folder, "stdout.jsonl"), encoding="utf-8", errors="replace") as file:
        stdout_lines = json_lines(file.read(), "stdout", failures)
    with open(os.path.join(folder, "run.log"), encoding="utf-8", errors="replace") as file:
        log_text = file.read()

    event_ids = [event.get("id") for event in events]
    stored = set(event_ids)
    if len(stored) != len(event_ids):
        failures.append(f"{len(event_ids) - len(stored)} event ids are stored twice")

    by_event = {}
    statuses = {"pending": 0, "delivered": 0, "dead": 0}
    for delivery in deliveries:
        status = delivery.get("status")
        if status not in statuses:
            failures.append(f"delivery of {delivery.get('event_id')} to {delivery.get('sink')}: status {status!r}")
            continue
        statuses[status] += 1
        if status == "dead" and not delivery.get("last_error"):
            failures.append(f"dead delivery of {delivery.get('event_id')} to {delivery.get('sink')} has no reason")
        if delivery.get("event_id") not in stored:
            failures.append(f"delivery of {delivery.get('event_id')} to {delivery.get('sink')}: the event is not stored")
        by_event.setdefault(delivery.get("event_id"), set()).add((delivery.get("rule"), delivery.get("sink")))

    lost = [event_id for event_id in event_ids
            if not SINKS_OF_EVERY_EVENT <= {sink for rule, sink in by_event.get(event_id, set()) if rule == "everything"}]
    if lost:
        failures.append(f"{len(lost)} events lack a delivery row for a sink of rule `everything`, e.g. {lost[:3]}")

    seen_on_stdout = {}
    for line in stdout_lines:
        key = (line.get("id"), line.get("rule"))
        seen_on_stdout[key] = seen_on_stdout.get(key, 0) + 1
        if line.get("id") not in stored:
            failures.append(f"stdout printed event {line.get('id')}, which is not stored")
    duplicates = [key for key, count in seen_on_stdout.items() if count > 1]
    if duplicates:
        failures.append(f"{len(duplicates)} (event, rule) pairs printed twice on stdout, e.g. {duplicates[:3]}")
    for delivery in deliveries:
        key = (delivery.get("event_id"), delivery.get("rule"))
        if delivery.get("sink") == "stdout" and delivery.get("status") == "delivered" and key not in seen_on_stdout:
            failures.append(f"stdout delivery {key} is marked delivered but was not printed")
            break

    accepted = set(receiver.accepted)
    for delivery in deliveries:
        key = (delivery.get("event_id"), delivery.get("rule"))
        if delivery.get("sink") == "hook" and delivery.get("status") == "delivered" and key not in accepted:
            failures.append(f"webhook delivery {key} is marked delivered but the receiver never accepted it")
            break

    for name, value in list(secrets.items()) + [("webhook token", token)]:
        if value in log_text:
            failures.append(f"the log shows a secret ({name})")
        if metrics_text and value in metrics_text:
            failures.append(f"/metrics shows a secret ({name})")

    if metrics_text is not None:
        with open(os.path.join(folder, "metrics.txt"), "w") as file:
            file.write(metrics_text)
        if arguments.metrics_out:
            with open(arguments.metrics_out, "w") as file:
                file.write(metrics_text)
        for metric in ["chatbridge_polls_total", "chatbridge_delivery_attempts_total", "chatbridge_events_total",
                       "chatbridge_deliveries_pending"]:
            if metric not in metrics_text:
                failures.append(f"/metrics lacks {metric}")

    # Report.
    print(f"soak: {arguments.seconds:g} s, {reloads} reloads, work folder {folder}")
    if samples:
        peak = max(samples, key=lambda sample: sample[1])
        print(f"rss: first {samples[0][1] / 1024:.1f} MiB, peak {peak[1] / 1024:.1f} MiB at {peak[0]:.0f} s, "
              f"last {samples[-1][1] / 1024:.1f} MiB ({len(samples)} samples)")
        step = max(1, len(samples) // 10)
        print("rss over time (s: MiB): " + ", ".join(
            f"{seconds:.0f}: {rss / 1024:.1f}" for seconds, rss in samples[::step]))
    else:
        notes.append("no RSS samples")
    print(f"events stored: {len(events)}; deliveries: {statuses['delivered']} delivered, "
          f"{statuses['dead']} dead, {statuses['pending']} pending; stdout lines: {len(stdout_lines)}; "
          f"webhook: {len(receiver.accepted)} accepted, {receiver.refused} refused")
    if metrics_text is not None:
        polls = [line for line in metrics_text.splitlines() if line.startswith("chatbridge_polls_total{")]
        print("metrics: " + ", ".join(polls))
    if health is not None:
        print(f"/healthz: {health[0]}")
    for note in notes:
        print(f"note: {note}")
    for failure in failures:
        print(f"FAIL: {failure}")
    if not arguments.keep and not failures:
        shutil.rmtree(folder, ignore_errors=True)
    elif failures:
        print(f"the work folder is kept for a look: {folder}")
    print("soak: " + ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        print(f"FAIL: {error}")
        print("soak: FAILED")
        sys.exit(1)
