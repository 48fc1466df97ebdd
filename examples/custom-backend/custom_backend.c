/*
 * custom_backend.c - a complete libzinv storage backend in one file.
 *
 * This is the template for people who bring their own storage.  It keeps
 * everything in memory, in plain arrays searched linearly, and uses nothing
 * but <zinv/backend.h>: no libzinv internals.  Replace the arrays with your
 * tables, files or key-value store and keep the shape:
 *
 *   instance   struct custom_backend: one per inv_store, owns all data.
 *   state      struct version: the committed state of ONE organization.
 *              A version is never modified once committed ("published"),
 *              so any number of readers can share it without locks.
 *   txn        struct txn: what begin() hands to the core and every other
 *              operation receives back.
 *
 * Transactions are copy-on-begin (a form of multi-version concurrency):
 *
 *   begin(read)    take a reference to the organization's current version.
 *                  That is the consistent snapshot the contract asks for:
 *                  later commits publish new versions and never touch it.
 *   begin(write)   wait until no other write transaction is open on the
 *                  organization, then copy its current version into a
 *                  private working copy.  Every write goes to the copy.
 *   commit()       publish the copy as the current version (one pointer
 *                  swap under the lock, so all writes appear at once) and
 *                  let the next writer in.
 *   rollback()     throw the copy away.  Nothing else was touched, so there
 *                  is nothing to undo.
 *
 * An operation naming another organization than begin() did joins it to the
 * transaction the same way (a snapshot to read, a copy to write), and
 * commit publishes every copy under one lock.
 *
 * The alternative is an undo log: write in place and record the old value
 * of every write, replaying the log backwards on rollback.  It avoids the
 * copy but then a reader could see uncommitted writes, so readers would have
 * to wait for writers.  A SQL database gives you both for free: map begin,
 * commit and rollback to BEGIN / COMMIT / ROLLBACK (see lib/sqlite/sqlite.c).
 *
 * Copying a version costs O(variants, tracking and low-stock records of the
 * organization) per write transaction: a few memcpy calls.  The journal and
 * the idempotency results, the parts that grow with every batch, are kept
 * as persistent lists that versions share, so they are never copied and a
 * batch costs the same on the millionth journal entry as on the first.
 *
 * Rules from <zinv/backend.h> this file follows, each marked "Rule:" below:
 * results are copied into the core's memory or lent for the duration of a
 * callback; scans stop on a non-zero return from the callback and return it;
 * errors are negative INV_E* codes with a message set by inv_backend_error().
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "custom_backend.h"

/* ------------------------------------------------------------ helpers */

