/*
 * fault_backend.c - a backend wrapper that fails the k-th operation (see
 * fault_backend.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "fault_backend.h"

struct fault {
	inv_backend_ops ops;            /* what *ops_out points to */
	const inv_backend_ops *inner;
	void *inner_instance;
	_Atomic uint64_t count;
	_Atomic uint64_t fail_at;       /* absolute count to fail at; 0: none */
	_Atomic int code;
	_Atomic int fired;
	const char *_Atomic fired_name;
	void (*close_fn)(const inv_backend_ops *ops, void *inner, void *ctx);
	void *close_ctx;
};

struct fault_txn {
	struct fault *f;
	void *inner;
};

/* Count one operation; non-zero (the error, recorded) when it must fail. */
static int hit(struct fault *f, const char *name)
{
	uint64_t n = atomic_fetch_add(&f->count, 1) + 1;
	uint64_t target = atomic_load(&f->fail_at);

	if (target == 0 || n != target)
		return 0;
	atomic_store(&f->fail_at, 0);
	atomic_store(&f->fired_name, name);
	atomic_store(&f->fired, 1);

	char msg[128];
	int code = atomic_load(&f->code);

	snprintf(msg, sizeof(msg), "fault backend: injected failure of %s (operation %llu)",
	         name, (unsigned long long)n);
	return inv_backend_error(code ? code : INV_EBACKEND, msg);
}

#define TX ((struct fault_txn *)txn)
#define FAIL_OR(name, call) do { \
	int fault_rc_ = hit(TX->f, name); \
	if (fault_rc_) \
		return fault_rc_; \
	return TX->f->inner->call; \
} while (0)

static void fault_close(void *instance)
{
	struct fault *f = instance;

	if (!f)
		return;
	if (f->close_fn)
		f->close_fn(f->inner, f->inner_instance, f->close_ctx);
	else
		f->inner->close(f->inner_instance);
	free(f);
}

static int fault_begin(void *instance, const inv_uuid *org, int write, void **txn)
{
	struct fault *f = instance;
	struct fault_txn *t;
	int rc = hit(f, "begin");

	if (rc)
		return rc;
	t = malloc(sizeof(*t));
	if (!t)
		return inv_backend_error(INV_ENOMEM, "fault backend: out of memory");
	t->f = f;
	rc = f->inner->begin(f->inner_instance, org, write, &t->inner);
	if (rc) {
		free(t);
		return rc;
	}
	*txn = t;
	return 0;
}

static int fault_commit(void *txn)
{
	struct fault_txn *t = txn;
	int rc = hit(t->f, "commit");

	if (rc)
		t->f->inner->rollback(t->inner);
	else
		rc = t->f->inner->commit(t->inner);
	free(t);
	return rc;
}

/* Counted as a commit: an injected failure rolls back before release. */
static int fault_commit_release(void *txn, void (*release)(void *), void *arg)
{
	struct fault_txn *t = txn;
	int rc = hit(t->f, "commit");

	if (rc) {
		t->f->inner->rollback(t->inner);
		release(arg);
	} else {
		rc = t->f->inner->commit_release(t->inner, release, arg);
	}
	free(t);
	return rc;
}

static void fault_rollback(void *txn)
{
	struct fault_txn *t = txn;

	t->f->inner->rollback(t->inner);
	free(t);
}

static int fault_org_get(void *txn, const inv_uuid *org, inv_org_record *out)
{
	FAIL_OR("org_get", org_get(TX->inner, org, out));
}

static int fault_org_put(void *txn, const inv_org_record *rec)
{
	FAIL_OR("org_put", org_put(TX->inner, rec));
}

static int fault_location_scan(void *txn, const inv_uuid *org,
                               inv_location_record_fn fn, void *payload)
{
	FAIL_OR("location_scan", location_scan(TX->inner, org, fn, payload));
}

static int fault_location_put(void *txn, const inv_uuid *org, const inv_location_record *rec)
{
	FAIL_OR("location_put", location_put(TX->inner, org, rec));
}

