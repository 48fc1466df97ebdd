"""Tests of the ctypes binding, and through it of libzinv's ABI from a
foreign-function interface.  Run with ZINV_LIBRARY naming the library:

    ZINV_LIBRARY=lib/libzinv.so.1 python3 -m unittest -v test_zinv
"""

import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest
import uuid

import zinv
from zinv import Change

T0 = 1796083200000  # 2026-12-01T00:00:00Z


def u(n):
    return uuid.UUID(int=n)


COFFEE, DARK, LIGHT = u(0x100), u(0x101), u(0x102)
MUG, WHITE = u(0x200), u(0x201)
CARD, CARD25 = u(0x300), u(0x301)


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class StoreTest(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.store = zinv.Store.memory(clock=self.clock)
        self.org = self.store.org(uuid.uuid4())

    def tearDown(self):
        self.store.close()

    def stock(self, **options):
        """Track coffee and mug and deliver 20 dark, 12 light, 5 mugs."""
        return self.org.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", 20),
                               Change(COFFEE, LIGHT, "SUPPLIER", "STORE", 12),
                               Change(MUG, WHITE, "SUPPLIER", "STORE", 5)],
                              tracking=[zinv.start(COFFEE), zinv.start(MUG)], **options)


class TestBasics(StoreTest):
    def test_version_is_the_header_version(self):
        self.assertRegex(zinv.version(), r"^1\.\d+\.\d+$")

    def test_org_has_four_system_locations(self):
        self.assertEqual([loc.type for loc in self.org.locations],
                         ["STORE", "SOLD", "BIN", "SUPPLIER"])
        store = self.org.location("STORE")
        self.assertTrue(store.default)
        self.assertEqual(store.name, "STORE")
        self.assertEqual(store.description, "System generated location")
        self.assertEqual(self.org.location(store.uuid), store)
        self.assertEqual(self.org.location(str(store.uuid)), store)

    def test_location_uuids_never_change(self):
        first = self.org.locations
        again = self.store.org(self.org.uuid)
        self.assertEqual(again.locations, first)
        again.close()

    def test_unknown_location_raises_not_found(self):
        with self.assertRaises(zinv.NotFound):
            self.org.location(uuid.uuid4())

    def test_tracking_start_stop_and_list(self):
        self.assertFalse(self.org.is_tracked(COFFEE))
        self.org.track(COFFEE)
        self.org.track(COFFEE)  # already tracked is not an error
        self.org.track(MUG)
        self.assertEqual(self.org.tracked_products(), sorted([COFFEE, MUG], key=str))
        self.org.untrack(COFFEE)
        self.assertEqual(self.org.tracked_products(), [MUG])
        with self.assertRaises(zinv.NotTracked) as cm:
            self.org.untrack(COFFEE)
        self.assertEqual(cm.exception.code, -4)

    def test_closed_store_refuses_calls(self):
        self.store.close()
        with self.assertRaises(ValueError):
            self.org.balance(COFFEE, DARK)
        self.store.close()  # twice is fine


