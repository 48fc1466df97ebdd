"""zinv - Python binding of libzinv, the embeddable Zettle Inventory engine.

Standard library only: ctypes over libzinv.so.1 (and libzinv-sqlite.so.1 when
it is there).  Set ZINV_LIBRARY to the library's path to use a build that is
not installed (``ZINV_LIBRARY=lib/libzinv.so.1``); ZINV_SQLITE_LIBRARY likewise,
by default the libzinv-sqlite.so.1 beside it.

    import zinv, uuid

    with zinv.Store.memory() as store, store.org(uuid.uuid4()) as org:
        coffee, dark = uuid.uuid4(), uuid.uuid4()
        org.apply([zinv.Change(coffee, dark, "SUPPLIER", "STORE", 20)],
                  tracking=[zinv.start(coffee)])
        org.sale([(coffee, dark, 2)])
        org.balance(coffee, dark)            # 18

UUIDs are accepted as uuid.UUID or text and returned as uuid.UUID.
Locations are accepted as "STORE"/"SOLD"/"BIN"/"SUPPLIER", a Location or its
UUID.  Failures raise a ZinvError subclass per INV_E* code (NotTracked,
InsufficientStock, Conflict, ...) carrying code, message, field and index.
"""

import ctypes
import json
import os
import threading
import uuid as _uuid
from collections import namedtuple

__all__ = [
    "Store", "Organization", "Location", "Change", "Result", "Balance",
    "LowStock", "JournalEntry", "Record", "Event", "RestResponse", "start", "stop",
    "ZinvError", "InvalidArgument", "OutOfMemory", "NotFound", "NotTracked",
    "Mismatch", "InsufficientStock", "Conflict", "OutOfRange", "BackendError",
    "Busy", "VersionError", "FormatError", "ReadOnly", "TooBig",
    "sqlite_available", "version",
]

# ----------------------------------------------------------------- errors


class ZinvError(Exception):
    """A libzinv call failed.  ``code`` is the INV_E* value (negative),
    ``message`` the library's detail, ``field`` the offending argument or
    None, ``index`` the failing change or line (None when not about one)."""

    code = None

    def __init__(self, code, message, field=None, index=None):
        self.code = code
        self.message = message
        self.field = field
        self.index = index
        text = message
        if field:
            text += " (field %s)" % field
        if index is not None:
            text += " (index %d)" % index
        super().__init__(text)


class InvalidArgument(ZinvError, ValueError):
    code = -1


class OutOfMemory(ZinvError, MemoryError):
    code = -2


class NotFound(ZinvError, LookupError):
    code = -3


class NotTracked(ZinvError):
    code = -4


class Mismatch(ZinvError):
    """The variant already belongs to another product."""
    code = -5


class InsufficientStock(ZinvError):
    code = -6


class Conflict(ZinvError):
    """Idempotency key reused for another batch, or compare-and-set failed."""
    code = -7


class OutOfRange(ZinvError, OverflowError):
    code = -8


class BackendError(ZinvError):
    code = -9


class Busy(ZinvError):
    """Storage busy or locked: retrying may succeed."""
    code = -10


class VersionError(ZinvError):
    code = -11


class FormatError(ZinvError):
    code = -12


class ReadOnly(ZinvError):
    code = -13


class TooBig(ZinvError):
    code = -14


_ERRORS = {cls.code: cls for cls in (
    InvalidArgument, OutOfMemory, NotFound, NotTracked, Mismatch,
    InsufficientStock, Conflict, OutOfRange, BackendError, Busy,
    VersionError, FormatError, ReadOnly, TooBig)}

# ------------------------------------------------------------- C layouts

c_int32, c_int64, c_uint32, c_uint64 = (
    ctypes.c_int32, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint64)
c_size_t, c_void_p, c_char_p = ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
POINTER, byref = ctypes.POINTER, ctypes.byref


class _Uuid(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint8 * 16)]


class _Error(ctypes.Structure):
    _fields_ = [("code", c_int32), ("reserved", c_int32), ("index", c_int64),
                ("message", c_char_p), ("field", c_char_p)]


_CLOCK_FN = ctypes.CFUNCTYPE(c_int64, c_void_p)
_UUID_FN = ctypes.CFUNCTYPE(None, POINTER(_Uuid), c_void_p)
_EVENT_FN = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)


class _StoreOptions(ctypes.Structure):
    _fields_ = [("version", c_uint32), ("clock", _CLOCK_FN), ("clock_payload", c_void_p),
                ("uuid_generate", _UUID_FN), ("uuid_payload", c_void_p),
                ("negative_policy", c_int32), ("reserved", c_int32)]


class _Change(ctypes.Structure):
    _fields_ = [("variant", c_void_p), ("from_", c_void_p), ("to", c_void_p),
                ("quantity", c_int64)]


class _TrackingChange(ctypes.Structure):
    _fields_ = [("product", _Uuid), ("action", c_int32), ("reserved", c_int32)]


class _ApplyOptions(ctypes.Structure):
    _fields_ = [("version", c_uint32), ("dry_run", c_int32),
                ("external_uuid", POINTER(_Uuid)), ("idempotency_key", c_char_p),
                ("return_location", c_void_p), ("user_uuid", POINTER(_Uuid)),
                ("client_uuid", POINTER(_Uuid)), ("tracking", POINTER(_TrackingChange)),
                ("tracking_count", c_size_t)]


class _Balance(ctypes.Structure):
    _fields_ = [("product", _Uuid), ("variant", _Uuid), ("balance", c_int64),
                ("updated", c_int64), ("low_stock_level", c_int64),
                ("has_low_stock_level", c_int32), ("low_stock_alert", c_int32)]


class _SaleLine(ctypes.Structure):
    _fields_ = [("variant", c_void_p), ("quantity", c_int64)]


