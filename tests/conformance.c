/*
 * conformance.c - the storage backend conformance suite (see conformance.h).
 *
 * Check test functions take no argument but a loop index, so each suite
 * registers its target in a small table and adds every test as a loop test
 * over exactly that target's index.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conformance.h"
#include "fault_backend.h"

#define MAX_TARGETS 16

static struct inv_conformance_target targets[MAX_TARGETS];
static int target_count;

/* ------------------------------------------------------------ fixture */

struct fx {
	const struct inv_conformance_target *t;
	const inv_backend_ops *ops;
	void *inst;
	inv_uuid org;
};

static inv_uuid mkuuid(unsigned tag, unsigned n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = (uint8_t)tag;
	u.bytes[6] = 0x40;
	u.bytes[8] = 0x80;
	u.bytes[12] = (uint8_t)(n >> 24);
	u.bytes[13] = (uint8_t)(n >> 16);
	u.bytes[14] = (uint8_t)(n >> 8);
	u.bytes[15] = (uint8_t)n;
	return u;
}

enum { TAG_ORG = 1, TAG_LOC, TAG_PRODUCT, TAG_VARIANT, TAG_OTHER };

static void fx_open(struct fx *f, int index)
{
	ck_assert_int_lt(index, target_count);
	f->t = &targets[index];
	f->ops = NULL;
	f->inst = NULL;
	int rc = f->t->open(&f->ops, &f->inst, f->t->ctx);

	ck_assert_msg(rc == 0, "open: %d (%s)", rc, inv_error_last()->message);
	ck_assert_ptr_nonnull(f->ops);
	ck_assert_uint_eq(f->ops->version, INV_BACKEND_VERSION);
	f->org = mkuuid(TAG_ORG, 1);
}

static void fx_close(struct fx *f)
{
	if (f->t->close)
		f->t->close(f->ops, f->inst, f->t->ctx);
	else
		f->ops->close(f->inst);
	f->inst = NULL;
}

/* A transaction on `org`: every operation in it names that organization. */
static void *fx_begin_org(struct fx *f, const inv_uuid *org, int write)
{
	void *txn = NULL;
	int rc = f->ops->begin(f->inst, org, write, &txn);

	ck_assert_msg(rc == 0, "begin(%d): %d (%s)", write, rc, inv_error_last()->message);
	return txn;
}

static void *fx_begin(struct fx *f, int write)
{
	return fx_begin_org(f, &f->org, write);
}

static void fx_commit(struct fx *f, void *txn)
{
	int rc = f->ops->commit(txn);

	ck_assert_msg(rc == 0, "commit: %d (%s)", rc, inv_error_last()->message);
}

/* Not ck_assert: that reports progress to the parent process on every
 * call, which dominates the loops below. */
#define OK(expr) do { \
	int ok_rc_ = (expr); \
	if (ok_rc_ != 0) \
		ck_abort_msg("%s: expected 0, got %d (%s)", #expr, ok_rc_, \
		             inv_error_last()->message); \
} while (0)

/* ------------------------------------------------------ record makers */

static inv_org_record org_rec(const inv_uuid *org, int64_t seq, int32_t policy)
{
	inv_org_record r;

	memset(&r, 0, sizeof(r));
	r.org = *org;
	r.last_sequence = seq;
	r.negative_policy = policy;
	return r;
}

static inv_location_record loc_rec(unsigned n, int32_t type, int32_t is_default)
{
	inv_location_record r;

	memset(&r, 0, sizeof(r));
	r.uuid = mkuuid(TAG_LOC, n);
	r.type = type;
	r.is_default = is_default;
	return r;
}

static inv_variant_record var_rec(unsigned loc, unsigned product, unsigned variant,
                                  int64_t balance)
{
	inv_variant_record r;

	memset(&r, 0, sizeof(r));
	r.location = mkuuid(TAG_LOC, loc);
	r.product = mkuuid(TAG_PRODUCT, product);
	r.variant = mkuuid(TAG_VARIANT, variant);
	r.balance = balance;
	r.updated = 1700000000000 + balance;
	return r;
}

static inv_low_stock_record low_rec(unsigned loc, unsigned product, unsigned variant,
                                    int64_t level, int32_t alert)
{
	inv_low_stock_record r;

	memset(&r, 0, sizeof(r));
	r.location = mkuuid(TAG_LOC, loc);
	r.product = mkuuid(TAG_PRODUCT, product);
	r.variant = mkuuid(TAG_VARIANT, variant);
	r.level = level;
	r.has_level = 1;
	r.alert = alert;
	return r;
}

/* A journal entry with `n` MOVE records; storage owned by the caller. */
struct jbuf {
	inv_journal_entry_record rec;
	inv_journal_record records[8];
	char key[64];
};

static void jbuf_make(struct jbuf *b, int64_t seq, size_t n, const char *key)
{
	memset(b, 0, sizeof(*b));
	b->rec.sequence = seq;
	b->rec.time = 1700000000000 + seq;
	b->rec.has_external_uuid = (seq & 1) != 0;
	b->rec.external_uuid = mkuuid(TAG_OTHER, (unsigned)seq);
	b->rec.has_user_uuid = 1;
	b->rec.user_uuid = mkuuid(TAG_OTHER, 1000 + (unsigned)seq);
	for (size_t i = 0; i < n && i < 8; i++) {
		inv_journal_record *r = &b->records[i];

		r->kind = INV_RECORD_MOVE;
		r->product = mkuuid(TAG_PRODUCT, (unsigned)i);
		r->variant = mkuuid(TAG_VARIANT, (unsigned)i);
		r->from = mkuuid(TAG_LOC, 1);
		r->to = mkuuid(TAG_LOC, 2);
		r->location = r->from;
		r->quantity = (int64_t)i + 1;
		r->before = 10 * seq;
		r->after = 10 * seq - r->quantity;
	}
	b->rec.record_count = n;
	b->rec.records = n ? b->records : NULL;
	if (key) {
		snprintf(b->key, sizeof(b->key), "%s", key);
		b->rec.idempotency_key = b->key;
	}
}

/* ----------------------------------------------------------- snapshot */

/*
 * The whole stored state of one organization, serialized canonically
 * (records sorted) so that two states compare with memcmp.  Idempotency
 * keys have no scan; callers name the keys to include.
 */
struct buf {
	unsigned char *data;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 1024;

		while (ncap < b->len + n)
			ncap *= 2;
		b->data = realloc(b->data, ncap);
		ck_assert_ptr_nonnull(b->data);
		b->cap = ncap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

struct snapshot {
	struct buf sect[8];
};

static const char *const sect_names[8] = {
	"org record", "locations", "tracking", "variants", "low stock", "journal",
	"idempotency", "sync state"
};

static int cmp_bytes16(const void *a, const void *b) { return memcmp(a, b, 16); }
static int cmp_bytes20(const void *a, const void *b) { return memcmp(a, b, 20); }
static int cmp_bytes24(const void *a, const void *b) { return memcmp(a, b, 24); }
static int cmp_bytes48(const void *a, const void *b) { return memcmp(a, b, 48); }
static int cmp_bytes64(const void *a, const void *b) { return memcmp(a, b, 64); }

static void buf_sort(struct buf *b, size_t esize, int (*cmp)(const void *, const void *))
{
	if (b->len)
		qsort(b->data, b->len / esize, esize, cmp);
}

static int snap_loc(const inv_location_record *rec, void *payload)
{
	buf_add(payload, rec, sizeof(*rec));
	return 0;
}

static int snap_tracking(const inv_uuid *product, int32_t tracked, void *payload)
{
	unsigned char e[20];

	memcpy(e, product, 16);
	memcpy(e + 16, &tracked, 4);
	buf_add(payload, e, sizeof(e));
	return 0;
}

static int snap_variant(const inv_variant_record *rec, void *payload)
{
	buf_add(payload, rec, sizeof(*rec));
	return 0;
}

static int snap_low(const inv_low_stock_record *rec, void *payload)
{
	buf_add(payload, rec, sizeof(*rec));
	return 0;
}

static int snap_journal(const inv_journal_entry_record *rec, void *payload)
{
	struct buf *b = payload;

	buf_add(b, &rec->sequence, 8);
	buf_add(b, &rec->time, 8);
	buf_add(b, &rec->has_external_uuid, 4);
	buf_add(b, &rec->has_user_uuid, 4);
	buf_add(b, &rec->has_client_uuid, 4);
	if (rec->has_external_uuid)
		buf_add(b, &rec->external_uuid, 16);
	if (rec->has_user_uuid)
		buf_add(b, &rec->user_uuid, 16);
	if (rec->has_client_uuid)
		buf_add(b, &rec->client_uuid, 16);
	const char *key = rec->idempotency_key ? rec->idempotency_key : "";

	buf_add(b, key, strlen(key) + 1);
	buf_add(b, &rec->record_count, sizeof(rec->record_count));
	if (rec->record_count)
		buf_add(b, rec->records, rec->record_count * sizeof(*rec->records));
	return 0;
}

static int snap_sync(const void *data, size_t len, void *payload)
{
	struct buf *b = payload;

	buf_add(b, &len, sizeof(len));
	buf_add(b, data, len);
	return 0;
}

static int snap_idem(const inv_idempotency_record *rec, void *payload)
{
	struct buf *b = payload;

	buf_add(b, rec->key, strlen(rec->key) + 1);
	buf_add(b, rec->fingerprint, 32);
	buf_add(b, &rec->sequence, 8);
	buf_add(b, &rec->result_len, sizeof(rec->result_len));
	buf_add(b, rec->result, rec->result_len);
	return 0;
}

/* Take a snapshot in its own read transaction. */
static void snapshot_take(struct fx *f, const inv_uuid *org, const char *const *keys,
                          struct snapshot *s)
{
	void *txn = fx_begin_org(f, org, 0);
	inv_org_record orec;
	int rc;

	memset(s, 0, sizeof(*s));
	memset(&orec, 0, sizeof(orec));
	rc = f->ops->org_get(txn, org, &orec);
	ck_assert_msg(rc == 0 || rc == INV_ENOTFOUND, "org_get: %d", rc);
	buf_add(&s->sect[0], &rc, sizeof(rc));
	if (rc == 0)
		buf_add(&s->sect[0], &orec, sizeof(orec));
	OK(f->ops->location_scan(txn, org, snap_loc, &s->sect[1]));
	buf_sort(&s->sect[1], sizeof(inv_location_record), cmp_bytes24);
	OK(f->ops->tracking_scan(txn, org, snap_tracking, &s->sect[2]));
	buf_sort(&s->sect[2], 20, cmp_bytes20);
	OK(f->ops->variant_scan(txn, org, NULL, NULL, snap_variant, &s->sect[3]));
	buf_sort(&s->sect[3], sizeof(inv_variant_record), cmp_bytes64);

	/* Low stock scans by location: every location a record may name. */
	struct buf locs = { 0 };
	size_t nvar = s->sect[3].len / sizeof(inv_variant_record);

	for (size_t i = 0; i < s->sect[1].len / sizeof(inv_location_record); i++)
		buf_add(&locs, s->sect[1].data + i * sizeof(inv_location_record), 16);
	for (size_t i = 0; i < nvar; i++)
		buf_add(&locs, s->sect[3].data + i * sizeof(inv_variant_record), 16);
	for (unsigned i = 1; i <= 4; i++) {
		inv_uuid u = mkuuid(TAG_LOC, i);

		buf_add(&locs, &u, 16);
	}
	buf_sort(&locs, 16, cmp_bytes16);
	for (size_t i = 0; i < locs.len / 16; i++) {
		if (i && memcmp(locs.data + i * 16, locs.data + (i - 1) * 16, 16) == 0)
			continue;
		OK(f->ops->low_stock_scan(txn, org, (const inv_uuid *)(locs.data + i * 16),
		                          NULL, snap_low, &s->sect[4]));
	}
	free(locs.data);
	buf_sort(&s->sect[4], sizeof(inv_low_stock_record), cmp_bytes48);

