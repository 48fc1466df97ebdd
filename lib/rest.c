/*
 * rest.c - the dispatcher's frame: routing, the order of checks of WIRE.md
 * section 12 (401 -> 404/405 -> 403 -> 413 -> 400 -> domain), the error
 * table of section 11, responses, and the resolve-and-apply step every
 * batch route shares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_int.h"
#include "rest_int.h"

#define JSON_TYPE "application/json"

enum scope { READ = 1, WRITE = 2 };

struct route {
	const char *method;
	/* Segments; "{org}" is the organization ("self" or its UUID), "{...}"
	 * another UUID parameter whose name is used for a 400. */
	const char *segments[INV__REST_MAX_SEGMENTS];
	enum scope scope;
	inv__rest_handler handler;
};

#define O "organizations", "{org}"
static const struct route routes[] = {
	{ "GET", { O, "locations" }, READ, inv__rest_v1_locations },
	{ "GET", { O, "inventory", "locations" }, READ, inv__rest_v1_type_balances },
	{ "GET", { O, "inventory", "locations", "{locationUuid}" }, READ,
	  inv__rest_v1_location_balances },
	{ "GET", { O, "inventory", "locations", "{locationUuid}", "products", "{productUuid}" },
	  READ, inv__rest_v1_product_balances },
	{ "POST", { O, "inventory", "products" }, READ, inv__rest_v1_filter_balances },
	{ "POST", { O, "inventory" }, WRITE, inv__rest_v1_start_tracking },
	{ "PUT", { O, "inventory" }, WRITE, inv__rest_v1_changes },
	{ "DELETE", { O, "inventory", "products", "{productUuid}" }, WRITE,
	  inv__rest_v1_stop_tracking },
	{ "POST", { O, "v2", "inventory", "bulk" }, WRITE, inv__rest_v2_bulk },

	{ "PUT", { "custom-low-stock", "locations", "{locationUuid}" }, WRITE, inv__rest_ls_set },
	{ "POST", { "custom-low-stock", "locations", "{locationUuid}" }, WRITE,
	  inv__rest_ls_set_many },
	{ "GET", { "custom-low-stock", "v2", "locations", "{locationUuid}" }, READ,
	  inv__rest_ls_read_location },
	{ "GET", { "custom-low-stock", "v2", "locations", "{locationUuid}", "products",
	           "{productUuid}" }, READ, inv__rest_ls_read_product },
	{ "DELETE", { "custom-low-stock", "locations", "{locationUuid}", "products", "{productUuid}",
	              "variants", "{variantUuid}" }, WRITE, inv__rest_ls_delete },
	{ "POST", { "custom-low-stock", "locations", "{locationUuid}", "delete" }, WRITE,
	  inv__rest_ls_delete_many },

	{ "GET", { "v3", "inventories" }, READ, inv__rest_v3_inventories },
	{ "GET", { "v3", "inventories", "{inventoryUuid}" }, READ, inv__rest_v3_inventory },
	{ "GET", { "v3", "stock" }, READ, inv__rest_v3_stock },
	{ "GET", { "v3", "stock", "{inventoryUuid}" }, READ, inv__rest_v3_stock },
	{ "GET", { "v3", "stock", "{inventoryUuid}", "products", "{productUuid}" }, READ,
	  inv__rest_v3_stock },
	{ "POST", { "v3", "movements" }, WRITE, inv__rest_v3_movements },
	{ "POST", { "v3", "products" }, WRITE, inv__rest_v3_products },
	{ "POST", { "v3", "products", "status" }, READ, inv__rest_v3_products_status },
	{ "POST", { "v3", "custom-low-stock" }, WRITE, inv__rest_v3_low_stock },
};
#undef O

#define ROUTE_COUNT (sizeof(routes) / sizeof(*routes))

/* ------------------------------------------------------------ responses */

static void set_body(inv_rest_response *res, int status, char *body, size_t len)
{
	free(res->body);
	res->status = status;
	res->body = body;
	res->body_len = body ? len : 0;
	res->content_type = body ? JSON_TYPE : NULL;
}

/* Last resort when even the error body cannot be built. */
static void set_oom(inv_rest_response *res)
{
	static const char text[] = "{\"developerMessage\":\"out of memory\","
	                           "\"errorType\":\"INTERNAL_SERVER_ERROR\",\"violations\":[]}";
	char *body = malloc(sizeof(text));

	if (body)
		memcpy(body, text, sizeof(text));
	set_body(res, 500, body, sizeof(text) - 1);
	res->error_type = "INTERNAL_SERVER_ERROR";
}

