#!/usr/bin/env python3
"""Several zinv-server processes on one PostgreSQL database (a fleet).

    sh tests/pg/with-cluster.sh python3 test_fleet.py build/examples/zinv-server

Needs the cluster of tests/pg/with-cluster.sh (ZINV_TEST_PG); each test
makes its own database.  Checked: two and three processes under a client
load spread over all of them end with exact balances and a gap-free journal,
an idempotent retry sent to another process replays the first answer, and a
SIGKILL of the process delivering a subscription under load: clients that
retry on the survivor with the same Idempotency-Key lose and double
nothing, the receiver sees every event in order (at most the in-flight one
twice), and the survivor takes the lease within the stated bound (printed).
"""
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a python3 that is not Debian's: use Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

from test_webhooks import Receiver, free_port, fresh_pg_database, wait_for

SERVER = None
ORG = "4d1c2b3a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
P1 = "7a51c3d0-9f3b-11ee-b962-0242ac120002"
VARIANTS = ["7a51c6a0-9f3b-11ee-b962-0242ac12000%d" % i for i in range(2, 6)]
TOKEN = "fleet-token"
SUB = "8e4a6b5c-3d2f-4a1e-9b8c-7d6e5f4a3b2c"
LEASE = 1.5                      # --webhook-lease in these tests
BOUND = LEASE * 4 / 3            # the stated takeover bound