	OK(f->ops->journal_read(txn, org, 0, 0, snap_journal, &s->sect[5]));
	for (size_t i = 0; keys && keys[i]; i++) {
		rc = f->ops->idempotency_get(txn, org, keys[i], snap_idem, &s->sect[6]);
		ck_assert_msg(rc == 0 || rc == INV_ENOTFOUND, "idempotency_get: %d", rc);
		buf_add(&s->sect[6], &rc, sizeof(rc));
	}
	if (f->ops->version >= 2) {
		rc = f->ops->sync_state_get(txn, org, snap_sync, &s->sect[7]);
		ck_assert_msg(rc == 0 || rc == INV_ENOTFOUND, "sync_state_get: %d", rc);
		buf_add(&s->sect[7], &rc, sizeof(rc));
	}
	fx_commit(f, txn);
}

static void snapshot_free(struct snapshot *s)
{
	for (int i = 0; i < 8; i++)
		free(s->sect[i].data);
}

static void snapshot_assert_eq(const struct snapshot *a, const struct snapshot *b,
                               const char *when)
{
	for (int i = 0; i < 8; i++) {
		const struct buf *x = &a->sect[i], *y = &b->sect[i];

		ck_assert_msg(x->len == y->len && (!x->len || memcmp(x->data, y->data, x->len) == 0),
		              "%s: stored %s differs (expected %zu bytes, got %zu)",
		              when, sect_names[i], x->len, y->len);
	}
}

/* ------------------------------------------------- scan helpers */

struct counter {
	int calls;
	int stop_at;        /* return 7 on this call (1-based); 0: never */
};

static int count_step(struct counter *c)
{
	c->calls++;
	return c->stop_at && c->calls == c->stop_at ? 7 : 0;
}

static int count_loc(const inv_location_record *r, void *p) { (void)r; return count_step(p); }
static int count_tracking(const inv_uuid *u, int32_t t, void *p) { (void)u; (void)t; return count_step(p); }
static int count_variant(const inv_variant_record *r, void *p) { (void)r; return count_step(p); }
static int count_low(const inv_low_stock_record *r, void *p) { (void)r; return count_step(p); }
static int count_journal(const inv_journal_entry_record *r, void *p) { (void)r; return count_step(p); }

/* Fill an org with a bit of everything; returns in a committed state. */
static void populate(struct fx *f)
{
	void *txn = fx_begin(f, 1);
	inv_org_record o = org_rec(&f->org, 2, INV_NEGATIVE_ALLOW);
	struct jbuf j;

	OK(f->ops->org_put(txn, &o));
	for (unsigned i = 1; i <= 4; i++) {
		inv_location_record l = loc_rec(i, (int32_t)i, 1);

		OK(f->ops->location_put(txn, &f->org, &l));
	}
	for (unsigned p = 1; p <= 3; p++) {
		inv_uuid prod = mkuuid(TAG_PRODUCT, p);

		OK(f->ops->tracking_put(txn, &f->org, &prod, 1));
		for (unsigned v = 1; v <= 3; v++) {
			inv_variant_record r = var_rec(1, p, p * 10 + v, (int64_t)(p * 100 + v));

			OK(f->ops->variant_put(txn, &f->org, &r));
		}
	}
	inv_low_stock_record l = low_rec(1, 1, 11, 5, 0);

	OK(f->ops->low_stock_put(txn, &f->org, &l));
	l = low_rec(1, 2, 21, 500, 1);
	OK(f->ops->low_stock_put(txn, &f->org, &l));
	jbuf_make(&j, 1, 2, NULL);
	OK(f->ops->journal_append(txn, &f->org, &j.rec));
	jbuf_make(&j, 2, 1, "key-2");
	OK(f->ops->journal_append(txn, &f->org, &j.rec));

	inv_idempotency_record ir;
	static const char result[] = "result of batch 2";

	memset(&ir, 0, sizeof(ir));
	ir.key = "key-2";
	memset(ir.fingerprint, 0xab, sizeof(ir.fingerprint));
	ir.sequence = 2;
	ir.result = result;
	ir.result_len = sizeof(result);
	OK(f->ops->idempotency_put(txn, &f->org, &ir));
	if (f->ops->version >= 2)
		OK(f->ops->sync_state_put(txn, &f->org, "sync state 1", 12));
	fx_commit(f, txn);
}

static const char *const populate_keys[] = { "key-2", "key-new", NULL };

/* ===================================================== organizations */

START_TEST(test_ops_table_is_complete)
{
	struct fx f;

	fx_open(&f, _i);
	ck_assert_ptr_nonnull(f.ops->name);
	ck_assert_ptr_nonnull(f.ops->close);
	ck_assert_ptr_nonnull(f.ops->begin);
	ck_assert_ptr_nonnull(f.ops->commit);
	ck_assert_ptr_nonnull(f.ops->rollback);
	ck_assert_ptr_nonnull(f.ops->org_get);
	ck_assert_ptr_nonnull(f.ops->org_put);
	ck_assert_ptr_nonnull(f.ops->location_scan);
	ck_assert_ptr_nonnull(f.ops->location_put);
	ck_assert_ptr_nonnull(f.ops->tracking_get);
	ck_assert_ptr_nonnull(f.ops->tracking_put);
	ck_assert_ptr_nonnull(f.ops->tracking_scan);
	ck_assert_ptr_nonnull(f.ops->variant_get);
	ck_assert_ptr_nonnull(f.ops->variant_put);
	ck_assert_ptr_nonnull(f.ops->variant_scan);
	ck_assert_ptr_nonnull(f.ops->low_stock_get);
	ck_assert_ptr_nonnull(f.ops->low_stock_put);
	ck_assert_ptr_nonnull(f.ops->low_stock_delete);
	ck_assert_ptr_nonnull(f.ops->low_stock_scan);
	ck_assert_ptr_nonnull(f.ops->journal_append);
	ck_assert_ptr_nonnull(f.ops->journal_read);
	ck_assert_ptr_nonnull(f.ops->journal_trim);
	ck_assert_ptr_nonnull(f.ops->idempotency_get);
	ck_assert_ptr_nonnull(f.ops->idempotency_put);
	ck_assert_ptr_nonnull(f.ops->sync_state_get);
	ck_assert_ptr_nonnull(f.ops->sync_state_put);
	fx_close(&f);
}
END_TEST

START_TEST(test_org_get_of_unknown_org_is_enotfound)
{
	struct fx f;
	inv_org_record out;

	fx_open(&f, _i);
	void *txn = fx_begin(&f, 0);

	ck_assert_int_eq(f.ops->org_get(txn, &f.org, &out), INV_ENOTFOUND);
	f.ops->rollback(txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_org_put_then_get_round_trips_and_overwrites)
{
	struct fx f;
	inv_org_record in, out;

	fx_open(&f, _i);
	void *txn = fx_begin(&f, 1);

	in = org_rec(&f.org, 0, INV_NEGATIVE_ALLOW);
	OK(f.ops->org_put(txn, &in));
	memset(&out, 0xee, sizeof(out));
	OK(f.ops->org_get(txn, &f.org, &out));
	ck_assert_mem_eq(&out.org, &in.org, 16);
	ck_assert_int_eq(out.last_sequence, 0);
	in = org_rec(&f.org, 41, INV_NEGATIVE_DENY);
	OK(f.ops->org_put(txn, &in));
	fx_commit(&f, txn);

	txn = fx_begin(&f, 0);
	OK(f.ops->org_get(txn, &f.org, &out));
	ck_assert_int_eq(out.last_sequence, 41);
	ck_assert_int_eq(out.negative_policy, INV_NEGATIVE_DENY);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_orgs_are_isolated)
{
	struct fx f;
	inv_uuid other = mkuuid(TAG_ORG, 2);
	inv_variant_record out;
	int32_t tracked;
	struct counter c = { 0, 0 };

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin_org(&f, &other, 0);
	inv_uuid loc = mkuuid(TAG_LOC, 1), var = mkuuid(TAG_VARIANT, 11);
	inv_uuid prod = mkuuid(TAG_PRODUCT, 1);
	inv_org_record orec;

	ck_assert_int_eq(f.ops->org_get(txn, &other, &orec), INV_ENOTFOUND);
	ck_assert_int_eq(f.ops->variant_get(txn, &other, &loc, &var, &out), INV_ENOTFOUND);
	ck_assert_int_eq(f.ops->tracking_get(txn, &other, &prod, &tracked), INV_ENOTFOUND);
	OK(f.ops->variant_scan(txn, &other, NULL, NULL, count_variant, &c));
	OK(f.ops->location_scan(txn, &other, count_loc, &c));
	OK(f.ops->journal_read(txn, &other, 0, 0, count_journal, &c));
	ck_assert_int_eq(c.calls, 0);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

/* ========================================================= locations */

START_TEST(test_location_scan_sees_every_location_once)
{
	struct fx f;
	struct snapshot s;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);
	/* Putting a known UUID replaces it rather than adding one. */
	inv_location_record l = loc_rec(2, INV_LOCATION_SOLD, 0);

	OK(f.ops->location_put(txn, &f.org, &l));
	fx_commit(&f, txn);
	snapshot_take(&f, &f.org, NULL, &s);
	ck_assert_uint_eq(s.sect[1].len, 4 * sizeof(inv_location_record));
	const inv_location_record *r = (const inv_location_record *)s.sect[1].data;

	for (unsigned i = 0; i < 4; i++) {
		inv_uuid want = mkuuid(TAG_LOC, i + 1);

		ck_assert_mem_eq(&r[i].uuid, &want, 16);
		ck_assert_int_eq(r[i].type, (int)i + 1);
		ck_assert_int_eq(r[i].is_default, i == 1 ? 0 : 1);
	}
	snapshot_free(&s);
	fx_close(&f);
}
END_TEST

/* ========================================================== tracking */

START_TEST(test_tracking_get_of_unset_product_is_enotfound)
{
	struct fx f;
	int32_t tracked = 5;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 0);
	inv_uuid p = mkuuid(TAG_PRODUCT, 99);

	ck_assert_int_eq(f.ops->tracking_get(txn, &f.org, &p, &tracked), INV_ENOTFOUND);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_tracking_put_get_scan_round_trip)
{
	struct fx f;
	int32_t tracked = -1;
	struct counter c = { 0, 0 };

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);
	inv_uuid p2 = mkuuid(TAG_PRODUCT, 2);

	OK(f.ops->tracking_put(txn, &f.org, &p2, 0));
	OK(f.ops->tracking_get(txn, &f.org, &p2, &tracked));
	ck_assert_int_eq(tracked, 0);
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	OK(f.ops->tracking_get(txn, &f.org, &p2, &tracked));
	ck_assert_int_eq(tracked, 0);
	inv_uuid p1 = mkuuid(TAG_PRODUCT, 1);

