#!/usr/bin/env python3
"""End-to-end test of zinv-server over real HTTP, with Python's standard library.

    python3 test_server.py build/examples/zinv-server

Starts the server on a free loopback port with a tokens file and a fresh
SQLite database, drives a whole scenario (locations, bulk tracking with
stock, sales, reads, low stock, v3 movements and stock, a forbidden
organization, a read-only token, malformed bodies, an oversized body,
idempotent retries), stops it with SIGTERM and checks the access log, the
clean exit, and the start-up errors (port taken, database unusable).
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SERVER = None

ORG = "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
OTHER_ORG = "3c0b2a5f-1d2e-4f66-8b4c-8e2f3a4b5c6d"
P1 = "7a51c3d0-9f3b-11ee-b962-0242ac120002"
V1 = "7a51c6a0-9f3b-11ee-b962-0242ac120002"
V2 = "7a51c7e0-9f3b-11ee-b962-0242ac120002"
P2 = "8c2f0e1a-9f3b-11ee-a1b2-0242ac120002"
V3 = "8c2f1102-9f3b-11ee-a1b2-0242ac120002"
EXTERNAL = "947d712a-892d-11ea-bc55-0242ac130003"

WRITER, READER, OTHER = "writer-token", "reader-token", "other-org-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited early: %s" % proc.stderr.read())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not listen on port %d" % port)


class ServerScenario(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        tokens = os.path.join(cls.tmp.name, "tokens.json")
        with open(tokens, "w") as f:
            json.dump({"tokens": [
                {"token": WRITER, "organizationUuid": ORG,
                 "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]},
                {"token": READER, "organizationUuid": ORG, "scopes": ["READ:PRODUCT"]},
                {"token": OTHER, "organizationUuid": OTHER_ORG,
                 "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]},
            ]}, f)
        cls.port = free_port()
        cls.db = os.path.join(cls.tmp.name, "zinv.db")
        cls.proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:%d" % cls.port, "--db", cls.db,
             "--tokens", tokens],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_port(cls.port, cls.proc)
        cls.requests = 0

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait()
        cls.proc.stdout.close()
        cls.proc.stderr.close()
        cls.tmp.cleanup()

    def call(self, method, path, body=None, token=WRITER, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        conn.request(method, path, body=data, headers=h)
        res = conn.getresponse()
        text = res.read().decode()
        type(self).requests += 1
        conn.close()
        parsed = json.loads(text) if text else None
        if text:
            self.assertEqual(res.getheader("Content-Type"), "application/json", path)
        return res.status, parsed, res

    def oversized_put(self):
        """Declare a body over 8 MiB and send only its start: the answer
        must come without the server reading the rest."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"PUT /organizations/self/inventory HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\nAuthorization: Bearer " + WRITER.encode() +
                      b"\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n{\"changes\": [" % (8 * 1024 * 1024 + 1))
            res = http.client.HTTPResponse(s)
            res.begin()
            body = json.loads(res.read().decode())
            self.assertEqual(res.getheader("Content-Type"), "application/json")
        type(self).requests += 1
        return res.status, body

    def locations(self):
        status, body, _ = self.call("GET", "/organizations/self/locations")
        self.assertEqual(status, 200)
        return {loc["type"]: loc["uuid"] for loc in body}

    def test_1_locations_are_created_on_first_use(self):
        status, body, _ = self.call("GET", "/organizations/%s/locations/" % ORG)
        self.assertEqual(status, 200)
        self.assertEqual(sorted(l["type"] for l in body), ["BIN", "SOLD", "STORE", "SUPPLIER"])
        store = [l for l in body if l["type"] == "STORE"][0]
        self.assertTrue(store["default"])
        self.assertEqual(store["description"], "System generated location")
        self.assertEqual(self.locations(), {l["type"]: l["uuid"] for l in body})

    def test_2_bulk_tracking_with_stock_then_sales_and_reads(self):
        loc = self.locations()
        status, body, _ = self.call("POST", "/organizations/self/v2/inventory/bulk", {
            "externalUuid": EXTERNAL,
            "productChanges": [
                {"productUuid": P1, "trackingStatusChange": "START_TRACKING",
                 "variantChanges": [
                     {"variantUuid": V1, "fromLocationUuid": loc["SUPPLIER"],
                      "toLocationUuid": loc["STORE"], "change": 10},
                     {"variantUuid": V2, "fromLocationUuid": loc["SUPPLIER"],
                      "toLocationUuid": loc["STORE"], "change": "4"}]},
                {"productUuid": P2, "trackingStatusChange": "START_TRACKING",
                 "variantChanges": []}]})
        self.assertEqual(status, 200, body)
        self.assertEqual({v["variantUuid"]: v["balance"] for v in body["variants"]},
                         {V1: "10", V2: "4"})

        # A sale and a broken item at the till, and a delivery of P2.
        status, body, _ = self.call("PUT", "/organizations/self/inventory", {"changes": [
            {"productUuid": P1, "variantUuid": V1, "fromLocationUuid": loc["STORE"],
             "toLocationUuid": loc["SOLD"], "change": 3},
            {"productUuid": P1, "variantUuid": V1, "fromLocationUuid": loc["STORE"],
             "toLocationUuid": loc["BIN"], "change": 1},
            {"productUuid": P2, "variantUuid": V3, "fromLocationUuid": loc["SUPPLIER"],
             "toLocationUuid": loc["STORE"], "change": 7}]})
        self.assertEqual(status, 200, body)
        self.assertEqual({v["variantUuid"]: v["balance"] for v in body["variants"]},
                         {V1: "6", V3: "7"})

        status, body, _ = self.call("GET", "/organizations/self/inventory/locations?type=store")
        self.assertEqual(status, 200, body)
        self.assertEqual(sorted(body["trackedProducts"]), sorted([P1, P2]))
        self.assertEqual({v["variantUuid"]: v["balance"] for v in body["variants"]},
                         {V1: "6", V2: "4", V3: "7"})

        status, body, _ = self.call(
            "GET", "/organizations/self/inventory/locations/%s/products/%s" % (loc["STORE"], P1),
            token=READER)
        self.assertEqual(status, 200, body)
        self.assertNotIn("trackedProducts", body)
        self.assertEqual(len(body["variants"]), 2)

    def test_3_low_stock_levels(self):
        loc = self.locations()
        status, _, _ = self.call("PUT", "/custom-low-stock/locations/%s" % loc["STORE"], {
            "productUuid": P1, "variantUuid": V1, "lowStockLevel": 5, "lowStockAlert": True})
        self.assertEqual(status, 204)
        status, body, _ = self.call("GET", "/custom-low-stock/v2/locations/%s" % loc["STORE"])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["organizationUuid"], ORG)
        entries = body["customLowStockLevelsForProducts"][0]["customLowStockLevelForVariants"]
        self.assertEqual(entries, [{"variantUuid": V1, "customLowStockLevel": 5,
                                    "lowStockAlert": True}])

    def test_4_v3_movements_and_stock_pages(self):
        loc = self.locations()
        status, body, _ = self.call("POST", "/v3/movements", {
            "movements": [{"productUuid": P1, "variantUuid": V1, "change": 2,
                           "from": loc["STORE"], "to": loc["SOLD"]}],
            "identifier": EXTERNAL})
        self.assertEqual(status, 204, body)
        seen, path = [], "/v3/stock/%s?limit=2" % loc["STORE"]
        while path:
            status, body, res = self.call("GET", path, token=READER)
            self.assertEqual(status, 200, body)
            seen += [(s["variantUuid"], s["balance"]) for s in body]
            link = res.getheader("Link")
            path = link[1:link.index(">")] if link else None
            if path:
                self.assertTrue(path.startswith("/v3/stock"), link)
        self.assertEqual(sorted(seen), sorted([(V1, 4), (V2, 4), (V3, 7)]))

    def test_5_refusals(self):
        loc = self.locations()
        status, body, _ = self.call("GET", "/organizations/self/locations", token=None)
        self.assertEqual((status, body["errorType"]), (401, "UNAUTHORIZED"))
        status, body, _ = self.call("GET", "/organizations/%s/locations" % OTHER_ORG)
        self.assertEqual((status, body["errorType"]), (403, "FORBIDDEN"))
        change = {"changes": [{"productUuid": P1, "variantUuid": V1,
                               "fromLocationUuid": loc["SUPPLIER"],
                               "toLocationUuid": loc["STORE"], "change": 1}]}
        status, body, _ = self.call("PUT", "/organizations/self/inventory", change, token=READER)
        self.assertEqual((status, body["errorType"]), (403, "FORBIDDEN"))
        # Another organization's token cannot see this one's locations.
        status, body, _ = self.call("PUT", "/organizations/self/inventory", change, token=OTHER)
        self.assertEqual((status, body["errorType"]), (404, "ENTITY_NOT_FOUND"))
        status, body, _ = self.call("PUT", "/organizations/self/inventory", raw="{not json")
        self.assertEqual((status, body["errorType"], body["violations"]),
                         (400, "VALIDATION_ERROR", []))
        bad = json.loads(json.dumps(change))
        bad["changes"][0]["change"] = 0
        status, body, _ = self.call("PUT", "/organizations/self/inventory", bad)
        self.assertEqual((status, body["errorType"]), (400, "VALIDATION_ERROR"))
        self.assertEqual(body["violations"][0]["propertyName"], "changes[0].change")
        status, body, _ = self.call("GET", "/no/such/path")
        self.assertEqual((status, body["errorType"]), (404, "NOT_FOUND"))
        status, body = self.oversized_put()
        self.assertEqual((status, body["errorType"]), (413, "PAYLOAD_TOO_LARGE"))
        # Nothing of the refused requests was stored.
        status, body, _ = self.call("GET", "/organizations/self/inventory/locations?type=STORE")
        self.assertEqual({v["variantUuid"]: v["balance"] for v in body["variants"]},
                         {V1: "4", V2: "4", V3: "7"})

    def test_6_idempotent_retry(self):
        loc = self.locations()
        change = {"changes": [{"productUuid": P2, "variantUuid": V3,
                               "fromLocationUuid": loc["STORE"],
                               "toLocationUuid": loc["SOLD"], "change": 1}]}
        key = {"Idempotency-Key": "till-7-receipt-42"}
        first = self.call("PUT", "/organizations/self/inventory", change, headers=key)
        again = self.call("PUT", "/organizations/self/inventory", change, headers=key)
        self.assertEqual((first[0], first[1]), (again[0], again[1]))
        self.assertEqual(first[1]["variants"][0]["balance"], "6")
        change["changes"][0]["change"] = 2
        status, body, _ = self.call("PUT", "/organizations/self/inventory", change, headers=key)
        self.assertEqual((status, body["errorType"]), (409, "CONFLICT"))

    def test_7_sigterm_finishes_and_logs(self):
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=10), 0)
        log = self.proc.stderr.read()
        lines = [l for l in log.splitlines() if l.startswith(("GET ", "PUT ", "POST "))]
        self.assertEqual(len(lines), type(self).requests, log)
        # Connections close in any order, so log lines need not follow requests.
        first = [l.split() for l in lines if "/organizations/%s/locations/" % ORG in l]
        self.assertEqual(len(first), 1, log)
        method, path, status, micros = first[0][:4]
        self.assertEqual((method, status), ("GET", "200"))
        self.assertTrue(micros.endswith("us") and int(micros[:-2]) >= 0)
        self.assertIn("zinv-server: stopped", log)


class StartupErrors(unittest.TestCase):
    def run_server(self, *args):
        return subprocess.run([SERVER, *args], capture_output=True, text=True, timeout=10)

    def test_port_taken(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            with tempfile.TemporaryDirectory() as tmp:
                r = self.run_server("--listen", "127.0.0.1:%d" % port,
                                    "--db", os.path.join(tmp, "z.db"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot listen on 127.0.0.1:%d" % port, r.stderr)

    def test_database_cannot_be_opened(self):
        with tempfile.TemporaryDirectory() as tmp:
            garbage = os.path.join(tmp, "garbage.db")
            with open(garbage, "wb") as f:
                f.write(b"this is not a database at all" * 100)
            r = self.run_server("--listen", "127.0.0.1:%d" % free_port(), "--db", garbage)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot open the database", r.stderr)

    def test_bad_tokens_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"tokens": [{"token": "x"}]}')
            f.flush()
            r = self.run_server("--tokens", f.name)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("organizationUuid", r.stderr)


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
