#!/usr/bin/env python3
"""Webhook delivery throughput of zinv-server, and its catch-up after an outage.

    python3 bench_webhooks.py build/examples/zinv-server [N] [sqlite|memory]
    sh tests/pg/with-cluster.sh python3 bench_webhooks.py build/examples/zinv-server \
        N postgres PROCESSES SUBSCRIPTIONS

With postgres: PROCESSES servers on one new database of the cluster, and
SUBSCRIPTIONS subscriptions (each gets every event; their leases spread
over the processes as they are taken); the rates count every delivery.

1. live: N single-change batches (PUT /organizations/self/inventory, one
   after the other over one keep-alive connection) with a receiver up;
   reports the time from the first PUT until the last event is delivered.
2. outage: the receiver goes away (connection refused), N more batches
   are made, the receiver comes back; reports how long the queued events
   take to drain, and checks that none is lost, none duplicated, and the
   order is the journal's.  The drain is delivery alone: its rate is the
   worker's throughput, whatever the store's write speed.

The receiver is a minimal asyncio HTTP/1.1 server in this process; the
server's CPU time per delivery is printed too.  The server runs with
--webhook-retry 0.5: the first retry after the receiver is back comes
within half a second (with the service's default schedule it would come
at the next scheduled attempt, up to an hour later).
"""
import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ORG = "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
P1 = "7a51c3d0-9f3b-11ee-b962-0242ac120002"
V1 = "7a51c6a0-9f3b-11ee-b962-0242ac120002"
SUB = "5f1d3c2b-0a9e-4d8c-b7a6-1e2f3a4b5c6d"
TOKEN = "bench-token"