class TestApply(StoreTest):
    def test_apply_returns_sequence_and_balances_after_batch(self):
        r = self.stock()
        self.assertEqual(r.sequence, 1)
        self.assertFalse(r.replayed)
        self.assertEqual(r.location, self.org.location("STORE").uuid)
        self.assertEqual([(b.variant, b.balance) for b in r.balances],
                         [(DARK, 20), (LIGHT, 12), (WHITE, 5)])
        self.assertEqual(self.org.balance(COFFEE, DARK), 20)

    def test_apply_is_all_or_nothing(self):
        self.stock()
        self.org.negative_policy = "DENY"
        with self.assertRaises(zinv.InsufficientStock) as cm:
            self.org.apply([Change(COFFEE, DARK, "STORE", "SOLD", 1),
                            Change(MUG, WHITE, "STORE", "BIN", 6)])
        self.assertEqual(cm.exception.index, 1)
        self.assertEqual(self.org.balance(COFFEE, DARK), 20)
        self.assertEqual(self.org.balance(MUG, WHITE), 5)
        self.assertEqual(self.org.last_sequence(), 1)

    def test_allow_policy_lets_a_balance_go_negative(self):
        self.stock()
        self.assertEqual(self.org.negative_policy, "ALLOW")
        r = self.org.apply([Change(MUG, WHITE, "STORE", "SOLD", 7)])
        self.assertEqual(r.balances[0].balance, -2)

    def test_move_of_untracked_product_raises_not_tracked(self):
        with self.assertRaises(zinv.NotTracked) as cm:
            self.org.apply([Change(CARD, CARD25, "SUPPLIER", "STORE", 1)])
        self.assertEqual(cm.exception.index, 0)

    def test_zero_quantity_raises_invalid_argument_naming_the_field(self):
        self.stock()
        with self.assertRaises(zinv.InvalidArgument) as cm:
            self.org.apply([Change(COFFEE, DARK, "STORE", "SOLD", 1),
                            Change(COFFEE, DARK, "STORE", "SOLD", 0)])
        e = cm.exception
        self.assertEqual((e.code, e.field, e.index), (-1, "quantity", 1))
        self.assertIsInstance(e, ValueError)
        self.assertTrue(e.message)

    def test_variant_belongs_to_its_first_product(self):
        self.stock()
        with self.assertRaises(zinv.Mismatch):
            self.org.apply([Change(MUG, DARK, "SUPPLIER", "STORE", 1)])

    def test_dry_run_stores_nothing(self):
        r = self.stock(dry_run=True)
        self.assertEqual(r.sequence, 0)
        self.assertEqual(r.balances[0].balance, 20)
        self.assertEqual(self.org.balance(COFFEE, DARK), 0)
        self.assertEqual(self.org.journal(), [])

    def test_idempotency_key_replays_first_result(self):
        first = self.stock(idempotency_key="delivery-1")
        again = self.stock(idempotency_key="delivery-1")
        self.assertTrue(again.replayed)
        self.assertEqual(again.sequence, first.sequence)
        self.assertEqual(self.org.balance(COFFEE, DARK), 20)

    def test_idempotency_key_with_another_batch_conflicts(self):
        self.stock(idempotency_key="k")
        with self.assertRaises(zinv.Conflict):
            self.org.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", 1)],
                           idempotency_key="k")

    def test_external_uuid_never_deduplicates(self):
        ext = uuid.uuid4()
        self.stock(external_uuid=ext)
        self.org.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", 1)], external_uuid=ext)
        self.assertEqual(self.org.balance(COFFEE, DARK), 21)
        self.assertEqual([e.external_uuid for e in self.org.journal()], [ext, ext])

    def test_sale_skips_lines_of_untracked_products(self):
        self.stock()
        r = self.org.sale([(COFFEE, DARK, 2), (CARD, CARD25, 1), (MUG, WHITE, 1)])
        self.assertEqual(r.skipped, [1])
        self.assertEqual([(b.variant, b.balance) for b in r.balances],
                         [(DARK, 18), (WHITE, 4)])

    def test_sale_of_only_untracked_lines_stores_nothing(self):
        r = self.org.sale([(CARD, CARD25, 1)])
        self.assertEqual((r.sequence, r.skipped), (0, [0]))

    def test_refund_moves_sold_to_store(self):
        self.stock()
        self.org.sale([(MUG, WHITE, 2)])
        r = self.org.refund([(MUG, WHITE, 1)])
        self.assertEqual(r.balances[0].balance, 4)

    def test_set_balance_lowering_moves_to_reason(self):
        self.stock()
        r = self.org.set_balance(COFFEE, DARK, 15, reason="BIN")
        self.assertEqual(r.balances[0].balance, 15)
        move = self.org.journal()[-1].records[0]
        self.assertEqual((move.kind, move.to, move.quantity, move.before, move.after),
                         ("MOVE", self.org.location("BIN").uuid, 5, 20, 15))

    def test_set_balance_with_stale_expectation_conflicts(self):
        self.stock()
        with self.assertRaises(zinv.Conflict):
            self.org.set_balance(COFFEE, DARK, 15, expected=19)
        self.assertEqual(self.org.balance(COFFEE, DARK), 20)
        self.org.set_balance(COFFEE, DARK, 15, expected=20)
        self.assertEqual(self.org.balance(COFFEE, DARK), 15)

    def test_set_current_balance_stores_nothing(self):
        self.stock()
        self.assertEqual(self.org.set_balance(COFFEE, DARK, 20).sequence, 0)


