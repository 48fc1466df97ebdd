/*
 * apply.c - the batch engine: inv_apply_changes(), sales, refunds,
 * set-balance and tracking changes all run through run_batch(), so that
 * atomicity, the journal, idempotency and events have one implementation.
 *
 * A batch on one organization holds the organization's write lock from the
 * backend's begin() until its events are delivered, so batches commit and
 * announce in one order; with a backend's commit_release(), until the
 * backend lets the next batch in, and tickets keep that order (see "early
 * lock release" below).  Under that lock the engine may use the scratch
 * fields of variant and product handles: a batch numbers itself (`gen`) and
 * a handle whose `gen` is current already has its slot, which is how the
 * engine avoids hashing and allocating per change.
 */
#include <stdlib.h>

#include "core_int.h"

struct inv_result {
	int64_t sequence;
	int32_t replayed;
	const inv_location *location;
	inv_balance *balances;
	size_t count;
	size_t *skipped;
	size_t skipped_count;
};

/* What a public call asks the engine to do. */
struct batch {
	enum inv__batch_kind kind;
	const inv_change *changes;
	size_t count;
	const inv_apply_options *opts;
	const inv_location *result_location;
	/* inv_set_balance() only: its one change is computed in the transaction */
	inv_change set_change;
	const inv_location *set_location;
	const inv_location *set_reason;
	int64_t set_balance;
	const int64_t *set_expected;
};

static const inv_apply_options default_options = INV_APPLY_OPTIONS_INIT;

int inv_apply_options_init(inv_apply_options *opts, uint32_t version)
{
	if (!opts)
		return inv__error(INV_EINVAL, -1, "opts", "options are NULL");
	if (version != INV_APPLY_OPTIONS_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "apply options version %u is not supported", version);
	*opts = default_options;
	return 0;
}

/* ----------------------------------------------------------- validation */

static int validate_options(inv_org *org, const inv_apply_options *o)
{
	size_t i;

	if (o->version != INV_APPLY_OPTIONS_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "apply options version %u is not supported", o->version);
	if (o->idempotency_key) {
		size_t len = strnlen(o->idempotency_key, 256);

		if (len == 0 || len > 255)
			return inv__error(INV_EINVAL, -1, "idempotency_key",
			                  "an idempotency key is 1 to 255 bytes");
	}
	if (o->return_location && !inv__org_owns(org, o->return_location))
		return inv__error(INV_EINVAL, -1, "return_location",
		                  "the location belongs to another organization");
	if (o->tracking_count && !o->tracking)
		return inv__error(INV_EINVAL, -1, "tracking", "tracking changes are NULL");
	for (i = 0; i < o->tracking_count; i++)
		if (o->tracking[i].action != INV_TRACKING_START &&
		    o->tracking[i].action != INV_TRACKING_STOP)
			return inv__error(INV_EINVAL, (int64_t)i, "tracking",
			                  "unknown tracking action %d", (int)o->tracking[i].action);
	return 0;
}

/* 1 unless 1 <= q <= INV_QUANTITY_MAX: one comparison, as unsigned. */
static inline int bad_quantity(int64_t q)
{
	return (uint64_t)q - 1 >= (uint64_t)INV_QUANTITY_MAX;
}

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* Start the cache miss load_variants() takes on v's product.  A batch
 * names variants at random; without this each change waits for its own
 * miss.  The handle itself is one line (struct inv_variant), and
 * validate_changes() reads it already. */
static inline void prefetch_variant(const inv_variant *v)
{
	PREFETCH(v->product);
}

/* The error of change `index` (c), which validate_changes() found bad. */
static int change_error(const inv_org *org, const inv_change *c, int64_t index)
{
	if (!c->variant || c->variant->org != org)
		return inv__error(INV_EINVAL, index, "variant", c->variant ?
		                  "the variant handle belongs to another organization" :
		                  "the variant is NULL");
	if (!inv__org_owns(org, c->from))
		return inv__error(INV_EINVAL, index, "from", c->from ?
		                  "the location belongs to another organization" :
		                  "the location is NULL");
	if (!inv__org_owns(org, c->to))
		return inv__error(INV_EINVAL, index, "to", c->to ?
		                  "the location belongs to another organization" :
		                  "the location is NULL");
	if (bad_quantity(c->quantity))
		return inv__error(INV_EINVAL, index, "quantity",
		                  "a change is 1 to 2^53-1 units, not %lld",
		                  (long long)c->quantity);
	return inv__error(INV_EINVAL, index, "to",
	                  "a change moves between two different locations");
}

/* Check every change, and start the cache misses of every variant's
 * handle while at it: this walk reads each handle first, and the misses of
 * a whole batch then overlap instead of queueing in load_variants(). */
static int validate_changes(inv_org *org, const inv_change *changes, size_t count)
{
	/* inv__org_owns() of both locations at once: their offsets from
	 * org->locations are both below its size, a power of two, exactly
	 * when their bitwise or is. */
	const uintptr_t locs = (uintptr_t)org->locations;
	const inv_change *c, *end;

	_Static_assert((sizeof(org->locations) & (sizeof(org->locations) - 1)) == 0,
	               "the locations take a power of two bytes");
	if (count > INV_BATCH_MAX)
		return inv__error(INV_ETOOBIG, -1, "changes",
		                  "a batch holds at most %d changes", INV_BATCH_MAX);
	if (count == 0)
		return 0;
	if (!changes)
		return inv__error(INV_EINVAL, -1, "changes", "changes are NULL");
	/* A pointer walk: the index is needed only to name a bad change. */
	for (c = changes, end = changes + count; c != end; c++) {
		const inv_variant *v = c->variant;

		if (!v || v->org != org ||
		    (((uintptr_t)c->from - locs) | ((uintptr_t)c->to - locs)) >=
		            sizeof(org->locations) ||
		    bad_quantity(c->quantity) || c->from == c->to)
			return change_error(org, c, c - changes);
		prefetch_variant(v);
	}
	return 0;
}

/* ---------------------------------------------------------- fingerprint */

/* Four independent 64-bit lanes give the 32 bytes the backend stores; an
 * accidental collision would need all four to agree.  Not cryptographic:
 * keys are scoped to one organization, which chooses its own batches. */
struct fingerprint {
	uint64_t h[4];
};

static const uint64_t fp_mul[4] = {
	UINT64_C(0x9e3779b97f4a7c15), UINT64_C(0xc2b2ae3d27d4eb4f),
	UINT64_C(0x165667b19e3779f9), UINT64_C(0xff51afd7ed558ccd),
};

static void fp_word(struct fingerprint *f, uint64_t w)
{
	int i;

	for (i = 0; i < 4; i++) {
		uint64_t h = (f->h[i] ^ w) * fp_mul[i];

		f->h[i] = h ^ (h >> (29 + i));
	}
}

static void fp_uuid(struct fingerprint *f, const inv_uuid *u)
{
	uint64_t a = 0, b = 0;
	int i;

	for (i = 0; i < 8; i++) {
		a = a << 8 | u->bytes[i];
		b = b << 8 | u->bytes[8 + i];
	}
	fp_word(f, a);
	fp_word(f, b);
}

static void fp_opt_uuid(struct fingerprint *f, const inv_uuid *u)
{
	fp_word(f, u != NULL);
	if (u)
		fp_uuid(f, u);
}