static void error_with(struct inv__rest_ctx *ctx, int status, const char *error_type,
                       const char *message, const inv_json_violation *v, size_t count)
{
	char *body;
	size_t len;

	if (inv_json_encode_error(&body, &len, error_type, message, v, count) != 0) {
		set_oom(ctx->res);
		return;
	}
	set_body(ctx->res, status, body, len);
	ctx->res->error_type = error_type;
}

void inv__rest_error(struct inv__rest_ctx *ctx, int status, const char *error_type,
                     const char *property, int constraint, const char *message)
{
	inv_json_violation v = { property, message, constraint, 0 };
	char full[640];

	if (property && property[0]) {
		snprintf(full, sizeof(full), "%s %s", property, message);
		error_with(ctx, status, error_type, full, &v, 1);
	} else {
		error_with(ctx, status, error_type, message, &v, property ? 1 : 0);
	}
}

void inv__rest_invalid(struct inv__rest_ctx *ctx, const char *property, int constraint,
                       const char *message)
{
	inv__rest_error(ctx, 400, "VALIDATION_ERROR", property, constraint, message);
}

void inv__rest_json(struct inv__rest_ctx *ctx, int rc, char *body, size_t len)
{
	if (rc != 0) {
		inv__rest_fail(ctx, rc, NULL);
		return;
	}
	set_body(ctx->res, 200, body, len);
	ctx->res->error_type = NULL;
}

void inv__rest_empty(struct inv__rest_ctx *ctx, int status)
{
	set_body(ctx->res, status, NULL, 0);
	ctx->res->error_type = NULL;
}

void inv__rest_decode_failed(struct inv__rest_ctx *ctx, int rc, inv_json_violations *v)
{
	if (rc == INV_EINVAL) {
		size_t n = inv_json_violations_count(v);
		const char *msg = inv_error_last()->message;
		char full[640];

		if (n) {
			const inv_json_violation *first = inv_json_violations_at(v, 0);

			snprintf(full, sizeof(full), "%s%s%s", first->property,
			         first->property[0] ? " " : "", first->message);
			msg = full;
		}
		error_with(ctx, 400, "VALIDATION_ERROR", msg, n ? inv_json_violations_at(v, 0) : NULL,
		           n);
	} else {
		inv__rest_fail(ctx, rc, NULL);
	}
	inv_json_violations_free(v);
}

void inv__rest_fail(struct inv__rest_ctx *ctx, int rc, const char *property)
{
	const char *type;
	int status;
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", inv_error_last()->code == rc && inv_error_last()->message[0]
	                                 ? inv_error_last()->message : inv_strerror(rc));
	switch (rc) {
	case INV_EINVAL: status = 400; type = "VALIDATION_ERROR"; break;
	case INV_ENOTTRACKED: status = 400; type = "PRODUCT_NOT_TRACKED"; break;
	case INV_EMISMATCH: status = 400; type = "VARIANT_PRODUCT_MISMATCH"; break;
	case INV_ERANGE: status = 400; type = "BALANCE_OUT_OF_RANGE"; break;
	case INV_ENOTFOUND: status = 404; type = "ENTITY_NOT_FOUND"; break;
	case INV_EINSUFFICIENT: status = 409; type = "INSUFFICIENT_STOCK"; break;
	case INV_ECONFLICT: status = 409; type = "CONFLICT"; break;
	case INV_ETOOBIG: status = 413; type = "PAYLOAD_TOO_LARGE"; break;
	case INV_EBUSY: status = 503; type = "SERVICE_UNAVAILABLE"; break;
	default: status = 500; type = "INTERNAL_SERVER_ERROR"; break;
	}
	/* A storage failure is not about the property being worked on. */
	inv__rest_error(ctx, status, type, status < 500 ? property : NULL, INV_JSON_UNKNOWN, msg);
}

int inv__rest_header(struct inv__rest_ctx *ctx, const char *name, const char *value)
{
	inv_rest_response *res = ctx->res;
	size_t i = res->header_count;

	if (i >= 2)
		return INV_ETOOBIG;
	res->header_names[i] = strdup(name);
	res->header_values[i] = strdup(value);
	if (!res->header_names[i] || !res->header_values[i]) {
		free(res->header_names[i]);
		free(res->header_values[i]);
		return INV_ENOMEM;
	}
	res->header_count++;
	return 0;
}

/* ------------------------------------------------------------ helpers */