class TestReads(StoreTest):
    def test_balances_list_tracked_products_sorted(self):
        self.stock()
        self.org.untrack(MUG)
        got = [(b.product, b.variant, b.balance) for b in self.org.balances()]
        self.assertEqual(got, [(COFFEE, DARK, 20), (COFFEE, LIGHT, 12)])
        self.org.track(MUG)  # kept balances come back
        self.assertEqual(self.org.balances(products=[MUG])[0].balance, 5)

    def test_balances_include_zero_and_limit(self):
        self.stock()
        self.org.apply([Change(COFFEE, LIGHT, "STORE", "SOLD", 12)])
        self.assertEqual(len(self.org.balances()), 2)
        self.assertEqual(len(self.org.balances(include_zero=True)), 3)
        page = self.org.balances(include_zero=True, limit=2)
        rest = self.org.balances(include_zero=True, after=(page[-1].product, page[-1].variant))
        self.assertEqual(len(page) + len(rest), 3)

    def test_low_stock_entry_defaults_set_and_delete(self):
        self.assertEqual(self.org.low_stock(MUG, WHITE), zinv.LowStock(MUG, WHITE, None, False))
        self.org.set_low_stock(MUG, WHITE, level=3, alert=True)
        self.assertEqual(self.org.low_stock(MUG, WHITE), zinv.LowStock(MUG, WHITE, 3, True))
        self.assertEqual(len(self.org.low_stock_entries()), 1)
        self.org.set_low_stock(MUG, WHITE, level=None, alert=False)  # defaults delete
        self.assertEqual(self.org.low_stock_entries(), [])

    def test_low_stock_only_in_store_locations(self):
        with self.assertRaises(zinv.InvalidArgument) as cm:
            self.org.set_low_stock(MUG, WHITE, level=3, location="BIN")
        self.assertEqual(cm.exception.field, "location")

    def test_journal_keeps_time_external_uuid_and_records(self):
        ext = uuid.uuid4()
        self.clock.now = T0 + 9 * 3600 * 1000
        self.stock(external_uuid=ext)
        self.clock.now += 60000
        self.org.sale([(COFFEE, DARK, 2)])
        j = self.org.journal()
        self.assertEqual([(e.sequence, e.time) for e in j],
                         [(1, T0 + 9 * 3600 * 1000), (2, T0 + 9 * 3600 * 1000 + 60000)])
        self.assertEqual(j[0].external_uuid, ext)
        self.assertEqual([r.kind for r in j[0].records],
                         ["TRACKING_STARTED", "TRACKING_STARTED", "MOVE", "MOVE", "MOVE"])
        sale = j[1].records[0]
        self.assertEqual((sale.from_, sale.to, sale.before, sale.after),
                         (self.org.location("STORE").uuid, self.org.location("SOLD").uuid,
                          20, 18))
        self.assertEqual([e.sequence for e in self.org.journal(after=1)], [2])
        self.org.trim_journal(1)
        self.assertEqual([e.sequence for e in self.org.journal()], [2])
        self.assertEqual(self.org.last_sequence(), 2)


