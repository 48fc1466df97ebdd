/*
 * zinv/apply.h - atomic batches of stock moves, sales, refunds, set-balance.
 *
 * A batch is an ordered list of changes.  Either every change is stored, with
 * the batch's journal entry, or none is.  Each change is checked against the
 * running balance left by the changes before it.  On failure the call returns
 * the reason, inv_error_last()->index names the first failing change, and
 * nothing changed.  Only STORE locations hold balances: SUPPLIER is an
 * infinite source and sink, SOLD and BIN untracked sinks and sources.
 */
#ifndef ZINV_APPLY_H
#define ZINV_APPLY_H

#include "org.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One move of `quantity` (1 ..= INV_QUANTITY_MAX) units of `variant` from
 * `from` to `to` (two different locations of the organization).  Frozen. */
typedef struct inv_change {
	const inv_variant *variant;
	const inv_location *from;
	const inv_location *to;
	int64_t quantity;
} inv_change;

/* Tracking changes applied before the moves of the same batch (v2 bulk). */
typedef enum inv_tracking_action {
	INV_TRACKING_START = 1,
	INV_TRACKING_STOP = 2
} inv_tracking_action;

/* Frozen. */
typedef struct inv_tracking_change {
	inv_uuid product;
	int32_t action; /* inv_tracking_action */
	int32_t reserved;
} inv_tracking_change;

/*
 * Options of a batch; a versioned struct.  Every pointer may be NULL.
 *
 * external_uuid is an opaque correlation value copied into the batch's
 * journal entry and events; it never deduplicates.  idempotency_key (1..255
 * bytes, NUL-terminated) does: a batch repeated with the same key returns the
 * first result without applying again (inv_result_replayed() says so); the
 * same key with a different batch fails with INV_ECONFLICT.  Failed batches
 * and dry runs are not remembered.
 */
typedef struct inv_apply_options {
	uint32_t version;                    /* INV_APPLY_OPTIONS_VERSION */
	int32_t dry_run;                     /* validate and compute, store nothing */
	const inv_uuid *external_uuid;
	const char *idempotency_key;
	const inv_location *return_location; /* balances to report; NULL: default STORE */
	const inv_uuid *user_uuid;           /* acting user, for events */
	const inv_uuid *client_uuid;         /* acting API client, for events */
	const inv_tracking_change *tracking; /* applied first, in order */
	size_t tracking_count;
	/* members above are valid for version 1 */
} inv_apply_options;

#define INV_APPLY_OPTIONS_VERSION 1
#define INV_APPLY_OPTIONS_INIT \
	{ INV_APPLY_OPTIONS_VERSION, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0 }

/* Fill *opts with defaults for `version`; INV_EVERSION if unknown. */
INV_EXTERN int inv_apply_options_init(inv_apply_options *opts, uint32_t version);

/* The largest number of changes in one batch. */
#define INV_BATCH_MAX 1000000

/* A balance as reads and results report it.  Frozen (64 bytes). */
typedef struct inv_balance {
	inv_uuid product;
	inv_uuid variant;
	int64_t balance;
	int64_t updated;           /* ms since the epoch of the last change, 0 if never */
	int64_t low_stock_level;   /* valid when has_low_stock_level */
	int32_t has_low_stock_level;
	int32_t low_stock_alert;
} inv_balance;

/* The outcome of a successful batch.  Opaque; free with inv_result_free(). */
typedef struct inv_result inv_result;

/*
 * Apply `count` changes (0 allowed when opts->tracking is not empty) as one
 * atomic batch.  `out` may be NULL when the caller needs no result.
 * Codes a caller branches on: INV_EINVAL, INV_ENOTTRACKED, INV_EMISMATCH,
 * INV_EINSUFFICIENT, INV_ERANGE, INV_ECONFLICT, INV_EBUSY.
 */
INV_EXTERN int inv_apply_changes(inv_result **out, inv_org *org,
                                 const inv_change *changes, size_t count,
                                 const inv_apply_options *opts);

/* One line of a purchase.  Frozen. */
typedef struct inv_sale_line {
	const inv_variant *variant;
	int64_t quantity;
} inv_sale_line;

/*
 * Record a sale: move STORE -> SOLD for each line whose product is tracked,
 * in one batch.  Lines of untracked products are skipped, not failed, and
 * reported by inv_result_skipped().  A sale whose lines are all skipped
 * stores nothing (sequence 0).
 */
INV_EXTERN int inv_record_sale(inv_result **out, inv_org *org,
                               const inv_sale_line *lines, size_t count,
                               const inv_apply_options *opts);

/* Record a refund: SOLD -> STORE, with the same skipping rules as a sale. */
INV_EXTERN int inv_record_refund(inv_result **out, inv_org *org,
                                 const inv_sale_line *lines, size_t count,
                                 const inv_apply_options *opts);

/*
 * Set the balance of `variant` in `location` (NULL: default STORE) to
 * `balance` by moving the difference in one transaction: from SUPPLIER when
 * raising, to `reason` (SOLD, BIN or SUPPLIER; NULL: SUPPLIER) when lowering.
 * With `expected` non-NULL this is compare-and-set: if the current balance
 * differs, nothing moves and the call fails with INV_ECONFLICT.  Setting the
 * current balance stores nothing (sequence 0).
 */
INV_EXTERN int inv_set_balance(inv_result **out, inv_org *org,
                               const inv_variant *variant,
                               const inv_location *location, int64_t balance,
                               const int64_t *expected, const inv_location *reason,
                               const inv_apply_options *opts);

/* Journal sequence of the batch; 0 for a dry run or a batch that stored nothing. */
INV_EXTERN int64_t inv_result_sequence(const inv_result *result);

/* 1 when the result is the replay of an earlier batch with the same key. */
INV_EXTERN int inv_result_replayed(const inv_result *result);

/* The location whose balances the result reports. */
INV_EXTERN const inv_location *inv_result_location(const inv_result *result);

/*
 * The variants the batch moved into or out of the result's location, with
 * their balances after the batch (zero included), in order of first touch.
 * Empty when the location is not a STORE.  Owned by the result.
 */
INV_EXTERN size_t inv_result_count(const inv_result *result);
INV_EXTERN const inv_balance *inv_result_balances(const inv_result *result);

/* Indexes of skipped sale or refund lines, ascending.  Owned by the result. */
INV_EXTERN size_t inv_result_skipped_count(const inv_result *result);
INV_EXTERN const size_t *inv_result_skipped(const inv_result *result);

/* NULL is a no-op. */
INV_EXTERN void inv_result_free(inv_result *result);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_APPLY_H */
