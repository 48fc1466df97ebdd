/*
 * rest_v3.c - /v3 routes (WIRE.md section 9): inventories are the v1
 * locations under other names; stock pages with a path-absolute Link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "error_int.h"
#include "rest_int.h"

#define STOCK_LIMIT_DEFAULT 100
#define STOCK_LIMIT_MAX 1000

void inv__rest_v3_inventories(struct inv__rest_ctx *ctx)
{
	inv_json_location locs[8];
	size_t n = inv__rest_locations(ctx, locs, 8);
	char *body = NULL;
	size_t len = 0;
	int rc = inv_json_encode_inventories(&body, &len, locs, n);

	inv__rest_json(ctx, rc, body, len);
}

void inv__rest_v3_inventory(struct inv__rest_ctx *ctx)
{
	const inv_location *loc = inv__rest_location(ctx, &ctx->params[0], "inventoryUuid");
	inv_json_location lv;
	char *body = NULL;
	size_t len = 0;
	int rc;

	if (!loc)
		return;
	lv = inv__rest_location_value(loc);
	rc = inv_json_encode_inventory(&body, &len, &lv);
	inv__rest_json(ctx, rc, body, len);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A cursor is the last (product, variant) of the page as 64 hex digits. */
static int cursor_parse(inv_uuid *product, inv_uuid *variant, const char *s, size_t len)
{
	size_t i;

	if (len != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		(i < 16 ? product->bytes : variant->bytes)[i % 16] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void cursor_format(char out[65], const inv_balance *b)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < 32; i++) {
		uint8_t byte = (i < 16 ? b->product.bytes : b->variant.bytes)[i % 16];

		out[2 * i] = digits[byte >> 4];
		out[2 * i + 1] = digits[byte & 15];
	}
	out[64] = '\0';
}

static int limit_parse(struct inv__rest_ctx *ctx, size_t *limit)
{
	size_t len, i, n = 0;
	const char *s = inv__rest_query(ctx, "limit", &len);

	*limit = STOCK_LIMIT_DEFAULT;
	if (!s)
		return 0;
	if (len == 0 || len > 7) {
		inv__rest_invalid(ctx, "limit", INV_JSON_INVALID_RANGE, "must be 1 to 1000");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			inv__rest_invalid(ctx, "limit", INV_JSON_INVALID_RANGE, "must be 1 to 1000");
			return -1;
		}
		n = n * 10 + (size_t)(s[i] - '0');
	}
	if (n < 1 || n > STOCK_LIMIT_MAX) {
		inv__rest_invalid(ctx, "limit", INV_JSON_INVALID_RANGE, "must be 1 to 1000");
		return -1;
	}
	*limit = n;
	return 0;
}

void inv__rest_v3_stock(struct inv__rest_ctx *ctx)
{
	const inv_location *loc = NULL;
	inv_balance_query q;
	inv_balance *bal = NULL;
	size_t nbal = 0, limit, clen;
	const char *cursor;
	int more = 0, rc;
	char *body = NULL;
	size_t len = 0;

	if (limit_parse(ctx, &limit))
		return;
	inv_balance_query_init(&q, INV_BALANCE_QUERY_VERSION);
	cursor = inv__rest_query(ctx, "cursor", &clen);
	if (cursor) {
		if (cursor_parse(&q.after_product, &q.after_variant, cursor, clen) != 0) {
			inv__rest_invalid(ctx, "cursor", INV_JSON_MUST_MATCH_PATTERN,
			                  "must be a cursor from a Link header");
			return;
		}
		q.has_after = 1;
	}
	if (ctx->param_count == 0) {
		/* All STORE inventories: an organization has one. */
		rc = inv_location_by_type(&loc, ctx->org, INV_LOCATION_STORE);
		if (rc) {
			inv__rest_fail(ctx, rc, NULL);
			return;
		}
	} else if (!(loc = inv__rest_location(ctx, &ctx->params[0], "inventoryUuid"))) {
		return;
	}
	q.location = loc;
	q.include_zero = 1;
	q.with_low_stock = 1;
	q.limit = limit;
	if (ctx->param_count == 2) {
		q.products = &ctx->params[1];
		q.product_count = 1;
	}
	rc = inv_balances_read(&bal, &nbal, &more, ctx->org, &q);
	if (rc == 0)
		rc = inv_json_encode_v3_stock(&body, &len, inv_org_uuid(ctx->org),
		                              inv_location_uuid(loc), bal, nbal);
	if (rc == 0 && more && nbal > 0) {
		/* Path-absolute and rebuilt from the parsed route, never from the
		 * request's text, so that it cannot point at another host. */
		char link[256], cur[65], inv[37], prod[37];
		int n;

		cursor_format(cur, &bal[nbal - 1]);
		inv_uuid_format(inv_location_uuid(loc), inv);
		if (ctx->param_count == 2)
			inv_uuid_format(&ctx->params[1], prod);
		n = snprintf(link, sizeof(link), "</v3/stock%s%s%s%s?cursor=%s&limit=%zu>; rel=\"next\"",
		             ctx->param_count ? "/" : "", ctx->param_count ? inv : "",
		             ctx->param_count == 2 ? "/products/" : "",
		             ctx->param_count == 2 ? prod : "", cur, limit);
		if (n <= 0 || (size_t)n >= sizeof(link) || inv__rest_header(ctx, "Link", link) != 0) {
			inv_free(body);
			rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		}
	}
	inv_free(bal);
	inv__rest_json(ctx, rc, body, len);
}

