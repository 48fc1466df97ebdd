/*
 * wrap.c - counting, crashing pass-through backend.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wrap.h"

struct sim_wrap {
	inv_backend_ops ops;           /* the table handed to the core */
	const inv_backend_ops *inner;
	void *instance;
	uint64_t n_ops;
	uint64_t crash_at;
	int crash_code;
};

typedef struct wtxn {
	sim_wrap *w;
	void *inner;
} wtxn;

#define W(t) (((wtxn *)(t))->w)
#define IN(t) (((wtxn *)(t))->inner)

/* Count one operation; the crash point never returns. */
static int step(sim_wrap *w)
{
	w->n_ops++;
	if (w->crash_at && w->n_ops >= w->crash_at)
		_exit(w->crash_code);
	return 0;
}

static void w_close(void *instance)
{
	sim_wrap *w = instance;

	w->inner->close(w->instance);
	free(w);
}

static int w_begin(void *instance, const inv_uuid *org, int write, void **txn)
{
	sim_wrap *w = instance;
	int rc = step(w);
	wtxn *t;

	if (rc)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t)
		return inv_backend_error(INV_ENOMEM, "wrapper: out of memory");
	t->w = w;
	rc = w->inner->begin(w->instance, org, write, &t->inner);
	if (rc) {
		free(t);
		return rc;
	}
	*txn = t;
	return 0;
}

/* A commit ends the transaction whether it succeeds or not. */
static int w_commit(void *txn)
{
	wtxn *t = txn;
	int rc;

	step(t->w);
	rc = t->w->inner->commit(t->inner);
	free(t);
	return rc;
}

static void w_rollback(void *txn)
{
	wtxn *t = txn;

	t->w->inner->rollback(t->inner);
	free(t);
}

#define FWD(call) do { int rc_ = step(W(txn)); if (rc_) return rc_; return call; } while (0)

static int w_org_get(void *txn, const inv_uuid *org, inv_org_record *out)
{ FWD(W(txn)->inner->org_get(IN(txn), org, out)); }
static int w_org_put(void *txn, const inv_org_record *rec)
{ FWD(W(txn)->inner->org_put(IN(txn), rec)); }
static int w_location_scan(void *txn, const inv_uuid *org, inv_location_record_fn fn, void *payload)
{ FWD(W(txn)->inner->location_scan(IN(txn), org, fn, payload)); }
static int w_location_put(void *txn, const inv_uuid *org, const inv_location_record *rec)
{ FWD(W(txn)->inner->location_put(IN(txn), org, rec)); }
static int w_tracking_get(void *txn, const inv_uuid *org, const inv_uuid *product, int32_t *tracked)
{ FWD(W(txn)->inner->tracking_get(IN(txn), org, product, tracked)); }
static int w_tracking_put(void *txn, const inv_uuid *org, const inv_uuid *product, int32_t tracked)
{ FWD(W(txn)->inner->tracking_put(IN(txn), org, product, tracked)); }
static int w_tracking_scan(void *txn, const inv_uuid *org, inv_tracking_record_fn fn, void *payload)
{ FWD(W(txn)->inner->tracking_scan(IN(txn), org, fn, payload)); }
static int w_variant_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                         const inv_uuid *variant, inv_variant_record *out)
{ FWD(W(txn)->inner->variant_get(IN(txn), org, location, variant, out)); }
static int w_variant_put(void *txn, const inv_uuid *org, const inv_variant_record *rec)
{ FWD(W(txn)->inner->variant_put(IN(txn), org, rec)); }
static int w_variant_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                          const inv_uuid *product, inv_variant_record_fn fn, void *payload)
{ FWD(W(txn)->inner->variant_scan(IN(txn), org, location, product, fn, payload)); }
static int w_low_stock_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                           const inv_uuid *product, const inv_uuid *variant,
                           inv_low_stock_record *out)
{ FWD(W(txn)->inner->low_stock_get(IN(txn), org, location, product, variant, out)); }
static int w_low_stock_put(void *txn, const inv_uuid *org, const inv_low_stock_record *rec)
{ FWD(W(txn)->inner->low_stock_put(IN(txn), org, rec)); }
static int w_low_stock_delete(void *txn, const inv_uuid *org, const inv_uuid *location,
                              const inv_uuid *product, const inv_uuid *variant)
{ FWD(W(txn)->inner->low_stock_delete(IN(txn), org, location, product, variant)); }
static int w_low_stock_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                            const inv_uuid *product, inv_low_stock_record_fn fn, void *payload)
{ FWD(W(txn)->inner->low_stock_scan(IN(txn), org, location, product, fn, payload)); }
static int w_journal_append(void *txn, const inv_uuid *org, const inv_journal_entry_record *rec)
{ FWD(W(txn)->inner->journal_append(IN(txn), org, rec)); }
static int w_journal_read(void *txn, const inv_uuid *org, int64_t after, size_t limit,
                          inv_journal_entry_record_fn fn, void *payload)
{ FWD(W(txn)->inner->journal_read(IN(txn), org, after, limit, fn, payload)); }
static int w_journal_trim(void *txn, const inv_uuid *org, int64_t up_to)
{ FWD(W(txn)->inner->journal_trim(IN(txn), org, up_to)); }
static int w_idempotency_get(void *txn, const inv_uuid *org, const char *key,
                             inv_idempotency_record_fn fn, void *payload)
{ FWD(W(txn)->inner->idempotency_get(IN(txn), org, key, fn, payload)); }
static int w_idempotency_put(void *txn, const inv_uuid *org, const inv_idempotency_record *rec)
{ FWD(W(txn)->inner->idempotency_put(IN(txn), org, rec)); }
static int w_variant_get_many(void *txn, const inv_uuid *org, size_t count,
                              const inv_variant_key *keys, inv_variant_record *out,
                              int32_t *found)
{ FWD(W(txn)->inner->variant_get_many(IN(txn), org, count, keys, out, found)); }
static int w_variant_put_many(void *txn, const inv_uuid *org, size_t count,
                              const inv_variant_record *recs)
{ FWD(W(txn)->inner->variant_put_many(IN(txn), org, count, recs)); }