class TestEvents(StoreTest):
    def test_events_arrive_in_commit_order(self):
        seen = []
        self.store.subscribe(seen.append)
        gc.collect()  # the binding, not the caller, keeps the callback alive
        self.org.set_low_stock(MUG, WHITE, level=3, alert=True)
        self.stock()
        self.org.sale([(MUG, WHITE, 3)])
        # A level set on an empty shelf is crossed twice: upwards by the
        # delivery (0 -> 5: no longer low), downwards by the sale (5 -> 2).
        self.assertEqual([e.type for e in seen],
                         ["TRACKING_STARTED", "TRACKING_STARTED", "BALANCE_CHANGED",
                          "LOW_STOCK", "BALANCE_CHANGED", "LOW_STOCK"])
        changed = seen[2]
        self.assertEqual(changed.org, self.org.uuid)
        self.assertEqual(changed.entry.sequence, 1)
        self.assertEqual([(i.variant, i.before, i.after) for i in changed.items],
                         [(DARK, 0, 20), (LIGHT, 0, 12), (WHITE, 0, 5)])
        up, down = seen[3].items[0], seen[5].items[0]
        self.assertEqual((up.kind, up.variant, up.low, up.after, up.quantity),
                         ("LOW_STOCK", WHITE, False, 5, 3))
        self.assertEqual((down.variant, down.low, down.after, seen[5].entry.sequence),
                         (WHITE, True, 2, 2))

    def test_journal_replays_the_events_subscribers_saw(self):
        seen = []
        self.store.subscribe(seen.append)
        self.org.set_low_stock(MUG, WHITE, level=3, alert=True)
        self.stock(external_uuid=uuid.uuid4())
        self.org.sale([(MUG, WHITE, 3), (CARD, CARD25, 1)])
        self.assertEqual(self.org.journal_events(), seen)
        self.assertEqual(self.org.journal_events(after=1), seen[4:])

    def test_callback_exception_does_not_undo_the_batch(self):
        def boom(event):
            raise RuntimeError("consumer bug")

        self.store.subscribe(boom)
        hook, unraisable = sys.unraisablehook, []
        sys.unraisablehook = unraisable.append
        try:
            self.stock()
        finally:
            sys.unraisablehook = hook
        self.assertEqual(self.org.balance(COFFEE, DARK), 20)
        self.assertTrue(unraisable)

    def test_write_to_same_org_from_callback_is_busy(self):
        errors = []

        def reenter(event):
            try:
                self.org.sale([(COFFEE, DARK, 1)])
            except zinv.ZinvError as e:
                errors.append(type(e))

        self.store.subscribe(reenter, types=["BALANCE_CHANGED"])
        self.stock()
        self.assertEqual(errors, [zinv.Busy])
        self.assertEqual(self.org.balance(COFFEE, DARK), 20)

    def test_subscription_mask_and_unsubscribe(self):
        seen = []
        sub = self.store.subscribe(seen.append, types=["BALANCE_CHANGED"])
        self.stock()
        self.assertEqual([e.type for e in seen], ["BALANCE_CHANGED"])
        self.store.unsubscribe(sub)
        self.org.sale([(MUG, WHITE, 1)])
        self.assertEqual(len(seen), 1)
        with self.assertRaises(zinv.NotFound):
            self.store.unsubscribe(sub)

    def test_no_events_for_failed_batch_or_dry_run(self):
        seen = []
        self.store.subscribe(seen.append)
        self.stock(dry_run=True)
        with self.assertRaises(zinv.NotTracked):
            self.org.apply([Change(CARD, CARD25, "SUPPLIER", "STORE", 1)])
        self.assertEqual(seen, [])


class TestJson(StoreTest):
    def test_rest_dispatcher_serves_the_v1_api(self):
        r = self.store.rest("GET", "/organizations/self/locations", org=self.org.uuid)
        self.assertEqual((r.status, r.content_type), (200, "application/json"))
        self.assertEqual(sorted(loc["type"] for loc in r.json()),
                         ["BIN", "SOLD", "STORE", "SUPPLIER"])
        r = self.store.rest("POST", "/organizations/self/inventory",
                            {"productUuid": str(COFFEE)}, org=self.org.uuid)
        self.assertEqual(r.status, 200)
        self.assertTrue(self.org.is_tracked(COFFEE))

    def test_rest_errors_are_responses_with_wire_error_types(self):
        r = self.store.rest("DELETE", "/organizations/self/inventory/products/%s" % MUG,
                            org=self.org.uuid)
        self.assertEqual((r.status, r.error_type), (400, "PRODUCT_NOT_TRACKED"))
        r = self.store.rest("GET", "/organizations/self/locations", org=self.org.uuid,
                            authenticated=False)
        self.assertEqual(r.status, 401)
        r = self.store.rest("POST", "/organizations/self/inventory", "{", org=self.org.uuid)
        self.assertEqual(r.status, 400)

    def test_events_render_as_webhook_envelopes(self):
        seen = []
        self.store.subscribe(seen.append, types=["BALANCE_CHANGED"], webhooks=True)
        ext = uuid.uuid4()
        self.stock(external_uuid=ext)
        [envelope] = seen[0].webhooks
        env = json.loads(envelope)
        self.assertEqual(env["eventName"], "InventoryBalanceChanged")
        self.assertEqual(env["organizationUuid"], str(self.org.uuid))
        payload = json.loads(env["payload"])
        self.assertEqual(payload["externalUuid"], str(ext))
        after = {b["variantUuid"]: b["balance"] for b in payload["balanceAfter"]}
        self.assertEqual(after[str(DARK)], "20")


