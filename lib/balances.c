/*
 * balances.c - reading balances: tracked products only, sorted by
 * (product, variant), with a cursor and a limit for paging.
 */
#include <stdlib.h>

#include "core_int.h"

static const inv_balance_query default_query = INV_BALANCE_QUERY_INIT;

int inv_balance_query_init(inv_balance_query *query, uint32_t version)
{
	if (!query)
		return inv__error(INV_EINVAL, -1, "query", "query is NULL");
	if (version != INV_BALANCE_QUERY_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "balance query version %u is not supported", version);
	*query = default_query;
	return 0;
}

struct collect {
	const inv_uuid *tracked;     /* sorted */
	size_t tracked_count;
	int include_zero;
	inv_balance *items;
	size_t count, cap;
};

static int is_tracked(const struct collect *c, const inv_uuid *product)
{
	size_t lo = 0, hi = c->tracked_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = memcmp(c->tracked[mid].bytes, product->bytes, 16);

		if (cmp == 0)
			return 1;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int collect_balance(const inv_variant_record *rec, void *payload)
{
	struct collect *c = payload;
	inv_balance *b;

	if (rec->balance == 0 && !c->include_zero)
		return 0;
	if (!is_tracked(c, &rec->product))
		return 0;
	if (inv__grow(&c->items, &c->cap, c->count + 1, sizeof(*c->items)))
		return INV_ENOMEM;
	b = &c->items[c->count++];
	memset(b, 0, sizeof(*b));
	b->product = rec->product;
	b->variant = rec->variant;
	b->balance = rec->balance;
	b->updated = rec->updated;
	return 0;
}

static int cmp_key(const inv_uuid *pa, const inv_uuid *va, const inv_uuid *pb, const inv_uuid *vb)
{
	int c = memcmp(pa->bytes, pb->bytes, 16);

	return c ? c : memcmp(va->bytes, vb->bytes, 16);
}

static int by_product_variant(const void *pa, const void *pb)
{
	const inv_balance *a = pa, *b = pb;

	return cmp_key(&a->product, &a->variant, &b->product, &b->variant);
}

static int fill_low_stock(inv_org *org, void *txn, const inv_location *loc,
                          inv_balance *items, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		inv_low_stock_record ls;
		int rc = inv__ops(org)->low_stock_get(txn, &org->node.key, &loc->uuid,
		                                      &items[i].product, &items[i].variant, &ls);

		if (rc == INV_ENOTFOUND)
			continue;
		if (rc)
			return inv__error_keep(rc, -1, "cannot read the low-stock levels");
		items[i].low_stock_level = ls.has_level ? ls.level : 0;
		items[i].has_low_stock_level = ls.has_level;
		items[i].low_stock_alert = ls.alert;
	}
	return 0;
}

static int read_balances(struct collect *c, inv_org *org, void *txn,
                         const inv_location *loc, const inv_balance_query *q)
{
	const inv_backend_ops *ops = inv__ops(org);
	inv_uuid *tracked = NULL;
	size_t i;
	int rc;

	rc = inv__tracking_list(&tracked, &c->tracked_count, org, txn);
	if (rc)
		return rc;
	c->tracked = tracked;
	if (q->products && q->product_count) {
		/* Each product asked for once; collect_balance() drops the
		 * untracked ones. */
		inv_uuid *wanted = malloc(q->product_count * sizeof(*wanted));

		if (!wanted) {
			free(tracked);
			c->tracked = NULL;
			return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		}
		memcpy(wanted, q->products, q->product_count * sizeof(*wanted));
		qsort(wanted, q->product_count, sizeof(*wanted), inv__uuid_order);
		for (i = 0, rc = 0; i < q->product_count && rc == 0; i++) {
			if ((i && inv__uuid_eq(&wanted[i], &wanted[i - 1])) ||
			    !is_tracked(c, &wanted[i]))
				continue;
			rc = ops->variant_scan(txn, &org->node.key, &loc->uuid, &wanted[i],
			                       collect_balance, c);
		}
		free(wanted);
	} else if (c->tracked_count && !q->products) {
		rc = ops->variant_scan(txn, &org->node.key, &loc->uuid, NULL, collect_balance, c);
	}
	free(tracked);
	c->tracked = NULL;
	if (rc == INV_ENOMEM)
		return inv__error(rc, -1, NULL, "out of memory");
	if (rc)
		return inv__error_keep(rc, -1, "cannot read the balances");
	return 0;
}