	OK(f.ops->tracking_get(txn, &f.org, &p1, &tracked));
	ck_assert_int_eq(tracked, 1);
	/* A product with tracking stopped is still listed. */
	OK(f.ops->tracking_scan(txn, &f.org, count_tracking, &c));
	ck_assert_int_eq(c.calls, 3);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

/* ========================================================== variants */

START_TEST(test_variant_get_of_unknown_record_is_enotfound)
{
	struct fx f;
	inv_variant_record out;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 0);
	inv_uuid loc1 = mkuuid(TAG_LOC, 1), loc2 = mkuuid(TAG_LOC, 2);
	inv_uuid v11 = mkuuid(TAG_VARIANT, 11), v99 = mkuuid(TAG_VARIANT, 99);
	inv_uuid loc99 = mkuuid(TAG_LOC, 99);

	ck_assert_int_eq(f.ops->variant_get(txn, &f.org, &loc1, &v99, &out), INV_ENOTFOUND);
	/* The key is (location, variant): another location has no record. */
	ck_assert_int_eq(f.ops->variant_get(txn, &f.org, &loc2, &v11, &out), INV_ENOTFOUND);
	ck_assert_int_eq(f.ops->variant_get(txn, &f.org, &loc99, &v11, &out), INV_ENOTFOUND);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_variant_put_then_get_round_trips_every_field)
{
	struct fx f;
	inv_variant_record in, out;

	fx_open(&f, _i);
	void *txn = fx_begin(&f, 1);
	inv_org_record o = org_rec(&f.org, 0, 0);

	OK(f.ops->org_put(txn, &o));
	in = var_rec(1, 7, 70, -12345);
	in.updated = 1764583200123;
	OK(f.ops->variant_put(txn, &f.org, &in));
	/* Same variant in another location is another record. */
	inv_variant_record in2 = var_rec(3, 7, 70, INV_QUANTITY_MAX);

	OK(f.ops->variant_put(txn, &f.org, &in2));
	fx_commit(&f, txn);

	txn = fx_begin(&f, 0);
	memset(&out, 0xee, sizeof(out));
	OK(f.ops->variant_get(txn, &f.org, &in.location, &in.variant, &out));
	ck_assert_mem_eq(&out, &in, sizeof(in));
	OK(f.ops->variant_get(txn, &f.org, &in2.location, &in2.variant, &out));
	ck_assert_mem_eq(&out, &in2, sizeof(in2));
	fx_commit(&f, txn);

	/* Overwrite in place. */
	txn = fx_begin(&f, 1);
	in.balance = -INV_QUANTITY_MAX;
	in.updated++;
	OK(f.ops->variant_put(txn, &f.org, &in));
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	OK(f.ops->variant_get(txn, &f.org, &in.location, &in.variant, &out));
	ck_assert_int_eq(out.balance, -INV_QUANTITY_MAX);
	ck_assert_int_eq(out.updated, in.updated);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

struct collect {
	inv_variant_record recs[64];
	int n;
};

static int collect_variant(const inv_variant_record *r, void *p)
{
	struct collect *c = p;

	ck_assert_int_lt(c->n, 64);
	c->recs[c->n++] = *r;
	return 0;
}

START_TEST(test_variant_scan_filters_by_location_and_product)
{
	struct fx f;
	struct collect c;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);
	inv_variant_record r = var_rec(3, 2, 21, 9);

	OK(f.ops->variant_put(txn, &f.org, &r));
	fx_commit(&f, txn);

	txn = fx_begin(&f, 0);
	inv_uuid loc1 = mkuuid(TAG_LOC, 1), loc3 = mkuuid(TAG_LOC, 3);
	inv_uuid p2 = mkuuid(TAG_PRODUCT, 2), p9 = mkuuid(TAG_PRODUCT, 9);

	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, NULL, collect_variant, &c));
	ck_assert_int_eq(c.n, 10);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, &loc1, NULL, collect_variant, &c));
	ck_assert_int_eq(c.n, 9);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, &loc3, NULL, collect_variant, &c));
	ck_assert_int_eq(c.n, 1);
	ck_assert_mem_eq(&c.recs[0], &r, sizeof(r));
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p2, collect_variant, &c));
	ck_assert_int_eq(c.n, 4);
	for (int i = 0; i < c.n; i++)
		ck_assert_mem_eq(&c.recs[i].product, &p2, 16);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, &loc1, &p2, collect_variant, &c));
	ck_assert_int_eq(c.n, 3);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, &loc1, &p9, collect_variant, &c));
	ck_assert_int_eq(c.n, 0);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

/* Scan by product with records moving between products (the contract lets
 * a put change a record's product) and rolled back. */
START_TEST(test_variant_scan_by_product_follows_overwrites)
{
	struct fx f;
	struct collect c;
	struct snapshot before, after;
	inv_uuid p1 = mkuuid(TAG_PRODUCT, 1), p2 = mkuuid(TAG_PRODUCT, 2);
	inv_uuid p8 = mkuuid(TAG_PRODUCT, 8);

	fx_open(&f, _i);
	populate(&f);
	snapshot_take(&f, &f.org, NULL, &before);
	void *txn = fx_begin(&f, 1);
	/* Middle, head and tail of product 1's records move to product 8. */
	inv_variant_record r12 = var_rec(1, 8, 12, 1), r11 = var_rec(1, 8, 11, 2);
	inv_variant_record r13 = var_rec(1, 8, 13, 3), r21 = var_rec(1, 1, 21, 4);

	OK(f.ops->variant_put(txn, &f.org, &r12));
	OK(f.ops->variant_put(txn, &f.org, &r11));
	OK(f.ops->variant_put(txn, &f.org, &r13));
	OK(f.ops->variant_put(txn, &f.org, &r21));
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p8, collect_variant, &c));
	ck_assert_int_eq(c.n, 3);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p1, collect_variant, &c));
	ck_assert_int_eq(c.n, 1);
	ck_assert_mem_eq(&c.recs[0], &r21, sizeof(r21));
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p2, collect_variant, &c));
	ck_assert_int_eq(c.n, 2);
	f.ops->rollback(txn);
	snapshot_take(&f, &f.org, NULL, &after);
	snapshot_assert_eq(&before, &after, "after rollback");
	snapshot_free(&after);

	txn = fx_begin(&f, 0);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p1, collect_variant, &c));
	ck_assert_int_eq(c.n, 3);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p8, collect_variant, &c));
	ck_assert_int_eq(c.n, 0);
	fx_commit(&f, txn);

	txn = fx_begin(&f, 1);
	OK(f.ops->variant_put(txn, &f.org, &r12));
	OK(f.ops->variant_put(txn, &f.org, &r21));
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p1, collect_variant, &c));
	ck_assert_int_eq(c.n, 3);
	c.n = 0;
	OK(f.ops->variant_scan(txn, &f.org, NULL, &p8, collect_variant, &c));
	ck_assert_int_eq(c.n, 1);
	ck_assert_mem_eq(&c.recs[0], &r12, sizeof(r12));
	fx_commit(&f, txn);
	snapshot_free(&before);
	fx_close(&f);
}
END_TEST

START_TEST(test_scans_stop_on_nonzero_return_and_return_it)
{
	struct fx f;
	struct counter c;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 0);
	inv_uuid loc1 = mkuuid(TAG_LOC, 1);

	c = (struct counter){ 0, 2 };
	ck_assert_int_eq(f.ops->variant_scan(txn, &f.org, NULL, NULL, count_variant, &c), 7);
	ck_assert_int_eq(c.calls, 2);
	c = (struct counter){ 0, 2 };
	ck_assert_int_eq(f.ops->location_scan(txn, &f.org, count_loc, &c), 7);
	ck_assert_int_eq(c.calls, 2);
	c = (struct counter){ 0, 1 };
	ck_assert_int_eq(f.ops->tracking_scan(txn, &f.org, count_tracking, &c), 7);
	ck_assert_int_eq(c.calls, 1);
	c = (struct counter){ 0, 1 };
	ck_assert_int_eq(f.ops->low_stock_scan(txn, &f.org, &loc1, NULL, count_low, &c), 7);
	ck_assert_int_eq(c.calls, 1);
	c = (struct counter){ 0, 1 };
	ck_assert_int_eq(f.ops->journal_read(txn, &f.org, 0, 0, count_journal, &c), 7);
	ck_assert_int_eq(c.calls, 1);
	/* Without a stop every record is seen. */
	c = (struct counter){ 0, 0 };
	OK(f.ops->variant_scan(txn, &f.org, NULL, NULL, count_variant, &c));
	ck_assert_int_eq(c.calls, 9);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_variant_get_many_agrees_with_variant_get)
{
	struct fx f;
	enum { N = 40 };
	inv_variant_key keys[N];
	inv_variant_record out[N], one;
	int32_t found[N];

	fx_open(&f, _i);
	if (!f.ops->variant_get_many) {
		fx_close(&f);
		return;
	}
	populate(&f);
	for (int i = 0; i < N; i++) {
		/* Known and unknown variants, in several locations. */
		keys[i].location = mkuuid(TAG_LOC, 1 + (unsigned)(i % 3 == 2));
		keys[i].variant = mkuuid(TAG_VARIANT, 10 + (unsigned)i / 2);
		found[i] = 99;
	}
	void *txn = fx_begin(&f, 0);

	OK(f.ops->variant_get_many(txn, &f.org, N, keys, out, found));
	int nfound = 0;

	for (int i = 0; i < N; i++) {
		int rc = f.ops->variant_get(txn, &f.org, &keys[i].location, &keys[i].variant, &one);

		ck_assert_msg(rc == 0 || rc == INV_ENOTFOUND, "variant_get: %d", rc);
		ck_assert_int_eq(found[i], rc == 0);
		if (rc == 0) {
			ck_assert_mem_eq(&out[i], &one, sizeof(one));
			nfound++;
		}
	}
	ck_assert_int_gt(nfound, 0);
	ck_assert_int_lt(nfound, N);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_variant_put_many_agrees_with_variant_put)
{
	struct fx f;
	enum { N = 1000 };
	inv_variant_record *recs = calloc(N, sizeof(*recs));
	struct snapshot a, b;

	ck_assert_ptr_nonnull(recs);
	for (unsigned i = 0; i < N; i++)
		recs[i] = var_rec(1 + i % 2, i / 10, 10000 + i, (int64_t)i - 500);
	/* A key repeated in one call: the last one wins. */
	recs[N - 1] = var_rec(1, 0, 10000, 4242);

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);

	for (unsigned i = 0; i < N; i++)
		OK(f.ops->variant_put(txn, &f.org, &recs[i]));
	fx_commit(&f, txn);
	snapshot_take(&f, &f.org, NULL, &a);
	fx_close(&f);

	fx_open(&f, _i);
	populate(&f);
	txn = fx_begin(&f, 1);
	if (f.ops->variant_put_many)
		OK(f.ops->variant_put_many(txn, &f.org, N, recs));
	else
		for (unsigned i = 0; i < N; i++)
			OK(f.ops->variant_put(txn, &f.org, &recs[i]));
	fx_commit(&f, txn);
	snapshot_take(&f, &f.org, NULL, &b);
	snapshot_assert_eq(&a, &b, "put_many vs put");
	ck_assert_uint_eq(a.sect[3].len, (9 + N - 1) * sizeof(inv_variant_record));
	snapshot_free(&a);
	snapshot_free(&b);
	free(recs);
	fx_close(&f);
}
END_TEST

/* ========================================================= low stock */