class _BalanceQuery(ctypes.Structure):
    _fields_ = [("version", c_uint32), ("include_zero", c_int32), ("location", c_void_p),
                ("products", POINTER(_Uuid)), ("product_count", c_size_t),
                ("with_low_stock", c_int32), ("has_after", c_int32),
                ("after_product", _Uuid), ("after_variant", _Uuid), ("limit", c_size_t)]


class _LowStock(ctypes.Structure):
    _fields_ = [("product", _Uuid), ("variant", _Uuid), ("level", c_int64),
                ("has_level", c_int32), ("alert", c_int32)]


class _Record(ctypes.Structure):
    _fields_ = [("kind", c_int32), ("low", c_int32), ("product", _Uuid),
                ("variant", _Uuid), ("from_", _Uuid), ("to", _Uuid), ("location", _Uuid),
                ("quantity", c_int64), ("before", c_int64), ("after", c_int64)]


class _JournalQuery(ctypes.Structure):
    _fields_ = [("version", c_uint32), ("has_product", c_int32),
                ("after_sequence", c_int64), ("limit", c_size_t), ("product", _Uuid),
                ("time_from", c_int64), ("time_to", c_int64)]


class _RestRequest(ctypes.Structure):
    _fields_ = [("version", c_uint32), ("authenticated", c_int32), ("method", c_char_p),
                ("path", c_char_p), ("query", c_char_p), ("idempotency_key", c_char_p),
                ("body", c_char_p), ("body_len", c_size_t), ("organization", _Uuid),
                ("scopes", c_uint32), ("reserved", c_int32),
                ("user_uuid", POINTER(_Uuid)), ("client_uuid", POINTER(_Uuid))]


class _SqliteOptions(ctypes.Structure):
    _fields_ = [("version", c_uint32), ("sync", c_int32), ("busy_timeout_ms", c_int32),
                ("read_only", c_int32),
                # version 2
                ("cache_kib", c_int32), ("mmap_mib", c_int32), ("group_wait_us", c_int32),
                ("reserved", c_int32)]


# Layouts the headers freeze; a mismatch means this file is out of date.
# (test_zinv.py compares every layout with the C compiler's.)
assert ctypes.sizeof(_Balance) == 64 and ctypes.sizeof(_LowStock) == 48
assert ctypes.sizeof(_Record) == 112 and ctypes.sizeof(_TrackingChange) == 24

# ---------------------------------------------------------- the library


def _load():
    path = os.environ.get("ZINV_LIBRARY") or "libzinv.so.1"
    lib = ctypes.CDLL(path)
    # libzinv-sqlite needs libzinv.so.1, which is now loaded under that
    # soname, so the dynamic linker reuses it even from a build tree.
    spath = os.environ.get("ZINV_SQLITE_LIBRARY")
    if not spath:
        spath = (os.path.join(os.path.dirname(path), "libzinv-sqlite.so.1")
                 if os.sep in path else "libzinv-sqlite.so.1")
    try:
        slib = ctypes.CDLL(spath)
    except OSError:
        slib = None
    return lib, slib


_lib, _sqlite = _load()

