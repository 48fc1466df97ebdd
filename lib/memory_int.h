/*
 * memory_int.h - what the core knows of the built-in memory backend beyond
 * its ops table: a write transaction begun on an organization the core has
 * looked up once, so that a batch hashes no organization UUID, and puts of
 * variant records that go straight to where the record was last time.
 * Every other backend takes the same writes through the vtable.
 */
#ifndef ZINV_MEMORY_INT_H
#define ZINV_MEMORY_INT_H

#include <zinv/backend.h>

/* 1 when `ops` is the built-in memory backend's own table (not a wrapper). */
int inv__memory_is(const inv_backend_ops *ops);

/* begin() of the memory backend.  `*org_cache` is the caller's per
 * organization slot, NULL at first: the backend's organization is kept
 * there (it lives until the instance closes) and used from then on. */
int inv__memory_begin(void *instance, void **org_cache, const inv_uuid *org, int write,
                      void **txn);

/*
 * variant_put_many() of the memory backend, for the core's batches, whose
 * records are all at `location` (their own location is not read): each
 * record's hints[i] points at the caller's hint for it, the record's place
 * in the backend (0: none yet), which skips hashing and probing when still
 * right and is set to the record's place on return.  Any value is safe: a
 * wrong hint costs the ordinary lookup.
 */
int inv__memory_variant_put_hinted(void *txn, const inv_uuid *org, const inv_uuid *location,
                                   size_t count, const inv_variant_record *recs,
                                   uint32_t *const *hints);

/*
 * A journal record in the memory backend's stored form: 64 bytes instead of
 * the 112 of inv_journal_record, its three locations being indices into a
 * table of location UUIDs.  The core builds its records in this form, so
 * that the memory backend stores them with a copy and other backends get
 * them decoded.
 */
typedef struct inv__jrec {
	inv_uuid product;
	inv_uuid variant;
	int64_t quantity;
	int64_t before;
	int64_t after;
	uint16_t from, to, location;    /* indices into a table of locations */
	uint8_t kind, low;
} inv__jrec;

/* The most locations a table of inv__memory_journal_append_compact() has. */
#define INV__JREC_LOCATIONS_MAX 8

/* `n` records in the vtable's form, their locations read from `locations`. */
static inline void inv__jrec_decode(inv_journal_record *out, const inv__jrec *in, size_t n,
                                    const inv_uuid *locations)
{
	for (size_t i = 0; i < n; i++) {
		const inv__jrec *c = &in[i];
		inv_journal_record *r = &out[i];

		r->kind = c->kind;
		r->low = c->low;
		r->product = c->product;
		r->variant = c->variant;
		r->from = locations[c->from];
		r->to = locations[c->to];
		r->location = locations[c->location];
		r->quantity = c->quantity;
		r->before = c->before;
		r->after = c->after;
	}
}

/*
 * Room at the end of the journal for an entry of up to `max_records`
 * compact records and a key of `key_len` bytes (with its NUL), in a write
 * transaction: *out is where the caller may build the records, so that
 * inv__memory_journal_append_compact() of them copies nothing.  Valid until
 * the transaction's next journal write or its end.
 */
int inv__memory_journal_room(void *txn, const inv_uuid *org, size_t max_records,
                             size_t key_len, inv__jrec **out);

/*
 * journal_append() of the memory backend for records in the compact form:
 * `entry` as for journal_append (its `records` unread), `recs` its
 * entry->record_count records, whose location fields index `locations`
 * (nlocations <= INV__JREC_LOCATIONS_MAX).  Records built where
 * inv__memory_journal_room() said stay where they are.
 */
int inv__memory_journal_append_compact(void *txn, const inv_uuid *org,
                                       const inv_journal_entry_record *entry,
                                       const inv__jrec *recs, const inv_uuid *locations,
                                       size_t nlocations);

#endif /* ZINV_MEMORY_INT_H */