START_TEST(test_low_stock_get_put_delete_follow_the_rules)
{
	struct fx f;
	inv_low_stock_record out;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);
	inv_low_stock_record l = low_rec(1, 3, 31, 7, 1);
	inv_uuid loc1 = mkuuid(TAG_LOC, 1), p3 = mkuuid(TAG_PRODUCT, 3);
	inv_uuid v31 = mkuuid(TAG_VARIANT, 31), v32 = mkuuid(TAG_VARIANT, 32);

	ck_assert_int_eq(f.ops->low_stock_get(txn, &f.org, &loc1, &p3, &v31, &out), INV_ENOTFOUND);
	/* Deleting a missing entry succeeds. */
	OK(f.ops->low_stock_delete(txn, &f.org, &loc1, &p3, &v32));
	OK(f.ops->low_stock_put(txn, &f.org, &l));
	memset(&out, 0xee, sizeof(out));
	OK(f.ops->low_stock_get(txn, &f.org, &loc1, &p3, &v31, &out));
	ck_assert_mem_eq(&out, &l, sizeof(l));
	l.level = 0;
	l.has_level = 0;
	l.alert = 0;
	OK(f.ops->low_stock_put(txn, &f.org, &l));
	fx_commit(&f, txn);

	txn = fx_begin(&f, 1);
	OK(f.ops->low_stock_get(txn, &f.org, &loc1, &p3, &v31, &out));
	ck_assert_mem_eq(&out, &l, sizeof(l));
	OK(f.ops->low_stock_delete(txn, &f.org, &loc1, &p3, &v31));
	ck_assert_int_eq(f.ops->low_stock_get(txn, &f.org, &loc1, &p3, &v31, &out), INV_ENOTFOUND);
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	ck_assert_int_eq(f.ops->low_stock_get(txn, &f.org, &loc1, &p3, &v31, &out), INV_ENOTFOUND);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_low_stock_scan_filters_by_location_and_product)
{
	struct fx f;
	struct counter c;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);
	inv_low_stock_record l = low_rec(3, 1, 11, 2, 0);

	OK(f.ops->low_stock_put(txn, &f.org, &l));
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	inv_uuid loc1 = mkuuid(TAG_LOC, 1), loc3 = mkuuid(TAG_LOC, 3), loc2 = mkuuid(TAG_LOC, 2);
	inv_uuid p1 = mkuuid(TAG_PRODUCT, 1), p2 = mkuuid(TAG_PRODUCT, 2);

	c = (struct counter){ 0, 0 };
	OK(f.ops->low_stock_scan(txn, &f.org, &loc1, NULL, count_low, &c));
	ck_assert_int_eq(c.calls, 2);
	c = (struct counter){ 0, 0 };
	OK(f.ops->low_stock_scan(txn, &f.org, &loc1, &p2, count_low, &c));
	ck_assert_int_eq(c.calls, 1);
	c = (struct counter){ 0, 0 };
	OK(f.ops->low_stock_scan(txn, &f.org, &loc3, &p1, count_low, &c));
	ck_assert_int_eq(c.calls, 1);
	c = (struct counter){ 0, 0 };
	OK(f.ops->low_stock_scan(txn, &f.org, &loc2, NULL, count_low, &c));
	ck_assert_int_eq(c.calls, 0);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

/* =========================================================== journal */

struct jcollect {
	int64_t seqs[64];
	int n;
	int checked;
};

static int jcollect_fn(const inv_journal_entry_record *r, void *p)
{
	struct jcollect *c = p;
	struct jbuf want;

	ck_assert_int_lt(c->n, 64);
	c->seqs[c->n++] = r->sequence;
	/* Every entry here was written by jbuf_make(seq, seq % 4, key). */
	char key[32];

	snprintf(key, sizeof(key), "k%lld", (long long)r->sequence);
	jbuf_make(&want, r->sequence, (size_t)(r->sequence % 4),
	          r->sequence % 3 ? key : NULL);
	ck_assert_int_eq(r->time, want.rec.time);
	ck_assert_int_eq(r->has_external_uuid, want.rec.has_external_uuid);
	if (r->has_external_uuid)
		ck_assert_mem_eq(&r->external_uuid, &want.rec.external_uuid, 16);
	ck_assert_int_eq(r->has_user_uuid, 1);
	ck_assert_mem_eq(&r->user_uuid, &want.rec.user_uuid, 16);
	ck_assert_int_eq(r->has_client_uuid, 0);
	if (want.rec.idempotency_key)
		ck_assert_str_eq(r->idempotency_key ? r->idempotency_key : "(null)", want.key);
	else
		ck_assert_ptr_null(r->idempotency_key);
	ck_assert_uint_eq(r->record_count, want.rec.record_count);
	if (r->record_count)
		ck_assert_mem_eq(r->records, want.records,
		                 r->record_count * sizeof(inv_journal_record));
	c->checked++;
	return 0;
}

static void journal_fill(struct fx *f, int64_t from, int64_t to)
{
	void *txn = fx_begin(f, 1);

	for (int64_t s = from; s <= to; s++) {
		struct jbuf b;
		char key[32];

		snprintf(key, sizeof(key), "k%lld", (long long)s);
		jbuf_make(&b, s, (size_t)(s % 4), s % 3 ? key : NULL);
		OK(f->ops->journal_append(txn, &f->org, &b.rec));
		/* The backend copied it: scribbling on ours changes nothing. */
		memset(&b, 0x5a, sizeof(b));
	}
	fx_commit(f, txn);
}

START_TEST(test_journal_read_is_ascending_after_and_limited)
{
	struct fx f;
	struct jcollect c;

	fx_open(&f, _i);
	journal_fill(&f, 1, 20);
	journal_fill(&f, 21, 30);
	void *txn = fx_begin(&f, 0);

	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 0, 0, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 30);
	ck_assert_int_eq(c.checked, 30);
	for (int i = 0; i < c.n; i++)
		ck_assert_int_eq(c.seqs[i], i + 1);
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 17, 5, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 5);
	for (int i = 0; i < c.n; i++)
		ck_assert_int_eq(c.seqs[i], 18 + i);
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 28, 5, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 2);
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 30, 0, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 0);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_journal_trim_deletes_up_to_and_keeps_sequences)
{
	struct fx f;
	struct jcollect c;

	fx_open(&f, _i);
	journal_fill(&f, 1, 12);
	void *txn = fx_begin(&f, 1);

	OK(f.ops->journal_trim(txn, &f.org, 5));
	/* Trimming below what is gone is a no-op. */
	OK(f.ops->journal_trim(txn, &f.org, 3));
	fx_commit(&f, txn);
	journal_fill(&f, 13, 14);

	txn = fx_begin(&f, 0);
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 0, 0, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 9);
	for (int i = 0; i < c.n; i++)
		ck_assert_int_eq(c.seqs[i], 6 + i);
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 2, 3, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 3);
	ck_assert_int_eq(c.seqs[0], 6);
	fx_commit(&f, txn);

	txn = fx_begin(&f, 1);
	OK(f.ops->journal_trim(txn, &f.org, 100));
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 0, 0, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 0);
	fx_commit(&f, txn);
	/* Sequences continue after a full trim. */
	journal_fill(&f, 15, 15);
	txn = fx_begin(&f, 0);
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 0, 0, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 1);
	ck_assert_int_eq(c.seqs[0], 15);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

/* ======================================================= idempotency */

struct icollect {
	int calls;
	inv_idempotency_record rec;
	unsigned char result[512 * 1024];
	char key[256];
};

static int icollect_fn(const inv_idempotency_record *r, void *p)
{
	struct icollect *c = p;

	c->calls++;
	c->rec = *r;
	ck_assert_uint_le(r->result_len, sizeof(c->result));
	memcpy(c->result, r->result, r->result_len);
	snprintf(c->key, sizeof(c->key), "%s", r->key);
	return 0;
}

START_TEST(test_idempotency_get_put_round_trip_and_replace)
{
	struct fx f;
	static struct icollect c;
	size_t big = 300 * 1024;
	unsigned char *result = malloc(big);
	char key[256];

	ck_assert_ptr_nonnull(result);
	for (size_t i = 0; i < big; i++)
		result[i] = (unsigned char)(i * 7 + 3);
	memset(key, 'k', 255);
	key[255] = '\0';

	fx_open(&f, _i);
	void *txn = fx_begin(&f, 1);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(f.ops->idempotency_get(txn, &f.org, key, icollect_fn, &c), INV_ENOTFOUND);
	ck_assert_int_eq(c.calls, 0);

	inv_idempotency_record in;

	memset(&in, 0, sizeof(in));
	in.key = key;
	for (int i = 0; i < 32; i++)
		in.fingerprint[i] = (uint8_t)(i + 1);
	in.sequence = 77;
	in.result = result;
	in.result_len = big;
	OK(f.ops->idempotency_put(txn, &f.org, &in));
	fx_commit(&f, txn);

	txn = fx_begin(&f, 0);
	OK(f.ops->idempotency_get(txn, &f.org, key, icollect_fn, &c));
	ck_assert_int_eq(c.calls, 1);
	ck_assert_str_eq(c.key, key);
	ck_assert_mem_eq(c.rec.fingerprint, in.fingerprint, 32);
	ck_assert_int_eq(c.rec.sequence, 77);
	ck_assert_uint_eq(c.rec.result_len, big);
	ck_assert_int_eq(memcmp(c.result, result, big), 0);
	/* A one-byte key and another key are different records. */
	c.calls = 0;
	ck_assert_int_eq(f.ops->idempotency_get(txn, &f.org, "k", icollect_fn, &c), INV_ENOTFOUND);
	ck_assert_int_eq(c.calls, 0);
	fx_commit(&f, txn);

	/* A put of a known key replaces the record. */
	txn = fx_begin(&f, 1);
	in.sequence = 78;
	in.result = "short";
	in.result_len = 5;
	OK(f.ops->idempotency_put(txn, &f.org, &in));
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	c.calls = 0;
	OK(f.ops->idempotency_get(txn, &f.org, key, icollect_fn, &c));
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.rec.sequence, 78);
	ck_assert_uint_eq(c.rec.result_len, 5);
	ck_assert_int_eq(memcmp(c.result, "short", 5), 0);
	fx_commit(&f, txn);
	free(result);
	fx_close(&f);
}
END_TEST

/* ======================================================== sync state */

struct scollect {
	int calls;
	size_t len;
	unsigned char *data;    /* malloc'd copy */
};

static int scollect_fn(const void *data, size_t len, void *p)
{
	struct scollect *c = p;

	c->calls++;
	free(c->data);
	c->data = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(c->data);
	if (len)
		memcpy(c->data, data, len);
	c->len = len;
	return 0;
}

/* The organization's sync state in a read transaction of its own: the
 * get's return code, and the bytes in *c when 0. */
static int sync_read(struct fx *f, const inv_uuid *org, struct scollect *c)
{
	void *txn = fx_begin_org(f, org, 0);
	int rc;

	c->calls = 0;
	rc = f->ops->sync_state_get(txn, org, scollect_fn, c);
	fx_commit(f, txn);
	ck_assert_int_eq(c->calls, rc == 0 ? 1 : 0);
	return rc;
}

static void sync_write(struct fx *f, const inv_uuid *org, const void *data, size_t len)
{
	void *txn = fx_begin_org(f, org, 1);

	OK(f->ops->sync_state_put(txn, org, data, len));
	fx_commit(f, txn);
}

static void assert_sync_is(struct fx *f, const inv_uuid *org, const void *data, size_t len)
{
	struct scollect c = { 0, 0, NULL };

	OK(sync_read(f, org, &c));
	ck_assert_uint_eq(c.len, len);
	ck_assert_int_eq(len ? memcmp(c.data, data, len) : 0, 0);
	free(c.data);
}

