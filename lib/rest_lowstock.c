/*
 * rest_lowstock.c - /custom-low-stock routes (WIRE.md section 8).
 *
 * A many-request is one transaction (inv__low_stock_write_many): a bad or
 * failing request stores nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "rest_int.h"

/* The path's location; entries exist only for STORE locations. */
static const inv_location *store_location(struct inv__rest_ctx *ctx)
{
	const inv_location *loc = inv__rest_location(ctx, &ctx->params[0], "locationUuid");

	if (loc && inv_location_get_type(loc) != INV_LOCATION_STORE) {
		inv__rest_invalid(ctx, "locationUuid", INV_JSON_UNKNOWN,
		                  "low-stock levels exist only for STORE locations");
		return NULL;
	}
	return loc;
}

/* Write (or delete, when `del`) the entries in one transaction. */
static void write_entries(struct inv__rest_ctx *ctx, const inv_location *loc,
                          const inv_low_stock *e, size_t n, int del)
{
	inv__low_stock_write *w = calloc(n ? n : 1, sizeof(*w));
	size_t i;
	int rc;

	if (!w) {
		inv__rest_fail(ctx, INV_ENOMEM, NULL);
		return;
	}
	for (i = 0; i < n; i++) {
		w[i].location = loc;
		w[i].entry = e[i];
		w[i].remove = del;
	}
	rc = inv__low_stock_write_many(ctx->org, w, n);
	free(w);
	if (rc) {
		const inv_error *err = inv_error_last();
		char prop[64];

		snprintf(prop, sizeof(prop), "requests[%lld]", (long long)err->index);
		inv__rest_fail(ctx, rc, n > 1 && err->index >= 0 ? prop : NULL);
		return;
	}
	inv__rest_empty(ctx, 204);
}

/* The body is checked (400) before the location is looked up (404). */
void inv__rest_ls_set(struct inv__rest_ctx *ctx)
{
	const inv_location *loc;
	inv_json_violations *v = NULL;
	inv_low_stock e;
	int rc;

	rc = inv_json_decode_low_stock(&e, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	loc = store_location(ctx);
	if (loc)
		write_entries(ctx, loc, &e, 1, 0);
}

static void many(struct inv__rest_ctx *ctx, int del)
{
	const inv_location *loc;
	inv_json_violations *v = NULL;
	inv_low_stock *e = NULL;
	size_t n = 0;
	int rc;

	rc = del ? inv_json_decode_low_stock_delete(&e, &n, &v, ctx->req->body, ctx->req->body_len)
	         : inv_json_decode_low_stock_many(&e, &n, &v, ctx->req->body, ctx->req->body_len);
	if (rc) {
		inv__rest_decode_failed(ctx, rc, v);
		return;
	}
	loc = store_location(ctx);
	if (loc)
		write_entries(ctx, loc, e, n, del);
	inv_free(e);
}

void inv__rest_ls_set_many(struct inv__rest_ctx *ctx)
{
	many(ctx, 0);
}

void inv__rest_ls_delete_many(struct inv__rest_ctx *ctx)
{
	many(ctx, 1);
}

void inv__rest_ls_delete(struct inv__rest_ctx *ctx)
{
	const inv_location *loc = store_location(ctx);
	inv_low_stock e;

	if (!loc)
		return;
	memset(&e, 0, sizeof(e));
	e.product = ctx->params[1];
	e.variant = ctx->params[2];
	write_entries(ctx, loc, &e, 1, 1);
}

static void read_entries(struct inv__rest_ctx *ctx, const inv_uuid *product)
{
	const inv_location *loc = store_location(ctx);
	inv_low_stock *e = NULL;
	size_t n = 0;
	char *body = NULL;
	size_t len = 0;
	int rc;

	if (!loc)
		return;
	rc = inv_low_stock_list(&e, &n, ctx->org, loc, product);
	if (rc == 0)
		rc = product ? inv_json_encode_low_stock_product(&body, &len, product, e, n)
		             : inv_json_encode_low_stock_location(&body, &len, inv_org_uuid(ctx->org),
		                                                  inv_location_uuid(loc), e, n);
	inv_free(e);
	inv__rest_json(ctx, rc, body, len);
}

void inv__rest_ls_read_location(struct inv__rest_ctx *ctx)
{
	read_entries(ctx, NULL);
}

void inv__rest_ls_read_product(struct inv__rest_ctx *ctx)
{
	read_entries(ctx, &ctx->params[1]);
}