def psql(conninfo, sql):
    """One value (or rows) from the database, with psql."""
    bin_ = os.path.join(os.environ.get("ZINV_TEST_PG_BIN", "/usr/bin"), "psql")
    out = subprocess.run([bin_, "-qAtX", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


class Fleet:
    """N server processes on one new database."""

    def __init__(self, n, tmp):
        self.db = fresh_pg_database(os.environ["ZINV_TEST_PG"])
        self.tokens = os.path.join(tmp, "tokens.json")
        with open(self.tokens, "w") as f:
            json.dump({"tokens": [{"token": TOKEN, "organizationUuid": ORG,
                                   "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]}]}, f)
        self.tmp = tmp
        self.ports, self.procs, self.logs = [], [], []
        for i in range(n):             # started together: they migrate at once
            self.start(i)
        for i in range(n):
            self.wait_listening(i)

    def start(self, i):
        port = free_port()
        log = open(os.path.join(self.tmp, "server%d.log" % i), "a")
        proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:%d" % port, "--db", self.db,
             "--tokens", self.tokens, "--webhook-retry", "0.2,0.3",
             "--webhook-lease", str(LEASE)], stdout=subprocess.DEVNULL, stderr=log)
        if i < len(self.procs):
            self.ports[i], self.procs[i], self.logs[i] = port, proc, log
        else:
            self.ports.append(port)
            self.procs.append(proc)
            self.logs.append(log)

    def wait_listening(self, i):
        deadline = time.monotonic() + 15
        while True:
            try:
                if call(self.ports[i], "GET", "/readyz", token=None)[0] == 200:
                    return
            except OSError:
                pass
            if self.procs[i].poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server %d did not start: %s" % (i, self.log_text(i)))
            time.sleep(0.05)

    def log_text(self, i):
        self.logs[i].flush()
        with open(self.logs[i].name) as f:
            return f.read()[-3000:]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        codes = [p.wait(timeout=15) for p in self.procs]
        for log in self.logs:
            log.close()
        return codes


def call(port, method, path, body=None, token=TOKEN, key=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    if key:
        h["Idempotency-Key"] = key
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=h)
        res = conn.getresponse()
        text = res.read().decode()
    finally:
        conn.close()
    return res.status, json.loads(text) if text else None


def metric(port, name, labels):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


class FleetTests(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.fleet = None
        self.retried_elsewhere = 0     # requests sent again to another process

    def tearDown(self):
        if self.fleet:
            self.fleet.stop()
        self.tmpdir.cleanup()

    def start_fleet(self, n):
        self.fleet = Fleet(n, self.tmpdir.name)
        status, body = call(self.fleet.ports[0], "GET", "/organizations/self/locations")
        self.assertEqual(status, 200, body)
        self.loc = {l["type"]: l["uuid"] for l in body}
        status, body = call(self.fleet.ports[-1], "POST", "/organizations/self/v2/inventory/bulk",
                            {"productChanges": [{"productUuid": P1,
                                                 "trackingStatusChange": "START_TRACKING",
                                                 "variantChanges": []}]})
        self.assertEqual(status, 200, body)

    def op_body(self, kind, variant, qty):
        if kind == "put":
            return "PUT", "/organizations/self/inventory", {"changes": [
                {"productUuid": P1, "variantUuid": variant, "fromLocationUuid":
                 self.loc["SUPPLIER"], "toLocationUuid": self.loc["STORE"], "change": qty}]}
        return "POST", "/organizations/self/v2/inventory/bulk", {"productChanges": [
            {"productUuid": P1, "trackingStatusChange": "NO_CHANGE", "variantChanges": [
                {"variantUuid": variant, "fromLocationUuid": self.loc["SUPPLIER"],
                 "toLocationUuid": self.loc["STORE"], "change": qty}]}]}

    def send(self, first, method, path, body, key):
        """Send until one process answers 200, moving to the next process
        after a connection failure or a 5xx, always with the same key."""
        ports = self.fleet.ports
        for attempt in range(60):
            port = ports[(first + attempt) % len(ports)]
            try:
                status, answer = call(port, method, path, body, key=key, timeout=5)
            except OSError:
                self.retried_elsewhere += 1
                continue
            if status == 200:
                return answer
            self.assertGreaterEqual(status, 500, answer)   # only failures are retried
            time.sleep(0.05)
        raise AssertionError("no process applied %s" % key)

    def load(self, clients, per_client, variants, qtys, during=None):
        """`clients` threads spread PUTs and bulk changes over every
        process; returns the expected STORE balance per variant and the keys."""
        expected, keys, errors, lock = {}, [], [], threading.Lock()

        def client(c):
            rnd = random.Random(c)
            try:
                for i in range(per_client):
                    v, q = rnd.choice(variants), rnd.choice(qtys)
                    key = "fleet-%d-%d-%s" % (c, i, uuid.uuid4())
                    method, path, body = self.op_body("put" if i % 2 else "bulk", v, q)
                    self.send(c + i, method, path, body, key)
                    with lock:
                        expected[v] = expected.get(v, 0) + q
                        keys.append(key)
                    if during and c == 0:
                        during(i)
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return expected, keys

    def store_balances(self, port):
        status, body = call(port, "GET", "/organizations/self/inventory/locations/" +
                            self.loc["STORE"])
        self.assertEqual(status, 200, body)
        return {v["variantUuid"]: int(v["balance"]) for v in body["variants"]
                if int(v["balance"]) != 0}

    def assert_journal(self, keys):
        """Gap-free from 1, and every acknowledged key applied exactly once."""
        count, low, high = psql(self.fleet.db, "SELECT count(*), min(sequence), max(sequence)"
                                " FROM zinv.journal_entries WHERE org = '%s'" % ORG).split("|")
        self.assertEqual((int(low), int(high)), (1, int(count)), "the journal has a gap")
        # Keys are bytea (any byte string is a key); these ones are UTF-8 text.
        stored = psql(self.fleet.db, "SELECT convert_from(idempotency_key, 'UTF8')"
                      " FROM zinv.journal_entries WHERE org = '%s'"
                      " AND idempotency_key LIKE 'fleet-%%'::bytea" % ORG).split()
        self.assertEqual(sorted(stored), sorted(keys))

    def check_processes_share_one_database(self, n):
        self.start_fleet(n)
        expected, keys = self.load(clients=2 * n, per_client=12, variants=VARIANTS,
                                   qtys=(1, 2, 5))
        for port in self.fleet.ports:   # every process reads the same
            self.assertEqual(self.store_balances(port), expected)
        self.assert_journal(keys)
        self.assertEqual(self.fleet.stop(), [0] * n)

    def test_two_processes_on_one_database_end_with_exact_balances(self):
        self.check_processes_share_one_database(2)

    def test_three_processes_on_one_database_end_with_exact_balances(self):
        self.check_processes_share_one_database(3)

    def test_idempotent_retry_on_another_process_replays(self):
        self.start_fleet(3)
        a, b, c = self.fleet.ports
        method, path, body = self.op_body("put", VARIANTS[0], 3)
        first = call(a, method, path, body, key="till-9-receipt-1")
        again = call(b, method, path, body, key="till-9-receipt-1")
        self.assertEqual(first[0], 200, first)
        self.assertEqual(first, again)
        self.assertEqual(self.store_balances(c), {VARIANTS[0]: 3})
        body["changes"][0]["change"] = 4     # same key, other request: refused
        status, answer = call(c, method, path, body, key="till-9-receipt-1")
        self.assertEqual((status, answer["errorType"]), (409, "CONFLICT"))
        self.assertEqual(self.store_balances(a), {VARIANTS[0]: 3})

    def test_sigkill_under_load_and_delivery_loses_and_doubles_nothing(self):
        self.start_fleet(2)
        receiver = Receiver()
        try:
            self.run_sigkill(receiver)
        finally:
            receiver.close()

    def lease_holder(self):
        owner = psql(self.fleet.db, "SELECT owner FROM zinv_server.webhook_leases"
                     " WHERE expires_at > clock_timestamp()")
        return owner and int(owner.split(":")[-2])

    def run_sigkill(self, receiver):
        ports, procs = self.fleet.ports, self.fleet.procs
        status, body = call(ports[1], "POST", "/organizations/self/subscriptions", {
            "uuid": SUB, "transportName": "WEBHOOK", "eventNames": ["InventoryBalanceChanged"],
            "destination": receiver.url("f"), "contactEmail": "ops@example.com"})
        self.assertEqual(status, 200, body)
        wait_for("a lease holder", lambda: self.lease_holder() in (p.pid for p in procs))
        # /metrics tells which process delivers it: exactly one.
        wait_for("lease ownership in /metrics", lambda: sorted(
            metric(p, "zinv_webhook_lease_owned", {"subscription": SUB}) for p in ports)
            == [0.0, 1.0])
        holder = [p.pid for p in procs].index(self.lease_holder())
        survivor = 1 - holder
        killed = {}

        def kill_midway(i):
            if i == 8 and not killed:
                procs[holder].send_signal(signal.SIGKILL)
                killed["at"] = time.monotonic()

        # One variant, one unit a change: the STORE balances the receiver
        # sees must be 1, 2, 3, ... with nothing missing, in order.
        expected, keys = self.load(clients=4, per_client=20, variants=VARIANTS[:1], qtys=(1,),
                                   during=kill_midway)
        total = expected[VARIANTS[0]]
        self.assertIn("at", killed)
        self.assertGreater(self.retried_elsewhere, 0, "no client had to move on")
        procs[holder].wait()
        # The survivor took the lease (after the load: measured from the kill).
        wait_for("the survivor's lease", lambda: metric(
            ports[survivor], "zinv_webhook_lease_owned", {"subscription": SUB}) == 1.0,
            seconds=BOUND + 5)
        self.assertEqual(self.store_balances(ports[survivor]), {VARIANTS[0]: total})
        self.assert_journal(keys)

        def balances():
            return [int(json.loads(e["payload"])["balanceAfter"][0]["balance"])
                    for _, e in receiver.delivered("f")
                    if e["eventName"] == "InventoryBalanceChanged"]
        wait_for("every event delivered", lambda: len(set(balances())) >= total, seconds=20)
        got = [e for _, e in receiver.delivered("f") if e["eventName"] != "TestMessage"]
        ids = [e["messageId"] for e in got]
        twice = {m for m in ids if ids.count(m) > 1}
        self.assertLessEqual(len(twice), 1, "only the in-flight message may come twice")
        seen, ordered = set(), []
        for e, m in zip(got, ids):
            if m not in seen:
                seen.add(m)
                ordered.append(int(json.loads(e["payload"])["balanceAfter"][0]["balance"]))
        self.assertEqual(ordered, list(range(1, total + 1)))
        self.assertEqual(self.fleet.stop()[survivor], 0)

    def test_survivor_takes_a_killed_owners_lease_within_the_bound(self):
        self.start_fleet(2)
        receiver = Receiver()
        try:
            ports, procs = self.fleet.ports, self.fleet.procs
            status, body = call(ports[0], "POST", "/organizations/self/subscriptions", {
                "uuid": SUB, "transportName": "WEBHOOK", "eventNames": [],
                "destination": receiver.url("t"), "contactEmail": "ops@example.com"})
            self.assertEqual(status, 200, body)
            wait_for("a lease holder", lambda: self.lease_holder() in (p.pid for p in procs))
            holder = [p.pid for p in procs].index(self.lease_holder())
            survivor = 1 - holder
            procs[holder].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            wait_for("the survivor's lease", lambda: self.lease_holder() == procs[survivor].pid,
                     seconds=BOUND + 5)
            took = time.monotonic() - killed
            print("\n  failover: the survivor took the lease %.2f s after SIGKILL "
                  "(lease %.1f s, bound %.1f s)" % (took, LEASE, BOUND), file=sys.stderr)
            # The bound, plus a second for a busy machine.
            self.assertLess(took, BOUND + 1.0)
            # And it delivers.
            method, path, body = self.op_body("put", VARIANTS[0], 1)
            self.assertEqual(call(ports[survivor], method, path, body)[0], 200)
            wait_for("a delivery by the survivor", lambda: any(
                e["eventName"] == "InventoryBalanceChanged" for _, e in receiver.delivered("t")))
        finally:
            receiver.close()

    def test_sigterm_releases_the_lease_at_once(self):
        self.start_fleet(2)
        ports, procs = self.fleet.ports, self.fleet.procs
        status, body = call(ports[0], "POST", "/organizations/self/subscriptions", {
            "uuid": SUB, "transportName": "WEBHOOK", "eventNames": [],
            "destination": "http://127.0.0.1:9/none", "contactEmail": "ops@example.com"})
        self.assertEqual(status, 200, body)
        wait_for("a lease holder", lambda: self.lease_holder() in (p.pid for p in procs))
        holder = [p.pid for p in procs].index(self.lease_holder())
        procs[holder].terminate()
        self.assertEqual(procs[holder].wait(timeout=15), 0)
        self.assertEqual(psql(self.fleet.db, "SELECT count(*) FROM zinv_server.webhook_leases"
                              " WHERE owner LIKE '%%:%d:%%'" % procs[holder].pid), "0")


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv.pop(1))
    if not os.environ.get("ZINV_TEST_PG"):
        sys.exit("test_fleet.py: ZINV_TEST_PG is not set; run it under tests/pg/with-cluster.sh")
    unittest.main(verbosity=2)