static int uuid_eq(const inv_uuid *a, const inv_uuid *b)
{
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

/* Rule: report the reason, so that it reaches the caller of libzinv. */
static int out_of_memory(void)
{
	return inv_backend_error(INV_ENOMEM, "custom backend: out of memory");
}

/*
 * A growable array of fixed-size elements.  Linear search over it is the
 * whole "index": fine for a template and for a few thousand variants.
 */
struct array {
	void *items;
	size_t count;
	size_t cap;
	size_t size; /* bytes per element */
};

static void *array_at(const struct array *a, size_t i)
{
	return (char *)a->items + i * a->size;
}

static int array_reserve(struct array *a, size_t need)
{
	size_t cap;
	void *items;

	if (need <= a->cap)
		return 0;
	cap = a->cap ? a->cap * 2 : 8;
	if (cap < need)
		cap = need;
	if (cap > SIZE_MAX / a->size)
		return out_of_memory();
	items = realloc(a->items, cap * a->size);
	if (!items)
		return out_of_memory();
	a->items = items;
	a->cap = cap;
	return 0;
}

static int array_push(struct array *a, const void *item)
{
	int rc = array_reserve(a, a->count + 1);

	if (rc)
		return rc;
	memcpy(array_at(a, a->count++), item, a->size);
	return 0;
}

static void array_remove(struct array *a, size_t i)
{
	memmove(array_at(a, i), array_at(a, i + 1), (a->count - i - 1) * a->size);
	a->count--;
}

static int array_copy(struct array *dst, const struct array *src)
{
	*dst = (struct array){ .size = src->size };
	if (src->count == 0)
		return 0;
	if (array_reserve(dst, src->count))
		return INV_ENOMEM;
	memcpy(dst->items, src->items, src->count * src->size);
	dst->count = src->count;
	return 0;
}

/* ---------------------------------- persistent lists: journal, keys */

/*
 * Journal entries and idempotency records never change once written.  Each
 * kind is a list, newest first, in which every node holds a reference to
 * the next older one.  A version points at its newest node only, so
 *   - copying a version copies one pointer (and takes one reference),
 *   - appending makes one node that takes over the version's reference,
 *   - an older version still sees exactly the nodes it had,
 *   - rolling back releases the new nodes, and only those.
 * The count is atomic because versions are released by whichever thread
 * drops the last reference.
 */
struct node {
	atomic_int refs;
	struct node *older;
};

/* The node is the first member of an entry or a record, so the conversion
 * is exact (and well defined for NULL, unlike &p->node). */
#define NODE(p) ((struct node *)(p))

static struct node *node_retain(struct node *n)
{
	if (n)
		atomic_fetch_add(&n->refs, 1);
	return n;
}

static void node_release(struct node *n)
{
	/* A loop, not recursion: a journal may be millions of entries long. */
	while (n && atomic_fetch_sub(&n->refs, 1) == 1) {
		struct node *older = n->older;

		free(n);
		n = older;
	}
}

/* A journal entry: the record the core gave us, deep-copied, in one
 * allocation.  rec.records points at records[], rec.idempotency_key just
 * behind them. */
struct entry {
	struct node node; /* first: a struct entry * is a struct node * */
	inv_journal_entry_record rec;
	inv_journal_record records[];
};

/* Rule: the core's record is only lent to us for the call: copy all of it. */
static struct entry *entry_copy(const inv_journal_entry_record *rec)
{
	size_t keylen = rec->idempotency_key ? strlen(rec->idempotency_key) + 1 : 0;
	size_t max = (SIZE_MAX - sizeof(struct entry) - keylen) / sizeof(inv_journal_record);
	struct entry *e;

	if (rec->record_count > max)
		return NULL;
	e = malloc(sizeof(*e) + rec->record_count * sizeof(inv_journal_record) + keylen);
	if (!e)
		return NULL;
	atomic_init(&e->node.refs, 1);
	e->node.older = NULL;
	e->rec = *rec;
	if (rec->record_count)
		memcpy(e->records, rec->records, rec->record_count * sizeof(inv_journal_record));
	e->rec.records = e->records;
	if (keylen) {
		char *key = (char *)(e->records + rec->record_count);

		memcpy(key, rec->idempotency_key, keylen);
		e->rec.idempotency_key = key;
	}
	return e;
}

/* A remembered idempotency key; rec.key and rec.result point into data[]. */
struct idem {
	struct node node;
	inv_idempotency_record rec;
	unsigned char data[];
};

static struct idem *idem_copy(const inv_idempotency_record *rec)
{
	size_t keylen = strlen(rec->key) + 1;
	struct idem *m;

	if (rec->result_len > SIZE_MAX - sizeof(*m) - keylen)
		return NULL;
	m = malloc(sizeof(*m) + keylen + rec->result_len);
	if (!m)
		return NULL;
	atomic_init(&m->node.refs, 1);
	m->node.older = NULL;
	m->rec = *rec;
	memcpy(m->data, rec->key, keylen);
	m->rec.key = (const char *)m->data;
	if (rec->result_len)
		memcpy(m->data + keylen, rec->result, rec->result_len);
	m->rec.result = m->data + keylen;
	return m;
}

/* The organization's sync state (ops version 2): opaque bytes, never
 * changed once written; a put makes a new one.  A node without an older
 * one, so that versions share it by reference. */
struct sync {
	struct node node;
	size_t len;
	unsigned char data[];
};

/* ------------------------------------------------- organization state */

struct tracking_row {
	inv_uuid product;
	int32_t tracked;
};

/* Everything stored for one organization, as of one commit. */
struct version {
	int has_org;
	inv_org_record org;
	struct array locations;   /* inv_location_record */
	struct array tracking;    /* struct tracking_row */
	struct array variants;    /* inv_variant_record */
	struct array low_stock;   /* inv_low_stock_record */
	struct entry *journal;    /* newest first (persistent list) */
	struct idem *idempotency; /* newest first; a newer record of a key
	                             shadows the older ones */
	atomic_int refs;          /* the org slot and each open read txn */
	struct sync *sync;        /* NULL: never put */
};

static struct version *version_new(void)
{
	struct version *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->locations.size = sizeof(inv_location_record);
	v->tracking.size = sizeof(struct tracking_row);
	v->variants.size = sizeof(inv_variant_record);
	v->low_stock.size = sizeof(inv_low_stock_record);
	atomic_init(&v->refs, 1);
	return v;
}

static void version_release(struct version *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	node_release(NODE(v->journal));
	node_release(NODE(v->idempotency));
	node_release(NODE(v->sync));
	free(v->locations.items);
	free(v->tracking.items);
	free(v->variants.items);
	free(v->low_stock.items);
	free(v);
}

/* The private working copy of a write transaction.  `src` may be NULL (an
 * organization nobody has written yet). */
static struct version *version_copy(const struct version *src)
{
	struct version *v = version_new();

	if (!v || !src)
		return v;
	v->has_org = src->has_org;
	v->org = src->org;
	if (array_copy(&v->locations, &src->locations) ||
	    array_copy(&v->tracking, &src->tracking) ||
	    array_copy(&v->variants, &src->variants) ||
	    array_copy(&v->low_stock, &src->low_stock)) {
		version_release(v);
		return NULL;
	}
	v->journal = (struct entry *)node_retain(NODE(src->journal));
	v->idempotency = (struct idem *)node_retain(NODE(src->idempotency));
	v->sync = (struct sync *)node_retain(NODE(src->sync));
	return v;
}

/* ----------------------------------------------- instance and txns */

/* One organization: its last committed version and its writer flag. */
struct org_slot {
	inv_uuid uuid;
	struct version *current; /* NULL until the first commit */
	int writing;             /* a write transaction holds it */
};

struct custom_backend {
	pthread_mutex_t lock;      /* guards orgs, current and writing */
	pthread_cond_t writer_done;
	struct array orgs;         /* struct org_slot * (stable addresses) */
};

/* An organization as one transaction sees it. */
struct txn_org {
	inv_uuid org;
	struct org_slot *slot;  /* set when writing */
	struct version *v;      /* shared snapshot, or private copy when writing */
	int writing;
};

/*
 * The core only touches the organization it named in begin(), but nothing
 * in the contract stops an operation from naming another one (the
 * conformance suite does), so a transaction joins every organization it
 * touches, on first use, and commits or rolls back all of them at once.
 */
struct txn {
	struct custom_backend *b;
	int write;
	struct array orgs;      /* struct txn_org; the first is begin()'s */
};

static struct org_slot *slot_find(struct custom_backend *b, const inv_uuid *org)
{
	size_t i;

	for (i = 0; i < b->orgs.count; i++) {
		struct org_slot *s = *(struct org_slot **)array_at(&b->orgs, i);

		if (uuid_eq(&s->uuid, org))
			return s;
	}
	return NULL;
}

int custom_backend_new(void **instance)
{
	struct custom_backend *b;

	if (!instance)
		return inv_backend_error(INV_EINVAL, "custom backend: instance is NULL");
	if (!(b = calloc(1, sizeof(*b))))
		return out_of_memory();
	b->orgs.size = sizeof(struct org_slot *);
	if (pthread_mutex_init(&b->lock, NULL)) {
		free(b);
		return out_of_memory();
	}
	if (pthread_cond_init(&b->writer_done, NULL)) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		return out_of_memory();
	}
	*instance = b;
	return 0;
}