static void movements_path(char *buf, size_t size, const void *payload, size_t i,
                           const char *field)
{
	(void)payload;
	snprintf(buf, size, "movements[%zu].%s", i, field);
}

void inv__rest_v3_movements(struct inv__rest_ctx *ctx)
{
	inv_json_changes *c = NULL;
	inv_json_violations *v = NULL;
	inv_apply_options opts;
	inv_result *result;
	int rc;

	rc = inv_json_decode_movements(&c, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	inv__rest_apply_options(ctx, &opts);
	opts.external_uuid = c->has_external_uuid ? &c->external_uuid : NULL;
	result = inv__rest_apply(ctx, c->changes, c->count, &opts, movements_path, NULL, 1);
	if (result) {
		inv_result_free(result);
		inv__rest_empty(ctx, 204);
	}
	inv_free(c);
}

static void products_path(char *buf, size_t size, const void *payload, size_t i,
                          const char *field)
{
	(void)payload;
	(void)field;
	snprintf(buf, size, "[%zu].tracking", i);
}

void inv__rest_v3_products(struct inv__rest_ctx *ctx)
{
	inv_tracking_change *t = NULL;
	inv_json_violations *v = NULL;
	inv_apply_options opts;
	inv_result *result;
	size_t n;
	int rc;

	rc = inv_json_decode_v3_products(&t, &n, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	inv__rest_apply_options(ctx, &opts);
	opts.tracking = t;
	opts.tracking_count = n;
	result = inv__rest_apply(ctx, NULL, 0, &opts, products_path, NULL, 1);
	if (result) {
		inv_result_free(result);
		inv__rest_empty(ctx, 204);
	}
	inv_free(t);
}

void inv__rest_v3_products_status(struct inv__rest_ctx *ctx)
{
	inv_uuid *p = NULL;
	int32_t *enabled = NULL;
	inv_json_violations *v = NULL;
	size_t i, n;
	char *body = NULL;
	size_t len = 0;
	int rc;

	rc = inv_json_decode_v3_products_status(&p, &n, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	enabled = calloc(n ? n : 1, sizeof(*enabled));
	rc = enabled ? 0 : inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	for (i = 0; i < n && rc == 0; i++) {
		int on = 0;

		rc = inv_tracking_get(&on, ctx->org, &p[i]);
		enabled[i] = on;
	}
	if (rc == 0)
		rc = inv_json_encode_v3_products_status(&body, &len, p, enabled, n);
	inv__rest_json(ctx, rc, body, len);
	free(enabled);
	inv_free(p);
}

void inv__rest_v3_low_stock(struct inv__rest_ctx *ctx)
{
	inv_json_v3_low_stock *e = NULL;
	inv_json_violations *v = NULL;
	inv__low_stock_write *w = NULL;
	size_t i, n;
	char prop[64];
	int rc;

	rc = inv_json_decode_v3_low_stock(&e, &n, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	w = calloc(n ? n : 1, sizeof(*w));
	if (!w) {
		inv__rest_fail(ctx, INV_ENOMEM, NULL);
		goto out;
	}
	/* Check every entry, then write them all in one transaction. */
	for (i = 0; i < n; i++) {
		snprintf(prop, sizeof(prop), "[%zu].inventoryUuid", i);
		if (!(w[i].location = inv__rest_location(ctx, &e[i].location, prop)))
			goto out;
		if (inv_location_get_type(w[i].location) != INV_LOCATION_STORE) {
			inv__rest_invalid(ctx, prop, INV_JSON_UNKNOWN,
			                  "low-stock levels exist only for STORE inventories");
			goto out;
		}
		w[i].entry = e[i].entry;
	}
	rc = inv__low_stock_write_many(ctx->org, w, n);
	if (rc) {
		const inv_error *err = inv_error_last();

		snprintf(prop, sizeof(prop), "[%lld]", (long long)err->index);
		inv__rest_fail(ctx, rc, err->index >= 0 ? prop : NULL);
		goto out;
	}
	inv__rest_empty(ctx, 204);
out:
	free(w);
	inv_free(e);
}