static int fault_tracking_get(void *txn, const inv_uuid *org, const inv_uuid *product,
                              int32_t *tracked)
{
	FAIL_OR("tracking_get", tracking_get(TX->inner, org, product, tracked));
}

static int fault_tracking_put(void *txn, const inv_uuid *org, const inv_uuid *product,
                              int32_t tracked)
{
	FAIL_OR("tracking_put", tracking_put(TX->inner, org, product, tracked));
}

static int fault_tracking_scan(void *txn, const inv_uuid *org,
                               inv_tracking_record_fn fn, void *payload)
{
	FAIL_OR("tracking_scan", tracking_scan(TX->inner, org, fn, payload));
}

static int fault_variant_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                             const inv_uuid *variant, inv_variant_record *out)
{
	FAIL_OR("variant_get", variant_get(TX->inner, org, location, variant, out));
}

static int fault_variant_put(void *txn, const inv_uuid *org, const inv_variant_record *rec)
{
	FAIL_OR("variant_put", variant_put(TX->inner, org, rec));
}

static int fault_variant_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                              const inv_uuid *product, inv_variant_record_fn fn,
                              void *payload)
{
	FAIL_OR("variant_scan", variant_scan(TX->inner, org, location, product, fn, payload));
}

static int fault_low_stock_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                               const inv_uuid *product, const inv_uuid *variant,
                               inv_low_stock_record *out)
{
	FAIL_OR("low_stock_get", low_stock_get(TX->inner, org, location, product, variant, out));
}

static int fault_low_stock_put(void *txn, const inv_uuid *org, const inv_low_stock_record *rec)
{
	FAIL_OR("low_stock_put", low_stock_put(TX->inner, org, rec));
}

static int fault_low_stock_delete(void *txn, const inv_uuid *org, const inv_uuid *location,
                                  const inv_uuid *product, const inv_uuid *variant)
{
	FAIL_OR("low_stock_delete", low_stock_delete(TX->inner, org, location, product, variant));
}

static int fault_low_stock_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                                const inv_uuid *product, inv_low_stock_record_fn fn,
                                void *payload)
{
	FAIL_OR("low_stock_scan", low_stock_scan(TX->inner, org, location, product, fn, payload));
}

static int fault_journal_append(void *txn, const inv_uuid *org,
                                const inv_journal_entry_record *rec)
{
	FAIL_OR("journal_append", journal_append(TX->inner, org, rec));
}

static int fault_journal_read(void *txn, const inv_uuid *org, int64_t after, size_t limit,
                              inv_journal_entry_record_fn fn, void *payload)
{
	FAIL_OR("journal_read", journal_read(TX->inner, org, after, limit, fn, payload));
}

static int fault_journal_trim(void *txn, const inv_uuid *org, int64_t up_to)
{
	FAIL_OR("journal_trim", journal_trim(TX->inner, org, up_to));
}

static int fault_idempotency_get(void *txn, const inv_uuid *org, const char *key,
                                 inv_idempotency_record_fn fn, void *payload)
{
	FAIL_OR("idempotency_get", idempotency_get(TX->inner, org, key, fn, payload));
}

static int fault_idempotency_put(void *txn, const inv_uuid *org,
                                 const inv_idempotency_record *rec)
{
	FAIL_OR("idempotency_put", idempotency_put(TX->inner, org, rec));
}

static int fault_variant_get_many(void *txn, const inv_uuid *org, size_t count,
                                  const inv_variant_key *keys, inv_variant_record *out,
                                  int32_t *found)
{
	FAIL_OR("variant_get_many", variant_get_many(TX->inner, org, count, keys, out, found));
}

static int fault_variant_put_many(void *txn, const inv_uuid *org, size_t count,
                                  const inv_variant_record *recs)
{
	FAIL_OR("variant_put_many", variant_put_many(TX->inner, org, count, recs));
}

static int fault_sync_state_get(void *txn, const inv_uuid *org,
                                inv_sync_state_fn fn, void *payload)
{
	FAIL_OR("sync_state_get", sync_state_get(TX->inner, org, fn, payload));
}

static int fault_sync_state_put(void *txn, const inv_uuid *org, const void *data, size_t len)
{
	FAIL_OR("sync_state_put", sync_state_put(TX->inner, org, data, len));
}

