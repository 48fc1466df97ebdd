#!/usr/bin/env python3
"""End-to-end test of zinv-server's webhooks, with Python's standard library.

    python3 test_webhooks.py build/examples/zinv-server

A receiver on loopback (http.server) records every POST it gets and can be
told to fail.  The server runs with a short retry schedule.  Checked:
subscription CRUD and its errors, the TestMessage first, delivery in
journal order, the X-iZettle-Signature (HMAC-SHA256 over timestamp "."
payload), the eventNames filter (low-stock crossings alone), retries with a
stable messageId, FAILING while failing and ACTIVE after, no lost event
across a SIGKILL and a restart, even between two events of one batch.  The
memory store keeps subscriptions in memory.  With ZINV_TEST_WEBHOOKS_DB set to a
PostgreSQL conninfo the same checks run on a PostgreSQL store.
"""
import hashlib
import hmac
import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVER = None

ORG = "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
OTHER_ORG = "3c0b2a5f-1d2e-4f66-8b4c-8e2f3a4b5c6d"
P1 = "7a51c3d0-9f3b-11ee-b962-0242ac120002"
V1 = "7a51c6a0-9f3b-11ee-b962-0242ac120002"
P2 = "8c2f0e1a-9f3b-11ee-a1b2-0242ac120002"
P3 = "9d3a1f2b-9f3b-11ee-a1b2-0242ac120002"
V4 = "9d3a2233-9f3b-11ee-a1b2-0242ac120002"
SUB_A = "5f1d3c2b-0a9e-4d8c-b7a6-1e2f3a4b5c6d"
SUB_B = "6a2e4d3c-1b0f-4e9d-a8b7-2f3a4b5c6d7e"
SUB_C = "7b3f5e4d-2c1a-4fae-b9c8-3a4b5c6d7e8f"
WRITER, READER, OTHER = "writer-token", "reader-token", "other-org-token"
RETRY = "0.2,0.3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def fresh_pg_database(conninfo):
    """A new, empty database on the cluster of `conninfo` (a key=value
    string), made with psql; its conninfo.  Fails loudly when it cannot."""
    name = "t_%d_%d" % (os.getpid(), next(_databases))
    psql = os.path.join(os.environ.get("ZINV_TEST_PG_BIN", "/usr/bin"), "psql")
    subprocess.run([psql, "-qX", "-v", "ON_ERROR_STOP=1", "-d", conninfo,
                    "-c", "CREATE DATABASE " + name], check=True)
    return conninfo + " dbname=" + name


_databases = itertools.count(1)


class QuietServer(ThreadingHTTPServer):
    """A sender killed mid-request (the SIGKILL tests) resets its connection:
    expected, so not printed; any other handler error still is."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class Receiver:
    """Records each POST to /hook/<name>.  Names in `failing` answer 500,
    and so does a name once it accepted `limit[name]` deliveries."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = {}   # name -> [(ok, signature header, envelope text)]
        self.failing = set()
        self.limit = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive, as a real receiver

            def do_POST(self):
                name = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.lock:
                    accepted = sum(a[0] for a in receiver.received.get(name, []))
                    ok = (name not in receiver.failing and
                          accepted < receiver.limit.get(name, accepted + 1))
                    receiver.received.setdefault(name, []).append(
                        (ok, self.headers.get("X-iZettle-Signature"), body))
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return "http://127.0.0.1:%d/hook/%s" % (self.port, name)

    def attempts(self, name):
        with self.lock:
            return list(self.received.get(name, []))

    def delivered(self, name):
        return [(sig, json.loads(body)) for ok, sig, body in self.attempts(name) if ok]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def signature(key, envelope):
    """The documented algorithm: hex HMAC-SHA256(key, timestamp "." payload)."""
    return hmac.new(key.encode(), (envelope["timestamp"] + "." + envelope["payload"]).encode(),
                    hashlib.sha256).hexdigest()


class Webhooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.tokens = os.path.join(cls.tmp.name, "tokens.json")
        with open(cls.tokens, "w") as f:
            json.dump({"tokens": [
                {"token": WRITER, "organizationUuid": ORG,
                 "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]},
                {"token": READER, "organizationUuid": ORG, "scopes": ["READ:PRODUCT"]},
                {"token": OTHER, "organizationUuid": OTHER_ORG,
                 "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]},
            ]}, f)
        # ZINV_TEST_WEBHOOKS_DB: a PostgreSQL conninfo to run the same
        # checks on (make check-fleet), a new database per class; else an
        # SQLite file.
        base = os.environ.get("ZINV_TEST_WEBHOOKS_DB")
        cls.db = fresh_pg_database(base) if base else os.path.join(cls.tmp.name, "zinv.db")
        cls.port = free_port()
        cls.receiver = Receiver()
        cls.keys = {}
        cls.start()

    @classmethod
    def start(cls, db=None):
        cls.log = open(os.path.join(cls.tmp.name, "server.log"), "a")
        cls.proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:%d" % cls.port, "--db", db or cls.db,
             "--tokens", cls.tokens, "--webhook-retry", RETRY],
            stdout=subprocess.DEVNULL, stderr=cls.log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", cls.port), timeout=0.2).close()
                return
            except OSError:
                if cls.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the server did not start")
                time.sleep(0.05)

    @classmethod
    def stop(cls):
        """SIGTERM; the exit status (0 when the server stopped cleanly)."""
        if cls.proc.poll() is None:
            cls.proc.terminate()
            cls.proc.wait(timeout=15)
        cls.log.close()
        return cls.proc.returncode

    @classmethod
    def tearDownClass(cls):
        cls.stop()
        cls.receiver.close()
        cls.tmp.cleanup()

    def call(self, method, path, body=None, token=WRITER):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=h)
        res = conn.getresponse()
        text = res.read().decode()
        conn.close()
        return res.status, json.loads(text) if text else None

    def subscribe(self, uuid, name, event_names=()):
        status, body = self.call("POST", "/organizations/self/subscriptions", {
            "uuid": uuid, "transportName": "WEBHOOK", "eventNames": list(event_names),
            "destination": self.receiver.url(name), "contactEmail": "ops@example.com"})
        self.assertEqual(status, 200, body)
        type(self).keys[name] = body["signingKey"]
        return body

    def locations(self):
        status, body = self.call("GET", "/organizations/self/locations")
        self.assertEqual(status, 200, body)
        return {loc["type"]: loc["uuid"] for loc in body}

    def add_stock(self, count, quantity=1):
        loc = self.locations()
        for _ in range(count):
            status, body = self.call("PUT", "/organizations/self/inventory", {"changes": [
                {"productUuid": P1, "variantUuid": V1, "fromLocationUuid": loc["SUPPLIER"],
                 "toLocationUuid": loc["STORE"], "change": quantity}]})
            self.assertEqual(status, 200, body)

    def status_of(self, uuid):
        status, body = self.call("GET", "/organizations/self/subscriptions")
        self.assertEqual(status, 200, body)
        return {s["uuid"]: s["status"] for s in body}[uuid]

    def assert_signed(self, name):
        for sig, envelope in self.receiver.delivered(name):
            self.assertEqual(sig, signature(self.keys[name], envelope), envelope)

    def balances(self, name):
        """STORE balances of V1 after each InventoryBalanceChanged delivered."""
        return [int(json.loads(e["payload"])["balanceAfter"][0]["balance"])
                for _, e in self.receiver.delivered(name)
                if e["eventName"] == "InventoryBalanceChanged"]

    def test_1_subscription_crud_and_errors(self):
        path = "/organizations/self/subscriptions"
        status, body = self.call("GET", path, token=None)
        self.assertEqual((status, body["errorType"]), (401, "UNAUTHORIZED"))

        created = self.subscribe(SUB_A, "a")
        self.assertEqual({k: v for k, v in created.items() if k not in ("updated", "signingKey")},
                         {"uuid": SUB_A, "transportName": "WEBHOOK", "eventNames": [],
                          "destination": self.receiver.url("a"),
                          "contactEmail": "ops@example.com", "status": "ACTIVE"})
        self.assertRegex(created["signingKey"], "^[0-9a-f]{64}$")
        self.assertRegex(created["updated"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

        status, body = self.call("GET", "/organizations/%s/subscriptions" % ORG, token=READER)
        self.assertEqual(status, 200, body)
        self.assertEqual([s["uuid"] for s in body], [SUB_A])
        self.assertNotIn("signingKey", body[0])

        status, body = self.call("POST", path, {
            "uuid": SUB_A, "transportName": "WEBHOOK", "eventNames": [],
            "destination": self.receiver.url("a"), "contactEmail": "ops@example.com"})
        self.assertEqual((status, body["errorType"]), (400, "SUBSCRIPTION_ALREADY_EXIST"))
        status, body = self.call("PUT", path + "/" + SUB_B, {"contactEmail": "x@example.com"})
        self.assertEqual((status, body["errorType"]), (404, "SUBSCRIPTION_NOT_FOUND"))
        status, body = self.call("DELETE", path + "/" + SUB_B)
        self.assertEqual((status, body["errorType"]), (404, "SUBSCRIPTION_NOT_FOUND"))
        status, body = self.call("GET", "/organizations/%s/subscriptions" % OTHER_ORG)
        self.assertEqual((status, body["errorType"]), (403, "FORBIDDEN"))
        status, body = self.call("POST", path, {"uuid": SUB_B}, token=READER)
        self.assertEqual((status, body["errorType"]), (403, "FORBIDDEN"))
        # Another organization does not see this one's subscriptions.
        status, body = self.call("DELETE", path + "/" + SUB_A, token=OTHER)
        self.assertEqual((status, body["errorType"]), (404, "SUBSCRIPTION_NOT_FOUND"))
        status, body = self.call("POST", path, {"uuid": SUB_B, "transportName": "WEBHOOK",
                                                "destination": "ftp://x", "contactEmail": "a@b"})
        self.assertEqual((status, body["errorType"]), (400, "VALIDATION_ERROR"))
        self.assertEqual([v["propertyName"] for v in body["violations"]], ["destination"])

        # Update, then delete by the /uuid/ path.
        self.subscribe(SUB_B, "b", ["InventoryBalanceChanged"])
        status, body = self.call("PUT", path + "/" + SUB_B, {"contactEmail": "new@example.com",
                                                             "eventNames": []})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["contactEmail"], body["eventNames"], body["destination"]),
                         ("new@example.com", [], self.receiver.url("b")))
        self.assertNotIn("signingKey", body)
        status, body = self.call("DELETE", path + "/uuid/" + SUB_B)
        self.assertEqual((status, body), (204, None))
        status, body = self.call("GET", path)
        self.assertEqual([s["uuid"] for s in body], [SUB_A])

    def test_2_delivery_is_signed_and_in_journal_order(self):
        self.subscribe(SUB_C, "c", ["InventoryTrackingStarted"])
        wait_for("the TestMessage", lambda: len(self.receiver.delivered("a")) >= 1)
        loc = self.locations()
        status, body = self.call("POST", "/organizations/self/v2/inventory/bulk", {
            "productChanges": [
                {"productUuid": P1, "trackingStatusChange": "START_TRACKING",
                 "variantChanges": [{"variantUuid": V1, "fromLocationUuid": loc["SUPPLIER"],
                                     "toLocationUuid": loc["STORE"], "change": 1}]},
                {"productUuid": P2, "trackingStatusChange": "START_TRACKING",
                 "variantChanges": []}]})
        self.assertEqual(status, 200, body)
        self.add_stock(10)
        wait_for("13 deliveries", lambda: len(self.receiver.delivered("a")) >= 14)
        time.sleep(0.3)
        got = self.receiver.delivered("a")
        names = [e["eventName"] for _, e in got]
        self.assertEqual(names, ["TestMessage", "InventoryTrackingStarted",
                                 "InventoryTrackingStarted"] +
                         ["InventoryBalanceChanged"] * 11)
        self.assertEqual(got[0][1]["payload"], '{"data":"payload"}')
        self.assertEqual(self.balances("a"), list(range(1, 12)))
        self.assert_signed("a")
        self.assertTrue(all(e["organizationUuid"] == ORG for _, e in got))
        self.assertEqual(len({e["messageId"] for _, e in got}), len(got))
        started = json.loads(got[1][1]["payload"])
        self.assertEqual((started["organizationUuid"], started["productUuid"]), (ORG, P1))
        # The filtered subscription got only what it asked for.
        wait_for("c's deliveries", lambda: len(self.receiver.delivered("c")) >= 3)
        self.assertEqual([e["eventName"] for _, e in self.receiver.delivered("c")],
                         ["TestMessage", "InventoryTrackingStarted", "InventoryTrackingStarted"])
        self.assert_signed("c")

    def test_3_failures_retry_the_same_message_then_recover(self):
        before = len(self.receiver.delivered("a"))
        self.receiver.failing.add("a")
        self.add_stock(3)
        wait_for("three failed attempts",
                 lambda: sum(not ok for ok, _, _ in self.receiver.attempts("a")) >= 3)
        self.assertEqual(self.status_of(SUB_A), "FAILING")
        failed = [json.loads(b) for ok, _, b in self.receiver.attempts("a") if not ok]
        self.assertEqual(len({e["messageId"] for e in failed}), 1, failed)
        self.receiver.failing.discard("a")
        wait_for("the queued three", lambda: len(self.receiver.delivered("a")) >= before + 3)
        wait_for("ACTIVE again", lambda: self.status_of(SUB_A) == "ACTIVE")
        got = self.receiver.delivered("a")[before:]
        self.assertEqual(got[0][1]["messageId"], failed[0]["messageId"])
        self.assertEqual(self.balances("a")[-3:], [12, 13, 14])
        self.assert_signed("a")

    def test_4_sigkill_and_restart_lose_nothing(self):
        before = len(self.receiver.delivered("a"))
        self.receiver.failing.add("a")
        self.add_stock(5)
        wait_for("a failed attempt",
                 lambda: any(not ok for ok, _, _ in self.receiver.attempts("a")[before:]))
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.receiver.failing.discard("a")
        type(self).start()
        wait_for("the five after restart", lambda: len(self.receiver.delivered("a")) >= before + 5)
        time.sleep(0.3)
        self.assertEqual(self.balances("a"), list(range(1, 20)))
        ids = [e["messageId"] for _, e in self.receiver.delivered("a")]
        self.assertEqual(len(ids), len(set(ids)), "nothing was acknowledged twice")
        self.assert_signed("a")
        # Delivery goes on live after the restart.
        self.add_stock(1)
        wait_for("a live event", lambda: self.balances("a")[-1:] == [20])

    def test_5_restart_resumes_inside_a_batch_of_several_events(self):
        before = len(self.receiver.delivered("a"))
        self.receiver.limit["a"] = before + 1
        loc = self.locations()
        status, body = self.call("POST", "/organizations/self/v2/inventory/bulk", {
            "productChanges": [
                {"productUuid": P3, "trackingStatusChange": "START_TRACKING",
                 "variantChanges": [{"variantUuid": V4, "fromLocationUuid": loc["SUPPLIER"],
                                     "toLocationUuid": loc["STORE"], "change": 2}]}]})
        self.assertEqual(status, 200, body)
        wait_for("the second event of the batch to fail",
                 lambda: any(not ok for ok, _, _ in self.receiver.attempts("a")[before:]))
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        del self.receiver.limit["a"]
        type(self).start()
        wait_for("the rest of the batch", lambda: len(self.receiver.delivered("a")) >= before + 2)
        time.sleep(0.3)
        got = [e for _, e in self.receiver.delivered("a")[before:]]
        self.assertEqual([e["eventName"] for e in got],
                         ["InventoryTrackingStarted", "InventoryBalanceChanged"])
        self.assertEqual(json.loads(got[0]["payload"])["productUuid"], P3)
        after = json.loads(got[1]["payload"])["balanceAfter"][0]
        self.assertEqual((after["variantUuid"], after["balance"]), (V4, "2"))
        self.assert_signed("a")

    def test_6_low_stock_crossings_are_delivered_alone_when_asked_for(self):
        self.subscribe(SUB_B, "l", ["InventoryLowStockChanged"])
        wait_for("l's TestMessage", lambda: len(self.receiver.delivered("l")) >= 1)
        loc = self.locations()
        status, body = self.call("PUT", "/custom-low-stock/locations/%s" % loc["STORE"], {
            "productUuid": P3, "variantUuid": V4, "lowStockLevel": 2, "lowStockAlert": True})
        self.assertEqual(status, 204, body)
        for to, frm, change in (("SOLD", "STORE", 1), ("STORE", "SUPPLIER", 5)):
            status, body = self.call("PUT", "/organizations/self/inventory", {"changes": [
                {"productUuid": P3, "variantUuid": V4, "fromLocationUuid": loc[frm],
                 "toLocationUuid": loc[to], "change": change}]})
            self.assertEqual(status, 200, body)
        wait_for("two crossings", lambda: len(self.receiver.delivered("l")) >= 3)
        time.sleep(0.3)
        got = [e for _, e in self.receiver.delivered("l")]
        self.assertEqual([e["eventName"] for e in got],
                         ["TestMessage"] + ["InventoryLowStockChanged"] * 2)
        crossings = [json.loads(e["payload"]) for e in got[1:]]
        self.assertEqual([(c["variantUuid"], c["low"]) for c in crossings],
                         [(V4, True), (V4, False)])
        self.assert_signed("l")

    def test_7_memory_store_keeps_subscriptions_in_memory(self):
        self.assertEqual(self.stop(), 0, "a clean stop of the restarted server")
        type(self).start(db=":memory:")
        status, body = self.call("GET", "/organizations/self/subscriptions")
        self.assertEqual((status, body), (200, []))
        self.subscribe(SUB_B, "m")
        status, body = self.call("POST", "/organizations/self/v2/inventory/bulk", {
            "productChanges": [{"productUuid": P1, "trackingStatusChange": "START_TRACKING",
                                "variantChanges": []}]})
        self.assertEqual(status, 200, body)
        self.add_stock(2, quantity=5)
        wait_for("memory deliveries", lambda: len(self.receiver.delivered("m")) >= 4)
        self.assertEqual(self.balances("m"), [5, 10])
        self.assert_signed("m")
        self.assertEqual(self.stop(), 0)