int inv_balances_read(inv_balance **out, size_t *count, int *more, inv_org *org,
                      const inv_balance_query *query)
{
	const inv_balance_query *q = query ? query : &default_query;
	const inv_location *loc;
	struct collect c = { .items = NULL };
	size_t start = 0, n;
	void *txn;
	int rc;

	if (!out || !count || !org)
		return inv__error(INV_EINVAL, -1, !out ? "out" : !count ? "count" : "org",
		                  "argument is NULL");
	*out = NULL;
	*count = 0;
	if (more)
		*more = 0;
	if (q->version != INV_BALANCE_QUERY_VERSION)
		return inv__error(INV_EVERSION, -1, "version",
		                  "balance query version %u is not supported", q->version);
	loc = q->location ? q->location : inv__default_store(org);
	if (!inv__org_owns(org, loc))
		return inv__error(INV_EINVAL, -1, "location",
		                  "the location belongs to another organization");
	if (q->product_count && !q->products)
		return inv__error(INV_EINVAL, -1, "products", "products are NULL");
	if (loc->type != INV_LOCATION_STORE)
		return 0; /* SOLD, BIN and SUPPLIER hold no balances */

	c.include_zero = q->include_zero;
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = read_balances(&c, org, txn, loc, q);
	if (rc)
		goto out;
	if (c.count)
		qsort(c.items, c.count, sizeof(*c.items), by_product_variant);
	if (q->has_after)
		while (start < c.count &&
		       cmp_key(&c.items[start].product, &c.items[start].variant,
		               &q->after_product, &q->after_variant) <= 0)
			start++;
	n = c.count - start;
	if (q->limit && n > q->limit) {
		n = q->limit;
		if (more)
			*more = 1;
	}
	if (start && n)
		memmove(c.items, c.items + start, n * sizeof(*c.items));
	if (q->with_low_stock)
		rc = fill_low_stock(org, txn, loc, c.items, n);
	c.count = n;
out:
	inv__ops(org)->rollback(txn);
	if (rc || c.count == 0) {
		free(c.items);
		return rc;
	}
	*out = c.items;
	*count = c.count;
	return 0;
}

int inv_balance_get(int64_t *out, inv_org *org, const inv_variant *variant,
                    const inv_location *location)
{
	inv_variant_record rec;
	void *txn;
	int rc;

	if (!out || !org)
		return inv__error(INV_EINVAL, -1, !out ? "out" : "org", "argument is NULL");
	if (!variant || variant->org != org)
		return inv__error(INV_EINVAL, -1, "variant", variant ?
		                  "the variant handle belongs to another organization" :
		                  "the variant is NULL");
	if (!location)
		location = inv__default_store(org);
	if (!inv__org_owns(org, location))
		return inv__error(INV_EINVAL, -1, "location",
		                  "the location belongs to another organization");
	*out = 0;
	if (location->type != INV_LOCATION_STORE)
		return 0;
	rc = inv__org_begin(org, 0, &txn);
	if (rc)
		return rc;
	rc = inv__ops(org)->variant_get(txn, &org->node.key, &location->uuid,
	                                &variant->uuid, &rec);
	inv__ops(org)->rollback(txn);
	if (rc == 0)
		*out = rec.balance;
	else if (rc != INV_ENOTFOUND)
		return inv__error_keep(rc, -1, "cannot read the balance");
	return 0;
}
