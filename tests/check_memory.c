/*
 * check_memory.c - the built-in memory backend: the conformance suite, and
 * what is specific to it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "fault_backend.h"

static int open_memory(const inv_backend_ops **ops, void **instance, void *ctx)
{
	(void)ctx;
	*ops = inv_memory_backend_ops();
	return inv_memory_backend_new(instance);
}

/* The memory backend's allocation-failure hook (see lib/memory.c). */
#define INV_MEMORY_CONTROL_FAIL_ALLOC 0x4d454d01

static int fail_alloc_memory(const inv_backend_ops *ops, void *instance, uint64_t k, void *ctx)
{
	(void)ctx;
	return ops->control(instance, INV_MEMORY_CONTROL_FAIL_ALLOC, &k);
}

static const struct inv_conformance_target memory_target = {
	.open = open_memory,
	.fail_alloc = fail_alloc_memory,
};

/* The fault wrapper with no fault armed must be invisible. */
static int open_wrapped_memory(const inv_backend_ops **ops, void **instance, void *ctx)
{
	const inv_backend_ops *inner_ops;
	void *inner;
	int rc = open_memory(&inner_ops, &inner, ctx);

	if (rc)
		return rc;
	rc = inv_fault_backend_wrap(ops, instance, inner_ops, inner);
	if (rc)
		inner_ops->close(inner);
	return rc;
}

static const struct inv_conformance_target wrapped_target = { .open = open_wrapped_memory };

static void open_mem(const inv_backend_ops **ops, void **inst)
{
	*ops = inv_memory_backend_ops();
	ck_assert_int_eq(inv_memory_backend_new(inst), 0);
}

START_TEST(test_memory_ops_table_has_every_member)
{
	const inv_backend_ops *ops = inv_memory_backend_ops();

	ck_assert_uint_eq(ops->version, INV_BACKEND_VERSION);
	ck_assert_str_eq(ops->name, "memory");
	ck_assert_ptr_nonnull(ops->variant_get_many);
	ck_assert_ptr_nonnull(ops->variant_put_many);
	ck_assert_ptr_nonnull(ops->control);
}
END_TEST

START_TEST(test_memory_new_rejects_null)
{
	ck_assert_int_eq(inv_memory_backend_new(NULL), INV_EINVAL);
}
END_TEST

START_TEST(test_memory_write_in_read_transaction_fails)
{
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = { { 1 } };
	inv_org_record rec;
	inv_org_record out;

	open_mem(&ops, &inst);
	memset(&rec, 0, sizeof(rec));
	rec.org = org;
	ck_assert_int_eq(ops->begin(inst, &org, 0, &txn), 0);
	ck_assert_int_eq(ops->org_put(txn, &rec), INV_EBACKEND);
	ck_assert_int_eq(inv_error_last()->code, INV_EBACKEND);
	ck_assert_ptr_nonnull(strstr(inv_error_last()->message, "read transaction"));
	ck_assert_int_eq(ops->journal_trim(txn, &org, 5), INV_EBACKEND);
	ck_assert_int_eq(ops->org_get(txn, &org, &out), INV_ENOTFOUND);
	ops->rollback(txn);
	ops->close(inst);
}
END_TEST

START_TEST(test_memory_journal_rejects_non_increasing_sequence)
{
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = { { 1 } };
	inv_journal_entry_record e;

	open_mem(&ops, &inst);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(ops->begin(inst, &org, 1, &txn), 0);
	e.sequence = 5;
	ck_assert_int_eq(ops->journal_append(txn, &org, &e), 0);
	ck_assert_int_eq(ops->journal_append(txn, &org, &e), INV_EBACKEND);
	e.sequence = 4;
	ck_assert_int_eq(ops->journal_append(txn, &org, &e), INV_EBACKEND);
	ck_assert_int_eq(ops->commit(txn), 0);
	ops->close(inst);
}
END_TEST

struct entry_copy {
	size_t count;
	inv_journal_record recs[12];
};

static int copy_entry(const inv_journal_entry_record *rec, void *payload)
{
	struct entry_copy *c = payload;

	c->count = rec->record_count;
	if (c->count <= 12)
		memcpy(c->recs, rec->records, c->count * sizeof(*c->recs));
	return 0;
}