class TestThreads(StoreTest):
    def test_concurrent_sales_lose_no_update(self):
        # ctypes releases the GIL during each call, so these really run in
        # parallel inside libzinv; batches on one organization serialize.
        self.stock()
        self.org.set_balance(COFFEE, DARK, 1000)

        def till():
            for _ in range(50):
                self.org.sale([(COFFEE, DARK, 1)])

        threads = [threading.Thread(target=till) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(self.org.balance(COFFEE, DARK), 800)
        self.assertEqual(self.org.last_sequence(), 2 + 200)


class TestAbi(unittest.TestCase):
    """Every struct the binding declares has the C compiler's layout."""

    LAYOUTS = {
        "inv_uuid": zinv._Uuid, "inv_error": zinv._Error,
        "inv_store_options": zinv._StoreOptions, "inv_change": zinv._Change,
        "inv_tracking_change": zinv._TrackingChange,
        "inv_apply_options": zinv._ApplyOptions, "inv_balance": zinv._Balance,
        "inv_sale_line": zinv._SaleLine, "inv_balance_query": zinv._BalanceQuery,
        "inv_low_stock": zinv._LowStock, "inv_journal_record": zinv._Record,
        "inv_journal_query": zinv._JournalQuery, "inv_rest_request": zinv._RestRequest,
        "inv_sqlite_options": zinv._SqliteOptions,
    }

    def test_ctypes_layouts_match_the_headers(self):
        cc = os.environ.get("CC", "cc")
        include = os.environ.get("ZINV_INCLUDE",
                                 os.path.join(os.path.dirname(__file__), "..", "..", "include"))
        lines, want = [], []
        for cname, cls in sorted(self.LAYOUTS.items()):
            lines.append('printf("%s %%zu\\n", sizeof(%s));' % (cname, cname))
            want.append("%s %d" % (cname, ctypes.sizeof(cls)))
            for fname, _ in cls._fields_:
                cfield = fname.rstrip("_")  # from_ is `from` in C
                lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));'
                             % (cname, cfield, cname, cfield))
                want.append("%s.%s %d" % (cname, cfield, getattr(cls, fname).offset))
        src = ("#include <stddef.h>\n#include <stdio.h>\n#include <zinv.h>\n"
               "#include <zinv/rest.h>\n#include <zinv/sqlite.h>\n"
               "int main(void)\n{\n%s\nreturn 0;\n}\n" % "\n".join(lines))
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "layout.c"), "w") as f:
                f.write(src)
            exe = os.path.join(d, "layout")
            try:
                subprocess.run([cc, "-I", include, "-o", exe, f.name], check=True,
                               capture_output=True)
            except (OSError, subprocess.CalledProcessError) as e:
                self.skipTest("cannot compile the layout probe: %s" % e)
            got = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
        self.assertEqual(got.split("\n")[:-1], want)


class TestErrors(unittest.TestCase):
    def test_each_code_has_its_exception_class(self):
        for cls, code in [(zinv.InvalidArgument, -1), (zinv.NotFound, -3),
                          (zinv.NotTracked, -4), (zinv.Mismatch, -5),
                          (zinv.InsufficientStock, -6), (zinv.Conflict, -7),
                          (zinv.OutOfRange, -8), (zinv.Busy, -10), (zinv.TooBig, -14)]:
            self.assertEqual(cls.code, code)
            self.assertTrue(issubclass(cls, zinv.ZinvError))

    def test_balance_range_overflow_raises_out_of_range(self):
        with zinv.Store.memory() as store, store.org(uuid.uuid4()) as org:
            org.track(COFFEE)
            big = 9007199254740991
            org.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", big)])
            with self.assertRaises(zinv.OutOfRange):
                org.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", 1)])


