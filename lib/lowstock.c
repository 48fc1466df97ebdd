/*
 * lowstock.c - low-stock levels and alerts per (STORE, product, variant).
 * Not journaled: levels are configuration; the crossings they cause are
 * journaled by the batch that causes them.
 */
#include <stdlib.h>

#include "core_int.h"

static int check_args(inv_org *org, const inv_location *location, const inv_uuid *product,
                      const inv_uuid *variant)
{
	if (!org)
		return inv__error(INV_EINVAL, -1, "org", "org is NULL");
	if (!inv__org_owns(org, location) || location->type != INV_LOCATION_STORE)
		return inv__error(INV_EINVAL, -1, "location",
		                  "the location is not a STORE of this organization");
	if (!product)
		return inv__error(INV_EINVAL, -1, "product", "product is NULL");
	if (!variant)
		return inv__error(INV_EINVAL, -1, "variant", "variant is NULL");
	return 0;
}

/* Entries written in one write transaction under the organization's write
 * lock: all of them or, on any failure, none. */
static int write_entries(inv_org *org, const inv_low_stock_record *recs,
                         const unsigned char *remove, size_t n)
{
	const inv_backend_ops *ops = inv__ops(org);
	void *txn;
	size_t i;
	int rc = inv__org_lock_write(org);

	if (rc)
		return rc;
	rc = inv__org_begin(org, 1, &txn);
	if (rc)
		goto out;
	for (i = 0; i < n; i++) {
		const inv_low_stock_record *rec = &recs[i];

		if (remove[i])
			rc = ops->low_stock_delete(txn, &org->node.key, &rec->location, &rec->product,
			                           &rec->variant);
		else
			rc = ops->low_stock_put(txn, &org->node.key, rec);
		if (rc) {
			ops->rollback(txn);
			rc = inv__error_keep(rc, n > 1 ? (int64_t)i : -1,
			                     "cannot store the low-stock entry");
			goto out;
		}
	}
	rc = inv__org_commit(org, txn);
out:
	inv__org_unlock_write(org);
	return rc;
}

static int write_entry(inv_org *org, const inv_low_stock_record *rec, int remove)
{
	unsigned char r = remove != 0;

	return write_entries(org, rec, &r, 1);
}

int inv_low_stock_set(inv_org *org, const inv_location *location, const inv_uuid *product,
                      const inv_uuid *variant, const int64_t *level, int alert)
{
	inv_low_stock_record rec;
	int rc = check_args(org, location, product, variant);

	if (rc)
		return rc;
	if (level && (*level < 0 || *level > INV_QUANTITY_MAX))
		return inv__error(INV_EINVAL, -1, "level", "a level is 0 to 2^53-1, not %lld",
		                  (long long)*level);
	memset(&rec, 0, sizeof(rec));
	rec.location = location->uuid;
	rec.product = *product;
	rec.variant = *variant;
	rec.has_level = level != NULL;
	rec.level = level ? *level : 0;
	rec.alert = alert != 0;
	/* The defaults are the absence of an entry. */
	return write_entry(org, &rec, !rec.has_level && !rec.alert);
}

int inv_low_stock_delete(inv_org *org, const inv_location *location, const inv_uuid *product,
                         const inv_uuid *variant)
{
	inv_low_stock_record rec;
	int rc = check_args(org, location, product, variant);

	if (rc)
		return rc;
	memset(&rec, 0, sizeof(rec));
	rec.location = location->uuid;
	rec.product = *product;
	rec.variant = *variant;
	return write_entry(org, &rec, 1);
}

int inv_low_stock_get(inv_low_stock *out, inv_org *org, const inv_location *location,
                      const inv_uuid *product, const inv_uuid *variant)
{
	inv_low_stock_record rec;
	void *txn;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	rc = check_args(org, location, product, variant);
	if (rc)
		return rc;
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = inv__ops(org)->low_stock_get(txn, &org->node.key, &location->uuid, product,
	                                  variant, &rec);
	inv__ops(org)->rollback(txn);
	memset(out, 0, sizeof(*out));
	out->product = *product;
	out->variant = *variant;
	if (rc == INV_ENOTFOUND)
		return 0;
	if (rc)
		return inv__error_keep(rc, -1, "cannot read the low-stock entry");
	out->has_level = rec.has_level != 0;
	out->level = rec.has_level ? rec.level : 0;
	out->alert = rec.alert != 0;
	return 0;
}