START_TEST(test_sync_state_get_of_unset_org_is_enotfound)
{
	struct fx f;
	struct scollect c = { 0, 0, NULL };

	fx_open(&f, _i);
	ck_assert_int_eq(sync_read(&f, &f.org, &c), INV_ENOTFOUND);
	/* An organization with other records but no sync state: still none. */
	populate(&f);
	inv_uuid other = mkuuid(TAG_ORG, 2);
	void *txn = fx_begin_org(&f, &other, 1);
	inv_org_record o = org_rec(&other, 0, INV_NEGATIVE_ALLOW);

	OK(f.ops->org_put(txn, &o));
	fx_commit(&f, txn);
	ck_assert_int_eq(sync_read(&f, &other, &c), INV_ENOTFOUND);
	free(c.data);
	fx_close(&f);
}
END_TEST

START_TEST(test_sync_state_round_trips_byte_exact_empty_and_large)
{
	struct fx f;
	size_t big = 1u << 20;
	unsigned char *data = malloc(big);
	static const unsigned char odd[] = { 0, 1, 0, 0xff, 0, '\n', 0 };

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 11));
	fx_open(&f, _i);
	/* 0 bytes is a record, not an absent one. */
	sync_write(&f, &f.org, "", 0);
	assert_sync_is(&f, &f.org, "", 0);
	/* NUL bytes inside are kept. */
	sync_write(&f, &f.org, odd, sizeof(odd));
	assert_sync_is(&f, &f.org, odd, sizeof(odd));
	sync_write(&f, &f.org, data, big);
	assert_sync_is(&f, &f.org, data, big);
	/* The writer reads its own put back in the same transaction. */
	void *txn = fx_begin(&f, 1);
	struct scollect c = { 0, 0, NULL };

	OK(f.ops->sync_state_put(txn, &f.org, data + 1, big - 1));
	OK(f.ops->sync_state_get(txn, &f.org, scollect_fn, &c));
	ck_assert_int_eq(c.calls, 1);
	ck_assert_uint_eq(c.len, big - 1);
	ck_assert_int_eq(memcmp(c.data, data + 1, big - 1), 0);
	fx_commit(&f, txn);
	assert_sync_is(&f, &f.org, data + 1, big - 1);
	free(c.data);
	free(data);
	fx_close(&f);
}
END_TEST

START_TEST(test_sync_state_put_replaces_the_record)
{
	struct fx f;

	fx_open(&f, _i);
	sync_write(&f, &f.org, "a much longer first record", 26);
	sync_write(&f, &f.org, "short", 5);
	assert_sync_is(&f, &f.org, "short", 5);
	/* Twice in one transaction: the last put wins. */
	void *txn = fx_begin(&f, 1);

	OK(f.ops->sync_state_put(txn, &f.org, "first", 5));
	OK(f.ops->sync_state_put(txn, &f.org, "second", 6));
	fx_commit(&f, txn);
	assert_sync_is(&f, &f.org, "second", 6);
	fx_close(&f);
}
END_TEST

START_TEST(test_sync_state_rollback_discards_the_put)
{
	struct fx f;
	struct scollect c = { 0, 0, NULL };

	fx_open(&f, _i);
	/* A first put, rolled back: still none. */
	void *txn = fx_begin(&f, 1);

	OK(f.ops->sync_state_put(txn, &f.org, "never", 5));
	f.ops->rollback(txn);
	ck_assert_int_eq(sync_read(&f, &f.org, &c), INV_ENOTFOUND);
	/* A replacement, rolled back: the committed one stays. */
	sync_write(&f, &f.org, "kept", 4);
	txn = fx_begin(&f, 1);
	OK(f.ops->sync_state_put(txn, &f.org, "dropped", 7));
	OK(f.ops->sync_state_put(txn, &f.org, "", 0));
	f.ops->rollback(txn);
	assert_sync_is(&f, &f.org, "kept", 4);
	free(c.data);
	fx_close(&f);
}
END_TEST

START_TEST(test_sync_state_is_per_organization)
{
	struct fx f;
	inv_uuid other = mkuuid(TAG_ORG, 2), third = mkuuid(TAG_ORG, 3);
	struct scollect c = { 0, 0, NULL };

	fx_open(&f, _i);
	sync_write(&f, &f.org, "org one", 7);
	sync_write(&f, &other, "org two!", 8);
	assert_sync_is(&f, &f.org, "org one", 7);
	assert_sync_is(&f, &other, "org two!", 8);
	ck_assert_int_eq(sync_read(&f, &third, &c), INV_ENOTFOUND);
	sync_write(&f, &other, "", 0);
	assert_sync_is(&f, &f.org, "org one", 7);
	assert_sync_is(&f, &other, "", 0);
	free(c.data);
	fx_close(&f);
}
END_TEST

START_TEST(test_sync_state_commit_is_seen_by_later_readers)
{
	struct fx f;
	struct scollect c = { 0, 0, NULL };

	fx_open(&f, _i);
	ck_assert_int_eq(sync_read(&f, &f.org, &c), INV_ENOTFOUND);
	sync_write(&f, &f.org, "committed", 9);
	/* Every later read transaction sees it, not just the first. */
	assert_sync_is(&f, &f.org, "committed", 9);
	assert_sync_is(&f, &f.org, "committed", 9);
	free(c.data);
	fx_close(&f);
}
END_TEST

START_TEST(test_sync_state_put_in_read_transaction_is_refused)
{
	struct fx f;

	fx_open(&f, _i);
	sync_write(&f, &f.org, "before", 6);
	void *txn = fx_begin(&f, 0);
	int rc = f.ops->sync_state_put(txn, &f.org, "in a read", 9);

	ck_assert_msg(rc < 0, "sync_state_put in a read transaction returned %d", rc);
	ck_assert_str_ne(inv_error_last()->message, "");
	f.ops->rollback(txn);
	assert_sync_is(&f, &f.org, "before", 6);
	fx_close(&f);
}
END_TEST

static int stop_fn(const void *data, size_t len, void *p)
{
	(void)data;
	(void)len;
	(void)p;
	return 7;
}

START_TEST(test_sync_state_get_returns_the_callback_value)
{
	struct fx f;

	fx_open(&f, _i);
	sync_write(&f, &f.org, "x", 1);
	void *txn = fx_begin(&f, 0);

	ck_assert_int_eq(f.ops->sync_state_get(txn, &f.org, stop_fn, NULL), 7);
	f.ops->rollback(txn);
	fx_close(&f);
}
END_TEST

/* ====================================================== transactions */

/* Return the first failure, for the fault tests. */
#define TRY(expr) do { \
	int try_rc_ = (expr); \
	if (try_rc_) \
		return try_rc_; \
} while (0)

/* Every kind of write, on top of populate(), with `nnew` new variant
 * records (enough to grow the tables, or few to keep fault loops short). */
static int write_everything_n(struct fx *f, void *txn, unsigned nnew)
{
	inv_org_record o = org_rec(&f->org, 3, INV_NEGATIVE_DENY);
	inv_location_record l5 = loc_rec(5, INV_LOCATION_STORE, 0);
	inv_location_record l2 = loc_rec(2, INV_LOCATION_SOLD, 0);
	inv_uuid p1 = mkuuid(TAG_PRODUCT, 1), p9 = mkuuid(TAG_PRODUCT, 9);
	inv_uuid loc1 = mkuuid(TAG_LOC, 1), p2 = mkuuid(TAG_PRODUCT, 2);
	inv_uuid v21 = mkuuid(TAG_VARIANT, 21);
	struct jbuf j;

	TRY(f->ops->org_put(txn, &o));
	TRY(f->ops->location_put(txn, &f->org, &l5));
	TRY(f->ops->location_put(txn, &f->org, &l2));
	TRY(f->ops->tracking_put(txn, &f->org, &p1, 0));
	TRY(f->ops->tracking_put(txn, &f->org, &p9, 1));
	for (unsigned i = 0; i < nnew; i++) {
		/* New records (enough to grow any table) and overwrites. */
		inv_variant_record r = var_rec(1 + i % 2, 9, 900 + i, i);

		TRY(f->ops->variant_put(txn, &f->org, &r));
	}
	inv_variant_record r = var_rec(1, 1, 11, -5);

	TRY(f->ops->variant_put(txn, &f->org, &r));
	r = var_rec(1, 1, 12, 0);
	r.updated = 1;
	if (f->ops->variant_put_many)
		TRY(f->ops->variant_put_many(txn, &f->org, 1, &r));
	inv_low_stock_record l = low_rec(1, 1, 11, 50, 1);

	TRY(f->ops->low_stock_put(txn, &f->org, &l));
	l = low_rec(1, 3, 31, 1, 0);
	TRY(f->ops->low_stock_put(txn, &f->org, &l));
	TRY(f->ops->low_stock_delete(txn, &f->org, &loc1, &p2, &v21));
	TRY(f->ops->journal_trim(txn, &f->org, 1));
	jbuf_make(&j, 3, 3, "key-new");
	TRY(f->ops->journal_append(txn, &f->org, &j.rec));

	inv_idempotency_record ir;

	memset(&ir, 0, sizeof(ir));
	ir.key = "key-new";
	ir.sequence = 3;
	ir.result = "x";
	ir.result_len = 1;
	TRY(f->ops->idempotency_put(txn, &f->org, &ir));
	ir.key = "key-2";
	ir.sequence = 2;
	ir.result = "replaced";
	ir.result_len = 8;
	TRY(f->ops->idempotency_put(txn, &f->org, &ir));
	if (f->ops->version >= 2)
		TRY(f->ops->sync_state_put(txn, &f->org, "sync state 2, longer", 20));
	return 0;
}

static int write_everything(struct fx *f, void *txn)
{
	return write_everything_n(f, txn, 300);
}

START_TEST(test_rollback_discards_every_kind_of_write)
{
	struct fx f;
	struct snapshot before, after;

	fx_open(&f, _i);
	populate(&f);
	snapshot_take(&f, &f.org, populate_keys, &before);
	void *txn = fx_begin(&f, 1);

	OK(write_everything(&f, txn));
	f.ops->rollback(txn);
	snapshot_take(&f, &f.org, populate_keys, &after);
	snapshot_assert_eq(&before, &after, "after rollback");
	snapshot_free(&before);
	snapshot_free(&after);

	/* And the backend still works after it. */
	txn = fx_begin(&f, 1);
	OK(write_everything(&f, txn));
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_rollback_of_a_fresh_store_leaves_it_empty)
{
	struct fx f;
	struct snapshot before, after;

	fx_open(&f, _i);
	snapshot_take(&f, &f.org, populate_keys, &before);
	void *txn = fx_begin(&f, 1);

	OK(write_everything(&f, txn));
	f.ops->rollback(txn);
	snapshot_take(&f, &f.org, populate_keys, &after);
	snapshot_assert_eq(&before, &after, "after rollback");
	snapshot_free(&before);
	snapshot_free(&after);
	fx_close(&f);
}
END_TEST

