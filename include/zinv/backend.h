/*
 * zinv/backend.h - the storage vtable, for backend authors.
 *
 * <zinv.h> does not include this header; applications never need it.
 *
 * A backend is a versioned table of operations (inv_backend_ops) plus an
 * instance pointer, handed to inv_store_open().  The operations are typed in
 * the domain's terms so that a SQL backend keeps a plain schema and updates
 * balances in place.  Rules every backend follows:
 *
 * - Every data operation runs inside a transaction opened by begin() and
 *   receives its `txn`.  A write transaction is exclusive for its
 *   organization: two write transactions on one organization never overlap,
 *   in one process or several, except as commit_release() allows.
 *   commit() makes every write of the transaction durable at once;
 *   rollback() discards them all.  The core
 *   opens at most one transaction per thread at a time, and every operation
 *   of a transaction names the organization passed to begin(), so a backend
 *   may lock, shard or route by organization alone.
 * - Operations return 0 or a negative INV_E* code: INV_ENOTFOUND for a
 *   missing record where documented, INV_EBUSY when retrying may succeed,
 *   INV_EBACKEND (or INV_ENOMEM, INV_EREADONLY) otherwise.  Report the reason
 *   with inv_backend_error() so that it reaches the caller.  A write may
 *   be deferred: it returns 0 and its failure is reported by a later
 *   operation of the transaction or by commit(), which then stores
 *   nothing (libzinv-postgres pipelines writes this way).
 * - Results are copied into memory the core provides (an `out` struct), or
 *   lent for the duration of a callback; a backend never hands heap memory to
 *   the core, and the core never keeps a lent pointer after the callback.
 * - Scans call `fn` once per record in any order; a non-zero return from `fn`
 *   stops the scan, and the scan returns that value.
 * - Members are only ever appended.  The core reads a member only when the
 *   table's `version` has it, and NULL-checks the optional ones.
 *
 * The conformance suite in tests/ runs against any ops table; see
 * inv_backend(3).
 */
#ifndef ZINV_BACKEND_H
#define ZINV_BACKEND_H

#include "journal.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define INV_BACKEND_VERSION 3

/* The largest sync-state record (version 2) the core writes: 16 MiB. */
#define INV_SYNC_STATE_MAX (16u << 20)

/* An organization.  last_sequence is the sequence of its last batch. */
typedef struct inv_org_record {
	inv_uuid org;
	int64_t last_sequence;
	int32_t negative_policy;    /* inv_negative_policy */
	int32_t reserved;
} inv_org_record;

/* A location of an organization. */
typedef struct inv_location_record {
	inv_uuid uuid;
	int32_t type;               /* inv_location_type */
	int32_t is_default;
} inv_location_record;

/*
 * A variant's balance in one STORE location, keyed by (location, variant).
 * `product` is the variant's owning product; the core keeps it equal in every
 * record of a variant, and the record in the default STORE is the proof of
 * ownership.
 */
typedef struct inv_variant_record {
	inv_uuid location;
	inv_uuid variant;
	inv_uuid product;
	int64_t balance;
	int64_t updated;            /* ms since the epoch */
} inv_variant_record;

/* Key of a variant record, for the batch operations. */
typedef struct inv_variant_key {
	inv_uuid location;
	inv_uuid variant;
} inv_variant_key;

/* A low-stock entry, keyed by (location, product, variant). */
typedef struct inv_low_stock_record {
	inv_uuid location;
	inv_uuid product;
	inv_uuid variant;
	int64_t level;
	int32_t has_level;
	int32_t alert;
} inv_low_stock_record;

/* A journal entry as stored. */
typedef struct inv_journal_entry_record {
	int64_t sequence;
	int64_t time;
	int32_t has_external_uuid;
	int32_t has_user_uuid;
	int32_t has_client_uuid;
	int32_t reserved;
	inv_uuid external_uuid;
	inv_uuid user_uuid;
	inv_uuid client_uuid;
	const char *idempotency_key;        /* NULL when none */
	size_t record_count;
	const inv_journal_record *records;
} inv_journal_entry_record;

/* A remembered idempotency key and the result of its batch (opaque bytes
 * the core wrote; at most a few hundred KiB). */
typedef struct inv_idempotency_record {
	const char *key;                    /* 1..255 bytes */
	uint8_t fingerprint[32];
	int64_t sequence;
	const void *result;
	size_t result_len;
} inv_idempotency_record;

typedef int (*inv_location_record_fn)(const inv_location_record *rec, void *payload);
typedef int (*inv_tracking_record_fn)(const inv_uuid *product, int32_t tracked, void *payload);
typedef int (*inv_variant_record_fn)(const inv_variant_record *rec, void *payload);
typedef int (*inv_low_stock_record_fn)(const inv_low_stock_record *rec, void *payload);
typedef int (*inv_journal_entry_record_fn)(const inv_journal_entry_record *rec, void *payload);
typedef int (*inv_idempotency_record_fn)(const inv_idempotency_record *rec, void *payload);
typedef int (*inv_sync_state_fn)(const void *data, size_t len, void *payload);

struct inv_backend_ops {
	uint32_t version;           /* INV_BACKEND_VERSION */
	const char *name;           /* short name for messages ("memory", "sqlite") */

	/* Mandatory.  Release the instance; called once, by inv_store_close(). */
	void (*close)(void *instance);

	/* Transactions.  `write` 0 opens a read transaction (a consistent
	 * snapshot), 1 a write transaction exclusive for `org`. */
	int (*begin)(void *instance, const inv_uuid *org, int write, void **txn);
	int (*commit)(void *txn);
	void (*rollback)(void *txn);