_P = c_void_p
_PU = POINTER(_Uuid)
_SIGNATURES = {
    # name: (restype, argtypes); restype int means "returns 0 or INV_E*"
    "inv_error_last": (POINTER(_Error), []),
    "inv_strerror": (c_char_p, [ctypes.c_int]),
    "inv_version": (c_char_p, []),
    "inv_free": (None, [_P]),
    "inv_store_options_init": (ctypes.c_int, [POINTER(_StoreOptions), c_uint32]),
    "inv_store_open_memory": (ctypes.c_int, [POINTER(_P), POINTER(_StoreOptions)]),
    "inv_store_close": (None, [_P]),
    "inv_org_open": (ctypes.c_int, [POINTER(_P), _P, _PU]),
    "inv_org_close": (None, [_P]),
    "inv_org_get_negative_policy": (ctypes.c_int, [POINTER(ctypes.c_int), _P]),
    "inv_org_set_negative_policy": (ctypes.c_int, [_P, ctypes.c_int]),
    "inv_org_location_count": (c_size_t, [_P]),
    "inv_org_location_at": (_P, [_P, c_size_t]),
    "inv_location_uuid": (_PU, [_P]),
    "inv_location_get_type": (ctypes.c_int, [_P]),
    "inv_location_name": (c_char_p, [_P]),
    "inv_location_description": (c_char_p, [_P]),
    "inv_location_is_default": (ctypes.c_int, [_P]),
    "inv_variant_get": (ctypes.c_int, [POINTER(_P), _P, _PU, _PU]),
    "inv_tracking_start": (ctypes.c_int, [_P, _PU]),
    "inv_tracking_stop": (ctypes.c_int, [_P, _PU]),
    "inv_tracking_get": (ctypes.c_int, [POINTER(ctypes.c_int), _P, _PU]),
    "inv_tracking_list": (ctypes.c_int, [POINTER(_PU), POINTER(c_size_t), _P]),
    "inv_apply_options_init": (ctypes.c_int, [POINTER(_ApplyOptions), c_uint32]),
    "inv_apply_changes": (ctypes.c_int, [POINTER(_P), _P, POINTER(_Change), c_size_t,
                                         POINTER(_ApplyOptions)]),
    "inv_record_sale": (ctypes.c_int, [POINTER(_P), _P, POINTER(_SaleLine), c_size_t,
                                       POINTER(_ApplyOptions)]),
    "inv_record_refund": (ctypes.c_int, [POINTER(_P), _P, POINTER(_SaleLine), c_size_t,
                                         POINTER(_ApplyOptions)]),
    "inv_set_balance": (ctypes.c_int, [POINTER(_P), _P, _P, _P, c_int64,
                                       POINTER(c_int64), _P, POINTER(_ApplyOptions)]),
    "inv_result_sequence": (c_int64, [_P]),
    "inv_result_replayed": (ctypes.c_int, [_P]),
    "inv_result_location": (_P, [_P]),
    "inv_result_count": (c_size_t, [_P]),
    "inv_result_balances": (POINTER(_Balance), [_P]),
    "inv_result_skipped_count": (c_size_t, [_P]),
    "inv_result_skipped": (POINTER(c_size_t), [_P]),
    "inv_result_free": (None, [_P]),
    "inv_balance_query_init": (ctypes.c_int, [POINTER(_BalanceQuery), c_uint32]),
    "inv_balances_read": (ctypes.c_int, [POINTER(POINTER(_Balance)), POINTER(c_size_t),
                                         POINTER(ctypes.c_int), _P,
                                         POINTER(_BalanceQuery)]),
    "inv_balance_get": (ctypes.c_int, [POINTER(c_int64), _P, _P, _P]),
    "inv_low_stock_set": (ctypes.c_int, [_P, _P, _PU, _PU, POINTER(c_int64), ctypes.c_int]),
    "inv_low_stock_get": (ctypes.c_int, [POINTER(_LowStock), _P, _P, _PU, _PU]),
    "inv_low_stock_delete": (ctypes.c_int, [_P, _P, _PU, _PU]),
    "inv_low_stock_list": (ctypes.c_int, [POINTER(POINTER(_LowStock)), POINTER(c_size_t),
                                          _P, _P, _PU]),
    "inv_journal_query_init": (ctypes.c_int, [POINTER(_JournalQuery), c_uint32]),
    "inv_journal_read": (ctypes.c_int, [POINTER(_P), _P, POINTER(_JournalQuery)]),
    "inv_journal_count": (c_size_t, [_P]),
    "inv_journal_at": (_P, [_P, c_size_t]),
    "inv_journal_free": (None, [_P]),
    "inv_journal_last_sequence": (ctypes.c_int, [POINTER(c_int64), _P]),
    "inv_journal_trim": (ctypes.c_int, [_P, c_int64]),
    "inv_journal_entry_sequence": (c_int64, [_P]),
    "inv_journal_entry_time": (c_int64, [_P]),
    "inv_journal_entry_external_uuid": (_PU, [_P]),
    "inv_journal_entry_idempotency_key": (c_char_p, [_P]),
    "inv_journal_entry_user_uuid": (_PU, [_P]),
    "inv_journal_entry_client_uuid": (_PU, [_P]),
    "inv_journal_entry_record_count": (c_size_t, [_P]),
    "inv_journal_entry_records": (POINTER(_Record), [_P]),
    "inv_event_get_type": (ctypes.c_int, [_P]),
    "inv_event_org_uuid": (_PU, [_P]),
    "inv_event_entry": (_P, [_P]),
    "inv_event_item_count": (c_size_t, [_P]),
    "inv_event_items": (POINTER(_Record), [_P]),
    "inv_subscribe": (ctypes.c_int, [POINTER(c_uint64), _P, c_uint32, _EVENT_FN, _P]),
    "inv_unsubscribe": (ctypes.c_int, [_P, c_uint64]),
    "inv_journal_entry_events": (ctypes.c_int, [_P, _PU, _EVENT_FN, _P]),
    "inv_json_encode_webhook": (ctypes.c_int, [POINTER(_P), POINTER(c_size_t), _P, c_size_t,
                                               _P]),
    "inv_rest_request_init": (ctypes.c_int, [POINTER(_RestRequest), c_uint32]),
    "inv_rest_handle": (ctypes.c_int, [POINTER(_P), _P, POINTER(_RestRequest)]),
    "inv_rest_response_status": (ctypes.c_int, [_P]),
    "inv_rest_response_content_type": (c_char_p, [_P]),
    "inv_rest_response_body": (_P, [_P, POINTER(c_size_t)]),
    "inv_rest_response_header_count": (c_size_t, [_P]),
    "inv_rest_response_header_name": (c_char_p, [_P, c_size_t]),
    "inv_rest_response_header_value": (c_char_p, [_P, c_size_t]),
    "inv_rest_response_error_type": (c_char_p, [_P]),
    "inv_rest_response_free": (None, [_P]),
    "inv_sync_open": (ctypes.c_int, [POINTER(_P), _P, _PU]),
    "inv_sync_close": (None, [_P]),
    "inv_sync_next": (ctypes.c_int, [_P]),
    "inv_sync_request_method": (c_char_p, [_P]),
    "inv_sync_request_path": (c_char_p, [_P]),
    "inv_sync_request_body": (_P, [_P, POINTER(c_size_t)]),
    "inv_sync_request_header_count": (c_size_t, [_P]),
    "inv_sync_request_header_name": (c_char_p, [_P, c_size_t]),
    "inv_sync_request_header_value": (c_char_p, [_P, c_size_t]),
    "inv_sync_answer": (ctypes.c_int, [_P, ctypes.c_int, POINTER(c_char_p), c_size_t,
                                       c_char_p, c_size_t]),
    "inv_sync_delay": (c_int64, [_P]),
    "inv_sync_till": (_PU, [_P]),
    "inv_sync_pushed_sequence": (c_int64, [_P]),
    "inv_sync_pending": (ctypes.c_int, [POINTER(c_int64), _P]),
    "inv_sync_round": (None, [_P, POINTER(c_int64), POINTER(c_int64), POINTER(c_int64)]),
    "inv_sync_rejected_count": (c_size_t, [_P]),
    "inv_sync_rejected_at": (ctypes.c_int, [_P, c_size_t, POINTER(c_int64),
                                            POINTER(ctypes.c_int), POINTER(_P),
                                            POINTER(c_size_t)]),
}