START_TEST(test_commit_keeps_every_kind_of_write)
{
	struct fx f;
	struct snapshot again, after;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);

	OK(write_everything(&f, txn));
	fx_commit(&f, txn);
	snapshot_take(&f, &f.org, populate_keys, &after);
	/* Spot checks against what write_everything() wrote. */
	inv_org_record o;

	memcpy(&o, after.sect[0].data + sizeof(int), sizeof(o));
	ck_assert_int_eq(o.last_sequence, 3);
	ck_assert_uint_eq(after.sect[1].len, 5 * sizeof(inv_location_record));
	ck_assert_uint_eq(after.sect[3].len, (9 + 300) * sizeof(inv_variant_record));
	ck_assert_uint_eq(after.sect[4].len, 2 * sizeof(inv_low_stock_record));

	/* The same writes on a fresh backend give the same state. */
	fx_close(&f);
	fx_open(&f, _i);
	populate(&f);
	txn = fx_begin(&f, 1);
	OK(write_everything(&f, txn));
	fx_commit(&f, txn);
	snapshot_take(&f, &f.org, populate_keys, &again);
	snapshot_assert_eq(&after, &again, "same writes");
	snapshot_free(&again);
	snapshot_free(&after);
	fx_close(&f);
}
END_TEST

START_TEST(test_writer_sees_its_own_writes)
{
	struct fx f;
	inv_variant_record out;
	struct jcollect c;
	int32_t tracked;

	fx_open(&f, _i);
	void *txn = fx_begin(&f, 1);
	inv_variant_record r = var_rec(1, 1, 1, 3);
	inv_uuid p1 = mkuuid(TAG_PRODUCT, 1);
	struct jbuf j;

	OK(f.ops->variant_put(txn, &f.org, &r));
	OK(f.ops->variant_get(txn, &f.org, &r.location, &r.variant, &out));
	ck_assert_int_eq(out.balance, 3);
	OK(f.ops->tracking_put(txn, &f.org, &p1, 1));
	OK(f.ops->tracking_get(txn, &f.org, &p1, &tracked));
	ck_assert_int_eq(tracked, 1);
	jbuf_make(&j, 1, 1, "k1");
	OK(f.ops->journal_append(txn, &f.org, &j.rec));
	memset(&c, 0, sizeof(c));
	OK(f.ops->journal_read(txn, &f.org, 0, 0, jcollect_fn, &c));
	ck_assert_int_eq(c.n, 1);
	f.ops->rollback(txn);
	fx_close(&f);
}
END_TEST

START_TEST(test_read_transaction_sees_committed_data)
{
	struct fx f;
	inv_variant_record out;

	fx_open(&f, _i);
	populate(&f);
	void *txn = fx_begin(&f, 1);
	inv_variant_record r = var_rec(1, 1, 11, 999);

	OK(f.ops->variant_put(txn, &f.org, &r));
	fx_commit(&f, txn);
	txn = fx_begin(&f, 0);
	OK(f.ops->variant_get(txn, &f.org, &r.location, &r.variant, &out));
	ck_assert_int_eq(out.balance, 999);
	/* A read transaction ends with commit or rollback alike. */
	f.ops->rollback(txn);
	txn = fx_begin(&f, 0);
	OK(f.ops->variant_get(txn, &f.org, &r.location, &r.variant, &out));
	ck_assert_int_eq(out.balance, 999);
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

/* A reader on another thread while a write transaction is open: it may
 * wait for the writer or read a snapshot, but never sees the uncommitted
 * write, here one that is then rolled back. */
struct peek {
	struct fx *f;
	atomic_int writer_ready;
	atomic_int rolled_back;
	int64_t seen;
	int rc;
};

static void *peek_reader(void *p)
{
	struct peek *pk = p;
	void *txn = NULL;
	inv_variant_record out;
	inv_uuid loc = mkuuid(TAG_LOC, 1), var = mkuuid(TAG_VARIANT, 11);

	while (!atomic_load(&pk->writer_ready))
		;
	pk->rc = pk->f->ops->begin(pk->f->inst, &pk->f->org, 0, &txn);
	if (pk->rc)
		return NULL;
	pk->rc = pk->f->ops->variant_get(txn, &pk->f->org, &loc, &var, &out);
	pk->seen = out.balance;
	pk->f->ops->rollback(txn);
	return NULL;
}

START_TEST(test_read_transaction_never_sees_uncommitted_writes)
{
	struct fx f;
	struct peek pk;
	pthread_t th;
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	fx_open(&f, _i);
	populate(&f);
	memset(&pk, 0, sizeof(pk));
	pk.f = &f;
	ck_assert_int_eq(pthread_create(&th, NULL, peek_reader, &pk), 0);
	void *txn = fx_begin(&f, 1);
	inv_variant_record r = var_rec(1, 1, 11, 424242);

	OK(f.ops->variant_put(txn, &f.org, &r));
	atomic_store(&pk.writer_ready, 1);
	/* Give the reader time to run (or to block) while the write is open. */
	nanosleep(&pause, NULL);
	f.ops->rollback(txn);
	pthread_join(th, NULL);
	ck_assert_msg(pk.rc == 0, "reader: %d", pk.rc);
	ck_assert_int_eq(pk.seen, 101);
	fx_close(&f);
}
END_TEST

/* ---------------------------------------------- commit_release (v3) */

static void count_release(void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1);
}

/* Backends without the optional member have nothing to check here. */
static int has_commit_release(const struct fx *f)
{
	return f->ops->version >= 3 && f->ops->commit_release;
}

START_TEST(test_commit_release_releases_once_and_keeps_the_writes)
{
	struct fx f;
	inv_variant_record out, r = var_rec(1, 1, 1, 7);
	_Atomic int released = 0;
	void *txn;

	fx_open(&f, _i);
	if (has_commit_release(&f)) {
		txn = fx_begin(&f, 1);
		OK(f.ops->variant_put(txn, &f.org, &r));
		OK(f.ops->commit_release(txn, count_release, &released));
		ck_assert_int_eq(atomic_load(&released), 1);
		txn = fx_begin(&f, 0);
		OK(f.ops->variant_get(txn, &f.org, &r.location, &r.variant, &out));
		ck_assert_int_eq(out.balance, 7);
		/* a read transaction ends the same way */
		OK(f.ops->commit_release(txn, count_release, &released));
		ck_assert_int_eq(atomic_load(&released), 2);
	}
	fx_close(&f);
}
END_TEST

/* The next writer of the organization, begun from release(), sees the
 * released writes, and both commits succeed. */
struct next_writer {
	struct fx *f;
	pthread_t thread;
	_Atomic int started;
	int rc;
	int64_t seen;
};

static void *next_writer_run(void *arg)
{
	struct next_writer *n = arg;
	const inv_backend_ops *ops = n->f->ops;
	inv_variant_record r = var_rec(1, 1, 1, 0), out;
	void *txn = NULL;

	n->rc = ops->begin(n->f->inst, &n->f->org, 1, &txn);
	if (n->rc)
		return NULL;
	n->rc = ops->variant_get(txn, &n->f->org, &r.location, &r.variant, &out);
	if (n->rc) {
		ops->rollback(txn);
		return NULL;
	}
	n->seen = out.balance;
	r.balance = out.balance + 1;
	if ((n->rc = ops->variant_put(txn, &n->f->org, &r)))
		ops->rollback(txn);
	else
		n->rc = ops->commit(txn);
	return NULL;
}

static void start_next_writer(void *arg)
{
	struct next_writer *n = arg;

	if (pthread_create(&n->thread, NULL, next_writer_run, n) == 0)
		atomic_store(&n->started, 1);
}

START_TEST(test_commit_release_lets_the_next_writer_see_the_writes)
{
	struct fx f;
	inv_variant_record out, r = var_rec(1, 1, 1, 41);
	struct next_writer n = { .f = &f };
	void *txn;

	fx_open(&f, _i);
	if (has_commit_release(&f)) {
		txn = fx_begin(&f, 1);
		OK(f.ops->variant_put(txn, &f.org, &r));
		OK(f.ops->commit_release(txn, start_next_writer, &n));
		ck_assert(atomic_load(&n.started));
		pthread_join(n.thread, NULL);
		ck_assert_msg(n.rc == 0, "next writer: %d", n.rc);
		ck_assert_int_eq(n.seen, 41);
		txn = fx_begin(&f, 0);
		OK(f.ops->variant_get(txn, &f.org, &r.location, &r.variant, &out));
		ck_assert_int_eq(out.balance, 42);
		fx_commit(&f, txn);
	}
	fx_close(&f);
}
END_TEST

START_TEST(test_control_rejects_unknown_ops)
{
	struct fx f;

	fx_open(&f, _i);
	if (f.ops->control)
		ck_assert_int_eq(f.ops->control(f.inst, 0x7fff1234, NULL), INV_ENOTFOUND);
	fx_close(&f);
}
END_TEST

START_TEST(test_many_variants_survive_growth_and_rollback)
{
	struct fx f;
	enum { N = 20000 };
	inv_variant_record out;

	fx_open(&f, _i);
	void *txn = fx_begin(&f, 1);

	for (unsigned i = 0; i < N; i++) {
		inv_variant_record r = var_rec(1 + i % 3, i / 4, i, i);

		OK(f.ops->variant_put(txn, &f.org, &r));
	}
	fx_commit(&f, txn);
	txn = fx_begin(&f, 1);
	for (unsigned i = N; i < 2 * N; i++) {
		inv_variant_record r = var_rec(1 + i % 3, i / 4, i, i);

		OK(f.ops->variant_put(txn, &f.org, &r));
	}
	f.ops->rollback(txn);
	txn = fx_begin(&f, 0);
	for (unsigned i = 0; i < 2 * N; i += 7) {
		inv_uuid loc = mkuuid(TAG_LOC, 1 + i % 3), var = mkuuid(TAG_VARIANT, i);
		int rc = f.ops->variant_get(txn, &f.org, &loc, &var, &out);

		if (i < N) {
			ck_assert_msg(rc == 0, "variant %u: %d", i, rc);
			ck_assert_int_eq(out.balance, i);
		} else {
			ck_assert_msg(rc == INV_ENOTFOUND, "rolled-back variant %u: %d", i, rc);
		}
	}
	struct counter c = { 0, 0 };

	OK(f.ops->variant_scan(txn, &f.org, NULL, NULL, count_variant, &c));
	ck_assert_int_eq(c.calls, N);
	for (unsigned p = N / 4 - 2; p < N / 4 + 2; p++) {
		inv_uuid prod = mkuuid(TAG_PRODUCT, p);

		c = (struct counter){ 0, 0 };
		OK(f.ops->variant_scan(txn, &f.org, NULL, &prod, count_variant, &c));
		ck_assert_int_eq(c.calls, p < N / 4 ? 4 : 0);
	}
	fx_commit(&f, txn);
	fx_close(&f);
}
END_TEST

/* ======================================================= persistence */

START_TEST(test_committed_data_survives_reopen)
{
	struct fx f;
	struct snapshot before, after;

	fx_open(&f, _i);
	if (!f.t->reopen) {
		fx_close(&f);
		return;
	}
	populate(&f);
	void *txn = fx_begin(&f, 1);

	OK(write_everything(&f, txn));
	fx_commit(&f, txn);
	snapshot_take(&f, &f.org, populate_keys, &before);
	/* A rolled-back transaction leaves no trace either. */
	txn = fx_begin(&f, 1);
	inv_variant_record r = var_rec(1, 1, 11, 123456);

	OK(f.ops->variant_put(txn, &f.org, &r));
	f.ops->rollback(txn);
	int rc = f.t->reopen(&f.ops, &f.inst, f.t->ctx);

	ck_assert_msg(rc == 0, "reopen: %d (%s)", rc, inv_error_last()->message);
	snapshot_take(&f, &f.org, populate_keys, &after);
	snapshot_assert_eq(&before, &after, "after reopen");
	snapshot_free(&before);
	snapshot_free(&after);
	fx_close(&f);
}
END_TEST

