#!/usr/bin/env python3
"""Set up one organization for bench_http.sh: 10 tracked variants with stock,
and the wrk scripts put.lua (a 10-change PUT) and get.lua in the current
folder.  Prints the STORE location's uuid."""
import http.client
import json
import sys
import uuid

PORT = int(sys.argv[1])
PRODUCT = "7a51c3d0-9f3b-11ee-b962-0242ac120002"
HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json"}


def call(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=HEADERS)
    res = conn.getresponse()
    text = res.read()
    conn.close()
    return res.status, json.loads(text) if text else None


_, locations = call("GET", "/organizations/self/locations")
loc = {l["type"]: l["uuid"] for l in locations}
variants = [str(uuid.UUID(int=(0x7a51c6a0 << 96) + i)) for i in range(10)]
status, body = call("POST", "/organizations/self/v2/inventory/bulk", {"productChanges": [{
    "productUuid": PRODUCT, "trackingStatusChange": "START_TRACKING",
    "variantChanges": [{"variantUuid": v, "fromLocationUuid": loc["SUPPLIER"],
                        "toLocationUuid": loc["STORE"], "change": 1000000} for v in variants]}]})
assert status == 200, (status, body)
put = {"changes": [{"productUuid": PRODUCT, "variantUuid": v, "fromLocationUuid": loc["STORE"],
                    "toLocationUuid": loc["SOLD"], "change": 1} for v in variants]}
with open("put.lua", "w") as f:
    f.write('wrk.method = "PUT"\nwrk.body = [[%s]]\n' % json.dumps(put))
    f.write('wrk.headers["Content-Type"] = "application/json"\n')
    f.write('wrk.headers["Authorization"] = "Bearer bench"\n')
with open("get.lua", "w") as f:
    f.write('wrk.headers["Authorization"] = "Bearer bench"\n')
print(loc["STORE"])