@unittest.skipUnless(zinv.sqlite_available(), "libzinv-sqlite not built")
class TestSync(unittest.TestCase):
    """The sync object against an upstream store served by its rest()."""

    def setUp(self):
        self.org_id = uuid.uuid4()
        self.up_store = zinv.Store.memory()
        self.till_store = zinv.Store.memory()
        self.up = self.up_store.org(self.org_id)
        self.till = self.till_store.org(self.org_id)

    def tearDown(self):
        self.till_store.close()
        self.up_store.close()

    def send(self, req):
        key = dict(req.headers).get("Idempotency-Key")
        r = self.up_store.rest(req.method, req.path, req.body or None, org=self.org_id,
                               idempotency_key=key)
        return r.status, r.headers, r.body

    def test_sync_pushes_local_entries_and_pulls_upstream_balances(self):
        self.up.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", 10)],
                      tracking=[zinv.start(COFFEE)])
        with self.till.sync() as s:
            self.assertEqual(s.round(self.send), (0, 2, 0))   # tracking + 10 pulled
            self.till.apply([Change(COFFEE, DARK, "STORE", "SOLD", 3)])
            self.assertEqual(s.pending, 1)
            kind, req = s.next()
            self.assertEqual((kind, req.method, req.path),
                             ("request", "PUT", "/organizations/self/inventory"))
            self.assertIn(("Idempotency-Key", "%s:2" % s.till),   # 1 is the pull
                          req.headers)
            s.answer(*self.send(req)[::2])
            self.assertEqual(s.round(self.send)[0], 1)
            self.assertEqual(s.pending, 0)
        self.assertEqual(self.up.balances()[0].balance, 7)
        self.assertEqual(self.till.balances()[0].balance, 7)

    def test_sync_parks_a_rejected_entry_with_the_upstream_body(self):
        self.up.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", 1)],
                      tracking=[zinv.start(COFFEE)])
        self.up.negative_policy = "DENY"
        with self.till.sync() as s:
            s.round(self.send)
            self.till.apply([Change(COFFEE, DARK, "STORE", "SOLD", 5)])
            self.assertEqual(s.round(self.send)[2], 1)
            (rej,) = s.rejected
            self.assertEqual(rej.status, 409)
            self.assertIn("INSUFFICIENT_STOCK", rej.body)
        self.assertEqual(self.till.balances()[0].balance, 1)


class TestSqlite(unittest.TestCase):
    def test_sqlite_store_keeps_balances_and_locations_across_opens(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.db")
            org_id = uuid.uuid4()
            with zinv.Store.sqlite(path) as store, store.org(org_id) as org:
                org.apply([Change(COFFEE, DARK, "SUPPLIER", "STORE", 7)],
                          tracking=[zinv.start(COFFEE)])
                locations = org.locations
            with zinv.Store.sqlite(path) as store, store.org(org_id) as org:
                self.assertEqual(org.locations, locations)
                self.assertEqual(org.balance(COFFEE, DARK), 7)
                self.assertEqual(org.last_sequence(), 1)

    def test_read_only_store_refuses_writes(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.db")
            org_id = uuid.uuid4()
            with zinv.Store.sqlite(path, sync="NORMAL") as store, store.org(org_id) as org:
                org.track(COFFEE)
            with zinv.Store.sqlite(path, read_only=True) as store, store.org(org_id) as org:
                self.assertEqual(org.tracked_products(), [COFFEE])
                with self.assertRaises(zinv.ReadOnly):
                    org.untrack(COFFEE)

    def test_not_a_database_raises_format_error(self):
        with tempfile.NamedTemporaryFile(suffix=".db") as f:
            f.write(b"this is not a database" * 100)
            f.flush()
            with self.assertRaises(zinv.FormatError):
                zinv.Store.sqlite(f.name)


if __name__ == "__main__":
    unittest.main()
