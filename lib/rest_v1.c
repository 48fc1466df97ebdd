/*
 * rest_v1.c - v1 routes (locations, balance reads, tracking, PUT changes)
 * and the v2 bulk: WIRE.md sections 3 to 7.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest_int.h"

void inv__rest_v1_locations(struct inv__rest_ctx *ctx)
{
	inv_json_location locs[8];
	size_t n = inv__rest_locations(ctx, locs, 8);
	char *body = NULL;
	size_t len = 0;
	int rc = inv_json_encode_locations(&body, &len, locs, n);

	inv__rest_json(ctx, rc, body, len);
}

static int uuid_cmp(const void *a, const void *b)
{
	return inv_uuid_compare(a, b);
}

/*
 * The requested products that are tracked, sorted and without repeats, as
 * trackedProducts lists them.  Asks per requested product rather than
 * intersecting with the full tracked list, which may be far longer.
 */
static int tracked_among(inv_uuid **out, size_t *count, inv_org *org, const inv_uuid *wanted,
                         size_t n)
{
	inv_uuid *list = malloc((n ? n : 1) * sizeof(*list));
	size_t i, k = 0;

	*out = NULL;
	*count = 0;
	if (!list)
		return INV_ENOMEM;
	memcpy(list, wanted, n * sizeof(*list));
	qsort(list, n, sizeof(*list), uuid_cmp);
	for (i = 0; i < n; i++) {
		int on = 0, rc;

		if (k > 0 && inv_uuid_compare(&list[k - 1], &list[i]) == 0)
			continue;
		rc = inv_tracking_get(&on, org, &list[i]);
		if (rc) {
			free(list);
			return rc;
		}
		if (on)
			list[k++] = list[i];
	}
	*out = list;
	*count = k;
	return 0;
}

/*
 * Answer a status object of `loc`: its non-zero balances, of every tracked
 * product when `all_products`, else of `products` only; with
 * trackedProducts (limited the same way) when `with_tracked`.
 */
static void status_answer(struct inv__rest_ctx *ctx, const inv_location *loc,
                          const inv_uuid *products, size_t product_count, int all_products,
                          int with_tracked)
{
	inv_balance_query q;
	inv_balance *bal = NULL;
	inv_uuid *tracked = NULL;
	size_t nbal = 0, ntracked = 0;
	inv_json_location lv = inv__rest_location_value(loc);
	char *body = NULL;
	size_t len = 0;
	int rc = 0;

	inv_balance_query_init(&q, INV_BALANCE_QUERY_VERSION);
	q.location = loc;
	q.products = all_products ? NULL : products;
	q.product_count = all_products ? 0 : product_count;
	/* An empty product list reads nothing (NULL would mean "all"). */
	if (all_products || product_count > 0)
		rc = inv_balances_read(&bal, &nbal, NULL, ctx->org, &q);
	if (rc == 0 && with_tracked)
		rc = all_products ? inv_tracking_list(&tracked, &ntracked, ctx->org)
		                  : tracked_among(&tracked, &ntracked, ctx->org, products,
		                                  product_count);
	if (rc == 0)
		rc = inv_json_encode_status(&body, &len, &lv, bal, nbal,
		                            with_tracked ? (tracked ? tracked : &lv.uuid) : NULL,
		                            ntracked);
	inv_free(bal);
	inv_free(tracked);
	inv__rest_json(ctx, rc, body, len);
}

void inv__rest_v1_location_balances(struct inv__rest_ctx *ctx)
{
	const inv_location *loc = inv__rest_location(ctx, &ctx->params[0], "locationUuid");

	if (loc)
		status_answer(ctx, loc, NULL, 0, 1, 1);
}