static int w_sync_state_get(void *txn, const inv_uuid *org, inv_sync_state_fn fn,
                            void *payload)
{ FWD(W(txn)->inner->sync_state_get(IN(txn), org, fn, payload)); }
static int w_sync_state_put(void *txn, const inv_uuid *org, const void *data, size_t len)
{ FWD(W(txn)->inner->sync_state_put(IN(txn), org, data, len)); }

static int w_control(void *instance, int op, void *arg)
{
	sim_wrap *w = instance;

	return w->inner->control(w->instance, op, arg);
}

int sim_wrap_new(sim_wrap **out, const inv_backend_ops **out_ops, void **out_instance,
                 const inv_backend_ops *ops, void *instance)
{
	sim_wrap *w = calloc(1, sizeof(*w));

	if (!w)
		return INV_ENOMEM;
	w->inner = ops;
	w->instance = instance;
	/* the inner's version: a version-1 table has no sync state */
	w->ops.version = ops->version < INV_BACKEND_VERSION ? ops->version : INV_BACKEND_VERSION;
	w->ops.name = ops->name;
	w->ops.close = w_close;
	w->ops.begin = w_begin;
	w->ops.commit = w_commit;
	w->ops.rollback = w_rollback;
	w->ops.org_get = w_org_get;
	w->ops.org_put = w_org_put;
	w->ops.location_scan = w_location_scan;
	w->ops.location_put = w_location_put;
	w->ops.tracking_get = w_tracking_get;
	w->ops.tracking_put = w_tracking_put;
	w->ops.tracking_scan = w_tracking_scan;
	w->ops.variant_get = w_variant_get;
	w->ops.variant_put = w_variant_put;
	w->ops.variant_scan = w_variant_scan;
	w->ops.low_stock_get = w_low_stock_get;
	w->ops.low_stock_put = w_low_stock_put;
	w->ops.low_stock_delete = w_low_stock_delete;
	w->ops.low_stock_scan = w_low_stock_scan;
	w->ops.journal_append = w_journal_append;
	w->ops.journal_read = w_journal_read;
	w->ops.journal_trim = w_journal_trim;
	w->ops.idempotency_get = w_idempotency_get;
	w->ops.idempotency_put = w_idempotency_put;
	w->ops.variant_get_many = ops->variant_get_many ? w_variant_get_many : NULL;
	w->ops.variant_put_many = ops->variant_put_many ? w_variant_put_many : NULL;
	w->ops.control = ops->control ? w_control : NULL;
	if (ops->version >= 2) {
		w->ops.sync_state_get = w_sync_state_get;
		w->ops.sync_state_put = w_sync_state_put;
	}
	*out = w;
	*out_ops = &w->ops;
	*out_instance = w;
	return 0;
}

void sim_wrap_crash_at(sim_wrap *w, uint64_t at, int code)
{
	w->crash_at = at ? w->n_ops + at : 0;
	w->crash_code = code;
}

uint64_t sim_wrap_ops(const sim_wrap *w)
{
	return w->n_ops;
}