class HangingReceiver(unittest.TestCase):
    """A receiver that accepts and never answers holds up only its own
    subscription: each subscription has its own delivery worker."""
    setUpClass = Webhooks.__dict__["setUpClass"]
    tearDownClass = Webhooks.__dict__["tearDownClass"]
    start = Webhooks.__dict__["start"]
    stop = Webhooks.__dict__["stop"]
    call, subscribe, locations, add_stock = (
        Webhooks.call, Webhooks.subscribe, Webhooks.locations, Webhooks.add_stock)

    def test_a_hanging_receiver_never_delays_another_subscription(self):
        hang = socket.socket()
        hang.bind(("127.0.0.1", 0))
        hang.listen(16)          # accepted by the kernel, never read or answered
        try:
            status, body = self.call("POST", "/organizations/self/subscriptions", {
                "uuid": SUB_A, "transportName": "WEBHOOK", "eventNames": [],
                "destination": "http://127.0.0.1:%d/hang" % hang.getsockname()[1],
                "contactEmail": "ops@example.com"})
            self.assertEqual(status, 200, body)
            self.subscribe(SUB_B, "live")
            status, body = self.call("POST", "/organizations/self/v2/inventory/bulk", {
                "productChanges": [{"productUuid": P1, "trackingStatusChange": "START_TRACKING",
                                    "variantChanges": []}]})
            self.assertEqual(status, 200, body)
            self.add_stock(3)
            # Well inside the 10 s a hanging POST takes to time out.
            wait_for("the live subscription's deliveries",
                     lambda: len(self.receiver.delivered("live")) >= 5, seconds=4)
        finally:
            hang.close()


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
