#!/usr/bin/env python3
"""zinv-server's operating surface, over real HTTP.

    python3 test_operating.py build/examples/zinv-server

GET /healthz and /readyz without a token, GET /metrics parsed as Prometheus
text by the Prometheus client's own parser (Debian python3-prometheus-client)
with counters that move, X-Request-Id echoed and logged, a negativePolicy of
DENY from the tokens file making 409 INSUFFICIENT_STOCK reachable, and
SIGTERM under load cutting no request in flight.
"""
import http.client
import json
import os
import signal
import ssl
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

from test_server import free_port, wait_for_port

SERVER = None
ORG = "5d1f0b2c-3a4e-4b6f-8c7d-9e0f1a2b3c4d"
DENY_ORG = "6e2a1c3d-4b5f-4c70-9d8e-0f1a2b3c4d5e"
PRODUCT = "7a51c3d0-9f3b-11ee-b962-0242ac120002"
VARIANT = "7a51c6a0-9f3b-11ee-b962-0242ac120002"


class Server:
    def __init__(self, tmp, *extra):
        self.tokens = os.path.join(tmp, "tokens.json")
        with open(self.tokens, "w") as f:
            json.dump({"tokens": [
                {"token": "allow", "organizationUuid": ORG,
                 "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]},
                {"token": "deny", "organizationUuid": DENY_ORG, "negativePolicy": "DENY",
                 "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"]},
            ]}, f)
        self.db = os.path.join(tmp, "zinv.db")
        self.start(*extra)

    def start(self, *extra):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:%d" % self.port, "--db", self.db,
             "--tokens", self.tokens, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.port, self.proc)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        log = self.proc.stderr.read()
        self.proc.stderr.close()
        return code, log

    def call(self, method, path, body=None, token="allow", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=h)
        res = conn.getresponse()
        text = res.read().decode()
        conn.close()
        return res.status, text, res

    def locations(self, token):
        status, text, _ = self.call("GET", "/organizations/self/locations", token=token)
        assert status == 200, text
        return {loc["type"]: loc["uuid"] for loc in json.loads(text)}

    def move(self, token, frm, to, change, key=None):
        return self.call("PUT", "/organizations/self/inventory", {"changes": [
            {"productUuid": PRODUCT, "variantUuid": VARIANT, "fromLocationUuid": frm,
             "toLocationUuid": to, "change": change}]}, token=token,
            headers={"Idempotency-Key": key} if key else None)

    def metrics(self):
        status, text, res = self.call("GET", "/metrics", token=None)
        assert status == 200, text
        assert res.getheader("Content-Type").startswith("text/plain; version=0.0.4")
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples


class Operating(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.srv = Server(cls.tmp.name)
        for token in ("allow", "deny"):
            status, text, _ = cls.srv.call(
                "POST", "/organizations/self/v2/inventory/bulk", {"productChanges": [
                    {"productUuid": PRODUCT, "trackingStatusChange": "START_TRACKING",
                     "variantChanges": []}]}, token=token)
            assert status == 200, text

    @classmethod
    def tearDownClass(cls):
        if cls.srv.proc.poll() is None:
            cls.srv.proc.kill()
            cls.srv.proc.wait()
            cls.srv.proc.stderr.close()
        cls.tmp.cleanup()

    def test_healthz_and_readyz_need_no_token_and_show_no_org_data(self):
        for path, word in (("/healthz", "alive"), ("/readyz", "ready")):
            status, text, _ = self.srv.call("GET", path, token=None)
            self.assertEqual((status, json.loads(text)), (200, {"status": word}))
            self.assertNotIn(ORG, text)
        status, _, res = self.srv.call("POST", "/healthz", token=None)
        self.assertEqual(status, 405)

    def test_metrics_parse_and_counters_move(self):
        key = ("zinv_http_requests_total",
               (("method", "PUT"), ("route", "/organizations/{org}/inventory"),
                ("status", "200")))
        before = self.srv.metrics()
        loc = self.srv.locations("allow")
        for _ in range(3):
            status, text, _ = self.srv.move("allow", loc["SUPPLIER"], loc["STORE"], 2)
            self.assertEqual(status, 200, text)
        self.srv.call("GET", "/organizations/%s/inventory/locations/%s" % (ORG, loc["STORE"]))
        self.srv.call("GET", "/no/such/%s/path" % uuid.uuid4())
        # A request is counted once its answer has been sent, which can be
        # just after the client has read it (each on its own connection
        # thread): wait, bounded, until the last ones are in.
        wanted = [("zinv_http_requests_total",
                   (("method", "GET"),
                    ("route", "/organizations/{org}/inventory/locations/{uuid}"),
                    ("status", "200"))),
                  ("zinv_http_requests_total",
                   (("method", "GET"), ("route", "other"), ("status", "404")))]
        deadline = time.monotonic() + 5
        after = self.srv.metrics()
        while (not all(k in after for k in wanted) or after.get(key, 0) - before.get(key, 0) < 3) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
            after = self.srv.metrics()
        self.assertEqual(after[key] - before.get(key, 0), 3)
        self.assertEqual(after[("zinv_batches_applied_total", ())]
                         - before[("zinv_batches_applied_total", ())], 3)
        self.assertGreaterEqual(after[("zinv_changes_applied_total", ())]
                                - before[("zinv_changes_applied_total", ())], 3)
        self.assertIn(("zinv_http_requests_total",
                       (("method", "GET"),
                        ("route", "/organizations/{org}/inventory/locations/{uuid}"),
                        ("status", "200"))), after)
        self.assertIn(("zinv_http_requests_total",
                       (("method", "GET"), ("route", "other"), ("status", "404"))), after)
        count = ("zinv_http_request_duration_seconds_count", ())
        inf = ("zinv_http_request_duration_seconds_bucket", (("le", "+Inf"),))
        self.assertGreaterEqual(after[count] - before[count], 5)
        self.assertEqual(after[count], after[inf])
        self.assertIn(("zinv_backend_errors_total", ()), after)

    def test_request_id_is_echoed_or_made(self):
        _, _, res = self.srv.call("GET", "/healthz", token=None,
                                  headers={"X-Request-Id": "abc-123"})
        self.assertEqual(res.getheader("X-Request-Id"), "abc-123")
        _, _, res = self.srv.call("GET", "/healthz", token=None)
        made = res.getheader("X-Request-Id")
        self.assertEqual(str(uuid.UUID(made)), made)
        _, _, res = self.srv.call("GET", "/healthz", token=None,
                                  headers={"X-Request-Id": "has space"})
        self.assertNotEqual(res.getheader("X-Request-Id"), "has space")

    def test_negative_policy_deny_answers_409_insufficient_stock(self):
        loc = self.srv.locations("deny")
        status, text, _ = self.srv.move("deny", loc["SUPPLIER"], loc["STORE"], 1)
        self.assertEqual(status, 200, text)
        status, text, _ = self.srv.move("deny", loc["STORE"], loc["SOLD"], 2)
        self.assertEqual(status, 409, text)
        self.assertEqual(json.loads(text)["errorType"], "INSUFFICIENT_STOCK")
        # The ALLOW organization still sells below zero.
        loc = self.srv.locations("allow")
        status, text, _ = self.srv.move("allow", loc["STORE"], loc["SOLD"], 1000)
        self.assertEqual(status, 200, text)

    def test_z_sigterm_under_load_cuts_no_request_in_flight(self):
        srv = self.srv
        loc = srv.locations("deny")
        start = self.store_balance(loc)
        acked, lock, stop = [], threading.Lock(), threading.Event()

        def client():
            while not stop.is_set():
                key = str(uuid.uuid4())
                try:
                    status, text, _ = srv.move("deny", loc["SUPPLIER"], loc["STORE"], 1, key)
                except OSError:
                    continue  # refused or reset before it was read: not applied
                with lock:
                    acked.append((status, key))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        while len(acked) < 100:
            stop.wait(0.01)
        code, log = srv.stop()
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(code, 0, log)
        self.assertTrue(all(s == 200 for s, _ in acked), acked)
        # Every request the server applied was answered: a restart on the
        # same database shows exactly the acknowledged ones.
        srv.start()
        self.assertEqual(self.store_balance(loc) - start, len(acked))
        self.assertNotIn("(connection closed)", log)

    def subscribe(self, srv, destination):
        status, text, _ = srv.call("POST", "/organizations/self/subscriptions", {
            "uuid": str(uuid.uuid4()), "transportName": "WEBHOOK", "eventNames": [],
            "destination": destination, "contactEmail": "ops@example.com"})
        return status, json.loads(text)

    def test_webhook_destinations_are_http_or_https_only(self):
        for bad in ("ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/"):
            status, body = self.subscribe(self.srv, bad)
            self.assertEqual(status, 400, body)
            self.assertEqual(body["violations"][0]["propertyName"], "destination")
        status, body = self.subscribe(self.srv, "http://127.0.0.1:9/hook")
        self.assertEqual(status, 200, body)  # loopback allowed by default

    def test_webhook_deny_private_refuses_private_destinations(self):
        with tempfile.TemporaryDirectory() as tmp:
            srv = Server(tmp, "--webhook-deny-private")
            try:
                for bad in ("http://127.0.0.1:9/hook", "http://localhost/hook",
                            "https://10.1.2.3/hook", "http://192.168.0.1:8080/",
                            "http://[::1]:9/hook", "http://172.16.0.1/",
                            "http://169.254.169.254/latest", "http://user@127.0.0.1/"):
                    status, body = self.subscribe(srv, bad)
                    self.assertEqual(status, 400, (bad, body))
                    self.assertEqual(body["violations"][0]["developerMessage"],
                                     "must not be a loopback or private address")
                status, body = self.subscribe(srv, "http://93.184.216.34/hook")
                self.assertEqual(status, 200, body)
            finally:
                code, log = srv.stop()
            self.assertEqual(code, 0, log)

    def test_tls_serves_https_with_the_given_certificate(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            srv = Server(tmp, "--tls-cert", cert, "--tls-key", key)
            try:
                ctx = ssl.create_default_context(cafile=cert)
                conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10,
                                                   context=ctx)
                conn.request("GET", "/organizations/self/locations",
                             headers={"Authorization": "Bearer allow"})
                res = conn.getresponse()
                self.assertEqual(res.status, 200)
                self.assertEqual(len(json.loads(res.read())), 4)
                conn.close()
                # A client that does not trust the certificate is refused.
                with self.assertRaises(ssl.SSLError):
                    conn = http.client.HTTPSConnection(
                        "127.0.0.1", srv.port, timeout=10, context=ssl.create_default_context())
                    conn.request("GET", "/healthz")
            finally:
                code, log = srv.stop()
            self.assertEqual(code, 0, log)
            self.assertIn("(TLS)", log)

    def test_an_unknown_negative_policy_is_refused_at_start_up(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump({"tokens": [{"token": "t", "organizationUuid": ORG,
                                   "scopes": [], "negativePolicy": "SOMETIMES"}]}, f)
            f.flush()
            r = subprocess.run([SERVER, "--listen", "127.0.0.1:%d" % free_port(),
                                "--db", ":memory:", "--tokens", f.name],
                               capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('tokens[0].negativePolicy must be "ALLOW" or "DENY"', r.stderr)

    def store_balance(self, loc):
        status, text, _ = self.srv.call(
            "GET", "/organizations/self/inventory/locations/%s" % loc["STORE"], token="deny")
        self.assertEqual(status, 200, text)
        return sum(int(v["balance"]) for v in json.loads(text)["variants"])


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv.pop(1))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    unittest.main(verbosity=2)