static void fingerprint_batch(const struct batch *b, uint8_t out[32])
{
	struct fingerprint f = { { 1, 2, 3, 4 } };
	const inv_apply_options *o = b->opts;
	size_t i;
	int l, k;

	fp_word(&f, (uint64_t)b->kind);
	fp_word(&f, b->count);
	for (i = 0; i < b->count; i++) {
		const inv_change *c = &b->changes[i];

		fp_uuid(&f, &c->variant->product->node.key);
		fp_uuid(&f, &c->variant->uuid);
		fp_uuid(&f, &c->from->uuid);
		fp_uuid(&f, &c->to->uuid);
		fp_word(&f, (uint64_t)c->quantity);
	}
	fp_word(&f, o->tracking_count);
	for (i = 0; i < o->tracking_count; i++) {
		fp_uuid(&f, &o->tracking[i].product);
		fp_word(&f, (uint64_t)o->tracking[i].action);
	}
	fp_opt_uuid(&f, o->external_uuid);
	fp_uuid(&f, &b->result_location->uuid);
	if (b->kind == INV__BATCH_SET_BALANCE) {
		fp_uuid(&f, &b->set_change.variant->product->node.key);
		fp_uuid(&f, &b->set_change.variant->uuid);
		fp_uuid(&f, &b->set_location->uuid);
		fp_uuid(&f, &b->set_reason->uuid);
		fp_word(&f, (uint64_t)b->set_balance);
		fp_word(&f, b->set_expected != NULL);
		fp_word(&f, b->set_expected ? (uint64_t)*b->set_expected : 0);
	}
	for (l = 0; l < 4; l++) {
		uint64_t h = f.h[l] ^ (uint64_t)l;

		h ^= h >> 33;
		h *= UINT64_C(0xff51afd7ed558ccd);
		h ^= h >> 33;
		h *= UINT64_C(0xc4ceb9fe1a85ec53);
		h ^= h >> 33;
		for (k = 0; k < 8; k++)
			out[l * 8 + k] = (uint8_t)(h >> (8 * k));
	}
}

/* ---------------------------------------------------- stored result blob */

/* Layout (little-endian): "ZIR1", sequence, location UUID, balance count,
 * balances (product, variant, balance, updated), skipped count, skipped. */
#define BLOB_MAGIC "ZIR1"
#define BLOB_BALANCE_SIZE (16 + 16 + 8 + 8)

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t *result_encode(const inv_result *r, size_t *len)
{
	size_t n = 4 + 8 + 16 + 8 + r->count * BLOB_BALANCE_SIZE + 8 + r->skipped_count * 8, i;
	uint8_t *blob = malloc(n), *p = blob;

	if (!blob)
		return NULL;
	memcpy(p, BLOB_MAGIC, 4);
	p = put_u64(p + 4, (uint64_t)r->sequence);
	memcpy(p, r->location->uuid.bytes, 16);
	p = put_u64(p + 16, r->count);
	for (i = 0; i < r->count; i++) {
		memcpy(p, r->balances[i].product.bytes, 16);
		memcpy(p + 16, r->balances[i].variant.bytes, 16);
		p = put_u64(p + 32, (uint64_t)r->balances[i].balance);
		p = put_u64(p, (uint64_t)r->balances[i].updated);
	}
	p = put_u64(p, r->skipped_count);
	for (i = 0; i < r->skipped_count; i++)
		p = put_u64(p, r->skipped[i]);
	*len = n;
	return blob;
}