/* Rule: close is mandatory and called exactly once; no transaction is open. */
static void cb_close(void *instance)
{
	struct custom_backend *b = instance;
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->orgs.count; i++) {
		struct org_slot *s = *(struct org_slot **)array_at(&b->orgs, i);

		version_release(s->current);
		free(s);
	}
	free(b->orgs.items);
	pthread_cond_destroy(&b->writer_done);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* A read snapshot: a reference to the current version, nothing copied. */
static int txn_org_read(struct custom_backend *b, struct txn_org *o)
{
	struct org_slot *s;

	pthread_mutex_lock(&b->lock);
	s = slot_find(b, &o->org);
	o->v = s ? s->current : NULL;
	if (o->v)
		atomic_fetch_add(&o->v->refs, 1);
	pthread_mutex_unlock(&b->lock);
	/* Nothing committed yet: an empty snapshot keeps every op simple. */
	if (!o->v && !(o->v = version_new()))
		return out_of_memory();
	return 0;
}

/*
 * Take the organization's writer flag and a private copy of its current
 * version.  Rule: write transactions on one organization never overlap.
 * begin() waits for the flag (right for threads of one process; a backend
 * shared by processes takes a lock in the shared storage).  An organization
 * joined later does not wait: two transactions each waiting for the other's
 * organization would wait forever, so it fails with INV_EBUSY instead.
 */