const char *inv__rest_query(const struct inv__rest_ctx *ctx, const char *name, size_t *len)
{
	const char *q = ctx->query, *end = ctx->query ? ctx->query + ctx->query_len : NULL;
	size_t nlen = strlen(name);

	while (q && q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - q) >= nlen && memcmp(q, name, nlen) == 0 &&
		    (q + nlen == stop || q[nlen] == '=')) {
			const char *v = q + nlen < stop ? q + nlen + 1 : stop;

			*len = (size_t)(stop - v);
			return v;
		}
		q = amp ? amp + 1 : NULL;
	}
	return NULL;
}

/* The answer to a failed location lookup `rc` on `property`. */
static void location_failed(struct inv__rest_ctx *ctx, int rc, const char *property)
{
	if (rc == INV_ENOTFOUND) {
		/* Never reveal that the UUID exists elsewhere. */
		inv__rest_error(ctx, 404, "ENTITY_NOT_FOUND", property, INV_JSON_UNKNOWN,
		                "no such location");
		return;
	}
	inv__rest_fail(ctx, rc, property);
}

const inv_location *inv__rest_location(struct inv__rest_ctx *ctx, const inv_uuid *uuid,
                                       const char *property)
{
	const inv_location *loc = NULL;
	int rc = inv_location_by_uuid(&loc, ctx->org, uuid);

	if (rc) {
		location_failed(ctx, rc, property);
		return NULL;
	}
	return loc;
}

inv_json_location inv__rest_location_value(const inv_location *loc)
{
	inv_json_location v;

	v.uuid = *inv_location_uuid(loc);
	v.type = (int32_t)inv_location_get_type(loc);
	v.is_default = inv_location_is_default(loc);
	return v;
}

size_t inv__rest_locations(const struct inv__rest_ctx *ctx, inv_json_location *out, size_t max)
{
	size_t i, n = inv_org_location_count(ctx->org);

	for (i = 0; i < n && i < max; i++)
		out[i] = inv__rest_location_value(inv_org_location_at(ctx->org, i));
	return i;
}

void inv__rest_apply_options(const struct inv__rest_ctx *ctx, inv_apply_options *opts)
{
	inv_apply_options_init(opts, INV_APPLY_OPTIONS_VERSION);
	opts->idempotency_key = ctx->req->idempotency_key;
	opts->user_uuid = ctx->req->user_uuid;
	opts->client_uuid = ctx->req->client_uuid;
}

/* The location `uuid` of change `i`, or NULL with the failure answered on
 * the change's `field`.  The property's name is built only then: a batch
 * of valid changes never formats one. */
static const inv_location *change_location(struct inv__rest_ctx *ctx, const inv_uuid *uuid,
                                           inv__rest_path_fn path, const void *payload,
                                           size_t i, const char *field)
{
	const inv_location *loc = NULL;
	int rc = inv_location_by_uuid(&loc, ctx->org, uuid);
	char prop[256];

	if (rc) {
		path(prop, sizeof(prop), payload, i, field);
		location_failed(ctx, rc, prop);
		return NULL;
	}
	return loc;
}

inv_result *inv__rest_apply(struct inv__rest_ctx *ctx, const inv_json_change *changes,
                            size_t count, inv_apply_options *opts, inv__rest_path_fn path,
                            const void *payload, int v3_names)
{
	const char *from_name = v3_names ? "from" : "fromLocationUuid";
	const char *to_name = v3_names ? "to" : "toLocationUuid";
	inv_change *batch = calloc(count ? count : 1, sizeof(*batch));
	inv_result *result = NULL;
	char prop[256];
	size_t i;
	int rc;

	if (!batch) {
		inv__rest_fail(ctx, INV_ENOMEM, NULL);
		return NULL;
	}
	for (i = 0; i < count; i++) {
		const inv_json_change *c = &changes[i];

		batch[i].from = change_location(ctx, &c->from, path, payload, i, from_name);
		if (!batch[i].from)
			goto out;
		batch[i].to = change_location(ctx, &c->to, path, payload, i, to_name);
		if (!batch[i].to)
			goto out;
		rc = inv_variant_get(&batch[i].variant, ctx->org, &c->product, &c->variant);
		if (rc) {
			path(prop, sizeof(prop), payload, i, "variantUuid");
			inv__rest_fail(ctx, rc, prop);
			goto out;
		}
		batch[i].quantity = c->quantity;
	}
	rc = inv_apply_changes(&result, ctx->org, batch, count, opts);
	if (rc) {
		const inv_error *e = inv_error_last();
		const char *field = e->field ? e->field : "";

		result = NULL;
		if (e->index >= 0 && (size_t)e->index < count && strcmp(field, "tracking") != 0) {
			path(prop, sizeof(prop), payload, (size_t)e->index,
			     !strcmp(field, "product") ? "productUuid"
			     : !strcmp(field, "variant") ? "variantUuid"
			     : !strcmp(field, "from") ? from_name
			     : !strcmp(field, "to") ? to_name : "change");
			inv__rest_fail(ctx, rc, prop);
		} else if (e->index >= 0 && !strcmp(field, "tracking")) {
			/* The path function maps the tracking change's index. */
			path(prop, sizeof(prop), payload, (size_t)e->index, "tracking");
			inv__rest_fail(ctx, rc, prop[0] ? prop : NULL);
		} else {
			inv__rest_fail(ctx, rc, rc == INV_ECONFLICT && !strcmp(field, "idempotency_key")
			                        ? "Idempotency-Key" : NULL);
		}
	}
out:
	free(batch);
	return result;
}