static int fault_control(void *instance, int op, void *arg)
{
	struct fault *f = instance;

	return f->inner->control(f->inner_instance, op, arg);
}

int inv_fault_backend_wrap(const inv_backend_ops **ops_out, void **instance_out,
                           const inv_backend_ops *inner_ops, void *inner_instance)
{
	struct fault *f;

	if (!ops_out || !instance_out || !inner_ops)
		return inv_backend_error(INV_EINVAL, "fault backend: NULL argument");
	if (inner_ops->version < 1)
		return inv_backend_error(INV_EVERSION, "fault backend: unknown ops version");
	f = calloc(1, sizeof(*f));
	if (!f)
		return inv_backend_error(INV_ENOMEM, "fault backend: out of memory");
	f->inner = inner_ops;
	f->inner_instance = inner_instance;
	f->ops = (inv_backend_ops){
		/* the inner's version: a version-1 table has no sync state */
		.version = inner_ops->version < INV_BACKEND_VERSION ? inner_ops->version
		                                                    : INV_BACKEND_VERSION,
		.name = inner_ops->name,
		.close = fault_close,
		.begin = fault_begin,
		.commit = fault_commit,
		.rollback = fault_rollback,
		.org_get = fault_org_get,
		.org_put = fault_org_put,
		.location_scan = fault_location_scan,
		.location_put = fault_location_put,
		.tracking_get = fault_tracking_get,
		.tracking_put = fault_tracking_put,
		.tracking_scan = fault_tracking_scan,
		.variant_get = fault_variant_get,
		.variant_put = fault_variant_put,
		.variant_scan = fault_variant_scan,
		.low_stock_get = fault_low_stock_get,
		.low_stock_put = fault_low_stock_put,
		.low_stock_delete = fault_low_stock_delete,
		.low_stock_scan = fault_low_stock_scan,
		.journal_append = fault_journal_append,
		.journal_read = fault_journal_read,
		.journal_trim = fault_journal_trim,
		.idempotency_get = fault_idempotency_get,
		.idempotency_put = fault_idempotency_put,
		.variant_get_many = inner_ops->variant_get_many ? fault_variant_get_many : NULL,
		.variant_put_many = inner_ops->variant_put_many ? fault_variant_put_many : NULL,
		.control = inner_ops->control ? fault_control : NULL,
	};
	/* Members past version 1 are read only when the table has them. */
	if (inner_ops->version >= 2) {
		f->ops.sync_state_get = inner_ops->sync_state_get ? fault_sync_state_get : NULL;
		f->ops.sync_state_put = inner_ops->sync_state_put ? fault_sync_state_put : NULL;
	}
	if (inner_ops->version >= 3)
		f->ops.commit_release = inner_ops->commit_release ? fault_commit_release : NULL;
	*ops_out = &f->ops;
	*instance_out = f;
	return 0;
}

void inv_fault_backend_fail_at(void *instance, uint64_t k, int code)
{
	struct fault *f = instance;

	atomic_store(&f->code, code);
	atomic_store(&f->fired, 0);
	atomic_store(&f->fired_name, NULL);
	atomic_store(&f->fail_at, k ? atomic_load(&f->count) + k : 0);
}

uint64_t inv_fault_backend_count(void *instance)
{
	return atomic_load(&((struct fault *)instance)->count);
}

void inv_fault_backend_reset_count(void *instance)
{
	struct fault *f = instance;

	atomic_store(&f->fail_at, 0);
	atomic_store(&f->count, 0);
}

int inv_fault_backend_fired(void *instance, const char **op_name)
{
	struct fault *f = instance;

	if (op_name)
		*op_name = atomic_load(&f->fired_name);
	return atomic_load(&f->fired);
}

void inv_fault_backend_free(void *instance)
{
	free(instance);
}

void inv_fault_backend_on_close(void *instance,
                                void (*close_fn)(const inv_backend_ops *ops, void *inner,
                                                 void *ctx),
                                void *ctx)
{
	struct fault *f = instance;

	f->close_fn = close_fn;
	f->close_ctx = ctx;
}