class _Functions:
    pass


_f = _Functions()
for _name, (_res, _args) in _SIGNATURES.items():
    _fn = getattr(_lib, _name)
    _fn.restype, _fn.argtypes = _res, _args
    setattr(_f, _name[4:], _fn)  # _f.apply_changes, _f.org_open, ...



if _sqlite is not None:
    try:
        _f.sqlite_options_init = _sqlite.inv_sqlite_options_init
        _f.sqlite_options_init.restype = ctypes.c_int
        _f.sqlite_options_init.argtypes = [POINTER(_SqliteOptions), c_uint32]
        _f.store_open_sqlite = _sqlite.inv_store_open_sqlite
        _f.store_open_sqlite.restype = ctypes.c_int
        _f.store_open_sqlite.argtypes = [POINTER(_P), c_char_p, POINTER(_SqliteOptions),
                                         POINTER(_StoreOptions)]
    except AttributeError:
        _sqlite = None


def sqlite_available():
    """True when libzinv-sqlite was found, so Store.sqlite() works."""
    return _sqlite is not None


def version():
    return _f.version().decode()


def _check(rc):
    """Raise the exception for a failed call.  The detail is per thread and
    only valid until the next libzinv call on this thread: copy it now."""
    if rc == 0:
        return
    err = _f.error_last().contents
    message = (err.message or b"").decode("utf-8", "replace") or _f.strerror(rc).decode()
    field = err.field.decode() if err.field else None
    index = err.index if err.index >= 0 else None
    raise _ERRORS.get(rc, ZinvError)(rc, message, field, index)


def _to_c_uuid(value):
    if isinstance(value, _Uuid):
        return value
    if not isinstance(value, _uuid.UUID):
        value = _uuid.UUID(str(value))
    u = _Uuid()
    ctypes.memmove(u.bytes, value.bytes, 16)
    return u


def _from_c_uuid(u):
    return _uuid.UUID(bytes=bytes(u.bytes))


def _opt_uuid(ptr):
    return _from_c_uuid(ptr.contents) if ptr else None


# ------------------------------------------------------------ value types

Location = namedtuple("Location", "uuid type name description default")
Location.__doc__ = "A location of an organization (type is 'STORE', ...)."

Change = namedtuple("Change", "product variant from_ to quantity")
Change.__doc__ = "Move quantity units of (product, variant) from from_ to to."

Balance = namedtuple("Balance", "product variant balance updated low_stock_level low_stock_alert")
Balance.__doc__ = "A STORE balance; low_stock_level is None when unset."

Result = namedtuple("Result", "sequence replayed location balances skipped")
Result.__doc__ = ("Outcome of a batch: journal sequence (0: nothing stored), "
                  "balances after it, indexes of skipped sale lines.")

LowStock = namedtuple("LowStock", "product variant level alert")

Record = namedtuple("Record", "kind product variant from_ to location quantity before after low")
Record.__doc__ = ("A journal record or event item.  kind: 'MOVE', 'TRACKING_STARTED', "
                  "'TRACKING_STOPPED' or 'LOW_STOCK'.")

JournalEntry = namedtuple("JournalEntry",
                          "sequence time external_uuid idempotency_key user_uuid "
                          "client_uuid records")

Event = namedtuple("Event", "type org entry items webhooks")
Event.__doc__ = ("An event: type 'BALANCE_CHANGED', 'TRACKING_STARTED', "
                 "'TRACKING_STOPPED' or 'LOW_STOCK'; entry is its JournalEntry; "
                 "webhooks the service's webhook envelopes (JSON text, one per "
                 "low-stock item, else one) when asked for, else None.")

RestResponse = namedtuple("RestResponse", "status content_type headers body error_type")

# One upstream request of a Sync (headers: (name, value) pairs, without
# Authorization, which the caller adds) and one rejected entry.
SyncRequest = namedtuple("SyncRequest", "method path headers body")
SyncRejected = namedtuple("SyncRejected", "sequence status body")
RestResponse.__doc__ = ("A REST response: status code, content type (None "
                        "without body), [(name, value)] headers, body text, "
                        "errorType of an error response.")
RestResponse.json = lambda self: json.loads(self.body) if self.body else None

_LOCATION_TYPES = {1: "STORE", 2: "SOLD", 3: "BIN", 4: "SUPPLIER"}
_RECORD_KINDS = {1: "MOVE", 2: "TRACKING_STARTED", 3: "TRACKING_STOPPED", 4: "LOW_STOCK"}
_EVENT_TYPES = {1: "BALANCE_CHANGED", 2: "TRACKING_STARTED", 3: "TRACKING_STOPPED",
                4: "LOW_STOCK"}
_EVENT_CODES = {name: code for code, name in _EVENT_TYPES.items()}
_NIL = _uuid.UUID(int=0)


def start(product):
    """A tracking change for Organization.apply(tracking=[...])."""
    return (product, 1)


def stop(product):
    return (product, 2)


def _balance(b):
    return Balance(_from_c_uuid(b.product), _from_c_uuid(b.variant), b.balance, b.updated,
                   b.low_stock_level if b.has_low_stock_level else None,
                   bool(b.low_stock_alert))


def _record(r):
    loc = _from_c_uuid(r.location)
    return Record(_RECORD_KINDS.get(r.kind, r.kind), _from_c_uuid(r.product),
                  _from_c_uuid(r.variant), _from_c_uuid(r.from_), _from_c_uuid(r.to),
                  None if loc == _NIL else loc, r.quantity, r.before, r.after, bool(r.low))


def _take_text(ptr, length):
    """Copy library-allocated text and free it."""
    try:
        return ctypes.string_at(ptr, length).decode()
    finally:
        _f.free(ptr)