struct ls_list {
	inv_low_stock *items;
	size_t count, cap;
};

static int collect_entry(const inv_low_stock_record *rec, void *payload)
{
	struct ls_list *l = payload;
	inv_low_stock *e;

	if (inv__grow(&l->items, &l->cap, l->count + 1, sizeof(*l->items)))
		return INV_ENOMEM;
	e = &l->items[l->count++];
	memset(e, 0, sizeof(*e));
	e->product = rec->product;
	e->variant = rec->variant;
	e->has_level = rec->has_level != 0;
	e->level = rec->has_level ? rec->level : 0;
	e->alert = rec->alert != 0;
	return 0;
}

static int by_product_variant(const void *pa, const void *pb)
{
	const inv_low_stock *a = pa, *b = pb;
	int c = memcmp(a->product.bytes, b->product.bytes, 16);

	return c ? c : memcmp(a->variant.bytes, b->variant.bytes, 16);
}

int inv_low_stock_list(inv_low_stock **out, size_t *count, inv_org *org,
                       const inv_location *location, const inv_uuid *product)
{
	struct ls_list l = { NULL, 0, 0 };
	void *txn;
	int rc;

	if (!out || !count)
		return inv__error(INV_EINVAL, -1, !out ? "out" : "count", "argument is NULL");
	*out = NULL;
	*count = 0;
	if (!org)
		return inv__error(INV_EINVAL, -1, "org", "org is NULL");
	if (!inv__org_owns(org, location) || location->type != INV_LOCATION_STORE)
		return inv__error(INV_EINVAL, -1, "location",
		                  "the location is not a STORE of this organization");
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = inv__ops(org)->low_stock_scan(txn, &org->node.key, &location->uuid, product,
	                                   collect_entry, &l);
	inv__ops(org)->rollback(txn);
	if (rc) {
		free(l.items);
		if (rc == INV_ENOMEM)
			return inv__error(rc, -1, NULL, "out of memory");
		return inv__error_keep(rc, -1, "cannot read the low-stock entries");
	}
	if (l.count)
		qsort(l.items, l.count, sizeof(*l.items), by_product_variant);
	*out = l.items;
	*count = l.count;
	return 0;
}

int inv__low_stock_write_many(inv_org *org, const inv__low_stock_write *writes, size_t count)
{
	inv_low_stock_record *recs;
	unsigned char *remove;
	size_t i;
	int rc = 0;

	if (!org || (count && !writes))
		return inv__error(INV_EINVAL, -1, NULL, "argument is NULL");
	recs = calloc(count ? count : 1, sizeof(*recs));
	remove = calloc(count ? count : 1, 1);
	if (!recs || !remove) {
		rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		goto out;
	}
	for (i = 0; i < count && rc == 0; i++) {
		const inv__low_stock_write *w = &writes[i];
		const inv_low_stock *e = &w->entry;

		rc = check_args(org, w->location, &e->product, &e->variant);
		if (rc == 0 && !w->remove && e->has_level &&
		    (e->level < 0 || e->level > INV_QUANTITY_MAX))
			rc = inv__error(INV_EINVAL, -1, "level", "a level is 0 to 2^53-1, not %lld",
			                (long long)e->level);
		if (rc) {
			inv__error_set_index((int64_t)i);
			break;
		}
		recs[i].location = w->location->uuid;
		recs[i].product = e->product;
		recs[i].variant = e->variant;
		recs[i].has_level = !w->remove && e->has_level;
		recs[i].level = recs[i].has_level ? e->level : 0;
		recs[i].alert = !w->remove && e->alert;
		/* The defaults are the absence of an entry. */
		remove[i] = w->remove || (!recs[i].has_level && !recs[i].alert);
	}
	if (rc == 0)
		rc = write_entries(org, recs, remove, count);
out:
	free(recs);
	free(remove);
	return rc;
}