static int result_decode(inv_result **out, inv_org *org, const uint8_t *p, size_t len)
{
	inv_result *r;
	inv_uuid loc;
	uint64_t count, skipped;
	size_t i;

	if (len < 4 + 8 + 16 + 8 + 8 || memcmp(p, BLOB_MAGIC, 4) != 0)
		goto corrupt;
	count = get_u64(p + 28);
	if (count > (len - 44) / BLOB_BALANCE_SIZE)
		goto corrupt;
	skipped = get_u64(p + 36 + count * BLOB_BALANCE_SIZE);
	if (skipped > (len - 44 - count * BLOB_BALANCE_SIZE) / 8 ||
	    len != 44 + count * BLOB_BALANCE_SIZE + skipped * 8)
		goto corrupt;
	memcpy(loc.bytes, p + 12, 16);

	r = calloc(1, sizeof(*r));
	if (!r)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	r->sequence = (int64_t)get_u64(p + 4);
	r->replayed = 1;
	r->location = inv__org_location(org, &loc);
	r->count = count;
	r->skipped_count = skipped;
	r->balances = count ? calloc(count, sizeof(*r->balances)) : NULL;
	r->skipped = skipped ? calloc(skipped, sizeof(*r->skipped)) : NULL;
	if ((count && !r->balances) || (skipped && !r->skipped)) {
		inv_result_free(r);
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	if (!r->location) {
		inv_result_free(r);
		goto corrupt;
	}
	p += 36;
	for (i = 0; i < count; i++, p += BLOB_BALANCE_SIZE) {
		memcpy(r->balances[i].product.bytes, p, 16);
		memcpy(r->balances[i].variant.bytes, p + 16, 16);
		r->balances[i].balance = (int64_t)get_u64(p + 32);
		r->balances[i].updated = (int64_t)get_u64(p + 40);
	}
	p += 8;
	for (i = 0; i < skipped; i++, p += 8)
		r->skipped[i] = (size_t)get_u64(p);
	*out = r;
	return 0;
corrupt:
	return inv__error(INV_EFORMAT, -1, NULL, "a stored idempotent result is corrupt");
}

struct idem_hit {
	uint8_t fingerprint[32];
	uint8_t *blob;
	size_t len;
	int failed;
};

static int copy_idem(const inv_idempotency_record *rec, void *payload)
{
	struct idem_hit *hit = payload;

	memcpy(hit->fingerprint, rec->fingerprint, 32);
	hit->len = rec->result_len;
	hit->blob = malloc(rec->result_len ? rec->result_len : 1);
	if (!hit->blob) {
		hit->failed = 1;
		return 1;
	}
	if (rec->result_len)
		memcpy(hit->blob, rec->result, rec->result_len);
	return 0;
}

/* -------------------------------------------------------------- results */

void inv_result_free(inv_result *result)
{
	if (!result)
		return;
	free(result->balances);
	free(result->skipped);
	free(result);
}

int64_t inv_result_sequence(const inv_result *result)
{
	return result ? result->sequence : 0;
}

int inv_result_replayed(const inv_result *result)
{
	return result ? result->replayed : 0;
}

const inv_location *inv_result_location(const inv_result *result)
{
	return result ? result->location : NULL;
}

size_t inv_result_count(const inv_result *result)
{
	return result ? result->count : 0;
}

const inv_balance *inv_result_balances(const inv_result *result)
{
	return result ? result->balances : NULL;
}

size_t inv_result_skipped_count(const inv_result *result)
{
	return result ? result->skipped_count : 0;
}

const size_t *inv_result_skipped(const inv_result *result)
{
	return result ? result->skipped : NULL;
}

/* --------------------------------------------------------------- engine */

int inv__tracking_read(inv_org *org, void *txn, const inv_uuid *product, int32_t *tracked)
{
	int rc = inv__ops(org)->tracking_get(txn, &org->node.key, product, tracked);

	if (rc == INV_ENOTFOUND) {
		*tracked = 0;
		return 0;
	}
	if (rc)
		return inv__error_keep(rc, -1, "cannot read the tracking state");
	*tracked = *tracked != 0;
	return 0;
}

/* The product's stored tracking state in p->committed. */
static int product_committed(inv_org *org, void *txn, inv__product *p)
{
	int rc;

	if (p->epoch == org->cache_epoch)
		return 0;
	rc = inv__tracking_read(org, txn, &p->node.key, &p->committed);
	if (rc)
		return rc;
	p->epoch = org->cache_epoch;
	return 0;
}

/* The product's tracking state as of this point of the batch, in
 * p->tracked, for run_tracking() to change. */
static int product_state(inv_org *org, void *txn, inv__product *p)
{
	int rc;

	if (p->gen == org->gen)
		return 0;
	rc = product_committed(org, txn, p);
	if (rc)
		return rc;
	p->tracked = p->committed;
	p->gen = org->gen;
	p->tracking_dirty = 0;
	return 0;
}

/* The same in *tracked for a reader: the moves run after the tracking
 * changes, so a product none of them named is as stored, and its handle
 * is left alone. */
static int product_tracked(inv_org *org, void *txn, inv__product *p, int32_t *tracked)
{
	int rc;

	if (p->gen == org->gen) {
		*tracked = p->tracked;
		return 0;
	}
	rc = product_committed(org, txn, p);
	if (rc)
		return rc;
	*tracked = p->committed;
	return 0;
}

/* Room for a batch of `changes` changes and up to `records` journal
 * records.  The built-in memory backend lends the room at the end of its
 * journal, where the records are then built in place; other backends get
 * them from the organization's scratch. */
static int scratch_reserve(inv_org *org, void *txn, size_t changes, size_t records,
                           const char *key)
{
	inv__scratch *sc = &org->scratch;
	size_t cap = sc->slot_cap;

	if (changes > cap) {
		size_t c;

		c = cap;
		if (inv__grow(&sc->slots, &c, changes, sizeof(*sc->slots)))
			goto nomem;
		c = cap;
		if (inv__grow(&sc->keys, &c, changes, sizeof(*sc->keys)))
			goto nomem;
		c = cap;
		if (inv__grow(&sc->recs, &c, changes, sizeof(*sc->recs)))
			goto nomem;
		c = cap;
		if (inv__grow(&sc->found, &c, changes, sizeof(*sc->found)))
			goto nomem;
		c = cap;
		if (inv__grow(&sc->miss, &c, changes, sizeof(*sc->miss)))
			goto nomem;
		c = cap;
		if (inv__grow(&sc->hints, &c, changes, sizeof(*sc->hints)))
			goto nomem;
		c = cap;
		if (inv__grow(&sc->skipped, &c, changes, sizeof(*sc->skipped)))
			goto nomem;
		sc->slot_cap = c;
		sc->skipped_cap = c;
	}
	if (records > sc->jrec_cap) {
		/* Decoded too: decoding for events after commit cannot fail. */
		size_t c = sc->jrec_cap;

		if (!org->memory_backend &&
		    inv__grow(&sc->crecs, &c, records, sizeof(*sc->crecs)))
			goto nomem;
		c = sc->jrec_cap;
		if (inv__grow(&sc->jrecs, &c, records, sizeof(*sc->jrecs)))
			goto nomem;
		sc->jrec_cap = c;
	}
	sc->jout = sc->crecs;
	if (org->memory_backend) {
		int rc = inv__memory_journal_room(txn, &org->node.key, records,
		                                  key ? strlen(key) + 1 : 0, &sc->jout);

		if (rc)
			return inv__error_keep(rc, -1, "cannot make room in the journal");
	}
	return 0;
nomem:
	return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
}

/* Batches up to this many changes keep their working memory on the
 * organization for the next one; a bigger batch's is returned after it. */
#define SCRATCH_KEEP_MAX 1024

static void scratch_trim(inv_org *org)
{
	inv__scratch *sc = &org->scratch;

	if (sc->slot_cap > SCRATCH_KEEP_MAX) {
		free(sc->slots);
		free(sc->keys);
		free(sc->recs);
		free(sc->found);
		free(sc->miss);
		free(sc->hints);
		free(sc->skipped);
		sc->slots = NULL;
		sc->keys = NULL;
		sc->recs = NULL;
		sc->found = NULL;
		sc->miss = NULL;
		sc->hints = NULL;
		sc->skipped = NULL;
		sc->slot_cap = sc->skipped_cap = 0;
	}
	if (sc->jrec_cap > 2 * SCRATCH_KEEP_MAX) {
		free(sc->crecs);
		free(sc->jrecs);
		sc->crecs = NULL;
		sc->jrecs = NULL;
		sc->jrec_cap = 0;
	}
}

static int owner_mismatch(const inv__slot *s, int64_t index)
{
	char text[37];

	inv_uuid_format(&s->owner, text);
	return inv__error(INV_EMISMATCH, index, "variant",
	                  "the variant belongs to product %s", text);
}

/* inv_set_balance(): turn the target into a move, now that the current
 * balance is known.  Leaves b->count 0 when there is nothing to move. */
static int plan_set_balance(inv_org *org, struct batch *b)
{
	const inv__slot *s = &org->scratch.slots[0];
	int64_t diff;

	if (s->mismatch)
		return owner_mismatch(s, -1);
	if (!s->tracked)
		return inv__error(INV_ENOTTRACKED, -1, "product", "the product is not tracked");
	if (b->set_expected && *b->set_expected != s->balance)
		return inv__error(INV_ECONFLICT, -1, "expected",
		                  "the balance is %lld, not the expected %lld",
		                  (long long)s->balance, (long long)*b->set_expected);
	diff = b->set_balance - s->balance;
	if (diff == 0) {
		b->count = 0;
		return 0;
	}
	if (diff > INV_QUANTITY_MAX || diff < -INV_QUANTITY_MAX)
		return inv__error(INV_ERANGE, -1, "balance",
		                  "the difference to the current balance is too large");
	if (diff > 0) {
		b->set_change.from = &org->locations[INV__LOC_SUPPLIER];
		b->set_change.to = b->set_location;
		b->set_change.quantity = diff;
	} else {
		b->set_change.from = b->set_location;
		b->set_change.to = b->set_reason;
		b->set_change.quantity = -diff;
	}
	return 0;
}

/* ------------------------------------------------------------ journal */

/* The batch's records are built compact (inv__jrec): their location fields
 * index a table of the nil UUID (JLOC_NONE, for a record without one) and
 * the organization's locations by type: every location handle is one of
 * org->locations, a location of type t at org->locations[t - 1]
 * (set_location() in org.c).  The type is at hand where a record is
 * built; a pointer difference would be a division. */
#define JLOC_NONE 0
#define JLOC_COUNT (INV__LOC_COUNT + 1)

static inline uint16_t jloc_of(const inv_location *loc)
{
	return (uint16_t)loc->type;
}

/* The table the records' location fields index. */
static void journal_locations(const inv_org *org, inv_uuid out[JLOC_COUNT])
{
	int i;

	memset(&out[JLOC_NONE], 0, sizeof(out[JLOC_NONE]));
	for (i = 0; i < INV__LOC_COUNT; i++)
		out[i + 1] = org->locations[i].uuid; /* of type i + 1 */
}

/* A record of `kind` with no locations and zero amounts. */
static inv__jrec *new_record(inv__scratch *sc, size_t r, int kind)
{
	inv__jrec *jr = &sc->jout[r];

	memset(jr, 0, sizeof(*jr)); /* locations JLOC_NONE */
	jr->kind = (uint8_t)kind;
	return jr;
}

/* The records in the vtable's form, for other backends and for events;
 * scratch_reserve() made room, so this cannot fail. */
static void decode_records(inv_org *org, inv_journal_entry_record *entry)
{
	inv_uuid locs[JLOC_COUNT];

	journal_locations(org, locs);
	inv__jrec_decode(org->scratch.jrecs, org->scratch.jout, entry->record_count, locs);
	entry->records = org->scratch.jrecs;
}

/* Append the entry: the built-in memory backend stores the compact records
 * as they are, others get them decoded. */
static int append_journal(inv_org *org, void *txn, inv_journal_entry_record *entry)
{
	int rc;

	if (org->memory_backend) {
		inv_uuid locs[JLOC_COUNT];

		journal_locations(org, locs);
		rc = inv__memory_journal_append_compact(txn, &org->node.key, entry,
		                                        org->scratch.jout, locs, JLOC_COUNT);
	} else {
		decode_records(org, entry);
		rc = inv__ops(org)->journal_append(txn, &org->node.key, entry);
	}
	return rc ? inv__error_keep(rc, -1, "cannot append to the journal") : 0;
}

/*
 * The moves of a batch as far as they ran.  load_variants() runs each
 * change as soon as its variant is known to be cached and its move to be
 * valid, and leaves the rest from the first other one (`next`) to
 * run_moves(): so every error of loading still comes before every error
 * of a move, and the moves' errors in change order.
 */
struct moves {
	inv__jrec *jr;              /* the next MOVE record */
	size_t *skipped;            /* lines skipped as untracked, `k` of them */
	size_t k;
	size_t touched;             /* variants with a STORE-side move */
	size_t next;                /* the first change not run */
	int32_t policy;             /* the organization's negative policy */
	int skip_untracked;         /* sales and refunds skip untracked lines */
};

static void moves_init(struct moves *mv, inv_org *org, const struct batch *b,
                       int32_t policy, size_t nrec)
{
	mv->jr = org->scratch.jout + nrec;
	mv->skipped = org->scratch.skipped;
	mv->k = mv->touched = mv->next = 0;
	mv->policy = policy;
	mv->skip_untracked = b->kind == INV__BATCH_SALE || b->kind == INV__BATCH_REFUND;
}

/* Why a change cannot run; MOVE_OK when it can. */
enum move_fault { MOVE_OK, MOVE_UNTRACKED, MOVE_SHORT, MOVE_BELOW, MOVE_ABOVE };

/* The error of change `index`, which cannot run for `f`. */
static int move_error(enum move_fault f, const inv__slot *s, const inv_change *c,
                      size_t index)
{
	int64_t idx = (int64_t)index;

	switch (f) {
	case MOVE_UNTRACKED:
		return inv__error(INV_ENOTTRACKED, idx, "product", "the product is not tracked");
	case MOVE_SHORT:
		return inv__error(INV_EINSUFFICIENT, idx, "quantity",
		                  "the balance is %lld, the change takes %lld",
		                  (long long)s->balance, (long long)c->quantity);
	case MOVE_BELOW:
		return inv__error(INV_ERANGE, idx, "quantity",
		                  "the balance would go below -(2^53-1)");
	default:
		return inv__error(INV_ERANGE, idx, "quantity", "the balance would exceed 2^53-1");
	}
}

/* Run change `i` (c) against its slot s, writing its MOVE record, or skip
 * it as untracked; else the fault, with nothing changed.  The slot's
 * record names v's product: a slot from the handle's cache always does. */
static inline enum move_fault move_run(struct moves *mv, inv__slot *s,
                                       const inv_variant *v, const inv_change *c, size_t i)
{
	inv__jrec *jr = mv->jr;
	int64_t bal = s->balance;
	uint16_t from = jloc_of(c->from), to = jloc_of(c->to);
	uint16_t side = JLOC_NONE;

	if (!s->tracked) {
		if (!mv->skip_untracked)
			return MOVE_UNTRACKED;
		mv->skipped[mv->k++] = i;
		return MOVE_OK;
	}
	if (c->from->type == INV_LOCATION_STORE) {
		side = from;
		bal -= c->quantity;
		if (mv->policy == INV_NEGATIVE_DENY && bal < 0)
			return MOVE_SHORT;
		if (bal < -INV_QUANTITY_MAX)
			return MOVE_BELOW;
	} else if (c->to->type == INV_LOCATION_STORE) {
		side = to;
		bal += c->quantity;
		if (bal > INV_QUANTITY_MAX)
			return MOVE_ABOVE;
	}
	/* Every member written once: no memset first. */
	jr->kind = INV_RECORD_MOVE;
	jr->low = 0;
	jr->product = s->product;
	jr->variant = v->uuid;
	jr->from = from;
	jr->to = to;
	jr->location = side;
	jr->quantity = c->quantity;
	s->moved = 1;
	if (side != JLOC_NONE) {
		jr->before = s->balance;
		jr->after = bal;
		s->balance = bal;
		mv->touched += !s->touched;
		s->touched = 1;
	} else {
		jr->before = jr->after = 0;
	}
	mv->jr = jr + 1;
	return MOVE_OK;
}

/* Run the moves load_variants() left, in order against running balances. */
static int run_moves(inv_org *org, const struct batch *b, struct moves *out)
{
	/* Locals: the stores below may alias org, b and *out. */
	struct moves mv = *out;
	inv__slot *slots = org->scratch.slots;
	const inv_change *changes = b->changes;
	size_t i, count = b->count;

	for (i = mv.next; i < count; i++) {
		const inv_change *c = &changes[i];
		const inv_variant *v = c->variant;
		inv__slot *s = &slots[v->slot];
		enum move_fault f;

		if (s->mismatch)
			return owner_mismatch(s, (int64_t)i);
		f = move_run(&mv, s, v, c, i);
		if (f != MOVE_OK)
			return move_error(f, s, c, i);
	}
	mv.next = count;
	*out = mv;
	return 0;
}

/* What load_variants() keeps while it gives the batch's variants slots. */
struct loader {
	inv_org *org;
	void *txn;
	inv__slot *slots;
	uint32_t gen;               /* the low bits a handle keeps (struct inv_variant) */
	uint32_t cached;            /* a handle's cache word in this epoch, not found */
	size_t n;                   /* slots given */
	size_t m;                   /* of them, to be read from the backend */
};

/* 1 when v's slot needs no read of the backend: v has one in this batch,
 * or its handle caches the record in this epoch (the cache word xor
 * ld->cached is then 0 or 1, the found flag). */
static inline int loader_cached(const struct loader *ld, const inv_variant *v)
{
	return v->gen == ld->gen || (v->cache ^ ld->cached) <= 1;
}

/* *out: the slot of v, given on its first change: from the handle's cache
 * (loader_cached()), or to be read (scratch keys and miss). */
static inline int loader_slot(struct loader *ld, inv_variant *v, inv__slot **out)
{
	inv__scratch *sc = &ld->org->scratch;
	inv__product *p = v->product;
	inv__slot *s;
	uint32_t d;

	if (v->gen == ld->gen) {
		*out = &ld->slots[v->slot];
		return 0;
	}
	v->gen = ld->gen;
	v->slot = (uint32_t)ld->n;
	s = &ld->slots[ld->n];
	s->variant = v;
	s->touched = s->moved = 0;
	s->mismatch = 0;
	s->has_level = 0;
	d = v->cache ^ ld->cached;
	if (d <= 1) {
		s->found = (int32_t)d;
		s->before = s->balance = v->balance;
		s->updated = v->updated;
	} else {
		sc->keys[ld->m].location = inv__default_store(ld->org)->uuid;
		sc->keys[ld->m].variant = v->uuid;
		sc->miss[ld->m++] = (uint32_t)ld->n;
	}
	ld->n++;
	*out = s;
	s->product = p->node.key;
	return product_tracked(ld->org, ld->txn, p, &s->tracked);
}

/* Give every distinct variant of the batch a slot and its default-STORE
 * record: from the handle's cache, or from the backend in one round trip
 * when the backend has batch forms.  Runs the moves on the way (struct
 * moves), up to the first change whose variant is not cached or whose
 * move fails; none for inv_set_balance(), whose move is planned from the
 * balance loaded. */
static int load_variants(inv_org *org, void *txn, const struct batch *b, size_t *nslots,
                         struct moves *out)
{
	const inv_backend_ops *ops = inv__ops(org);
	inv__scratch *sc = &org->scratch;
	const inv_uuid *store = &inv__default_store(org)->uuid;
	/* Locals: the stores below may alias org, b and *out. */
	struct loader ld = { org, txn, sc->slots, (uint32_t)org->gen,
	                     inv__variant_cache(org->cache_epoch, 0), 0, 0 };
	struct moves mv = *out;
	const inv_change *changes = b->changes;
	size_t i = 0, m, count = b->count;
	inv__slot *slot;
	int rc;

	if (b->kind != INV__BATCH_SET_BALANCE) {
		for (; i < count; i++) {
			inv_variant *v = (inv_variant *)changes[i].variant;

			if (!loader_cached(&ld, v))
				break;
			rc = loader_slot(&ld, v, &slot);
			if (rc)
				return rc;
			if (move_run(&mv, slot, v, &changes[i], i) != MOVE_OK)
				break; /* its slot given: run_moves() raises the error */
		}
	}
	mv.next = i;
	*out = mv;
	for (; i < count; i++) {
		rc = loader_slot(&ld, (inv_variant *)changes[i].variant, &slot);
		if (rc)
			return rc;
	}
	m = ld.m;
	if (ops->variant_get_many && m) {
		rc = ops->variant_get_many(txn, &org->node.key, m, sc->keys, sc->recs, sc->found);
		if (rc)
			return inv__error_keep(rc, -1, "cannot read the variants");
	} else {
		for (i = 0; i < m; i++) {
			rc = ops->variant_get(txn, &org->node.key, store, &sc->keys[i].variant,
			                      &sc->recs[i]);
			if (rc && rc != INV_ENOTFOUND)
				return inv__error_keep(rc, -1, "cannot read the variants");
			sc->found[i] = rc == 0;
		}
	}
	for (i = 0; i < m; i++) {
		inv__slot *s = &sc->slots[sc->miss[i]];
		inv_variant *v = s->variant;
		const inv_variant_record *rec = &sc->recs[i];

		s->found = sc->found[i] != 0;
		s->before = s->balance = s->found ? rec->balance : 0;
		s->updated = s->found ? rec->updated : 0;
		if (s->found && !inv__uuid_eq(&rec->product, &s->product)) {
			s->mismatch = 1;
			s->owner = rec->product;
			continue; /* not cached: the batch fails if it moves it */
		}
		v->cache = inv__variant_cache(org->cache_epoch, s->found);
		v->balance = s->balance;
		v->updated = s->updated;
	}
	*nslots = ld.n;
	return 0;
}

/* Below this many variants with a STORE-side move (at least as many as
 * changed) a get per changed variant beats a scan. */
#define LOW_STOCK_SCAN_MIN 16

struct level_scan {
	inv_org *org;
	size_t entries;
	size_t levels;              /* entries that set a level of a slot */
};

static int level_of_slot(const inv_low_stock_record *rec, void *payload)
{
	struct level_scan *ls = payload;
	inv_org *org = ls->org;
	inv_variant *v = inv__handles_find(&org->variants, &rec->variant);
	inv__slot *s;

	ls->entries++;
	if (!v || v->gen != (uint32_t)org->gen)
		return 0;
	s = &org->scratch.slots[v->slot];
	if (inv__uuid_eq(&s->product, &rec->product)) {
		s->has_level = rec->has_level;
		s->level = rec->level;
		ls->levels += rec->has_level != 0;
	}
	return 0;
}

/* The low-stock levels of the changed variants (slots start without one):
 * one scan of the default STORE's entries when there are fewer of them
 * than `touched` variants (as the last scan found), else a get per changed
 * variant.  *nlevels: how many slots got a level. */
static int load_levels(inv_org *org, void *txn, size_t nslots, size_t touched,
                       size_t *nlevels)
{
	const inv_backend_ops *ops = inv__ops(org);
	inv__scratch *sc = &org->scratch;
	const inv_location *store = inv__default_store(org);
	size_t i;
	int rc;

	*nlevels = 0;
	if (touched >= LOW_STOCK_SCAN_MIN && org->low_stock_seen < touched) {
		struct level_scan ls = { org, 0, 0 };

		pthread_mutex_lock(&org->handles_lock);
		rc = ops->low_stock_scan(txn, &org->node.key, &store->uuid, NULL,
		                         level_of_slot, &ls);
		pthread_mutex_unlock(&org->handles_lock);
		if (rc)
			return inv__error_keep(rc, -1, "cannot read the low-stock levels");
		org->low_stock_seen = ls.entries;
		*nlevels = ls.levels;
		return 0;
	}
	for (i = 0; i < nslots; i++) {
		inv__slot *s = &sc->slots[i];
		inv_low_stock_record rec;

		if (s->balance == s->before)
			continue;
		rc = ops->low_stock_get(txn, &org->node.key, &store->uuid,
		                        &s->product, &s->variant->uuid, &rec);
		if (rc == INV_ENOTFOUND)
			continue;
		if (rc)
			return inv__error_keep(rc, -1, "cannot read the low-stock level");
		s->has_level = rec.has_level;
		s->level = rec.level;
		*nlevels += rec.has_level != 0;
	}
	if (touched >= LOW_STOCK_SCAN_MIN)
		org->low_stock_seen /= 2; /* try a scan again some day */
	return 0;
}

/* LOW_STOCK records, in slot order, for every variant whose balance
 * crossed its level. */
static int low_stock_crossings(inv_org *org, void *txn, size_t nslots, size_t touched,
                               size_t *nrec)
{
	inv__scratch *sc = &org->scratch;
	const inv_location *store = inv__default_store(org);
	size_t i, r = *nrec, nlevels;
	int rc = load_levels(org, txn, nslots, touched, &nlevels);

	if (rc || nlevels == 0)
		return rc;
	for (i = 0; i < nslots; i++) {
		const inv__slot *s = &sc->slots[i];
		inv__jrec *jr;
		int low_before, low_after;

		if (s->balance == s->before || !s->has_level)
			continue;
		low_before = s->before < s->level;
		low_after = s->balance < s->level;
		if (low_before == low_after)
			continue;
		jr = new_record(sc, r++, INV_RECORD_LOW_STOCK);
		jr->low = (uint8_t)low_after;
		jr->product = s->product;
		jr->variant = s->variant->uuid;
		jr->location = jloc_of(store);
		jr->quantity = s->level;
		jr->before = s->before;
		jr->after = s->balance;
	}
	*nrec = r;
	return 0;
}

static int build_result(inv_result **out, inv_org *org, const struct batch *b,
                        size_t nslots, size_t nskipped, int64_t now)
{
	inv__scratch *sc = &org->scratch;
	inv_result *r = calloc(1, sizeof(*r));
	size_t i, n = 0;

	if (!r)
		goto nomem;
	r->location = b->result_location;
	/* Only the default STORE holds balances today. */
	if (r->location == inv__default_store(org)) {
		for (i = 0; i < nslots; i++)
			n += sc->slots[i].touched;
		if (n && !(r->balances = calloc(n, sizeof(*r->balances))))
			goto nomem;
		/* In order of first touch of the STORE, as the balance-changed
		 * event lists them (a variant's first change may be elsewhere). */
		for (i = 0, n = 0; i < b->count; i++) {
			const inv_change *c = &b->changes[i];
			inv__slot *s = &sc->slots[((const inv_variant *)c->variant)->slot];
			inv_balance *bal;

			if (s->touched != 1 || (c->from->type != INV_LOCATION_STORE &&
			                        c->to->type != INV_LOCATION_STORE))
				continue;
			s->touched = 2; /* listed */
			bal = &r->balances[n++];
			bal->product = s->product;
			bal->variant = s->variant->uuid;
			bal->balance = s->balance;
			bal->updated = s->balance != s->before ? now : s->updated;
		}
		r->count = n;
	}
	if (nskipped) {
		r->skipped = malloc(nskipped * sizeof(*r->skipped));
		if (!r->skipped)
			goto nomem;
		memcpy(r->skipped, sc->skipped, nskipped * sizeof(*r->skipped));
		r->skipped_count = nskipped;
	}
	*out = r;
	return 0;
nomem:
	inv_result_free(r);
	return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
}

/* Store recs[0, n) in the default STORE (their location not yet set: the
 * built-in memory backend takes it once): the memory backend by the
 * handles' hints, others in one round trip when they have the batch
 * form. */
static int put_variants(inv_org *org, void *txn, size_t n)
{
	const inv_backend_ops *ops = inv__ops(org);
	inv__scratch *sc = &org->scratch;
	size_t i;
	int rc = 0;

	if (n == 0)
		return 0;
	if (org->memory_backend) {
		rc = inv__memory_variant_put_hinted(txn, &org->node.key,
		                                    &inv__default_store(org)->uuid, n, sc->recs,
		                                    sc->hints);
	} else {
		for (i = 0; i < n; i++)
			sc->recs[i].location = inv__default_store(org)->uuid;
		if (ops->variant_put_many)
			rc = ops->variant_put_many(txn, &org->node.key, n, sc->recs);
		else
			for (i = 0; i < n && rc == 0; i++)
				rc = ops->variant_put(txn, &org->node.key, &sc->recs[i]);
	}
	return rc ? inv__error_keep(rc, -1, "cannot store the balances") : 0;
}

/* Store the batch: balances, tracking, the org's sequence, the journal entry
 * and the idempotency key, all in the caller's transaction. */
static int store_batch(inv_org *org, void *txn, const struct batch *b, size_t nslots,
                       inv_org_record *orec, inv_journal_entry_record *entry,
                       const inv_result *result, const uint8_t *fp)
{
	const inv_backend_ops *ops = inv__ops(org);
	inv__scratch *sc = &org->scratch;
	const inv_apply_options *o = b->opts;
	size_t i, n = 0;
	int rc;

	/* Locals: the stores below may alias sc. */
	const inv__slot *slots = sc->slots;
	inv_variant_record *recs = sc->recs;
	uint32_t **hints = sc->hints;
	int64_t now = entry->time;
	/* load_variants() cached every slot's handle in this epoch. */
	const uint32_t found = inv__variant_cache(org->cache_epoch, 1);

	/* Compact the changed records to the front of recs[] in place, and
	 * cache them in the handles (the epoch moves on if the commit fails). */
	for (i = 0; i < nslots; i++) {
		const inv__slot *s = &slots[i];
		inv_variant_record *rec = &recs[n];
		inv_variant *v = s->variant;
		int64_t balance = s->balance, updated;

		/* A move without a STORE side still pins the variant's owner. */
		if (balance == s->before && (s->found || !s->moved))
			continue;
		/* Locals: the stores to rec may alias the slot. */
		updated = balance != s->before ? now : s->updated;
		rec->variant = v->uuid;
		rec->product = s->product;
		rec->balance = balance;
		rec->updated = updated;
		v->cache = found;
		v->balance = balance;
		v->updated = updated;
		hints[n] = &v->backend_hint;
		n++;
	}
	rc = put_variants(org, txn, n);
	if (rc)
		return rc;
	for (i = 0; i < o->tracking_count; i++) {
		inv__product *p;

		rc = inv__org_product(&p, org, &o->tracking[i].product);
		if (rc)
			return rc;
		if (!p->tracking_dirty)
			continue;
		p->tracking_dirty = 0;
		p->committed = p->tracked; /* the epoch moves on if the commit fails */
		rc = ops->tracking_put(txn, &org->node.key, &p->node.key, p->tracked);
		if (rc)
			return inv__error_keep(rc, -1, "cannot store the tracking state");
	}
	orec->last_sequence = entry->sequence;
	rc = ops->org_put(txn, orec);
	if (rc)
		return inv__error_keep(rc, -1, "cannot store the organization");
	rc = append_journal(org, txn, entry);
	if (rc)
		return rc;
	if (o->idempotency_key) {
		inv_idempotency_record irec = { .key = o->idempotency_key,
		                                .sequence = entry->sequence };
		uint8_t *blob;

		memcpy(irec.fingerprint, fp, 32);
		blob = result_encode(result, &irec.result_len);
		if (!blob)
			return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		irec.result = blob;
		rc = ops->idempotency_put(txn, &org->node.key, &irec);
		free(blob);
		if (rc)
			return inv__error_keep(rc, -1, "cannot store the idempotency key");
	}
	return 0;
}

/* Apply the tracking changes in order, writing TRACKING_* records. */
static int run_tracking(inv_org *org, void *txn, const inv_apply_options *o, size_t *nrec)
{
	inv__scratch *sc = &org->scratch;
	size_t i, r = *nrec;
	int rc;

	for (i = 0; i < o->tracking_count; i++) {
		const inv_tracking_change *t = &o->tracking[i];
		inv__jrec *jr;
		inv__product *p;

		rc = inv__org_product(&p, org, &t->product);
		if (rc)
			return rc;
		rc = product_state(org, txn, p);
		if (rc)
			return rc;
		if (t->action == INV_TRACKING_START && p->tracked)
			continue;
		if (t->action == INV_TRACKING_STOP && !p->tracked)
			return inv__error(INV_ENOTTRACKED, (int64_t)i, "tracking",
			                  "the product is not tracked");
		p->tracked = t->action == INV_TRACKING_START;
		p->tracking_dirty = 1;
		jr = new_record(sc, r++, p->tracked ? INV_RECORD_TRACKING_STARTED
		                                    : INV_RECORD_TRACKING_STOPPED);
		jr->product = t->product;
	}
	*nrec = r;
	return 0;
}

static int replay(inv_result **out, inv_org *org, struct idem_hit *hit, const uint8_t *fp)
{
	inv_result *r = NULL;
	int rc;

	if (hit->failed)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	if (memcmp(hit->fingerprint, fp, 32) != 0)
		return inv__error(INV_ECONFLICT, -1, "idempotency_key",
		                  "the idempotency key was used for another batch");
	rc = result_decode(&r, org, hit->blob, hit->len);
	if (rc)
		return rc;
	*out = r;
	return 0;
}

/* ------------------------------------------------- early lock release */

/*
 * With a backend that has commit_release() (libzinv-sqlite's deferred
 * fsync), a batch unlocks its organization once the backend lets the next
 * batch begin, and waits for durability outside the lock, so that the
 * organization's next batches share its fsync.  Those batches read through
 * the backend, which shows them the released writes and makes them durable
 * only if these are; the engine's caches are not trusted while a released
 * batch is unanswered, or after one failed.  Batches are answered, and
 * their events announced, in release order (tickets).
 */

/* 1 when the caches must not be trusted (see above); called under the
 * write lock at the start of a batch. */
static int commits_unsettled(inv_org *org)
{
	int unsettled;

	if (!org->store->commit_release)
		return 0;
	pthread_mutex_lock(&org->commit_lock);
	unsettled = org->tickets_out != org->tickets_done || org->commit_failed;
	org->commit_failed = 0;
	pthread_mutex_unlock(&org->commit_lock);
	return unsettled;
}

/* 1 while a released batch is unanswered. */
static int commits_pending(inv_org *org)
{
	int pending;

	if (!org->store->commit_release)
		return 0;
	pthread_mutex_lock(&org->commit_lock);
	pending = org->tickets_out != org->tickets_done;
	pthread_mutex_unlock(&org->commit_lock);
	return pending;
}

/* Wait until every batch released before `ticket` is answered; the
 * failures counted so far.  Called without the write lock. */
static uint64_t commits_wait(inv_org *org, uint64_t ticket)
{
	uint64_t failures;

	pthread_mutex_lock(&org->commit_lock);
	while (org->tickets_done < ticket)
		pthread_cond_wait(&org->commit_cv[ticket % INV__COMMIT_CVS], &org->commit_lock);
	failures = org->commit_failures;
	pthread_mutex_unlock(&org->commit_lock);
	return failures;
}

struct release {
	inv_org *org;
	uint64_t ticket;
	int released;
};

/* The backend lets the organization's next batch begin: take a ticket and
 * unlock.  The scratch is the next batch's from here on. */
static void release_org(void *arg)
{
	struct release *r = arg;
	inv_org *org = r->org;

	if (r->released)
		return;
	r->released = 1;
	pthread_mutex_lock(&org->commit_lock);
	r->ticket = org->tickets_out++;
	pthread_mutex_unlock(&org->commit_lock);
	scratch_trim(org);
	inv__org_unlock_write(org);
}

/* Commit `txn` through commit_release() and answer in ticket order,
 * announcing the entry's events when it is durable.  Returns with the
 * organization unlocked. */
static int commit_released(inv_org *org, void *txn, inv_journal_entry_record *entry)
{
	inv_store *s = org->store;
	struct release r = { org, 0, 0 };
	inv_journal_record *recs = NULL;
	int rc, announce = inv__events_wanted(s);

	if (announce) {
		/* the records leave the scratch before the organization does */
		if (!entry->records)
			decode_records(org, entry);
		recs = malloc(entry->record_count * sizeof(*recs) + 1);
		if (recs)
			memcpy(recs, entry->records, entry->record_count * sizeof(*recs));
		else
			announce = 0; /* out of memory: the journal still holds the events */
		entry->records = recs;
	}
	org->cache_sequence = entry->sequence; /* commit_failed says otherwise */
	rc = s->commit_release(txn, release_org, &r);
	release_org(&r); /* a backend that did not: nothing runs without it */
	if (rc)
		rc = inv__error_keep(rc, -1, "%s backend: commit failed",
		                     s->ops->name ? s->ops->name : "storage");
	commits_wait(org, r.ticket);
	if (rc == 0 && announce) {
		inv_journal_entry je;

		je.rec = *entry;
		inv__events_dispatch(org->store, &org->node.key, &je);
	}
	pthread_mutex_lock(&org->commit_lock);
	if (rc) {
		org->commit_failed = 1;
		org->commit_failures++;
	}
	org->tickets_done++;
	pthread_cond_broadcast(&org->commit_cv[org->tickets_done % INV__COMMIT_CVS]);
	pthread_mutex_unlock(&org->commit_lock);
	free(recs);
	return rc;
}

/* Announce a committed entry's events (the write lock held). */
static void announce_entry(inv_org *org, inv_journal_entry_record *entry)
{
	inv_journal_entry je;

	if (!inv__events_wanted(org->store))
		return;
	if (!entry->records)
		decode_records(org, entry);
	je.rec = *entry;
	inv__events_dispatch(org->store, &org->node.key, &je);
}

/* ------------------------------------------------------------ batches */

/* run_batch() once; *again set when an idempotent replay answered a batch
 * that then failed, so the call must run afresh. */
static int run_batch_once(inv_result **out, inv_org *org, struct batch *b, int *again)
{
	const inv_backend_ops *ops = inv__ops(org);
	const inv_apply_options *o = b->opts;
	inv_journal_entry_record entry;
	struct idem_hit hit = { .blob = NULL };
	inv_result *result = NULL;
	inv_org_record orec;
	struct moves mv;
	uint8_t fp[32];
	size_t nslots = 0, nrec = 0, nskipped = 0, ntouched = 0;
	uint64_t replay_ticket = 0, replay_failures = 0;
	void *txn;
	int rc;

	if (o->idempotency_key)
		fingerprint_batch(b, fp);
	rc = inv__org_lock_write(org);
	if (rc)
		return rc;
	if (inv__events_in_callback() && commits_pending(org)) {
		/* its events would overtake those of the released batches */
		inv__org_unlock_write(org);
		return inv__error(INV_EBUSY, -1, NULL,
		                  "an event callback cannot wait for a busy organization; "
		                  "retry after the callback");
	}
	rc = inv__org_begin(org, 1, &txn);
	if (rc)
		goto unlock;

	if (o->idempotency_key) {
		rc = ops->idempotency_get(txn, &org->node.key, o->idempotency_key, copy_idem, &hit);
		if (rc == 0 || hit.failed) {
			rc = replay(&result, org, &hit, fp);
			if (rc == 0 && org->store->commit_release) {
				/* the batch replayed may be released but not durable */
				pthread_mutex_lock(&org->commit_lock);
				replay_ticket = org->tickets_out;
				replay_failures = org->commit_failures;
				pthread_mutex_unlock(&org->commit_lock);
			}
			goto rollback;
		}
		if (rc != INV_ENOTFOUND) {
			rc = inv__error_keep(rc, -1, "cannot read the idempotency key");
			goto rollback;
		}
	}
	rc = ops->org_get(txn, &org->node.key, &orec);
	if (rc) {
		rc = inv__error_keep(rc, -1, "cannot read the organization");
		goto rollback;
	}
	if (orec.last_sequence != org->cache_sequence || commits_unsettled(org)) {
		/* Someone else committed since our last batch, or ours are not
		 * settled yet. */
		inv__org_cache_stale(org);
		org->cache_sequence = orec.last_sequence;
	}
	inv__org_next_gen(org);
	rc = scratch_reserve(org, txn, b->count, o->tracking_count + 2 * b->count,
	                     o->idempotency_key);
	if (rc)
		goto rollback;
	rc = run_tracking(org, txn, o, &nrec);
	if (rc)
		goto rollback;
	moves_init(&mv, org, b, orec.negative_policy, nrec);
	rc = load_variants(org, txn, b, &nslots, &mv);
	if (rc)
		goto rollback;
	if (b->kind == INV__BATCH_SET_BALANCE) {
		rc = plan_set_balance(org, b);
		if (rc)
			goto rollback;
	}
	rc = run_moves(org, b, &mv);
	if (rc)
		goto rollback;
	nrec = (size_t)(mv.jr - org->scratch.jout);
	nskipped = mv.k;
	ntouched = mv.touched;
	rc = low_stock_crossings(org, txn, nslots, ntouched, &nrec);
	if (rc)
		goto rollback;

	memset(&entry, 0, sizeof(entry));
	entry.sequence = nrec && !o->dry_run ? orec.last_sequence + 1 : 0;
	entry.time = inv__store_now(org->store);
	if (o->external_uuid) {
		entry.has_external_uuid = 1;
		entry.external_uuid = *o->external_uuid;
	}
	if (o->user_uuid) {
		entry.has_user_uuid = 1;
		entry.user_uuid = *o->user_uuid;
	}
	if (o->client_uuid) {
		entry.has_client_uuid = 1;
		entry.client_uuid = *o->client_uuid;
	}
	entry.idempotency_key = o->idempotency_key;
	entry.record_count = nrec;

	if (out || o->idempotency_key) {
		rc = build_result(&result, org, b, nslots, nskipped, entry.time);
		if (rc)
			goto rollback;
		result->sequence = entry.sequence;
	}
	if (entry.sequence == 0) /* a dry run, or nothing to store */
		goto rollback;
	rc = store_batch(org, txn, b, nslots, &orec, &entry, result, fp);
	if (rc) {
		ops->rollback(txn);
		inv__org_cache_stale(org);
		goto unlock;
	}
	if (org->store->commit_release && !inv__events_in_callback()) {
		rc = commit_released(org, txn, &entry);
		goto unlocked;
	}
	rc = inv__org_commit(org, txn);
	if (rc) {
		inv__org_cache_stale(org);
		goto unlock;
	}
	org->cache_sequence = entry.sequence;
	announce_entry(org, &entry);
	goto unlock;

rollback:
	ops->rollback(txn);
unlock:
	scratch_trim(org);
	inv__org_unlock_write(org);
unlocked:
	free(hit.blob);
	if (rc == 0 && replay_ticket && commits_wait(org, replay_ticket) != replay_failures) {
		/* a batch released before the replay failed: it may be the one */
		inv_result_free(result);
		*again = 1;
		return 0;
	}
	if (rc) {
		inv_result_free(result);
		return rc;
	}
	if (out)
		*out = result;
	else
		inv_result_free(result);
	return 0;
}

static int run_batch(inv_result **out, inv_org *org, struct batch *b)
{
	int again, rc;

	do {
		again = 0;
		rc = run_batch_once(out, org, b, &again);
	} while (again);
	return rc;
}

/* ------------------------------------------------------------ public API */

static int begin_call(inv_result **out, inv_org *org, const inv_apply_options **opts,
                      struct batch *b, enum inv__batch_kind kind)
{
	int rc;

	if (out)
		*out = NULL;
	if (!org)
		return inv__error(INV_EINVAL, -1, "org", "org is NULL");
	if (!*opts)
		*opts = &default_options;
	rc = validate_options(org, *opts);
	if (rc)
		return rc;
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->opts = *opts;
	b->result_location = (*opts)->return_location ? (*opts)->return_location
	                                              : inv__default_store(org);
	return 0;
}

int inv_apply_changes(inv_result **out, inv_org *org, const inv_change *changes,
                      size_t count, const inv_apply_options *opts)
{
	struct batch b;
	int rc = begin_call(out, org, &opts, &b, INV__BATCH_APPLY);

	if (rc)
		return rc;
	rc = validate_changes(org, changes, count);
	if (rc)
		return rc;
	if (count == 0 && opts->tracking_count == 0)
		return inv__error(INV_EINVAL, -1, "changes", "a batch needs at least one change");
	b.changes = changes;
	b.count = count;
	return run_batch(out, org, &b);
}

/* Sales and refunds are batches of moves between the default STORE and
 * SOLD; a short one is built on the stack. */
static int record_lines(inv_result **out, inv_org *org, const inv_sale_line *lines,
                        size_t count, const inv_apply_options *opts,
                        enum inv__batch_kind kind)
{
	inv_change local[16], *changes = local;
	const inv_location *store, *sold;
	struct batch b;
	size_t i;
	int rc = begin_call(out, org, &opts, &b, kind);

	if (rc)
		return rc;
	if (count == 0)
		return inv__error(INV_EINVAL, -1, "lines", "a sale needs at least one line");
	if (!lines)
		return inv__error(INV_EINVAL, -1, "lines", "lines are NULL");
	if (count > INV_BATCH_MAX)
		return inv__error(INV_ETOOBIG, -1, "lines",
		                  "a batch holds at most %d lines", INV_BATCH_MAX);
	if (count > sizeof(local) / sizeof(local[0])) {
		changes = malloc(count * sizeof(*changes));
		if (!changes)
			return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	store = inv__default_store(org);
	sold = &org->locations[INV__LOC_SOLD];
	for (i = 0; i < count; i++) {
		changes[i].variant = lines[i].variant;
		changes[i].from = kind == INV__BATCH_SALE ? store : sold;
		changes[i].to = kind == INV__BATCH_SALE ? sold : store;
		changes[i].quantity = lines[i].quantity;
	}
	rc = validate_changes(org, changes, count);
	if (rc == 0) {
		b.changes = changes;
		b.count = count;
		rc = run_batch(out, org, &b);
	}
	if (changes != local)
		free(changes);
	return rc;
}

int inv_record_sale(inv_result **out, inv_org *org, const inv_sale_line *lines,
                    size_t count, const inv_apply_options *opts)
{
	return record_lines(out, org, lines, count, opts, INV__BATCH_SALE);
}

int inv_record_refund(inv_result **out, inv_org *org, const inv_sale_line *lines,
                      size_t count, const inv_apply_options *opts)
{
	return record_lines(out, org, lines, count, opts, INV__BATCH_REFUND);
}

int inv_set_balance(inv_result **out, inv_org *org, const inv_variant *variant,
                    const inv_location *location, int64_t balance,
                    const int64_t *expected, const inv_location *reason,
                    const inv_apply_options *opts)
{
	struct batch b;
	int rc = begin_call(out, org, &opts, &b, INV__BATCH_SET_BALANCE);

	if (rc)
		return rc;
	if (!variant || variant->org != org)
		return inv__error(INV_EINVAL, -1, "variant", variant ?
		                  "the variant handle belongs to another organization" :
		                  "the variant is NULL");
	if (!location)
		location = inv__default_store(org);
	if (!inv__org_owns(org, location) || location->type != INV_LOCATION_STORE)
		return inv__error(INV_EINVAL, -1, "location",
		                  "the location is not a STORE of this organization");
	if (!reason)
		reason = &org->locations[INV__LOC_SUPPLIER];
	if (!inv__org_owns(org, reason) || reason->type == INV_LOCATION_STORE)
		return inv__error(INV_EINVAL, -1, "reason",
		                  "the reason is SOLD, BIN or SUPPLIER of this organization");
	if (balance < -INV_QUANTITY_MAX || balance > INV_QUANTITY_MAX)
		return inv__error(INV_EINVAL, -1, "balance", "a balance is within +-(2^53-1)");
	b.set_change.variant = variant;
	b.set_change.from = location;
	b.set_change.to = reason;
	b.set_change.quantity = 1;
	b.set_location = location;
	b.set_reason = reason;
	b.set_balance = balance;
	b.set_expected = expected;
	b.changes = &b.set_change;
	b.count = 1;
	rc = run_batch(out, org, &b);
	/* The engine names its one computed change (index 0); the caller
	 * passed no array to point into. */
	if (rc)
		inv__error_set_index(-1);
	return rc;
}

int inv__apply_tracking(inv_org *org, const inv_uuid *product, int32_t action)
{
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_tracking_change t = { .action = action };

	if (!org)
		return inv__error(INV_EINVAL, -1, "org", "org is NULL");
	if (!product)
		return inv__error(INV_EINVAL, -1, "product", "product is NULL");
	t.product = *product;
	opts.tracking = &t;
	opts.tracking_count = 1;
	return inv_apply_changes(NULL, org, NULL, 0, &opts);
}