def _webhooks(event, type_name, count):
    out = []
    for i in range(count if type_name == "LOW_STOCK" else 1):
        text, n = c_void_p(), c_size_t()
        _check(_f.json_encode_webhook(byref(text), byref(n), event, i, None))
        out.append(_take_text(text, n.value))
    return out


def _event(event, webhooks=False):
    """Copy an event: it and its items live only during the callback."""
    items = _f.event_items(event)
    count = _f.event_item_count(event)
    type_name = _EVENT_TYPES.get(_f.event_get_type(event))
    return Event(type_name, _from_c_uuid(_f.event_org_uuid(event).contents),
                 _entry(_f.event_entry(event)), [_record(items[i]) for i in range(count)],
                 _webhooks(event, type_name, count) if webhooks else None)


def _entry(e):
    recs = _f.journal_entry_records(e)
    key = _f.journal_entry_idempotency_key(e)
    return JournalEntry(
        _f.journal_entry_sequence(e), _f.journal_entry_time(e),
        _opt_uuid(_f.journal_entry_external_uuid(e)), key.decode() if key else None,
        _opt_uuid(_f.journal_entry_user_uuid(e)), _opt_uuid(_f.journal_entry_client_uuid(e)),
        [_record(recs[i]) for i in range(_f.journal_entry_record_count(e))])


# ------------------------------------------------------------------ Store


class Store:
    """A libzinv store.  Use as a context manager, or call close().

    clock: a callable returning milliseconds since the epoch (default: the
    system clock).  uuid_generate: a callable returning a uuid.UUID for the
    locations the store creates.  negative_policy: 'ALLOW' or 'DENY' for
    organizations this store creates.
    """

    def __init__(self, _opener, clock=None, uuid_generate=None, negative_policy="ALLOW"):
        self._handle = None
        opts = _StoreOptions()
        _check(_f.store_options_init(byref(opts), 1))
        # ctypes callbacks die with their Python object: the store keeps
        # every one it hands to C for as long as C may call it.
        self._keep = []
        if clock is not None:
            cb = _CLOCK_FN(lambda _payload: int(clock()))
            self._keep.append(cb)
            opts.clock = cb
        if uuid_generate is not None:
            def gen(out, _payload):
                ctypes.memmove(out.contents.bytes, _to_c_uuid(uuid_generate()).bytes, 16)
            cb = _UUID_FN(gen)
            self._keep.append(cb)
            opts.uuid_generate = cb
        opts.negative_policy = {"ALLOW": 0, "DENY": 1}[negative_policy]
        handle = c_void_p()
        _check(_opener(byref(handle), byref(opts)))
        self._handle = handle
        self._subscribers = {}
        self._orgs = []
        self._lock = threading.Lock()

    @classmethod
    def memory(cls, **kwargs):
        """A store on the built-in memory backend."""
        return cls(_f.store_open_memory, **kwargs)

    @classmethod
    def sqlite(cls, path, read_only=False, sync="FULL", busy_timeout_ms=5000, **kwargs):
        """A store in the SQLite database at path (created when missing).

        sync: 'FULL' (every commit survives power loss) or 'NORMAL' (survives
        a crash of the process).  busy_timeout_ms: how long to wait for
        another process's lock before raising Busy."""
        if _sqlite is None:
            raise RuntimeError("libzinv-sqlite is not available")
        sopts = _SqliteOptions()
        _check(_f.sqlite_options_init(byref(sopts), 1))
        sopts.sync = {"FULL": 0, "NORMAL": 1}[sync]
        sopts.busy_timeout_ms = busy_timeout_ms
        sopts.read_only = int(bool(read_only))
        encoded = os.fsencode(path)
        return cls(lambda out, opts: _f.store_open_sqlite(out, encoded, byref(sopts), opts),
                   **kwargs)

    def _ptr(self):
        if not self._handle:
            raise ValueError("store is closed")
        return self._handle

    def org(self, org_uuid):
        """Open an organization; its four locations are created on first use."""
        o = Organization(self, org_uuid)
        self._orgs.append(o)
        return o

    def subscribe(self, callback, types=None, webhooks=False):
        """Call callback(Event) after each commit.  types: an iterable of
        event type names ('BALANCE_CHANGED', ...); None for all.  webhooks:
        also render the service's webhook envelopes into Event.webhooks.
        Returns an id for unsubscribe().  An exception in the callback cannot
        stop the committed batch: Python reports it through
        sys.unraisablehook."""
        mask = 0
        for t in types or ():
            mask |= 1 << _EVENT_CODES[t]

        cb = _EVENT_FN(lambda event, _payload: callback(_event(event, webhooks)))
        sub = c_uint64()
        _check(_f.subscribe(byref(sub), self._ptr(), mask, cb, None))
        with self._lock:
            self._subscribers[sub.value] = cb
        return sub.value

    def unsubscribe(self, sub_id):
        _check(_f.unsubscribe(self._ptr(), sub_id))
        with self._lock:
            self._subscribers.pop(sub_id, None)

    def rest(self, method, path, body=None, org=None, scopes=("READ", "WRITE"),
             idempotency_key=None, authenticated=True, user_uuid=None, client_uuid=None):
        """Serve one request of the Zettle Inventory REST API (WIRE.md) as
        the caller `org` with `scopes`, the way an HTTP server embedding
        libzinv would.  body: text, bytes, or an object to send as JSON.
        Returns a RestResponse; HTTP errors are responses, not exceptions."""
        req = _RestRequest()
        _check(_f.rest_request_init(byref(req), 1))
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        req.authenticated = int(bool(authenticated))
        req.method = method.encode()
        req.path = path.encode()
        req.idempotency_key = idempotency_key.encode() if idempotency_key else None
        req.body = body
        req.body_len = len(body) if body else 0
        if org is not None:
            req.organization = _to_c_uuid(org)
        req.scopes = (1 if "READ" in scopes else 0) | (2 if "WRITE" in scopes else 0)
        keep = [_to_c_uuid(x) for x in (user_uuid, client_uuid) if x is not None]
        if user_uuid is not None:
            req.user_uuid = ctypes.pointer(keep[0])
        if client_uuid is not None:
            req.client_uuid = ctypes.pointer(keep[-1])
        res = c_void_p()
        _check(_f.rest_handle(byref(res), self._ptr(), byref(req)))
        try:
            n = c_size_t()
            text = ctypes.string_at(_f.rest_response_body(res, byref(n)), n.value).decode()
            ctype = _f.rest_response_content_type(res)
            etype = _f.rest_response_error_type(res)
            return RestResponse(
                _f.rest_response_status(res), ctype.decode() if ctype else None,
                [(_f.rest_response_header_name(res, i).decode(),
                  _f.rest_response_header_value(res, i).decode())
                 for i in range(_f.rest_response_header_count(res))],
                text, etype.decode() if etype else None)
        finally:
            _f.rest_response_free(res)

    def close(self):
        """Close the store and every organization opened from it."""
        if self._handle:
            for o in self._orgs:
                o._forget()  # inv_store_close() closes their handles
            _f.store_close(self._handle)
            self._handle = None
            self._subscribers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