static int txn_org_write(struct custom_backend *b, struct txn_org *o, int wait)
{
	struct org_slot *s;
	struct version *cur, *copy;

	pthread_mutex_lock(&b->lock);
	s = slot_find(b, &o->org);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || array_push(&b->orgs, &s)) {
			pthread_mutex_unlock(&b->lock);
			free(s);
			return out_of_memory();
		}
		s->uuid = o->org;
	}
	while (s->writing) {
		if (!wait) {
			pthread_mutex_unlock(&b->lock);
			return inv_backend_error(INV_EBUSY,
			                         "custom backend: organization busy in another transaction");
		}
		pthread_cond_wait(&b->writer_done, &b->lock);
	}
	s->writing = 1;
	cur = s->current;
	if (cur)
		atomic_fetch_add(&cur->refs, 1);
	pthread_mutex_unlock(&b->lock);

	/* The current version is immutable and we hold a reference: the copy
	 * needs no lock. */
	copy = version_copy(cur);
	version_release(cur);
	if (!copy) {
		pthread_mutex_lock(&b->lock);
		s->writing = 0;
		pthread_cond_broadcast(&b->writer_done);
		pthread_mutex_unlock(&b->lock);
		return out_of_memory();
	}
	version_release(o->v); /* a read snapshot taken earlier, if any */
	o->v = copy;
	o->slot = s;
	o->writing = 1;
	return 0;
}

/*
 * End a transaction.  Publishing is one pointer swap per organization, all
 * under the lock, so every write of the transaction becomes visible at once
 * or none does: commit cannot fail half-way.  After the swap o->v holds the
 * replaced version; readers still using it keep it alive.
 */
static void txn_end(struct txn *t, int publish)
{
	size_t i;

	pthread_mutex_lock(&t->b->lock);
	for (i = 0; i < t->orgs.count; i++) {
		struct txn_org *o = array_at(&t->orgs, i);

		if (!o->writing)
			continue;
		if (publish) {
			struct version *old = o->slot->current;

			o->slot->current = o->v;
			o->v = old;
		}
		o->slot->writing = 0;
	}
	pthread_cond_broadcast(&t->b->writer_done);
	pthread_mutex_unlock(&t->b->lock);
	for (i = 0; i < t->orgs.count; i++)
		version_release(((struct txn_org *)array_at(&t->orgs, i))->v);
	free(t->orgs.items);
	free(t);
}