void inv__rest_v1_type_balances(struct inv__rest_ctx *ctx)
{
	const inv_location *loc = NULL;
	size_t len = 0;
	const char *type = inv__rest_query(ctx, "type", &len);
	int t;

	if (!type || len == 0) {
		inv__rest_invalid(ctx, "type", INV_JSON_MUST_NOT_BE_NULL, "must not be null");
		return;
	}
	t = inv__location_type_parse(type, len, 1);
	if (!t) {
		inv__rest_invalid(ctx, "type", INV_JSON_MUST_MATCH_PATTERN,
		                  "must be STORE, SOLD, BIN or SUPPLIER");
		return;
	}
	if (inv_location_by_type(&loc, ctx->org, (inv_location_type)t) != 0) {
		inv__rest_fail(ctx, inv_error_last()->code, "type");
		return;
	}
	status_answer(ctx, loc, NULL, 0, 1, 1);
}

void inv__rest_v1_product_balances(struct inv__rest_ctx *ctx)
{
	const inv_location *loc = inv__rest_location(ctx, &ctx->params[0], "locationUuid");

	if (loc)
		status_answer(ctx, loc, &ctx->params[1], 1, 0, 0);
}

void inv__rest_v1_filter_balances(struct inv__rest_ctx *ctx)
{
	const inv_json_product_filter *f;
	inv_json_product_filter *decoded = NULL;
	inv_json_violations *v = NULL;
	const inv_location *loc = NULL;
	int rc;

	rc = inv_json_decode_product_filter(&decoded, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	f = decoded;
	rc = inv_location_by_type(&loc, ctx->org, (inv_location_type)f->location_type);
	if (rc)
		inv__rest_fail(ctx, rc, "locationType");
	else
		status_answer(ctx, loc, f->products, f->count, 0, 1);
	inv_free(decoded);
}

/* Apply one tracking change as a batch (journal, events, idempotency). */
static int apply_tracking(struct inv__rest_ctx *ctx, const inv_uuid *product, int action)
{
	inv_tracking_change t;
	inv_apply_options opts;

	memset(&t, 0, sizeof(t));
	t.product = *product;
	t.action = action;
	inv__rest_apply_options(ctx, &opts);
	opts.tracking = &t;
	opts.tracking_count = 1;
	return inv_apply_changes(NULL, ctx->org, NULL, 0, &opts);
}

void inv__rest_v1_start_tracking(struct inv__rest_ctx *ctx)
{
	inv_json_violations *v = NULL;
	const inv_location *store = NULL;
	inv_uuid product;
	int rc;

	rc = inv_json_decode_start_tracking(&product, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	rc = apply_tracking(ctx, &product, INV_TRACKING_START);
	if (rc == 0)
		rc = inv_location_by_type(&store, ctx->org, INV_LOCATION_STORE);
	if (rc) {
		inv__rest_fail(ctx, rc, "productUuid");
		return;
	}
	status_answer(ctx, store, &product, 1, 0, 0);
}

void inv__rest_v1_stop_tracking(struct inv__rest_ctx *ctx)
{
	int rc = apply_tracking(ctx, &ctx->params[0], INV_TRACKING_STOP);

	if (rc)
		inv__rest_fail(ctx, rc, "productUuid");
	else
		inv__rest_empty(ctx, 204);
}

/* "changes[i].field" */
static void changes_path(char *buf, size_t size, const void *payload, size_t i,
                         const char *field)
{
	snprintf(buf, size, "%s[%zu].%s", (const char *)payload, i, field);
}

/* The location a PUT or bulk answers for: the named one or the STORE. */
static const inv_location *return_location(struct inv__rest_ctx *ctx, int has,
                                           const inv_uuid *uuid)
{
	const inv_location *loc = NULL;
	int rc;

	if (has)
		return inv__rest_location(ctx, uuid, "returnBalanceForLocationUuid");
	rc = inv_location_by_type(&loc, ctx->org, INV_LOCATION_STORE);
	if (rc) {
		inv__rest_fail(ctx, rc, NULL);
		return NULL;
	}
	return loc;
}

static void answer_result(struct inv__rest_ctx *ctx, inv_result *result)
{
	char *body = NULL;
	size_t len = 0;
	int rc = inv_json_encode_result(&body, &len, result);

	inv_result_free(result);
	inv__rest_json(ctx, rc, body, len);
}

void inv__rest_v1_changes(struct inv__rest_ctx *ctx)
{
	inv_json_changes *c = NULL;
	inv_json_violations *v = NULL;
	inv_apply_options opts;
	inv_result *result;
	int rc;

	rc = inv_json_decode_changes(&c, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	inv__rest_apply_options(ctx, &opts);
	opts.external_uuid = c->has_external_uuid ? &c->external_uuid : NULL;
	opts.return_location = return_location(ctx, c->has_return_location, &c->return_location);
	if (opts.return_location) {
		result = inv__rest_apply(ctx, c->changes, c->count, &opts, changes_path, "changes", 0);
		if (result)
			answer_result(ctx, result);
	}
	inv_free(c);
}

struct bulk_paths {
	const inv_json_bulk *bulk;
	const size_t *tracking_product; /* tracking change i -> productChanges index */
};

static void bulk_path(char *buf, size_t size, const void *payload, size_t i, const char *field)
{
	const struct bulk_paths *bp = payload;
	const inv_json_bulk *b = bp->bulk;
	size_t p;

	if (!strcmp(field, "tracking")) {
		snprintf(buf, size, "productChanges[%zu].trackingStatusChange",
		         bp->tracking_product[i]);
		return;
	}
	for (p = 0; p < b->product_count; p++) {
		const inv_json_bulk_product *x = &b->products[p];

		if (i >= x->first_change && i < x->first_change + x->change_count) {
			snprintf(buf, size, "productChanges[%zu].variantChanges[%zu].%s", p,
			         i - x->first_change, field);
			return;
		}
	}
	buf[0] = '\0';
}

void inv__rest_v2_bulk(struct inv__rest_ctx *ctx)
{
	inv_json_bulk *b = NULL;
	inv_json_violations *v = NULL;
	inv_tracking_change *tracking = NULL;
	size_t *tracking_product = NULL;
	struct bulk_paths paths;
	inv_apply_options opts;
	inv_result *result;
	size_t i, nt = 0;
	int rc;

	rc = inv_json_decode_bulk(&b, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	tracking = calloc(b->product_count ? b->product_count : 1, sizeof(*tracking));
	tracking_product = calloc(b->product_count ? b->product_count : 1,
	                          sizeof(*tracking_product));
	if (!tracking || !tracking_product) {
		inv__rest_fail(ctx, INV_ENOMEM, NULL);
		goto out;
	}
	for (i = 0; i < b->product_count; i++) {
		if (!b->products[i].action)
			continue;
		tracking[nt].product = b->products[i].product;
		tracking[nt].action = b->products[i].action;
		tracking_product[nt++] = i;
	}
	inv__rest_apply_options(ctx, &opts);
	opts.external_uuid = b->has_external_uuid ? &b->external_uuid : NULL;
	opts.tracking = tracking;
	opts.tracking_count = nt;
	opts.return_location = return_location(ctx, b->has_return_location, &b->return_location);
	if (!opts.return_location)
		goto out;
	paths.bulk = b;
	paths.tracking_product = tracking_product;
	if (nt == 0 && b->change_count == 0) {
		/* Nothing to store: answer the empty change list. */
		inv_json_location lv = inv__rest_location_value(opts.return_location);
		char *body = NULL;
		size_t len = 0;

		rc = inv_json_encode_status(&body, &len, &lv, NULL, 0, NULL, 0);
		inv__rest_json(ctx, rc, body, len);
		goto out;
	}
	result = inv__rest_apply(ctx, b->changes, b->change_count, &opts, bulk_path, &paths, 0);
	if (result)
		answer_result(ctx, result);
out:
	free(tracking);
	free(tracking_product);
	inv_free(b);
}