# ----------------------------------------------------------- Organization


class Organization:
    """One organization of a store; every read and write is scoped to it."""

    def __init__(self, store, org_uuid):
        self._handle = None
        self.store = store
        self.uuid = _uuid.UUID(str(org_uuid))
        handle = c_void_p()
        _check(_f.org_open(byref(handle), store._ptr(), byref(_to_c_uuid(self.uuid))))
        self._handle = handle
        self._variants = {}
        self._locations = {}
        self.locations = []
        for i in range(_f.org_location_count(handle)):
            ptr = _f.org_location_at(handle, i)
            loc = Location(_from_c_uuid(_f.location_uuid(ptr).contents),
                           _LOCATION_TYPES[_f.location_get_type(ptr)],
                           _f.location_name(ptr).decode(),
                           _f.location_description(ptr).decode(),
                           bool(_f.location_is_default(ptr)))
            self.locations.append(loc)
            self._locations[loc.uuid] = ptr
            if loc.default or loc.type != "STORE":
                self._locations.setdefault(loc.type, ptr)

    def _ptr(self):
        if not self._handle:
            raise ValueError("organization is closed")
        return self._handle

    def sync(self, till=None):
        """A Sync object for this organization (see Sync); close it before
        the organization."""
        return Sync(self, till)

    def location(self, which):
        """The Location for 'STORE', 'SOLD', 'BIN', 'SUPPLIER' or a UUID."""
        ptr = self._loc(which)
        return next(loc for loc in self.locations if self._locations[loc.uuid] == ptr)

    def _loc(self, which):
        if which is None:
            return None
        if isinstance(which, Location):
            which = which.uuid
        key = which
        if isinstance(which, str):
            key = which.upper()
            if key not in _LOCATION_TYPES.values():
                try:
                    key = _uuid.UUID(which)
                except ValueError:
                    key = None
        ptr = self._locations.get(key)
        if ptr is None:
            raise NotFound(-3, "no location %s in this organization" % (which,),
                           "location")
        return ptr

    def _variant(self, product, variant):
        key = (_uuid.UUID(str(product)), _uuid.UUID(str(variant)))
        ptr = self._variants.get(key)
        if ptr is None:
            out = c_void_p()
            _check(_f.variant_get(byref(out), self._ptr(), byref(_to_c_uuid(key[0])),
                                  byref(_to_c_uuid(key[1]))))
            ptr = self._variants[key] = out.value
        return ptr

    # -------------------------------------------------- policy, tracking

    @property
    def negative_policy(self):
        out = ctypes.c_int()
        _check(_f.org_get_negative_policy(byref(out), self._ptr()))
        return "DENY" if out.value == 1 else "ALLOW"

    @negative_policy.setter
    def negative_policy(self, policy):
        _check(_f.org_set_negative_policy(self._ptr(), {"ALLOW": 0, "DENY": 1}[policy]))

    def track(self, product):
        _check(_f.tracking_start(self._ptr(), byref(_to_c_uuid(product))))

    def untrack(self, product):
        _check(_f.tracking_stop(self._ptr(), byref(_to_c_uuid(product))))

    def is_tracked(self, product):
        out = ctypes.c_int()
        _check(_f.tracking_get(byref(out), self._ptr(), byref(_to_c_uuid(product))))
        return bool(out.value)

    def tracked_products(self):
        arr, n = _PU(), c_size_t()
        _check(_f.tracking_list(byref(arr), byref(n), self._ptr()))
        try:
            return [_from_c_uuid(arr[i]) for i in range(n.value)]
        finally:
            _f.free(ctypes.cast(arr, c_void_p))

    # ------------------------------------------------------------ batches

    def _options(self, keep, external_uuid=None, idempotency_key=None, dry_run=False,
                 return_location=None, user_uuid=None, client_uuid=None, tracking=()):
        opts = _ApplyOptions()
        _check(_f.apply_options_init(byref(opts), 1))
        opts.dry_run = 1 if dry_run else 0
        # Every buffer the struct points to goes into `keep`, alive until
        # the call returns.
        for name, value in (("external_uuid", external_uuid), ("user_uuid", user_uuid),
                            ("client_uuid", client_uuid)):
            if value is not None:
                u = _to_c_uuid(value)
                keep.append(u)
                setattr(opts, name, ctypes.pointer(u))
        if idempotency_key is not None:
            opts.idempotency_key = idempotency_key.encode()
            keep.append(opts.idempotency_key)
        opts.return_location = self._loc(return_location)
        tracking = list(tracking)
        if tracking:
            arr = (_TrackingChange * len(tracking))()
            for i, (product, action) in enumerate(tracking):
                arr[i].product = _to_c_uuid(product)
                arr[i].action = action
            keep.append(arr)
            opts.tracking = arr
            opts.tracking_count = len(tracking)
        return opts

    def _run(self, call):
        res = c_void_p()
        _check(call(byref(res)))
        try:
            r = res.value
            bal = _f.result_balances(r)
            skipped = _f.result_skipped(r)
            loc = _f.result_location(r)
            return Result(_f.result_sequence(r), bool(_f.result_replayed(r)),
                          _from_c_uuid(_f.location_uuid(loc).contents) if loc else None,
                          [_balance(bal[i]) for i in range(_f.result_count(r))],
                          [skipped[i] for i in range(_f.result_skipped_count(r))])
        finally:
            _f.result_free(res)

    def apply(self, changes, **options):
        """Apply Change tuples as one all-or-nothing batch; returns a Result.

        Options: external_uuid, idempotency_key, dry_run, return_location,
        user_uuid, client_uuid, tracking (a list of start(p)/stop(p))."""
        changes = list(changes)
        arr = (_Change * len(changes))()
        for i, c in enumerate(changes):
            c = Change(*c)
            arr[i].variant = self._variant(c.product, c.variant)
            arr[i].from_ = self._loc(c.from_)
            arr[i].to = self._loc(c.to)
            arr[i].quantity = c.quantity
        keep = []
        opts = self._options(keep, **options)
        return self._run(lambda out: _f.apply_changes(out, self._ptr(), arr, len(changes),
                                                       byref(opts)))

    def _lines(self, lines):
        lines = list(lines)
        arr = (_SaleLine * len(lines))()
        for i, (product, variant, quantity) in enumerate(lines):
            arr[i].variant = self._variant(product, variant)
            arr[i].quantity = quantity
        return arr, len(lines)

    def sale(self, lines, **options):
        """Record a sale of (product, variant, quantity) lines; lines of
        untracked products are skipped and listed in Result.skipped."""
        arr, n = self._lines(lines)
        keep = []
        opts = self._options(keep, **options)
        return self._run(lambda out: _f.record_sale(out, self._ptr(), arr, n, byref(opts)))

    def refund(self, lines, **options):
        arr, n = self._lines(lines)
        keep = []
        opts = self._options(keep, **options)
        return self._run(lambda out: _f.record_refund(out, self._ptr(), arr, n, byref(opts)))

    def set_balance(self, product, variant, balance, expected=None, reason=None,
                    location=None, **options):
        """Set a balance by moving the difference; with `expected`, raise
        Conflict (and move nothing) if the current balance differs."""
        var = self._variant(product, variant)
        exp = byref(c_int64(expected)) if expected is not None else None
        keep = []
        opts = self._options(keep, **options)
        return self._run(lambda out: _f.set_balance(
            out, self._ptr(), var, self._loc(location), balance, exp, self._loc(reason),
            byref(opts)))

    # -------------------------------------------------------------- reads

    def balance(self, product, variant, location=None):
        """One variant's balance (tracked or not); 0 when it never moved."""
        out = c_int64()
        _check(_f.balance_get(byref(out), self._ptr(), self._variant(product, variant),
                              self._loc(location)))
        return out.value

    def balances(self, location=None, products=None, include_zero=False,
                 with_low_stock=True, limit=0, after=None):
        """Balances of tracked products, sorted by (product, variant)."""
        q = _BalanceQuery()
        _check(_f.balance_query_init(byref(q), 1))
        q.include_zero = int(bool(include_zero))
        q.with_low_stock = int(bool(with_low_stock))
        q.location = self._loc(location)
        if products is not None:
            products = list(products)
            parr = (_Uuid * len(products))(*[_to_c_uuid(p) for p in products])
            q.products = parr
            q.product_count = len(products)
        if after is not None:
            q.has_after = 1
            q.after_product = _to_c_uuid(after[0])
            q.after_variant = _to_c_uuid(after[1])
        q.limit = limit
        arr, n, more = POINTER(_Balance)(), c_size_t(), ctypes.c_int()
        _check(_f.balances_read(byref(arr), byref(n), byref(more), self._ptr(), byref(q)))
        try:
            return [_balance(arr[i]) for i in range(n.value)]
        finally:
            _f.free(ctypes.cast(arr, c_void_p))

    # ---------------------------------------------------------- low stock

    def set_low_stock(self, product, variant, level=None, alert=False, location="STORE"):
        """Set the low-stock level (None: unset) and alert flag."""
        lvl = byref(c_int64(level)) if level is not None else None
        _check(_f.low_stock_set(self._ptr(), self._loc(location), byref(_to_c_uuid(product)),
                                byref(_to_c_uuid(variant)), lvl, int(bool(alert))))

    def low_stock(self, product, variant, location="STORE"):
        out = _LowStock()
        _check(_f.low_stock_get(byref(out), self._ptr(), self._loc(location),
                                byref(_to_c_uuid(product)), byref(_to_c_uuid(variant))))
        return LowStock(_from_c_uuid(out.product), _from_c_uuid(out.variant),
                        out.level if out.has_level else None, bool(out.alert))

    def delete_low_stock(self, product, variant, location="STORE"):
        _check(_f.low_stock_delete(self._ptr(), self._loc(location),
                                   byref(_to_c_uuid(product)), byref(_to_c_uuid(variant))))

    def low_stock_entries(self, location="STORE", product=None):
        arr, n = POINTER(_LowStock)(), c_size_t()
        prod = byref(_to_c_uuid(product)) if product is not None else None
        _check(_f.low_stock_list(byref(arr), byref(n), self._ptr(), self._loc(location), prod))
        try:
            return [LowStock(_from_c_uuid(arr[i].product), _from_c_uuid(arr[i].variant),
                             arr[i].level if arr[i].has_level else None, bool(arr[i].alert))
                    for i in range(n.value)]
        finally:
            _f.free(ctypes.cast(arr, c_void_p))

    # ------------------------------------------------------------ journal

    def journal(self, after=0, limit=0, product=None, time_from=0, time_to=0):
        """Journal entries with sequence > after, in sequence order."""
        q = _JournalQuery()
        _check(_f.journal_query_init(byref(q), 1))
        q.after_sequence = after
        q.limit = limit
        if product is not None:
            q.has_product = 1
            q.product = _to_c_uuid(product)
        q.time_from, q.time_to = time_from, time_to
        j = c_void_p()
        _check(_f.journal_read(byref(j), self._ptr(), byref(q)))
        try:
            return [_entry(_f.journal_at(j, i)) for i in range(_f.journal_count(j))]
        finally:
            _f.journal_free(j)

    def journal_events(self, after=0, limit=0):
        """The events of the journal entries after `after`, exactly as
        subscribers saw them at commit: how an outbox consumer catches up
        after a restart."""
        q = _JournalQuery()
        _check(_f.journal_query_init(byref(q), 1))
        q.after_sequence = after
        q.limit = limit
        j = c_void_p()
        _check(_f.journal_read(byref(j), self._ptr(), byref(q)))
        events = []
        cb = _EVENT_FN(lambda event, _payload: events.append(_event(event)))
        org = _to_c_uuid(self.uuid)
        try:
            for i in range(_f.journal_count(j)):
                _check(_f.journal_entry_events(_f.journal_at(j, i), byref(org), cb, None))
        finally:
            _f.journal_free(j)
        return events

    def last_sequence(self):
        out = c_int64()
        _check(_f.journal_last_sequence(byref(out), self._ptr()))
        return out.value

    def trim_journal(self, up_to):
        _check(_f.journal_trim(self._ptr(), up_to))

    # ----------------------------------------------------------- lifetime

    def _forget(self):
        # Location and variant handles die with the organization handle.
        self._handle = None
        self._variants.clear()
        self._locations.clear()

    def close(self):
        if self._handle:
            _f.org_close(self._handle)
            self._forget()
        if self in self.store._orgs:
            self.store._orgs.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sync:
    """inv_sync(3): keeps an organization in step with an upstream service.
    next() returns ("request", SyncRequest), ("wait", milliseconds) or
    ("idle", None); answer() takes the upstream's reply (status 0: none
    came).  round(send) drives a whole round with send(request) ->
    (status, headers, body), calling wait(ms) on backoffs."""

    def __init__(self, org, till=None):
        self._handle = None
        self.org = org
        handle = c_void_p()
        t = _to_c_uuid(till) if till is not None else None
        _check(_f.sync_open(byref(handle), org._ptr(), byref(t) if t is not None else None))
        self._handle = handle

    def _ptr(self):
        if not self._handle:
            raise ValueError("sync object is closed")
        return self._handle

    def next(self):
        step = _f.sync_next(self._ptr())
        if step < 0:
            _check(step)
        if step == 1:
            h = self._handle
            n = c_size_t()
            body = ctypes.string_at(_f.sync_request_body(h, byref(n)), n.value).decode()
            return "request", SyncRequest(
                _f.sync_request_method(h).decode(), _f.sync_request_path(h).decode(),
                [(_f.sync_request_header_name(h, i).decode(),
                  _f.sync_request_header_value(h, i).decode())
                 for i in range(_f.sync_request_header_count(h))], body)
        if step == 2:
            return "wait", _f.sync_delay(self._handle)
        return "idle", None

    def answer(self, status, body="", headers=()):
        if isinstance(body, str):
            body = body.encode()
        flat = [x.encode() for pair in headers for x in pair]
        arr = (c_char_p * max(len(flat), 1))(*flat)
        _check(_f.sync_answer(self._ptr(), status, arr, len(flat) // 2, body, len(body)))

    def round(self, send, wait=lambda ms: None, max_steps=1000000):
        """One whole round; returns (pushed, pulled, rejected)."""
        for _ in range(max_steps):
            kind, value = self.next()
            if kind == "idle":
                return self.counts
            if kind == "wait":
                wait(value)
                continue
            status, headers, body = send(value)
            self.answer(status, body, headers)
        raise RuntimeError("sync round did not finish")

    @property
    def till(self):
        return _from_c_uuid(_f.sync_till(self._ptr()).contents)

    @property
    def pushed_sequence(self):
        return _f.sync_pushed_sequence(self._ptr())

    @property
    def pending(self):
        n = c_int64()
        _check(_f.sync_pending(byref(n), self._ptr()))
        return n.value

    @property
    def counts(self):
        """(pushed, pulled, rejected) of the current or last round."""
        a, b, c = c_int64(), c_int64(), c_int64()
        _f.sync_round(self._ptr(), byref(a), byref(b), byref(c))
        return a.value, b.value, c.value

    @property
    def rejected(self):
        out = []
        for i in range(_f.sync_rejected_count(self._ptr())):
            seq, status, body, n = c_int64(), ctypes.c_int(), c_void_p(), c_size_t()
            _check(_f.sync_rejected_at(self._handle, i, byref(seq), byref(status),
                                       byref(body), byref(n)))
            out.append(SyncRejected(seq.value, status.value,
                                    ctypes.string_at(body, n.value).decode(errors="replace")))
        return out

    def close(self):
        if self._handle:
            _f.sync_close(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