/* Journal records keep their locations in a small table per entry; an
 * entry naming more locations than it holds, or a kind beyond a byte,
 * reads back the same all the same. */
START_TEST(test_memory_journal_entry_of_many_locations_reads_back_exactly)
{
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = { { 1 } };
	inv_journal_entry_record e;
	inv_journal_record recs[12];
	struct entry_copy got;
	size_t n;

	for (n = 1; n <= 12; n++) {
		open_mem(&ops, &inst);
		memset(recs, 0, sizeof(recs));
		for (size_t i = 0; i < n; i++) {
			recs[i].kind = i == 11 ? 300 : INV_RECORD_MOVE;
			recs[i].product.bytes[0] = (uint8_t)(i + 1);
			recs[i].variant.bytes[1] = (uint8_t)(i + 1);
			recs[i].from.bytes[2] = (uint8_t)(i + 1);
			recs[i].to.bytes[3] = (uint8_t)(i + 1);
			recs[i].location = recs[i].to;
			recs[i].quantity = (int64_t)i + 1;
			recs[i].before = -(int64_t)i;
			recs[i].after = (int64_t)i * 7;
		}
		memset(&e, 0, sizeof(e));
		e.sequence = 1;
		e.record_count = n;
		e.records = recs;
		e.idempotency_key = "k";
		ck_assert_int_eq(ops->begin(inst, &org, 1, &txn), 0);
		ck_assert_int_eq(ops->journal_append(txn, &org, &e), 0);
		ck_assert_int_eq(ops->commit(txn), 0);
		memset(&got, 0, sizeof(got));
		ck_assert_int_eq(ops->begin(inst, &org, 0, &txn), 0);
		ck_assert_int_eq(ops->journal_read(txn, &org, 0, 0, copy_entry, &got), 0);
		ops->rollback(txn);
		ck_assert_uint_eq(got.count, n);
		ck_assert_msg(memcmp(got.recs, recs, n * sizeof(*recs)) == 0,
		              "%zu records do not read back as written", n);
		ops->close(inst);
	}
}
END_TEST

START_TEST(test_memory_close_frees_uncommitted_nothing_twice)
{
	/* Close with committed data of every kind: ASan proves no leak. */
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = { { 1 } };
	inv_idempotency_record ir;

	open_mem(&ops, &inst);
	ck_assert_int_eq(ops->begin(inst, &org, 1, &txn), 0);
	memset(&ir, 0, sizeof(ir));
	ir.key = "a";
	ir.result = "r";
	ir.result_len = 1;
	ck_assert_int_eq(ops->idempotency_put(txn, &org, &ir), 0);
	ck_assert_int_eq(ops->idempotency_put(txn, &org, &ir), 0);
	ck_assert_int_eq(ops->commit(txn), 0);
	ops->close(inst);
}
END_TEST

/*
 * Random writes, committed or rolled back, against a plain array model:
 * exercises hash deletion, the product chains and undo far beyond what
 * hand-written cases reach.
 */
/* ck_assert reports progress to the parent on every call; in these hot
 * loops only a failure is worth a message. */
#define FAST_EQ(a, b) do { \
	long long fast_a_ = (long long)(a), fast_b_ = (long long)(b); \
	if (fast_a_ != fast_b_) \
		ck_abort_msg("%s == %s failed: %lld != %lld", #a, #b, fast_a_, fast_b_); \
} while (0)

enum { M_LOCS = 3, M_VARS = 300, M_PRODUCTS = 20 };

struct model {
	int present[M_LOCS][M_VARS];
	int64_t balance[M_LOCS][M_VARS];
	unsigned product[M_LOCS][M_VARS];
	int low[M_LOCS][M_VARS];
};

static inv_uuid m_uuid(unsigned tag, unsigned n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = (uint8_t)tag;
	u.bytes[14] = (uint8_t)(n >> 8);
	u.bytes[15] = (uint8_t)n;
	return u;
}

static unsigned m_rand(unsigned long long *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(*s >> 33);
}