/* Add `org` to the transaction, reading or writing. */
static struct version *txn_join(struct txn *t, const inv_uuid *org, int write, int wait,
                                int *rc)
{
	struct txn_org o = { .org = *org };

	*rc = write ? txn_org_write(t->b, &o, wait) : txn_org_read(t->b, &o);
	if (*rc)
		return NULL;
	if ((*rc = array_push(&t->orgs, &o)) != 0) {
		/* Not joined: give back what we took, as txn_end would. */
		if (o.writing) {
			pthread_mutex_lock(&t->b->lock);
			o.slot->writing = 0;
			pthread_cond_broadcast(&t->b->writer_done);
			pthread_mutex_unlock(&t->b->lock);
		}
		version_release(o.v);
		return NULL;
	}
	return o.v;
}

static int cb_begin(void *instance, const inv_uuid *org, int write, void **txn)
{
	struct txn *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return out_of_memory();
	t->b = instance;
	t->write = write;
	t->orgs.size = sizeof(struct txn_org);
	if (!txn_join(t, org, write, 1, &rc)) {
		free(t->orgs.items);
		free(t);
		return rc;
	}
	*txn = t;
	return 0;
}

static int cb_commit(void *txn)
{
	txn_end(txn, 1);
	return 0;
}

/* Rollback throws the private copies away: nothing else was touched, so
 * there is nothing to undo. */
static void cb_rollback(void *txn)
{
	if (txn)
		txn_end(txn, 0);
}

/*
 * Every data operation starts here: the state of `org` as this transaction
 * sees it, joining the organization on first use.  Writes need a write
 * transaction.
 */
static struct version *txn_state(void *txn, const inv_uuid *org, int write, int *rc)
{
	struct txn *t = txn;
	size_t i;

	if (write && !t->write) {
		*rc = inv_backend_error(INV_EBACKEND,
		                        "custom backend: write in a read transaction");
		return NULL;
	}
	for (i = 0; i < t->orgs.count; i++) {
		struct txn_org *o = array_at(&t->orgs, i);

		if (!uuid_eq(&o->org, org))
			continue;
		if (write && !o->writing && (*rc = txn_org_write(t->b, o, 0)) != 0)
			return NULL;
		*rc = 0;
		return o->v;
	}
	return txn_join(t, org, write, 0, rc);
}

#define STATE(txn, org, write)                               \
	struct version *v;                                   \
	int rc;                                              \
	if (!(v = txn_state((txn), (org), (write), &rc)))    \
		return rc

/* ------------------------------------------------------ organizations */

static int cb_org_get(void *txn, const inv_uuid *org, inv_org_record *out)
{
	STATE(txn, org, 0);
	if (!v->has_org)
		return INV_ENOTFOUND; /* an answer, not a failure: no message */
	*out = v->org;
	return 0;
}

static int cb_org_put(void *txn, const inv_org_record *rec)
{
	STATE(txn, &rec->org, 1);
	v->org = *rec;
	v->has_org = 1;
	return 0;
}

/* ---------------------------------------------------------- locations */

static int cb_location_scan(void *txn, const inv_uuid *org,
                            inv_location_record_fn fn, void *payload)
{
	size_t i;

	STATE(txn, org, 0);
	/* Rule: lend each record for the call only.  Copy it first and index
	 * the array afresh each time, so that a callback writing to this same
	 * transaction (which may move the array) cannot pull it from under us. */
	for (i = 0; i < v->locations.count; i++) {
		inv_location_record rec = *(inv_location_record *)array_at(&v->locations, i);

		if ((rc = fn(&rec, payload)) != 0)
			return rc; /* Rule: a non-zero return stops the scan */
	}
	return 0;
}

static int cb_location_put(void *txn, const inv_uuid *org, const inv_location_record *rec)
{
	size_t i;

	STATE(txn, org, 1);
	for (i = 0; i < v->locations.count; i++) {
		inv_location_record *l = array_at(&v->locations, i);

		if (uuid_eq(&l->uuid, &rec->uuid)) {
			*l = *rec;
			return 0;
		}
	}
	return array_push(&v->locations, rec);
}

/* ----------------------------------------------------------- tracking */