/* ============================================== faults at the ops level */

/* Wrap the target's backend in the fault injector; fx_unwrap() undoes it
 * so that the target's own close runs. */
struct wrapped {
	const inv_backend_ops *inner_ops;
	void *inner_inst;
};

static void fx_wrap(struct fx *f, struct wrapped *w)
{
	w->inner_ops = f->ops;
	w->inner_inst = f->inst;
	OK(inv_fault_backend_wrap(&f->ops, &f->inst, w->inner_ops, w->inner_inst));
}

static void fx_unwrap(struct fx *f, struct wrapped *w)
{
	inv_fault_backend_free(f->inst);
	f->ops = w->inner_ops;
	f->inst = w->inner_inst;
}

/* One write transaction of every kind of write, as the core would run it:
 * a failed begin or commit ends it, any other failure rolls back.  The
 * fault loops use few new variants (FAULT_NEW): failing each of 300 alike
 * puts on a durable backend costs a minute and proves nothing more. */
#define FAULT_NEW 8
static int run_write_everything(struct fx *f, unsigned nnew)
{
	void *txn = NULL;
	int rc = f->ops->begin(f->inst, &f->org, 1, &txn);

	if (rc)
		return rc;
	rc = write_everything_n(f, txn, nnew);
	if (rc) {
		f->ops->rollback(txn);
		return rc;
	}
	return f->ops->commit(txn);
}

START_TEST(test_failure_at_any_operation_leaves_state_unchanged)
{
	struct fx f;
	struct wrapped w;
	struct snapshot before, after, reference;
	uint64_t n;

	/* Count the operations, and keep the state of a clean run. */
	fx_open(&f, _i);
	populate(&f);
	fx_wrap(&f, &w);
	inv_fault_backend_reset_count(f.inst);
	OK(run_write_everything(&f, FAULT_NEW));
	n = inv_fault_backend_count(f.inst);
	snapshot_take(&f, &f.org, populate_keys, &reference);
	fx_unwrap(&f, &w);
	fx_close(&f);
	ck_assert_uint_gt(n, 20);

	for (uint64_t k = 1; k <= n; k++) {
		const char *op = NULL;

		fx_open(&f, _i);
		populate(&f);
		snapshot_take(&f, &f.org, populate_keys, &before);
		fx_wrap(&f, &w);
		inv_fault_backend_fail_at(f.inst, k, 0);
		int rc = run_write_everything(&f, FAULT_NEW);

		ck_assert_msg(inv_fault_backend_fired(f.inst, &op), "fault %llu did not fire",
		              (unsigned long long)k);
		ck_assert_msg(rc == INV_EBACKEND, "fault at op %llu (%s): expected %d, got %d",
		              (unsigned long long)k, op, INV_EBACKEND, rc);
		fx_unwrap(&f, &w);
		snapshot_take(&f, &f.org, populate_keys, &after);
		snapshot_assert_eq(&before, &after, op);
		snapshot_free(&after);
		/* The backend works normally afterwards. */
		OK(run_write_everything(&f, FAULT_NEW));
		snapshot_take(&f, &f.org, populate_keys, &after);
		snapshot_assert_eq(&reference, &after, "clean run after a fault");
		snapshot_free(&before);
		snapshot_free(&after);
		fx_close(&f);
	}
	snapshot_free(&reference);
}
END_TEST

START_TEST(test_fault_wrapper_passes_everything_through)
{
	struct fx f;
	struct wrapped w;
	struct snapshot direct, wrapped;

	fx_open(&f, _i);
	populate(&f);
	OK(run_write_everything(&f, FAULT_NEW));
	snapshot_take(&f, &f.org, populate_keys, &direct);
	fx_close(&f);

	fx_open(&f, _i);
	fx_wrap(&f, &w);
	populate(&f);
	OK(run_write_everything(&f, FAULT_NEW));
	snapshot_take(&f, &f.org, populate_keys, &wrapped);
	ck_assert_int_eq(inv_fault_backend_fired(f.inst, NULL), 0);
	ck_assert_uint_gt(inv_fault_backend_count(f.inst), 20);
	fx_unwrap(&f, &w);
	snapshot_assert_eq(&direct, &wrapped, "through the fault wrapper");
	snapshot_free(&direct);
	snapshot_free(&wrapped);
	fx_close(&f);
}
END_TEST

START_TEST(test_enomem_anywhere_leaves_nothing_half_written)
{
	struct fx f;
	struct snapshot before, after;
	uint64_t k;

	for (k = 1; k < 10000; k++) {
		fx_open(&f, _i);
		if (!f.t->fail_alloc) {
			fx_close(&f);
			return;
		}
		populate(&f);
		snapshot_take(&f, &f.org, populate_keys, &before);
		OK(f.t->fail_alloc(f.ops, f.inst, k, f.t->ctx));
		inv_error_clear();
		int rc = run_write_everything(&f, 300);

		OK(f.t->fail_alloc(f.ops, f.inst, 0, f.t->ctx));
		if (rc == 0) {
			/* Past the last allocation: every one has failed once. */
			snapshot_free(&before);
			fx_close(&f);
			break;
		}
		ck_assert_msg(rc == INV_ENOMEM, "allocation %llu: expected %d, got %d (%s)",
		              (unsigned long long)k, INV_ENOMEM, rc, inv_error_last()->message);
		ck_assert_int_eq(inv_error_last()->code, INV_ENOMEM);
		snapshot_take(&f, &f.org, populate_keys, &after);
		snapshot_assert_eq(&before, &after, "after ENOMEM and rollback");
		snapshot_free(&before);
		snapshot_free(&after);
		/* And it still works. */
		OK(run_write_everything(&f, 300));
		fx_close(&f);
	}
	if (f.t->fail_alloc)
		ck_assert_uint_gt(k, 5);
}
END_TEST

/* ================================================= through the core */

/*
 * A store on the target's backend, wrapped in the fault injector, with a
 * fixed clock and counting UUID generator so that two runs on two fresh
 * backends store byte-identical state.
 */
struct core_fx {
	struct fx f;
	struct wrapped w;
	inv_store *store;
	inv_org *org;
	unsigned uuids;
};

static int64_t fixed_clock(void *payload)
{
	(void)payload;
	return INT64_C(1764583200000);
}

static void counting_uuid(inv_uuid *out, void *payload)
{
	unsigned *n = payload;

	*out = mkuuid(TAG_OTHER + 1, ++*n);
}

/* The store closes the wrapper; the wrapper must close the inner instance
 * through the target. */
static void core_close_inner(const inv_backend_ops *ops, void *inst, void *ctx)
{
	const struct inv_conformance_target *t = ctx;

	if (t->close)
		t->close(ops, inst, t->ctx);
	else
		ops->close(inst);
}

static inv_uuid P1, P2, V1, V2, V3;

static void core_ids(void)
{
	P1 = mkuuid(TAG_PRODUCT, 1);
	P2 = mkuuid(TAG_PRODUCT, 2);
	V1 = mkuuid(TAG_VARIANT, 11);
	V2 = mkuuid(TAG_VARIANT, 12);
	V3 = mkuuid(TAG_VARIANT, 21);
}

static const inv_location *loc_of(struct core_fx *c, inv_location_type type)
{
	const inv_location *l = NULL;

	OK(inv_location_by_type(&l, c->org, type));
	return l;
}

/* Open a store and set up: P1 tracked, V1 = 10 and V2 = 5 in STORE, a
 * low-stock level of 8 on V1, one idempotency key. */
static void core_open(struct core_fx *c, int index)
{
	inv_store_options opts = INV_STORE_OPTIONS_INIT;
	const inv_variant *v1, *v2;
	inv_result *res = NULL;
	int64_t level = 8;

	memset(c, 0, sizeof(*c));
	core_ids();
	fx_open(&c->f, index);
	fx_wrap(&c->f, &c->w);
	inv_fault_backend_on_close(c->f.inst, core_close_inner, (void *)c->f.t);
	opts.clock = fixed_clock;
	opts.uuid_generate = counting_uuid;
	opts.uuid_payload = &c->uuids;
	OK(inv_store_open(&c->store, c->f.ops, c->f.inst, &opts));
	OK(inv_org_open(&c->org, c->store, &c->f.org));
	OK(inv_tracking_start(c->org, &P1));
	OK(inv_variant_get(&v1, c->org, &P1, &V1));
	OK(inv_variant_get(&v2, c->org, &P1, &V2));

	inv_change ch[2] = {
		{ v1, loc_of(c, INV_LOCATION_SUPPLIER), loc_of(c, INV_LOCATION_STORE), 10 },
		{ v2, loc_of(c, INV_LOCATION_SUPPLIER), loc_of(c, INV_LOCATION_STORE), 5 },
	};
	inv_apply_options ao = INV_APPLY_OPTIONS_INIT;

	ao.idempotency_key = "setup";
	OK(inv_apply_changes(&res, c->org, ch, 2, &ao));
	inv_result_free(res);
	OK(inv_low_stock_set(c->org, loc_of(c, INV_LOCATION_STORE), &P1, &V1, &level, 1));
}

static void core_close(struct core_fx *c)
{
	inv_org_close(c->org);
	inv_store_close(c->store);
}

/* The scenario batch: start tracking P2, a sale crossing V1's low-stock
 * level, stock in for V3, a move to BIN, under an idempotency key. */
static int core_scenario(struct core_fx *c, int64_t *sequence)
{
	const inv_variant *v1, *v2, *v3;
	inv_result *res = NULL;
	inv_tracking_change tc = { P2, INV_TRACKING_START, 0 };
	inv_uuid ext = mkuuid(TAG_OTHER, 77);
	inv_apply_options ao = INV_APPLY_OPTIONS_INIT;
	int rc;

	TRY(inv_variant_get(&v1, c->org, &P1, &V1));
	TRY(inv_variant_get(&v2, c->org, &P1, &V2));
	TRY(inv_variant_get(&v3, c->org, &P2, &V3));

	inv_change ch[3] = {
		{ v1, loc_of(c, INV_LOCATION_STORE), loc_of(c, INV_LOCATION_SOLD), 3 },
		{ v3, loc_of(c, INV_LOCATION_SUPPLIER), loc_of(c, INV_LOCATION_STORE), 4 },
		{ v2, loc_of(c, INV_LOCATION_STORE), loc_of(c, INV_LOCATION_BIN), 1 },
	};

	ao.idempotency_key = "scenario";
	ao.external_uuid = &ext;
	ao.tracking = &tc;
	ao.tracking_count = 1;
	rc = inv_apply_changes(&res, c->org, ch, 3, &ao);
	if (rc == 0 && sequence)
		*sequence = inv_result_sequence(res);
	inv_result_free(res);
	return rc;
}

static const char *const core_keys[] = { "setup", "scenario", NULL };

/* What the public API says, beyond the raw records. */
struct core_view {
	int64_t last_sequence;
	int64_t v1, v2, v3;
	int tracked_p2;
};

static void core_view_take(struct core_fx *c, struct core_view *v)
{
	const inv_variant *h;
	const inv_location *store = loc_of(c, INV_LOCATION_STORE);

	memset(v, 0, sizeof(*v));
	OK(inv_journal_last_sequence(&v->last_sequence, c->org));
	OK(inv_variant_get(&h, c->org, &P1, &V1));
	OK(inv_balance_get(&v->v1, c->org, h, store));
	OK(inv_variant_get(&h, c->org, &P1, &V2));
	OK(inv_balance_get(&v->v2, c->org, h, store));
	OK(inv_variant_get(&h, c->org, &P2, &V3));
	int rc = inv_balance_get(&v->v3, c->org, h, store);

	ck_assert_msg(rc == 0 || rc == INV_ENOTTRACKED, "balance of V3: %d", rc);
	OK(inv_tracking_get(&v->tracked_p2, c->org, &P2));
}

