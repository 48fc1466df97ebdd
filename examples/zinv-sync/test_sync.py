#!/usr/bin/env python3
"""End-to-end test of zinv-sync: two tills and one upstream zinv-server (SQLite).

    python3 test_sync.py build/examples/zinv-server build/examples/zinv-sync
    python3 test_sync.py --demo build/examples/zinv-server build/examples/zinv-sync

A till is a SQLite store served by its own zinv-server (the till's sales
arrive over HTTP, like a POS front end's would) and synced by zinv-sync.
The tests: pull, offline sales and discards, sync in either order, exact
convergence; a 4xx rejection; SIGKILLs of zinv-sync at random moments of a
long push (nothing lost, nothing doubled upstream); an upstream that
answers 500 or drops the connection; sales while syncs run.  --demo tells
the first story and prints every store's balances side by side.
"""
import collections
import http.client
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SERVER = SYNC = None
ORG = "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
P1 = "7a51c3d0-9f3b-11ee-b962-0242ac120002"
V1 = "7a51c6a0-9f3b-11ee-b962-0242ac120002"
P2 = "8c2f0e1a-9f3b-11ee-a1b2-0242ac120002"
V2 = "8c2f1102-9f3b-11ee-a1b2-0242ac120002"
TOKEN = "sync-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A zinv-server on its own SQLite database."""

    def __init__(self, tmp, name, port=None):
        self.db = os.path.join(tmp, name + ".db")
        self.tokens = os.path.join(tmp, "tokens.json")
        self.port = port or free_port()
        self.proc = None
        self._locations = None

    def start(self):
        # The access log goes to a file: a pipe nobody reads fills and
        # stalls the server.
        self.log = open(self.db + ".log", "a")
        self.proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:%d" % self.port, "--db", self.db,
             "--tokens", self.tokens], stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("zinv-server exited: %s" % open(self.log.name).read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("zinv-server did not listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc:
            self.log.close()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Authorization": "Bearer " + TOKEN,
                              "Content-Type": "application/json"})
        res = conn.getresponse()
        text = res.read().decode()
        conn.close()
        return res.status, (json.loads(text) if text else None)

    def loc(self, kind):
        if not self._locations:
            status, body = self.call("GET", "/organizations/self/locations")
            assert status == 200, body
            self._locations = {l["type"]: l["uuid"] for l in body}
        return self._locations[kind]

    def move(self, frm, to, qty, product=P1, variant=V1):
        status, body = self.call("PUT", "/organizations/self/inventory", {"changes": [{
            "productUuid": product, "variantUuid": variant,
            "fromLocationUuid": self.loc(frm), "toLocationUuid": self.loc(to),
            "change": qty}]})
        assert status == 200, body

    def balances(self):
        status, body = self.call("GET", "/organizations/self/inventory/locations/"
                                 + self.loc("STORE"))
        assert status == 200, body
        # Zero balances are not listed (WIRE.md section 4): read them as 0.
        return collections.defaultdict(int, {v["variantUuid"]: int(v["balance"])
                                             for v in body["variants"]})