struct m_count {
	const struct model *m;
	unsigned product;
	int n;
};

static int m_check_rec(const inv_variant_record *r, void *p)
{
	struct m_count *c = p;
	unsigned l = r->location.bytes[15], v = (unsigned)r->variant.bytes[14] << 8 | r->variant.bytes[15];

	FAST_EQ(l < M_LOCS, 1);
	FAST_EQ(v < M_VARS, 1);
	FAST_EQ(c->m->present[l][v], 1);
	FAST_EQ(c->m->product[l][v], c->product);
	FAST_EQ(r->balance, c->m->balance[l][v]);
	c->n++;
	return 0;
}

static void m_verify(const inv_backend_ops *ops, void *inst, const inv_uuid *org,
                     const struct model *m)
{
	void *txn;
	inv_variant_record out;
	inv_low_stock_record lout;

	FAST_EQ(ops->begin(inst, org, 0, &txn), 0);
	for (unsigned l = 0; l < M_LOCS; l++) {
		inv_uuid loc = m_uuid(2, l);

		for (unsigned v = 0; v < M_VARS; v++) {
			inv_uuid var = m_uuid(4, v);
			int rc = ops->variant_get(txn, org, &loc, &var, &out);

			FAST_EQ(rc, m->present[l][v] ? 0 : INV_ENOTFOUND);
			if (rc == 0)
				FAST_EQ(out.balance, m->balance[l][v]);
			if (!m->present[l][v])
				continue;
			inv_uuid prod = m_uuid(3, m->product[l][v]);

			rc = ops->low_stock_get(txn, org, &loc, &prod, &var, &lout);
			FAST_EQ(rc, m->low[l][v] ? 0 : INV_ENOTFOUND);
		}
	}
	for (unsigned p = 0; p < M_PRODUCTS; p++) {
		struct m_count c = { m, p, 0 };
		inv_uuid prod = m_uuid(3, p);
		int want = 0;

		for (unsigned l = 0; l < M_LOCS; l++)
			for (unsigned v = 0; v < M_VARS; v++)
				want += m->present[l][v] && m->product[l][v] == p;
		FAST_EQ(ops->variant_scan(txn, org, NULL, &prod, m_check_rec, &c), 0);
		FAST_EQ(c.n, want);
	}
	ops->rollback(txn);
}

START_TEST(test_memory_random_writes_match_a_model)
{
	const inv_backend_ops *ops;
	void *inst, *txn;
	inv_uuid org = m_uuid(1, 1);
	static struct model m, saved;
	unsigned long long seed = 12345;

	memset(&m, 0, sizeof(m));
	open_mem(&ops, &inst);
	for (int round = 0; round < 60; round++) {
		saved = m;
		FAST_EQ(ops->begin(inst, &org, 1, &txn), 0);
		for (int k = 0; k < 400; k++) {
			unsigned l = m_rand(&seed) % M_LOCS, v = m_rand(&seed) % M_VARS;
			unsigned what = m_rand(&seed) % 10;
			inv_uuid loc = m_uuid(2, l), var = m_uuid(4, v);

			if (what < 7 || !m.present[l][v]) {
				inv_variant_record r;

				memset(&r, 0, sizeof(r));
				r.location = loc;
				r.variant = var;
				/* Mostly keep the product, sometimes move it. */
				unsigned p = m.present[l][v] && what < 6 ? m.product[l][v]
				                                          : m_rand(&seed) % M_PRODUCTS;

				r.product = m_uuid(3, p);
				r.balance = (int64_t)m_rand(&seed) - (1 << 30);
				if (m.low[l][v] && p != m.product[l][v]) {
					/* Keep the model simple: low stock follows the product. */
					inv_uuid old = m_uuid(3, m.product[l][v]);

					FAST_EQ(ops->low_stock_delete(txn, &org, &loc, &old, &var), 0);
					m.low[l][v] = 0;
				}
				FAST_EQ(ops->variant_put(txn, &org, &r), 0);
				m.present[l][v] = 1;
				m.product[l][v] = p;
				m.balance[l][v] = r.balance;
			} else {
				inv_uuid prod = m_uuid(3, m.product[l][v]);

				if (what == 7) {
					FAST_EQ(ops->low_stock_delete(txn, &org, &loc, &prod, &var), 0);
					m.low[l][v] = 0;
				} else {
					inv_low_stock_record lr;

					memset(&lr, 0, sizeof(lr));
					lr.location = loc;
					lr.product = prod;
					lr.variant = var;
					lr.level = what;
					lr.has_level = 1;
					FAST_EQ(ops->low_stock_put(txn, &org, &lr), 0);
					m.low[l][v] = 1;
				}
			}
		}
		if (m_rand(&seed) % 3 == 0) {
			ops->rollback(txn);
			m = saved;
		} else {
			FAST_EQ(ops->commit(txn), 0);
		}
		m_verify(ops, inst, &org, &m);
	}
	ops->close(inst);
}
END_TEST