	/* Organizations: INV_ENOTFOUND when unknown. */
	int (*org_get)(void *txn, const inv_uuid *org, inv_org_record *out);
	int (*org_put)(void *txn, const inv_org_record *rec);

	/* Locations of an organization. */
	int (*location_scan)(void *txn, const inv_uuid *org,
	                     inv_location_record_fn fn, void *payload);
	int (*location_put)(void *txn, const inv_uuid *org, const inv_location_record *rec);

	/* Tracking per product: INV_ENOTFOUND when never set. */
	int (*tracking_get)(void *txn, const inv_uuid *org, const inv_uuid *product,
	                    int32_t *tracked);
	int (*tracking_put)(void *txn, const inv_uuid *org, const inv_uuid *product,
	                    int32_t tracked);
	int (*tracking_scan)(void *txn, const inv_uuid *org,
	                     inv_tracking_record_fn fn, void *payload);

	/* Variant records: INV_ENOTFOUND when unknown.  Scan filters are
	 * optional (NULL: any). */
	int (*variant_get)(void *txn, const inv_uuid *org, const inv_uuid *location,
	                   const inv_uuid *variant, inv_variant_record *out);
	int (*variant_put)(void *txn, const inv_uuid *org, const inv_variant_record *rec);
	int (*variant_scan)(void *txn, const inv_uuid *org, const inv_uuid *location,
	                    const inv_uuid *product, inv_variant_record_fn fn, void *payload);

	/* Low-stock entries: INV_ENOTFOUND when unknown; delete of a missing
	 * entry returns 0.  Scan by location, and by product when not NULL. */
	int (*low_stock_get)(void *txn, const inv_uuid *org, const inv_uuid *location,
	                     const inv_uuid *product, const inv_uuid *variant,
	                     inv_low_stock_record *out);
	int (*low_stock_put)(void *txn, const inv_uuid *org, const inv_low_stock_record *rec);
	int (*low_stock_delete)(void *txn, const inv_uuid *org, const inv_uuid *location,
	                        const inv_uuid *product, const inv_uuid *variant);
	int (*low_stock_scan)(void *txn, const inv_uuid *org, const inv_uuid *location,
	                      const inv_uuid *product, inv_low_stock_record_fn fn,
	                      void *payload);

	/* Journal.  append: sequences arrive strictly increasing.  read: entries
	 * with sequence > after, ascending, at most `limit` (0: all).  trim:
	 * delete entries with sequence <= up_to. */
	int (*journal_append)(void *txn, const inv_uuid *org,
	                      const inv_journal_entry_record *rec);
	int (*journal_read)(void *txn, const inv_uuid *org, int64_t after, size_t limit,
	                    inv_journal_entry_record_fn fn, void *payload);
	int (*journal_trim)(void *txn, const inv_uuid *org, int64_t up_to);

	/* Idempotency keys: get calls `fn` once, or returns INV_ENOTFOUND. */
	int (*idempotency_get)(void *txn, const inv_uuid *org, const char *key,
	                       inv_idempotency_record_fn fn, void *payload);
	int (*idempotency_put)(void *txn, const inv_uuid *org,
	                       const inv_idempotency_record *rec);

	/* Optional batch forms, used when not NULL: one round trip per batch.
	 * get_many sets found[i] to 1 and fills out[i], or sets found[i] to 0. */
	int (*variant_get_many)(void *txn, const inv_uuid *org, size_t count,
	                        const inv_variant_key *keys, inv_variant_record *out,
	                        int32_t *found);
	int (*variant_put_many)(void *txn, const inv_uuid *org, size_t count,
	                        const inv_variant_record *recs);

	/* Optional escape hatch for backend-specific requests; INV_ENOTFOUND
	 * for an unknown `op`. */
	int (*control)(void *instance, int op, void *arg);

	/* members above are valid for version 1 */

	/* Version 2.  The organization's sync state: one opaque record per
	 * organization that the core writes and reads back byte for byte (at
	 * most INV_SYNC_STATE_MAX bytes).  get calls `fn` once with the bytes lent
	 * for the call, or returns INV_ENOTFOUND when none was ever put; put
	 * (write transactions only) replaces it.  Both are mandatory in a
	 * version-2 table. */
	int (*sync_state_get)(void *txn, const inv_uuid *org,
	                      inv_sync_state_fn fn, void *payload);
	int (*sync_state_put)(void *txn, const inv_uuid *org,
	                      const void *data, size_t len);

	/* members above are valid for version 2 */

	/* Version 3, optional: commit() for a backend whose commit waits for
	 * the disk, letting the organization's next batch run meanwhile (early
	 * lock release).  It calls release(arg) exactly once, on every path
	 * and before it returns: as soon as the organization's next write
	 * transaction may begin and see this one's writes, though they may not
	 * be durable yet.  A write transaction begun after release() must be
	 * durable only if this one is (a crash keeps a prefix of the commits).
	 * Returns as commit() does, once the transaction is durable or has
	 * failed.  The core answers the batches of an organization in release
	 * order. */
	int (*commit_release)(void *txn, void (*release)(void *arg), void *arg);

	/* members above are valid for version 3 */
};

/*
 * Record `message` as the calling thread's error detail with `code`, and
 * return `code`, so that a backend can write `return inv_backend_error(...)`.
 */
INV_EXTERN int inv_backend_error(int code, const char *message);

/*
 * The built-in memory backend: its ops table and a new instance, for
 * wrapping (a fault injector, a cache) before inv_store_open().
 * inv_store_open_memory() is the shortcut for plain use.
 */
INV_EXTERN const inv_backend_ops *inv_memory_backend_ops(void);
INV_EXTERN int inv_memory_backend_new(void **instance);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_BACKEND_H */