def write_tokens(tmp):
    with open(os.path.join(tmp, "tokens.json"), "w") as f:
        json.dump({"tokens": [{"token": TOKEN, "organizationUuid": ORG,
                               "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]}]}, f)


def sync(till, upstream_url, *extra):
    r = subprocess.run([SYNC, "--db", till.db, "--org", ORG, "--upstream", upstream_url,
                        "--token", TOKEN, "--once"] + list(extra),
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout.strip(), r.stderr


def summary(line):
    words = line.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


class World:
    """An upstream and two tills; the back office stocks 100 of V1."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="zinv-sync-")
        write_tokens(self.tmp)
        self.up = Server(self.tmp, "upstream").start()
        self.tills = [Server(self.tmp, "till-a").start(), Server(self.tmp, "till-b").start()]
        status, body = self.up.call("POST", "/organizations/self/v2/inventory/bulk", {
            "productChanges": [{"productUuid": P1, "trackingStatusChange": "START_TRACKING",
                                "variantChanges": [{
                                    "variantUuid": V1,
                                    "fromLocationUuid": self.up.loc("SUPPLIER"),
                                    "toLocationUuid": self.up.loc("STORE"),
                                    "change": 100}]}]})
        assert status == 200, body

    def close(self):
        for s in [self.up] + self.tills:
            s.stop()
        subprocess.run(["rm", "-rf", self.tmp])


def offline_story(w, test=None, show=print):
    """Pull, upstream away, sales and discards offline, upstream back, sync."""
    a, b = w.tills
    for t in w.tills:
        rc, out, err = sync(t, w.up.url)
        assert rc == 0, (rc, out, err)
    show("both tills pulled; upstream, A, B:", [t.balances()[V1] for t in [w.up] + w.tills])
    w.up.stop()
    show("upstream stopped; A sells 3 + 3 and discards 1, B sells 5, offline")
    a.move("STORE", "SOLD", 3)
    a.move("STORE", "SOLD", 3)
    a.move("STORE", "BIN", 1)
    b.move("STORE", "SOLD", 5)
    rc, out, _ = sync(a, w.up.url)
    assert rc == 3 and summary(out)["pending"] == 3, (rc, out)
    show("till A, upstream away (exit 3):", out)
    w.up.start()
    show("upstream back")
    for name, t in [("B", b), ("A", a), ("B", b)]:
        rc, out, err = sync(t, w.up.url)
        assert rc == 0, (rc, out, err)
        show("till %s sync:" % name, out)
    return [s.balances()[V1] for s in [w.up] + w.tills]


class SyncEndToEnd(unittest.TestCase):
    def setUp(self):
        self.w = World()

    def tearDown(self):
        self.w.close()

    def test_offline_sales_converge_exactly_in_either_order(self):
        self.assertEqual(offline_story(self.w, show=lambda *a: None), [88, 88, 88])

    def test_rejection_lands_in_the_rejected_list_and_later_entries_go_through(self):
        a = self.w.tills[0]
        up = self.w.up
        status, _ = up.call("POST", "/organizations/self/inventory", {"productUuid": P2})
        self.assertEqual(status, 200)
        self.assertEqual(sync(a, up.url)[0], 0)
        a.move("SUPPLIER", "STORE", 4, P2, V2)      # rejected: upstream stops P2 first
        a.move("STORE", "SOLD", 2)                  # goes through
        self.assertEqual(up.call("DELETE", "/organizations/self/inventory/products/" + P2)[0], 204)
        rc, out, err = sync(a, up.url)
        self.assertEqual(rc, 0, err)
        self.assertEqual(summary(out)["rejected"], 1, out)
        self.assertEqual(summary(out)["pushed"], 1, out)
        self.assertEqual(up.balances()[V1], 98)
        self.assertEqual(a.balances()[V1], 98)

    def test_kills_at_random_moments_lose_nothing_and_double_nothing(self):
        a = self.w.tills[0]
        up = self.w.up
        self.assertEqual(sync(a, up.url)[0], 0)
        rng = random.Random(17)
        sales = kills = mid_push = 0
        while kills < 50:
            if up.balances()[V1] == a.balances()[V1]:
                for _ in range(40):        # more to push, so kills land mid-push
                    a.move("STORE", "SOLD", 1)
                sales += 40
            p = subprocess.Popen([SYNC, "--db", a.db, "--org", ORG, "--upstream", up.url,
                                  "--token", TOKEN, "--interval", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, 0.03))
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            ub = up.balances()[V1]
            # Never doubled: upstream holds at most what the till sold.
            self.assertGreaterEqual(ub, 100 - sales)
            mid_push += ub != 100 - sales
        rc, out, err = sync(a, up.url)
        self.assertEqual(rc, 0, (out, err))
        print("\nkill test: %d kills, %d with entries left to push, %d sales; last run: %s"
              % (kills, mid_push, sales, out), file=sys.stderr)
        self.assertGreaterEqual(mid_push, 15)   # 29..41 of 50 seen here
        self.assertEqual(up.balances()[V1], 100 - sales)
        self.assertEqual(a.balances()[V1], 100 - sales)
        # A further sync pushes nothing: every entry was acknowledged once.
        self.assertEqual(summary(sync(a, up.url)[1])["pushed"], 0)

    def test_upstream_500_and_dropped_connections_are_retried_in_order(self):
        a = self.w.tills[0]
        up = self.w.up
        self.assertEqual(sync(a, up.url)[0], 0)
        faults = ["500", "drop"]
        seen = []

        class Proxy(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append((self.command, self.path, self.headers.get("Idempotency-Key")))
                if faults:
                    f = faults.pop(0)
                    if f == "drop":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
                conn.request(self.command, self.path, body=body or None,
                             headers=dict(self.headers))
                res = conn.getresponse()
                data = res.read()
                conn.close()
                self.send_response(res.status)
                for k, v in res.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = forward

        proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            a.move("STORE", "SOLD", 2)
            a.move("STORE", "BIN", 1)
            p = subprocess.Popen([SYNC, "--db", a.db, "--org", ORG, "--upstream",
                                  "http://127.0.0.1:%d" % proxy.server_address[1],
                                  "--token", TOKEN, "--interval", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and up.balances()[V1] != 97:
                time.sleep(0.1)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(10), 0)
        finally:
            proxy.shutdown()
            proxy.server_close()
        self.assertEqual(up.balances()[V1], 97)
        keys = [k for _, _, k in seen if k]
        # The first entry was tried three times before the second was sent.
        self.assertEqual(len(set(keys[:3])), 1, seen)
        self.assertNotEqual(keys[3], keys[0], seen)

    def test_sales_during_syncs_are_neither_lost_nor_counted_twice(self):
        a = self.w.tills[0]
        up = self.w.up
        self.assertEqual(sync(a, up.url)[0], 0)
        done = threading.Event()

        def sell():
            for _ in range(60):
                a.move("STORE", "SOLD", 1)
            done.set()

        t = threading.Thread(target=sell)
        t.start()
        while not done.is_set():
            sync(a, up.url)
        t.join()
        rc, out, err = sync(a, up.url)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(up.balances()[V1], 40)
        self.assertEqual(a.balances()[V1], 40)


def demo():
    w = World()
    try:
        print("back office: 100 of the product in the upstream store")
        final = offline_story(w)
        print("%-10s %-10s %-10s" % ("upstream", "till A", "till B"))
        print("%-10s %-10s %-10s" % tuple(final))
        print("equal" if len(set(final)) == 1 else "DIFFERENT")
        return 0 if len(set(final)) == 1 else 1
    finally:
        w.close()


if __name__ == "__main__":
    is_demo = "--demo" in sys.argv
    if is_demo:
        sys.argv.remove("--demo")
    SERVER = os.path.abspath(sys.argv.pop(1))
    SYNC = os.path.abspath(sys.argv.pop(1))
    if is_demo:
        sys.exit(demo())
    unittest.main(verbosity=2)
