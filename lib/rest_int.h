/*
 * rest_int.h - shared internals of the REST dispatcher (lib/rest*.c).
 *
 * rest.c owns the frame (routing, the order of checks, errors, responses);
 * rest_v1.c, rest_lowstock.c and rest_v3.c hold the handlers of one route
 * family each.  A handler sees a request whose route, organization, scope,
 * size and path UUIDs are already checked, and an open organization.
 */
#ifndef ZINV_REST_INT_H
#define ZINV_REST_INT_H

#include <zinv.h>
#include <zinv/rest.h>

#include "json_int.h"

#define INV__REST_MAX_SEGMENTS 10
#define INV__REST_MAX_PARAMS 4

struct inv_rest_response {
	int status;
	const char *content_type;   /* static string or NULL */
	const char *error_type;     /* static string or NULL */
	char *body;                 /* NUL-terminated; NULL means "" */
	size_t body_len;
	size_t header_count;
	char *header_names[2];
	char *header_values[2];
};

struct inv__rest_ctx {
	inv_store *store;
	const inv_rest_request *req;
	inv_rest_response *res;
	inv_org *org;
	const char *query;          /* without '?', may be NULL */
	size_t query_len;
	inv_uuid params[INV__REST_MAX_PARAMS]; /* the route's path UUIDs, in order */
	size_t param_count;
};

typedef void (*inv__rest_handler)(struct inv__rest_ctx *ctx);

/* --- responses (rest.c) --- */

/* 200 with a JSON body taken from an encoder: `rc` is the encoder's return
 * value, `body` its output (owned by the response on success). */
void inv__rest_json(struct inv__rest_ctx *ctx, int rc, char *body, size_t len);
/* A status without body (204). */
void inv__rest_empty(struct inv__rest_ctx *ctx, int status);
/* An error with at most one violation (`property` NULL: none). */
void inv__rest_error(struct inv__rest_ctx *ctx, int status, const char *error_type,
                     const char *property, int constraint, const char *message);
/* 400 VALIDATION_ERROR with one violation, message "<property> <message>". */
void inv__rest_invalid(struct inv__rest_ctx *ctx, const char *property, int constraint,
                       const char *message);
/* The answer to a decoder's failure: 400 with its violations, 413, 500. */
void inv__rest_decode_failed(struct inv__rest_ctx *ctx, int rc, inv_json_violations *v);
/* The answer to a core failure `rc`; `property` names the request property
 * it is about (NULL: none).  Uses inv_error_last() for the message. */
void inv__rest_fail(struct inv__rest_ctx *ctx, int rc, const char *property);
/* Add a response header (at most two). */
int inv__rest_header(struct inv__rest_ctx *ctx, const char *name, const char *value);

/* --- helpers (rest.c) --- */

/* The value of query parameter `name` (not decoded); NULL when absent. */
const char *inv__rest_query(const struct inv__rest_ctx *ctx, const char *name, size_t *len);
/* The location `uuid` of the organization, or a 404 answered on `property`. */
const inv_location *inv__rest_location(struct inv__rest_ctx *ctx, const inv_uuid *uuid,
                                       const char *property);
/* The organization's locations as values, in inv_org_location_at() order;
 * returns the count (at most `max`). */
size_t inv__rest_locations(const struct inv__rest_ctx *ctx, inv_json_location *out, size_t max);
/* The public value form of a location handle. */
inv_json_location inv__rest_location_value(const inv_location *loc);
/* Apply options filled from the request (idempotency key, user, client). */
void inv__rest_apply_options(const struct inv__rest_ctx *ctx, inv_apply_options *opts);

/*
 * Resolve decoded changes and apply them with `opts`: locations (404 on the
 * property), variants (400 VARIANT_PRODUCT_MISMATCH), then the batch; a
 * failure is answered with the failing change's property, which `path`
 * builds from the change's index and a field ("change", "productUuid", ...;
 * "tracking" with the index of a tracking change of opts).
 * Returns the result, or NULL when the response was already set.
 */
typedef void (*inv__rest_path_fn)(char *buf, size_t size, const void *payload, size_t index,
                                  const char *field);
inv_result *inv__rest_apply(struct inv__rest_ctx *ctx, const inv_json_change *changes,
                            size_t count, inv_apply_options *opts, inv__rest_path_fn path,
                            const void *payload, int v3_names);

/* --- handlers --- */
void inv__rest_v1_locations(struct inv__rest_ctx *ctx);
void inv__rest_v1_location_balances(struct inv__rest_ctx *ctx);
void inv__rest_v1_type_balances(struct inv__rest_ctx *ctx);
void inv__rest_v1_product_balances(struct inv__rest_ctx *ctx);
void inv__rest_v1_filter_balances(struct inv__rest_ctx *ctx);
void inv__rest_v1_start_tracking(struct inv__rest_ctx *ctx);
void inv__rest_v1_stop_tracking(struct inv__rest_ctx *ctx);
void inv__rest_v1_changes(struct inv__rest_ctx *ctx);
void inv__rest_v2_bulk(struct inv__rest_ctx *ctx);

void inv__rest_ls_set(struct inv__rest_ctx *ctx);
void inv__rest_ls_set_many(struct inv__rest_ctx *ctx);
void inv__rest_ls_read_location(struct inv__rest_ctx *ctx);
void inv__rest_ls_read_product(struct inv__rest_ctx *ctx);
void inv__rest_ls_delete(struct inv__rest_ctx *ctx);
void inv__rest_ls_delete_many(struct inv__rest_ctx *ctx);

void inv__rest_v3_inventories(struct inv__rest_ctx *ctx);
void inv__rest_v3_inventory(struct inv__rest_ctx *ctx);
void inv__rest_v3_stock(struct inv__rest_ctx *ctx);
void inv__rest_v3_movements(struct inv__rest_ctx *ctx);
void inv__rest_v3_products(struct inv__rest_ctx *ctx);
void inv__rest_v3_products_status(struct inv__rest_ctx *ctx);
void inv__rest_v3_low_stock(struct inv__rest_ctx *ctx);

#endif /* ZINV_REST_INT_H */
