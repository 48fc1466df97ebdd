/*
 * tracking.c - which products count.  Starting and stopping run through the
 * batch engine, so they are journaled and announced like moves.
 */
#include <stdlib.h>

#include "core_int.h"

static int change_tracking(inv_org *org, const inv_uuid *product, int32_t action)
{
	int rc = inv__apply_tracking(org, product, action);

	/* The engine names the tracking change's position; a single call has
	 * no array to point into. */
	if (rc)
		inv__error_set_index(-1);
	return rc;
}

int inv_tracking_start(inv_org *org, const inv_uuid *product)
{
	return change_tracking(org, product, INV_TRACKING_START);
}

int inv_tracking_stop(inv_org *org, const inv_uuid *product)
{
	return change_tracking(org, product, INV_TRACKING_STOP);
}

int inv_tracking_get(int *out, inv_org *org, const inv_uuid *product)
{
	int32_t tracked = 0;
	void *txn;
	int rc;

	if (!out || !org || !product)
		return inv__error(INV_EINVAL, -1, !out ? "out" : !org ? "org" : "product",
		                  "argument is NULL");
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = inv__tracking_read(org, txn, product, &tracked);
	inv__ops(org)->rollback(txn);
	if (rc)
		return rc;
	*out = tracked;
	return 0;
}

struct uuid_list {
	inv_uuid *items;
	size_t count, cap;
};

static int collect_tracked(const inv_uuid *product, int32_t tracked, void *payload)
{
	struct uuid_list *l = payload;

	if (!tracked)
		return 0;
	if (inv__grow(&l->items, &l->cap, l->count + 1, sizeof(*l->items)))
		return INV_ENOMEM;
	l->items[l->count++] = *product;
	return 0;
}

/* The tracked products of `org`, sorted, in the caller's transaction. */
int inv__tracking_list(inv_uuid **out, size_t *count, inv_org *org, void *txn)
{
	struct uuid_list l = { NULL, 0, 0 };
	int rc = inv__ops(org)->tracking_scan(txn, &org->node.key, collect_tracked, &l);

	if (rc) {
		free(l.items);
		if (rc == INV_ENOMEM)
			return inv__error(rc, -1, NULL, "out of memory");
		return inv__error_keep(rc, -1, "cannot read the tracked products");
	}
	if (l.count)
		qsort(l.items, l.count, sizeof(*l.items), inv__uuid_order);
	*out = l.items;
	*count = l.count;
	return 0;
}

int inv_tracking_list(inv_uuid **out, size_t *count, inv_org *org)
{
	void *txn;
	int rc;

	if (!out || !count || !org)
		return inv__error(INV_EINVAL, -1, !out ? "out" : !count ? "count" : "org",
		                  "argument is NULL");
	*out = NULL;
	*count = 0;
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = inv__tracking_list(out, count, org, txn);
	inv__ops(org)->rollback(txn);
	return rc;
}