/*
 * Concurrent writers move stock from A to B (rolling back every third
 * transaction) while readers check that A + B never differs from the
 * total: a reader must never see half a transaction or a rolled-back one.
 */
struct race {
	const inv_backend_ops *ops;
	void *inst;
	inv_uuid org;
	inv_variant_record a, b;
	atomic_int writers_left;
	atomic_int bad_reads;
	atomic_int errors;
	atomic_int committed;
};

enum { RACE_TOTAL = 100000, RACE_ROUNDS = 3000 };

static void *race_writer(void *p)
{
	struct race *r = p;

	for (int i = 0; i < RACE_ROUNDS; i++) {
		void *txn;
		inv_variant_record a, b;

		if (r->ops->begin(r->inst, &r->org, 1, &txn) != 0) {
			atomic_fetch_add(&r->errors, 1);
			continue;
		}
		if (r->ops->variant_get(txn, &r->org, &r->a.location, &r->a.variant, &a) ||
		    r->ops->variant_get(txn, &r->org, &r->b.location, &r->b.variant, &b)) {
			atomic_fetch_add(&r->errors, 1);
			r->ops->rollback(txn);
			continue;
		}
		a.balance--;
		b.balance++;
		if (r->ops->variant_put(txn, &r->org, &a) || r->ops->variant_put(txn, &r->org, &b)) {
			atomic_fetch_add(&r->errors, 1);
			r->ops->rollback(txn);
			continue;
		}
		if (i % 3 == 2) {
			r->ops->rollback(txn);
		} else if (r->ops->commit(txn) == 0) {
			atomic_fetch_add(&r->committed, 1);
		} else {
			atomic_fetch_add(&r->errors, 1);
		}
	}
	atomic_fetch_sub(&r->writers_left, 1);
	return NULL;
}

static void *race_reader(void *p)
{
	struct race *r = p;

	while (atomic_load(&r->writers_left) > 0) {
		void *txn;
		inv_variant_record a, b;

		if (r->ops->begin(r->inst, &r->org, 0, &txn) != 0) {
			atomic_fetch_add(&r->errors, 1);
			continue;
		}
		if (r->ops->variant_get(txn, &r->org, &r->a.location, &r->a.variant, &a) ||
		    r->ops->variant_get(txn, &r->org, &r->b.location, &r->b.variant, &b))
			atomic_fetch_add(&r->errors, 1);
		else if (a.balance + b.balance != RACE_TOTAL)
			atomic_fetch_add(&r->bad_reads, 1);
		r->ops->rollback(txn);
	}
	return NULL;
}