/* ------------------------------------------------------------ routing */

struct split {
	const char *seg[INV__REST_MAX_SEGMENTS];
	size_t len[INV__REST_MAX_SEGMENTS];
	size_t n;
};

/* Split "/a/b/c" or "/a/b/c/" into segments; an empty segment in the middle
 * or too many segments match no route. */
static int split_path(struct split *s, const char *path, size_t plen)
{
	size_t i = 1;

	s->n = 0;
	if (plen == 0 || path[0] != '/')
		return -1;
	while (i < plen) {
		size_t j = i;

		while (j < plen && path[j] != '/')
			j++;
		if (j == i)
			return -1;
		if (s->n == INV__REST_MAX_SEGMENTS)
			return -1;
		s->seg[s->n] = path + i;
		s->len[s->n] = j - i;
		s->n++;
		i = j + 1; /* a trailing '/' ends the loop */
	}
	return 0;
}

static int route_matches(const struct route *r, const struct split *s)
{
	size_t i;

	for (i = 0; i < INV__REST_MAX_SEGMENTS && r->segments[i]; i++) {
		const char *p = r->segments[i];

		if (i >= s->n)
			return 0;
		if (p[0] == '{')
			continue;
		if (strlen(p) != s->len[i] || memcmp(p, s->seg[i], s->len[i]) != 0)
			return 0;
	}
	return i == s->n;
}

static int org_is_caller(const struct inv__rest_ctx *ctx, const char *seg, size_t len)
{
	inv_uuid u;

	if (len == 4 && memcmp(seg, "self", 4) == 0)
		return 1;
	return inv_uuid_parse(&u, seg, len) == 0 &&
	       inv_uuid_compare(&u, &ctx->req->organization) == 0;
}

/* 405: list the methods the path has. */
static void method_not_allowed(struct inv__rest_ctx *ctx, const struct split *s)
{
	char allow[64] = "";
	size_t i;

	for (i = 0; i < ROUTE_COUNT; i++) {
		if (route_matches(&routes[i], s) && !strstr(allow, routes[i].method)) {
			if (allow[0])
				strcat(allow, ", ");
			strcat(allow, routes[i].method);
		}
	}
	inv__rest_error(ctx, 405, "METHOD_NOT_ALLOWED", NULL, 0, "method not allowed on this path");
	inv__rest_header(ctx, "Allow", allow);
}