static struct tracking_row *tracking_find(struct version *v, const inv_uuid *product)
{
	size_t i;

	for (i = 0; i < v->tracking.count; i++) {
		struct tracking_row *r = array_at(&v->tracking, i);

		if (uuid_eq(&r->product, product))
			return r;
	}
	return NULL;
}

static int cb_tracking_get(void *txn, const inv_uuid *org, const inv_uuid *product,
                           int32_t *tracked)
{
	struct tracking_row *r;

	STATE(txn, org, 0);
	if (!(r = tracking_find(v, product)))
		return INV_ENOTFOUND;
	*tracked = r->tracked;
	return 0;
}

static int cb_tracking_put(void *txn, const inv_uuid *org, const inv_uuid *product,
                           int32_t tracked)
{
	struct tracking_row *r, row;

	STATE(txn, org, 1);
	if ((r = tracking_find(v, product))) {
		r->tracked = tracked;
		return 0;
	}
	row.product = *product;
	row.tracked = tracked;
	return array_push(&v->tracking, &row);
}

static int cb_tracking_scan(void *txn, const inv_uuid *org,
                            inv_tracking_record_fn fn, void *payload)
{
	size_t i;

	STATE(txn, org, 0);
	for (i = 0; i < v->tracking.count; i++) {
		struct tracking_row r = *(struct tracking_row *)array_at(&v->tracking, i);

		if ((rc = fn(&r.product, r.tracked, payload)) != 0)
			return rc;
	}
	return 0;
}

/* ----------------------------------------------------------- variants */

static inv_variant_record *variant_find(struct version *v, const inv_uuid *location,
                                        const inv_uuid *variant)
{
	size_t i;

	for (i = 0; i < v->variants.count; i++) {
		inv_variant_record *r = array_at(&v->variants, i);

		if (uuid_eq(&r->location, location) && uuid_eq(&r->variant, variant))
			return r;
	}
	return NULL;
}

static int cb_variant_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                          const inv_uuid *variant, inv_variant_record *out)
{
	inv_variant_record *r;

	STATE(txn, org, 0);
	if (!(r = variant_find(v, location, variant)))
		return INV_ENOTFOUND;
	*out = *r;
	return 0;
}

static int cb_variant_put(void *txn, const inv_uuid *org, const inv_variant_record *rec)
{
	inv_variant_record *r;

	STATE(txn, org, 1);
	if ((r = variant_find(v, &rec->location, &rec->variant))) {
		*r = *rec;
		return 0;
	}
	return array_push(&v->variants, rec);
}

