#!/usr/bin/env python3
"""Catch-up time of a till that sold N lines offline (default 10,000), pushed
to a local zinv-server (SQLite) by zinv-sync --once.  Not part of check.

    make all build/examples/zinv-server build/examples/zinv-sync
    ZINV_LIBRARY=$PWD/lib/libzinv.so.1 python3 examples/zinv-sync/bench_catchup.py [N]
"""
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
os.environ.setdefault("ZINV_LIBRARY", os.path.join(ROOT, "lib", "libzinv.so.1"))
import zinv  # noqa: E402

spec = importlib.util.spec_from_file_location("test_sync", os.path.join(HERE, "test_sync.py"))
t = importlib.util.module_from_spec(spec)
spec.loader.exec_module(t)
t.SERVER = os.path.join(ROOT, "build", "examples", "zinv-server")
t.SYNC = os.path.join(ROOT, "build", "examples", "zinv-sync")

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
w = t.World()
try:
    a = w.tills[0]
    rc, out, err = t.sync(a, w.up.url)
    assert rc == 0, (out, err)
    a.stop()
    w.up.stop()
    store = zinv.Store.sqlite(a.db)
    org = store.org(t.ORG)
    for _ in range(n):                     # one sale (journal entry) per line
        org.apply([zinv.Change(t.P1, t.V1, "STORE", "SOLD", 1)])
    store.close()
    w.up.start()
    t0 = time.monotonic()
    rc, out, err = t.sync(a, w.up.url)
    dt = time.monotonic() - t0
    assert rc == 0, (out, err)
    a.start()
    assert w.up.balances() == a.balances() == {t.V1: 100 - n}
    print("%d entries: catch-up %.2f s, %.0f entries/s pushed (%s)" % (n, dt, n / dt, out))
finally:
    w.close()