class Receiver:
    """A minimal HTTP/1.1 receiver on asyncio (keep-alive, answers 200), so
    that the receiver, not the server, is not what gets measured."""

    def __init__(self, port=0):
        self.balances = []   # STORE balance after each InventoryBalanceChanged
        self.by_path = {}    # the same, per subscription (request path)
        self.ids = []
        self.times = []
        self.cond = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.transports = set()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(port, ready), daemon=True).start()
        ready.wait()

    def _run(self, port, ready):
        receiver = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport, self.buf = transport, b""
                receiver.transports.add(transport)

            def connection_lost(self, exc):
                receiver.transports.discard(self.transport)

            def data_received(self, data):
                self.buf += data
                while True:
                    head_end = self.buf.find(b"\r\n\r\n")
                    if head_end < 0:
                        return
                    length = 0
                    for line in self.buf[:head_end].split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(self.buf) < head_end + 4 + length:
                        return
                    path = self.buf[:head_end].split(b" ", 2)[1].decode()
                    body = self.buf[head_end + 4:head_end + 4 + length]
                    self.buf = self.buf[head_end + 4 + length:]
                    receiver.record(json.loads(body), path)
                    self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            self.loop.create_server(Proto, "127.0.0.1", port, reuse_address=True))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def record(self, env, path):
        with self.cond:
            if env["eventName"] == "InventoryBalanceChanged":
                payload = json.loads(env["payload"])
                self.balances.append(int(payload["balanceAfter"][0]["balance"]))
                self.by_path.setdefault(path, []).append(self.balances[-1])
                self.ids.append(env["messageId"])
                self.times.append(time.monotonic())
            self.cond.notify_all()

    def wait_count(self, n, seconds=120):
        deadline = time.monotonic() + seconds
        with self.cond:
            while len(self.balances) < n:
                if not self.cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise SystemExit("timed out: %d of %d delivered" % (len(self.balances), n))
            return self.times[n - 1]

    def close(self):
        """Gone: the port refuses connections, kept-alive ones are dropped."""
        async def shut():
            self.server.close()
            for t in list(self.transports):
                t.abort()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux /proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    server = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    kind = sys.argv[3] if len(sys.argv) > 3 else "sqlite"
    nproc = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    nsub = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    tmp = tempfile.TemporaryDirectory()
    tokens = os.path.join(tmp.name, "tokens.json")
    with open(tokens, "w") as f:
        json.dump({"tokens": [{"token": TOKEN, "organizationUuid": ORG,
                               "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]}]}, f)
    log = open(os.path.join(tmp.name, "server.log"), "w")
    if kind == "postgres":
        from test_webhooks import fresh_pg_database
        db = fresh_pg_database(os.environ["ZINV_TEST_PG"])
    else:
        db = ":memory:" if kind == "memory" else os.path.join(tmp.name, "zinv.db")
    procs = []
    for _ in range(nproc):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        procs.append(subprocess.Popen([server, "--listen", "127.0.0.1:%d" % port, "--db", db,
                                       "--tokens", tokens, "--webhook-retry", "0.5"],
                                      stdout=subprocess.DEVNULL, stderr=log))
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    proc = procs[0]           # the writes go here; the deliveries come from all
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}

    def call(method, path, body=None):
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        res = conn.getresponse()
        text = res.read()
        if res.status >= 300:
            raise SystemExit("%s %s: %d %s" % (method, path, res.status, text))
        return json.loads(text) if text else None

    receiver = Receiver()
    rport = receiver.port
    loc = {l["type"]: l["uuid"] for l in call("GET", "/organizations/self/locations")}
    call("POST", "/organizations/self/v2/inventory/bulk", {"productChanges": [
        {"productUuid": P1, "trackingStatusChange": "START_TRACKING", "variantChanges": []}]})
    subs = [SUB] + [str(uuid.uuid4()) for _ in range(nsub - 1)]
    for i, sub in enumerate(subs):
        call("POST", "/organizations/self/subscriptions", {
            "uuid": sub, "transportName": "WEBHOOK", "eventNames": ["InventoryBalanceChanged"],
            "destination": "http://127.0.0.1:%d/hook/%d" % (rport, i),
            "contactEmail": "ops@example.com"})
    change = {"changes": [{"productUuid": P1, "variantUuid": V1,
                           "fromLocationUuid": loc["SUPPLIER"], "toLocationUuid": loc["STORE"],
                           "change": 1}]}

    # 1. live
    t0 = time.monotonic()
    for _ in range(n):
        call("PUT", "/organizations/self/inventory", change)
    t_written = time.monotonic()
    t_last = receiver.wait_count(n * nsub)
    print("live:   %d batches written in %.2f s (%.0f/s); all %d deliveries %.2f s after the "
          "first write: %.0f deliveries/s end to end"
          % (n, t_written - t0, n / (t_written - t0), n * nsub, t_last - t0,
             n * nsub / (t_last - t0)))
    if kind == "postgres":
        from test_fleet import psql
        print("        leases per process: %s" % psql(db, "SELECT string_agg(c::text, ' ')"
              " FROM (SELECT count(*) c FROM zinv_server.webhook_leases GROUP BY owner) x"))

    # 2. outage
    receiver.close()
    t0 = time.monotonic()
    for _ in range(n):
        call("PUT", "/organizations/self/inventory", change)
    time.sleep(1.0)   # a few refused attempts
    status = {s["uuid"]: s["status"] for s in call("GET", "/organizations/self/subscriptions")}
    cpu_before = sum(cpu_seconds(p.pid) for p in procs)
    back = Receiver(rport)
    back.balances, back.ids, back.times = receiver.balances, receiver.ids, receiver.times
    back.by_path = receiver.by_path
    t_back = time.monotonic()
    if len(back.balances) > n * nsub:
        raise SystemExit("%d delivered during the outage" % (len(back.balances) - n * nsub))
    t_last = back.wait_count(2 * n * nsub)
    first_after = back.times[n * nsub]
    print("outage: %d deliveries queued while the receiver was down (status %s); drained "
          "%.2f s after it came back (first delivery after %.2f s, then %.0f deliveries/s)"
          % (n * nsub, status[SUB], t_last - t_back, first_after - t_back,
             (n * nsub - 1) / max(t_last - first_after, 1e-9)))
    cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
    print("        server CPU during the drain: %.2f s, %.0f us per delivery"
          % (cpu, cpu * 1e6 / (n * nsub)))
    time.sleep(0.5)
    ok_order = all(b == list(range(1, 2 * n + 1)) for b in back.by_path.values()) and \
        len(back.by_path) == nsub
    ok_dups = len(set(back.ids)) == len(back.ids)
    print("check:  %d delivered, order kept and nothing lost: %s, no duplicates: %s"
          % (len(back.balances), ok_order, ok_dups))
    back.close()
    for p in procs:
        p.terminate()
    rc = max(p.wait() for p in procs)
    log.close()
    if rc != 0:
        print("server exited %d:" % rc)
        print(open(os.path.join(tmp.name, "server.log")).read()[-4000:])
    tmp.cleanup()
    return 0 if ok_order and ok_dups and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