static void dispatch(struct inv__rest_ctx *ctx)
{
	const inv_rest_request *req = ctx->req;
	const char *path = req->path ? req->path : "";
	const char *qmark = strchr(path, '?');
	size_t plen = qmark ? (size_t)(qmark - path) : strlen(path);
	const struct route *r = NULL;
	int path_known = 0;
	struct split s;
	size_t i, p = 0;
	int rc;

	if (!req->authenticated) {
		inv__rest_error(ctx, 401, "UNAUTHORIZED", NULL, 0, "no or unknown bearer token");
		inv__rest_header(ctx, "WWW-Authenticate", "Bearer");
		return;
	}
	ctx->query = req->query ? req->query : qmark ? qmark + 1 : NULL;
	ctx->query_len = ctx->query ? strlen(ctx->query) : 0;
	if (split_path(&s, path, plen) == 0) {
		for (i = 0; i < ROUTE_COUNT && !r; i++) {
			if (!route_matches(&routes[i], &s))
				continue;
			path_known = 1;
			if (req->method && !strcmp(req->method, routes[i].method))
				r = &routes[i];
		}
	}
	if (!r) {
		if (path_known)
			method_not_allowed(ctx, &s);
		else
			inv__rest_error(ctx, 404, "NOT_FOUND", NULL, 0, "no such path");
		return;
	}
	if (!strcmp(r->segments[0], "organizations") && !org_is_caller(ctx, s.seg[1], s.len[1])) {
		inv__rest_error(ctx, 403, "FORBIDDEN", NULL, 0,
		                "the path names another organization");
		return;
	}
	if (!(req->scopes & (r->scope == READ ? INV_REST_SCOPE_READ : INV_REST_SCOPE_WRITE))) {
		inv__rest_error(ctx, 403, "FORBIDDEN", NULL, 0,
		                r->scope == READ ? "scope READ:PRODUCT is required"
		                                 : "scope WRITE:PRODUCT is required");
		return;
	}
	/* A DELETE's body is ignored whatever it holds, its size included. */
	if (strcmp(req->method, "DELETE") != 0 && req->body_len > INV_REST_BODY_MAX) {
		inv__rest_error(ctx, 413, "PAYLOAD_TOO_LARGE", NULL, 0, "body over 8 MiB");
		return;
	}
	for (i = 0; i < s.n; i++) {
		const char *name = r->segments[i];

		if (name[0] != '{' || !strcmp(name, "{org}"))
			continue;
		if (inv_uuid_parse(&ctx->params[p], s.seg[i], s.len[i]) != 0) {
			char prop[32];

			snprintf(prop, sizeof(prop), "%.*s", (int)strlen(name) - 2, name + 1);
			inv__rest_invalid(ctx, prop, INV_JSON_MUST_MATCH_PATTERN, "must be a UUID");
			return;
		}
		p++;
	}
	ctx->param_count = p;
	if (req->idempotency_key && r->scope == WRITE &&
	    (req->idempotency_key[0] == '\0' || strnlen(req->idempotency_key, 256) > 255)) {
		inv__rest_invalid(ctx, "Idempotency-Key", INV_JSON_INVALID_SIZE,
		                  "must be 1 to 255 bytes");
		return;
	}
	rc = inv_org_open(&ctx->org, ctx->store, &req->organization);
	if (rc) {
		inv__rest_fail(ctx, rc, NULL);
		return;
	}
	r->handler(ctx);
	inv_org_close(ctx->org);
	ctx->org = NULL;
}

int inv_rest_request_init(inv_rest_request *req, uint32_t version)
{
	static const inv_rest_request init = INV_REST_REQUEST_INIT;

	if (!req)
		return inv__error(INV_EINVAL, -1, "req", "req is NULL");
	if (version != INV_REST_REQUEST_VERSION)
		return inv__error(INV_EVERSION, -1, "version", "unknown request version %u", version);
	*req = init;
	return 0;
}

int inv_rest_handle(inv_rest_response **out, inv_store *store, const inv_rest_request *req)
{
	struct inv__rest_ctx ctx;
	inv_rest_response *res;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	*out = NULL;
	if (!store || !req)
		return inv__error(INV_EINVAL, -1, store ? "req" : "store", "argument is NULL");
	if (req->version != INV_REST_REQUEST_VERSION)
		return inv__error(INV_EVERSION, -1, "version", "unknown request version %u",
		                  req->version);
	if (req->body_len && !req->body)
		return inv__error(INV_EINVAL, -1, "body", "body is NULL");
	res = calloc(1, sizeof(*res));
	if (!res)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	memset(&ctx, 0, sizeof(ctx));
	ctx.store = store;
	ctx.req = req;
	ctx.res = res;
	dispatch(&ctx);
	if (res->status == 0)
		set_oom(res);
	*out = res;
	return 0;
}

int inv_rest_response_status(const inv_rest_response *res)
{
	return res ? res->status : 0;
}

const char *inv_rest_response_content_type(const inv_rest_response *res)
{
	return res ? res->content_type : NULL;
}

const char *inv_rest_response_body(const inv_rest_response *res, size_t *len)
{
	if (len)
		*len = res && res->body ? res->body_len : 0;
	return res && res->body ? res->body : "";
}

size_t inv_rest_response_header_count(const inv_rest_response *res)
{
	return res ? res->header_count : 0;
}

const char *inv_rest_response_header_name(const inv_rest_response *res, size_t i)
{
	return res && i < res->header_count ? res->header_names[i] : NULL;
}

const char *inv_rest_response_header_value(const inv_rest_response *res, size_t i)
{
	return res && i < res->header_count ? res->header_values[i] : NULL;
}

const char *inv_rest_response_error_type(const inv_rest_response *res)
{
	return res ? res->error_type : NULL;
}

void inv_rest_response_free(inv_rest_response *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->header_count; i++) {
		free(res->header_names[i]);
		free(res->header_values[i]);
	}
	free(res->body);
	free(res);
}
