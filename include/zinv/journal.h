/*
 * zinv/journal.h - the journal: movement history and durable event outbox.
 *
 * Every committed batch (moves, sales, set-balance, tracking changes) gets
 * the next gap-free sequence number of its organization (1, 2, 3, ...) and
 * one entry, written in the same transaction as the balances.  A consumer
 * keeps its last sequence and resumes after it.
 */
#ifndef ZINV_JOURNAL_H
#define ZINV_JOURNAL_H

#include "org.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of journal records.  Values are frozen. */
typedef enum inv_record_kind {
	INV_RECORD_MOVE = 1,             /* a change of a batch */
	INV_RECORD_TRACKING_STARTED = 2,
	INV_RECORD_TRACKING_STOPPED = 3,
	INV_RECORD_LOW_STOCK = 4         /* a low-stock crossing caused by the batch */
} inv_record_kind;

/*
 * One record of a journal entry.  Frozen (112 bytes).
 *
 * MOVE: product, variant, from, to, quantity; `location` is the STORE side of
 * the move and before/after its balance (nil location, 0 and 0 when neither
 * side is a STORE).
 * TRACKING_*: product only.
 * LOW_STOCK: location, product, variant; after = the balance, quantity = the
 * level, low = 1 when the variant became low, 0 when it stopped being low.
 */
typedef struct inv_journal_record {
	int32_t kind;       /* inv_record_kind */
	int32_t low;
	inv_uuid product;
	inv_uuid variant;
	inv_uuid from;
	inv_uuid to;
	inv_uuid location;
	int64_t quantity;
	int64_t before;
	int64_t after;
} inv_journal_record;

/* One entry (batch) of the journal; owned by the list or event carrying it. */
typedef struct inv_journal_entry inv_journal_entry;

INV_EXTERN int64_t inv_journal_entry_sequence(const inv_journal_entry *entry);
/* Commit time, ms since the epoch, from the store's clock. */
INV_EXTERN int64_t inv_journal_entry_time(const inv_journal_entry *entry);
/* NULL when the batch had none. */
INV_EXTERN const inv_uuid *inv_journal_entry_external_uuid(const inv_journal_entry *entry);
INV_EXTERN const char *inv_journal_entry_idempotency_key(const inv_journal_entry *entry);
INV_EXTERN const inv_uuid *inv_journal_entry_user_uuid(const inv_journal_entry *entry);
INV_EXTERN const inv_uuid *inv_journal_entry_client_uuid(const inv_journal_entry *entry);
INV_EXTERN size_t inv_journal_entry_record_count(const inv_journal_entry *entry);
INV_EXTERN const inv_journal_record *inv_journal_entry_records(const inv_journal_entry *entry);

/* A journal query; a versioned struct. */
typedef struct inv_journal_query {
	uint32_t version;         /* INV_JOURNAL_QUERY_VERSION */
	int32_t has_product;
	int64_t after_sequence;   /* entries with a greater sequence */
	size_t limit;             /* at most this many entries; 0: no limit */
	inv_uuid product;         /* only entries touching this product */
	int64_t time_from;        /* only entries with time >= time_from (0: any) */
	int64_t time_to;          /* only entries with time < time_to (0: any) */
	/* members above are valid for version 1 */
} inv_journal_query;

#define INV_JOURNAL_QUERY_VERSION 1
#define INV_JOURNAL_QUERY_INIT \
	{ INV_JOURNAL_QUERY_VERSION, 0, 0, 0, {{0}}, 0, 0 }

INV_EXTERN int inv_journal_query_init(inv_journal_query *query, uint32_t version);

/* A list of journal entries in sequence order.  Opaque. */
typedef struct inv_journal inv_journal;

/* Read entries; `query` NULL reads all.  Free with inv_journal_free(). */
INV_EXTERN int inv_journal_read(inv_journal **out, inv_org *org,
                                const inv_journal_query *query);
INV_EXTERN size_t inv_journal_count(const inv_journal *journal);
INV_EXTERN const inv_journal_entry *inv_journal_at(const inv_journal *journal, size_t i);
/* NULL is a no-op. */
INV_EXTERN void inv_journal_free(inv_journal *journal);

/* The sequence of the last committed batch (0 before the first). */
INV_EXTERN int inv_journal_last_sequence(int64_t *out, inv_org *org);

/* Delete the entries with sequence <= up_to.  Sequences are never reused. */
INV_EXTERN int inv_journal_trim(inv_org *org, int64_t up_to);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_JOURNAL_H */