START_TEST(test_memory_readers_never_see_uncommitted_writes)
{
	static struct race r;
	pthread_t th[4];
	void *txn;
	inv_variant_record a;

	memset(&r, 0, sizeof(r));
	open_mem(&r.ops, &r.inst);
	r.org = m_uuid(1, 1);
	r.a.location = r.b.location = m_uuid(2, 0);
	r.a.product = r.b.product = m_uuid(3, 0);
	r.a.variant = m_uuid(4, 1);
	r.b.variant = m_uuid(4, 2);
	r.a.balance = RACE_TOTAL;
	ck_assert_int_eq(r.ops->begin(r.inst, &r.org, 1, &txn), 0);
	ck_assert_int_eq(r.ops->variant_put(txn, &r.org, &r.a), 0);
	ck_assert_int_eq(r.ops->variant_put(txn, &r.org, &r.b), 0);
	ck_assert_int_eq(r.ops->commit(txn), 0);

	atomic_store(&r.writers_left, 2);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, i < 2 ? race_writer : race_reader, &r), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&r.errors), 0);
	ck_assert_int_eq(atomic_load(&r.bad_reads), 0);
	ck_assert_int_eq(atomic_load(&r.committed), 2 * (RACE_ROUNDS - RACE_ROUNDS / 3));
	ck_assert_int_eq(r.ops->begin(r.inst, &r.org, 0, &txn), 0);
	ck_assert_int_eq(r.ops->variant_get(txn, &r.org, &r.a.location, &r.a.variant, &a), 0);
	ck_assert_int_eq(a.balance, RACE_TOTAL - atomic_load(&r.committed));
	r.ops->rollback(txn);
	r.ops->close(r.inst);
}
END_TEST

/* Organizations are independent: a write transaction on one neither waits
 * for nor blocks another organization's, and a transaction that reaches
 * into an organization another one holds gets INV_EBUSY, never a
 * deadlock. */
struct holder {
	const inv_backend_ops *ops;
	void *inst;
	inv_uuid org;
	atomic_int holding;
	atomic_int release;
};

static void *hold_org(void *p)
{
	struct holder *h = p;
	void *txn;

	if (h->ops->begin(h->inst, &h->org, 1, &txn) != 0)
		return NULL;
	atomic_store(&h->holding, 1);
	while (!atomic_load(&h->release))
		;
	h->ops->rollback(txn);
	return NULL;
}

START_TEST(test_memory_organizations_lock_independently)
{
	static struct holder h;
	pthread_t th;
	void *txn;
	inv_uuid b = m_uuid(1, 2);
	inv_org_record rec, out;

	memset(&h, 0, sizeof(h));
	open_mem(&h.ops, &h.inst);
	h.org = m_uuid(1, 1);
	ck_assert_int_eq(pthread_create(&th, NULL, hold_org, &h), 0);
	while (!atomic_load(&h.holding))
		;
	/* Organization B, while A is held (a global lock would hang here). */
	memset(&rec, 0, sizeof(rec));
	rec.org = b;
	ck_assert_int_eq(h.ops->begin(h.inst, &b, 1, &txn), 0);
	ck_assert_int_eq(h.ops->org_put(txn, &rec), 0);
	/* Reaching into A from B's transaction: busy, not a deadlock. */
	ck_assert_int_eq(h.ops->org_get(txn, &h.org, &out), INV_EBUSY);
	ck_assert_int_eq(h.ops->commit(txn), 0);
	ck_assert_int_eq(h.ops->begin(h.inst, &b, 0, &txn), 0);
	ck_assert_int_eq(h.ops->org_get(txn, &b, &out), 0);
	h.ops->rollback(txn);
	atomic_store(&h.release, 1);
	pthread_join(th, NULL);
	h.ops->close(h.inst);
}
END_TEST

static Suite *memory_suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("memory");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_memory_ops_table_has_every_member);
	tcase_add_test(tc, test_memory_new_rejects_null);
	tcase_add_test(tc, test_memory_write_in_read_transaction_fails);
	tcase_add_test(tc, test_memory_journal_rejects_non_increasing_sequence);
	tcase_add_test(tc, test_memory_journal_entry_of_many_locations_reads_back_exactly);
	tcase_add_test(tc, test_memory_close_frees_uncommitted_nothing_twice);
	tcase_add_test(tc, test_memory_random_writes_match_a_model);
	tcase_add_test(tc, test_memory_readers_never_see_uncommitted_writes);
	tcase_add_test(tc, test_memory_organizations_lock_independently);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(memory_suite());
	int failed;

	srunner_add_suite(sr, inv_conformance_suite("conformance/memory", &memory_target));
	srunner_add_suite(sr, inv_conformance_suite("conformance/fault(memory)", &wrapped_target));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