static void core_view_assert_eq(const struct core_view *a, const struct core_view *b,
                                const char *when)
{
	ck_assert_msg(a->last_sequence == b->last_sequence,
	              "%s: last sequence: expected %lld, got %lld", when,
	              (long long)a->last_sequence, (long long)b->last_sequence);
	ck_assert_msg(a->v1 == b->v1 && a->v2 == b->v2 && a->v3 == b->v3,
	              "%s: balances: expected %lld/%lld/%lld, got %lld/%lld/%lld", when,
	              (long long)a->v1, (long long)a->v2, (long long)a->v3,
	              (long long)b->v1, (long long)b->v2, (long long)b->v3);
	ck_assert_msg(a->tracked_p2 == b->tracked_p2, "%s: tracking of P2: expected %d, got %d",
	              when, a->tracked_p2, b->tracked_p2);
}

START_TEST(test_core_batch_round_trips_through_the_backend)
{
	struct core_fx c;
	struct core_view v;
	int64_t seq = 0;

	core_open(&c, _i);
	OK(core_scenario(&c, &seq));
	ck_assert_int_gt(seq, 0);
	core_view_take(&c, &v);
	ck_assert_int_eq(v.last_sequence, seq);
	ck_assert_int_eq(v.v1, 7);
	ck_assert_int_eq(v.v2, 4);
	ck_assert_int_eq(v.v3, 4);
	ck_assert_int_eq(v.tracked_p2, 1);

	/* The crossing of V1's level is stored, and the idempotency key. */
	inv_low_stock ls;

	OK(inv_low_stock_get(&ls, c.org, loc_of(&c, INV_LOCATION_STORE), &P1, &V1));
	ck_assert_int_eq(ls.level, 8);
	struct snapshot s;

	snapshot_take(&c.f, &c.f.org, core_keys, &s);
	ck_assert_msg(s.sect[6].len > 2 * sizeof(int) + 64, "idempotency keys not stored");
	snapshot_free(&s);

	/* Replaying the key stores nothing new. */
	int64_t again = 0;

	OK(core_scenario(&c, &again));
	ck_assert_int_eq(again, seq);
	core_view_take(&c, &v);
	ck_assert_int_eq(v.last_sequence, seq);
	ck_assert_int_eq(v.v1, 7);
	core_close(&c);
}
END_TEST

typedef int (*core_call_fn)(struct core_fx *c);

/*
 * Count the backend operations of one public call, then fail each of them
 * in turn on a fresh store: the call must fail with the backend's message,
 * every stored record and what the public API reports must be as before,
 * and the same call must then succeed as in a clean run.
 */
static void core_fault_loop(int index, core_call_fn call, const char *name)
{
	struct core_fx c;
	struct snapshot before, after, reference;
	struct core_view vbefore, vafter, vreference;
	uint64_t n;

	/* Every run takes the same steps before the call: what the core
	 * caches (resolved variants) changes which operations it needs. */
	core_open(&c, index);
	core_view_take(&c, &vbefore);
	inv_fault_backend_reset_count(c.f.inst);
	OK(call(&c));
	n = inv_fault_backend_count(c.f.inst);
	snapshot_take(&c.f, &c.f.org, core_keys, &reference);
	core_view_take(&c, &vreference);
	core_close(&c);
	ck_assert_msg(n >= 2, "%s: only %llu backend operations", name, (unsigned long long)n);

	for (uint64_t k = 1; k <= n; k++) {
		const char *op = NULL;
		char when[128];

		core_open(&c, index);
		snapshot_take(&c.f, &c.f.org, core_keys, &before);
		core_view_take(&c, &vbefore);
		inv_fault_backend_fail_at(c.f.inst, k, 0);
		int rc = call(&c);

		ck_assert_msg(inv_fault_backend_fired(c.f.inst, &op), "%s: fault %llu of %llu did not fire",
		              name, (unsigned long long)k, (unsigned long long)n);
		snprintf(when, sizeof(when), "%s: fault at operation %llu of %llu (%s)",
		         name, (unsigned long long)k, (unsigned long long)n, op);
		ck_assert_msg(rc < 0, "%s: the call succeeded", when);
		ck_assert_msg(strstr(inv_error_last()->message, "injected failure") != NULL,
		              "%s: the backend's message is lost: \"%s\"", when,
		              inv_error_last()->message);
		snapshot_take(&c.f, &c.f.org, core_keys, &after);
		snapshot_assert_eq(&before, &after, when);
		core_view_take(&c, &vafter);
		core_view_assert_eq(&vbefore, &vafter, when);
		snapshot_free(&after);

		OK(call(&c));
		snapshot_take(&c.f, &c.f.org, core_keys, &after);
		snapshot_assert_eq(&reference, &after, "retry after the fault");
		core_view_take(&c, &vafter);
		core_view_assert_eq(&vreference, &vafter, "retry after the fault");
		snapshot_free(&before);
		snapshot_free(&after);
		core_close(&c);
	}
	snapshot_free(&reference);
}

static int call_scenario(struct core_fx *c)
{
	return core_scenario(c, NULL);
}

/* Lowers V1 below its level: a low-stock crossing through set-balance. */
static int call_set_balance(struct core_fx *c)
{
	const inv_variant *v1;
	inv_result *res = NULL;
	int64_t expected = 10;

	TRY(inv_variant_get(&v1, c->org, &P1, &V1));
	int rc = inv_set_balance(&res, c->org, v1, NULL, 2, &expected,
	                         loc_of(c, INV_LOCATION_BIN), NULL);

	inv_result_free(res);
	return rc;
}

static int call_tracking_stop(struct core_fx *c)
{
	return inv_tracking_stop(c->org, &P1);
}

static int call_low_stock_set(struct core_fx *c)
{
	int64_t level = 20;

	return inv_low_stock_set(c->org, loc_of(c, INV_LOCATION_STORE), &P1, &V2, &level, 1);
}

static int call_journal_trim(struct core_fx *c)
{
	return inv_journal_trim(c->org, 1);
}

START_TEST(test_core_batch_failing_at_any_backend_operation_changes_nothing)
{
	core_fault_loop(_i, call_scenario, "batch");
}
END_TEST

START_TEST(test_core_set_balance_failing_at_any_backend_operation_changes_nothing)
{
	core_fault_loop(_i, call_set_balance, "set-balance");
}
END_TEST

START_TEST(test_core_tracking_stop_failing_at_any_backend_operation_changes_nothing)
{
	core_fault_loop(_i, call_tracking_stop, "tracking stop");
}
END_TEST

START_TEST(test_core_low_stock_set_failing_at_any_backend_operation_changes_nothing)
{
	core_fault_loop(_i, call_low_stock_set, "low-stock set");
}
END_TEST

START_TEST(test_core_journal_trim_failing_at_any_backend_operation_changes_nothing)
{
	core_fault_loop(_i, call_journal_trim, "journal trim");
}
END_TEST

/* ============================================================= suite */

/* Each test runs once, with the target's index as its loop index. */
#define add(tc, test, index) tcase_add_loop_test((tc), (test), (index), (index) + 1)

Suite *inv_conformance_suite(const char *name, const struct inv_conformance_target *target)
{
	Suite *s = suite_create(name);
	TCase *ops = tcase_create("ops");
	int i;

	/* Not ck_assert: this runs outside any test. */
	if (target_count >= MAX_TARGETS) {
		fprintf(stderr, "conformance: more than %d targets\n", MAX_TARGETS);
		abort();
	}
	i = target_count++;
	targets[i] = *target;
	tcase_set_timeout(ops, 60);

	add(ops, test_ops_table_is_complete, i);
	add(ops, test_org_get_of_unknown_org_is_enotfound, i);
	add(ops, test_org_put_then_get_round_trips_and_overwrites, i);
	add(ops, test_orgs_are_isolated, i);
	add(ops, test_location_scan_sees_every_location_once, i);
	add(ops, test_tracking_get_of_unset_product_is_enotfound, i);
	add(ops, test_tracking_put_get_scan_round_trip, i);
	add(ops, test_variant_get_of_unknown_record_is_enotfound, i);
	add(ops, test_variant_put_then_get_round_trips_every_field, i);
	add(ops, test_variant_scan_filters_by_location_and_product, i);
	add(ops, test_variant_scan_by_product_follows_overwrites, i);
	add(ops, test_scans_stop_on_nonzero_return_and_return_it, i);
	add(ops, test_variant_get_many_agrees_with_variant_get, i);
	add(ops, test_variant_put_many_agrees_with_variant_put, i);
	add(ops, test_low_stock_get_put_delete_follow_the_rules, i);
	add(ops, test_low_stock_scan_filters_by_location_and_product, i);
	add(ops, test_journal_read_is_ascending_after_and_limited, i);
	add(ops, test_journal_trim_deletes_up_to_and_keeps_sequences, i);
	add(ops, test_idempotency_get_put_round_trip_and_replace, i);
	add(ops, test_sync_state_get_of_unset_org_is_enotfound, i);
	add(ops, test_sync_state_round_trips_byte_exact_empty_and_large, i);
	add(ops, test_sync_state_put_replaces_the_record, i);
	add(ops, test_sync_state_rollback_discards_the_put, i);
	add(ops, test_sync_state_is_per_organization, i);
	add(ops, test_sync_state_commit_is_seen_by_later_readers, i);
	add(ops, test_sync_state_put_in_read_transaction_is_refused, i);
	add(ops, test_sync_state_get_returns_the_callback_value, i);
	add(ops, test_rollback_discards_every_kind_of_write, i);
	add(ops, test_rollback_of_a_fresh_store_leaves_it_empty, i);
	add(ops, test_commit_keeps_every_kind_of_write, i);
	add(ops, test_writer_sees_its_own_writes, i);
	add(ops, test_read_transaction_sees_committed_data, i);
	add(ops, test_read_transaction_never_sees_uncommitted_writes, i);
	add(ops, test_commit_release_releases_once_and_keeps_the_writes, i);
	add(ops, test_commit_release_lets_the_next_writer_see_the_writes, i);
	add(ops, test_control_rejects_unknown_ops, i);
	add(ops, test_many_variants_survive_growth_and_rollback, i);
	add(ops, test_committed_data_survives_reopen, i);
	add(ops, test_fault_wrapper_passes_everything_through, i);
	add(ops, test_failure_at_any_operation_leaves_state_unchanged, i);
	add(ops, test_enomem_anywhere_leaves_nothing_half_written, i);
	suite_add_tcase(s, ops);

	TCase *core = tcase_create("core");

	tcase_set_timeout(core, 120);
	add(core, test_core_batch_round_trips_through_the_backend, i);
	add(core, test_core_batch_failing_at_any_backend_operation_changes_nothing, i);
	add(core, test_core_set_balance_failing_at_any_backend_operation_changes_nothing, i);
	add(core, test_core_tracking_stop_failing_at_any_backend_operation_changes_nothing, i);
	add(core, test_core_low_stock_set_failing_at_any_backend_operation_changes_nothing, i);
	add(core, test_core_journal_trim_failing_at_any_backend_operation_changes_nothing, i);
	suite_add_tcase(s, core);
	return s;
}