static int cb_variant_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                           const inv_uuid *product, inv_variant_record_fn fn,
                           void *payload)
{
	size_t i;

	STATE(txn, org, 0);
	for (i = 0; i < v->variants.count; i++) {
		inv_variant_record r = *(inv_variant_record *)array_at(&v->variants, i);

		if (location && !uuid_eq(&r.location, location))
			continue;
		if (product && !uuid_eq(&r.product, product))
			continue;
		if ((rc = fn(&r, payload)) != 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------- low stock */

static size_t low_stock_find(struct version *v, const inv_uuid *location,
                             const inv_uuid *product, const inv_uuid *variant)
{
	size_t i;

	for (i = 0; i < v->low_stock.count; i++) {
		inv_low_stock_record *r = array_at(&v->low_stock, i);

		if (uuid_eq(&r->location, location) && uuid_eq(&r->product, product) &&
		    uuid_eq(&r->variant, variant))
			return i;
	}
	return SIZE_MAX;
}

static int cb_low_stock_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                            const inv_uuid *product, const inv_uuid *variant,
                            inv_low_stock_record *out)
{
	size_t i;

	STATE(txn, org, 0);
	if ((i = low_stock_find(v, location, product, variant)) == SIZE_MAX)
		return INV_ENOTFOUND;
	*out = *(inv_low_stock_record *)array_at(&v->low_stock, i);
	return 0;
}

static int cb_low_stock_put(void *txn, const inv_uuid *org, const inv_low_stock_record *rec)
{
	size_t i;

	STATE(txn, org, 1);
	i = low_stock_find(v, &rec->location, &rec->product, &rec->variant);
	if (i == SIZE_MAX)
		return array_push(&v->low_stock, rec);
	*(inv_low_stock_record *)array_at(&v->low_stock, i) = *rec;
	return 0;
}

static int cb_low_stock_delete(void *txn, const inv_uuid *org, const inv_uuid *location,
                               const inv_uuid *product, const inv_uuid *variant)
{
	size_t i;

	STATE(txn, org, 1);
	if ((i = low_stock_find(v, location, product, variant)) != SIZE_MAX)
		array_remove(&v->low_stock, i);
	return 0; /* Rule: deleting a missing entry is not an error */
}

static int cb_low_stock_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                             const inv_uuid *product, inv_low_stock_record_fn fn,
                             void *payload)
{
	size_t i;

	STATE(txn, org, 0);
	for (i = 0; i < v->low_stock.count; i++) {
		inv_low_stock_record r = *(inv_low_stock_record *)array_at(&v->low_stock, i);

		if (location && !uuid_eq(&r.location, location))
			continue;
		if (product && !uuid_eq(&r.product, product))
			continue;
		if ((rc = fn(&r, payload)) != 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------ journal */

static int cb_journal_append(void *txn, const inv_uuid *org,
                             const inv_journal_entry_record *rec)
{
	struct entry *e;

	STATE(txn, org, 1);
	/* The list stays sorted by sequence because sequences only grow;
	 * refuse anything else rather than silently break journal_read. */
	if (v->journal && rec->sequence <= v->journal->rec.sequence)
		return inv_backend_error(INV_EBACKEND,
		                         "custom backend: journal sequence not increasing");
	if (!(e = entry_copy(rec)))
		return out_of_memory();
	e->node.older = NODE(v->journal); /* takes over the version's reference */
	v->journal = e;
	return 0;
}

static int cb_journal_read(void *txn, const inv_uuid *org, int64_t after, size_t limit,
                           inv_journal_entry_record_fn fn, void *payload)
{
	struct entry *head, *e, **picked;
	size_t n = 0, i;

	STATE(txn, org, 0);
	/* Newest first, so the entries after `after` are a prefix of the list:
	 * reading the latest few never walks the whole history.  Collect them,
	 * then hand them out oldest first. */
	for (e = v->journal; e && e->rec.sequence > after; e = (struct entry *)e->node.older)
		n++;
	if (n == 0)
		return 0;
	if (!(picked = malloc(n * sizeof(*picked))))
		return out_of_memory();
	for (i = n, e = v->journal; i > 0; e = (struct entry *)e->node.older)
		picked[--i] = e;
	/* Hold the list while lending its entries: a callback trimming this
	 * transaction's journal must not free the entry it is reading. */
	head = (struct entry *)node_retain(NODE(v->journal));
	for (i = 0; i < n && (limit == 0 || i < limit); i++)
		if ((rc = fn(&picked[i]->rec, payload)) != 0)
			break;
	node_release(NODE(head));
	free(picked);
	return rc;
}

/*
 * Trim is rare maintenance, so it may cost what it costs: the kept entries
 * are copied into a new list, since the nodes are shared with older
 * versions and cannot be unlinked in place.  The trimmed ones are freed
 * when the last version that still sees them goes.
 */
static int cb_journal_trim(void *txn, const inv_uuid *org, int64_t up_to)
{
	struct entry *e, *kept = NULL, **picked;
	size_t n = 0, i;

	STATE(txn, org, 1);
	for (e = v->journal; e && e->rec.sequence > up_to; e = (struct entry *)e->node.older)
		n++;
	if (!e)
		return 0; /* nothing at or below up_to */
	if (n && !(picked = malloc(n * sizeof(*picked))))
		return out_of_memory();
	for (i = n, e = v->journal; i > 0; e = (struct entry *)e->node.older)
		picked[--i] = e;
	for (i = 0; i < n; i++) {
		struct entry *c = entry_copy(&picked[i]->rec);

		if (!c) {
			node_release(NODE(kept));
			free(picked);
			return out_of_memory();
		}
		c->node.older = NODE(kept);
		kept = c;
	}
	if (n)
		free(picked);
	node_release(NODE(v->journal));
	v->journal = kept;
	return 0;
}

/* -------------------------------------------------------- idempotency */

static int cb_idempotency_get(void *txn, const inv_uuid *org, const char *key,
                              inv_idempotency_record_fn fn, void *payload)
{
	struct idem *m;

	STATE(txn, org, 0);
	for (m = v->idempotency; m; m = (struct idem *)m->node.older) {
		if (strcmp(m->rec.key, key) != 0)
			continue;
		node_retain(NODE(m)); /* as in journal_read */
		rc = fn(&m->rec, payload);
		node_release(NODE(m));
		return rc;
	}
	return INV_ENOTFOUND;
}

/* A put for a key that exists adds a record that shadows the old one. */
static int cb_idempotency_put(void *txn, const inv_uuid *org,
                              const inv_idempotency_record *rec)
{
	struct idem *m;

	STATE(txn, org, 1);
	if (!(m = idem_copy(rec)))
		return out_of_memory();
	m->node.older = NODE(v->idempotency);
	v->idempotency = m;
	return 0;
}

/* --------------------------------------------------------- sync state */

static int cb_sync_state_get(void *txn, const inv_uuid *org,
                             inv_sync_state_fn fn, void *payload)
{
	struct sync *y;

	STATE(txn, org, 0);
	if (!(y = v->sync))
		return INV_ENOTFOUND;
	node_retain(NODE(y)); /* as in journal_read */
	rc = fn(y->data, y->len, payload);
	node_release(NODE(y));
	return rc;
}

static int cb_sync_state_put(void *txn, const inv_uuid *org, const void *data, size_t len)
{
	struct sync *y;

	STATE(txn, org, 1);
	if (len > INV_SYNC_STATE_MAX)
		return inv_backend_error(INV_ETOOBIG, "custom backend: sync state too large");
	if (!(y = malloc(sizeof(*y) + len)))
		return out_of_memory();
	atomic_init(&y->node.refs, 1);
	y->node.older = NULL;
	y->len = len;
	if (len)
		memcpy(y->data, data, len);
	/* Only the private copy lets go of the old one: rollback keeps it. */
	node_release(NODE(v->sync));
	v->sync = y;
	return 0;
}

/* ---------------------------------------------------------- the table */

/*
 * Designated initializers keep the table readable and leave every optional
 * member we do not implement NULL: the batch forms (variant_get_many,
 * variant_put_many: worth adding when each call costs a round trip) and
 * control (backend-specific requests).
 */
static const inv_backend_ops custom_ops = {
	.version = INV_BACKEND_VERSION,
	.name = "custom",
	.close = cb_close,
	.begin = cb_begin,
	.commit = cb_commit,
	.rollback = cb_rollback,
	.org_get = cb_org_get,
	.org_put = cb_org_put,
	.location_scan = cb_location_scan,
	.location_put = cb_location_put,
	.tracking_get = cb_tracking_get,
	.tracking_put = cb_tracking_put,
	.tracking_scan = cb_tracking_scan,
	.variant_get = cb_variant_get,
	.variant_put = cb_variant_put,
	.variant_scan = cb_variant_scan,
	.low_stock_get = cb_low_stock_get,
	.low_stock_put = cb_low_stock_put,
	.low_stock_delete = cb_low_stock_delete,
	.low_stock_scan = cb_low_stock_scan,
	.journal_append = cb_journal_append,
	.journal_read = cb_journal_read,
	.journal_trim = cb_journal_trim,
	.idempotency_get = cb_idempotency_get,
	.idempotency_put = cb_idempotency_put,
	.sync_state_get = cb_sync_state_get,
	.sync_state_put = cb_sync_state_put,
};

const inv_backend_ops *custom_backend_ops(void)
{
	return &custom_ops;
}
