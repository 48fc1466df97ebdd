/*
 * zinv/json.h - codecs for the Zettle Inventory wire format (spec WIRE.md).
 *
 * Decoders take the text of a request body (pointer + length, need not be
 * NUL-terminated) and fill plain C structures: UUIDs as inv_uuid, quantities
 * as int64_t.  They do not touch a store; resolving UUIDs to handles is the
 * caller's step ("decode, resolve, apply").  They are lenient where the
 * service is (a quantity as 3 or "3", UUIDs in either case, unknown fields
 * ignored) and strict about everything else: each problem becomes a
 * violation naming the request's own property path
 * ("productChanges[1].variantChanges[0].change") and a constraint type.
 *
 * Every decoder returns 0, INV_EINVAL (the body is not JSON or breaks a
 * rule: *violations, when the pointer is not NULL, receives the list, empty
 * when the text is not JSON at all), INV_ETOOBIG (more than
 * INV_JSON_MAX_CHANGES moves or list entries) or INV_ENOMEM.  Decoded blocks are single
 * allocations freed with inv_free().
 *
 * Encoders write compact JSON text with the keys in the order of the
 * examples; *out is NUL-terminated, *len excludes the NUL; free *out with
 * inv_free().  UUIDs are written lowercase; v1/v2 and webhook balances as
 * strings ("42"), v3 balances as numbers.
 */
#ifndef ZINV_JSON_H
#define ZINV_JSON_H

#include "apply.h"
#include "lowstock.h"
#include "events.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most moves one request body may carry (all changes of a PUT, all
 * variantChanges of a bulk, all v3 movements). */
#define INV_JSON_MAX_CHANGES 10000

/* Constraint types of a violation: the service's enum.  Values are frozen. */
typedef enum inv_json_constraint {
	INV_JSON_UNKNOWN = 0,
	INV_JSON_MUST_NOT_BE_NULL = 1,
	INV_JSON_MUST_BE_GREATER_THAN = 2,
	INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN = 3,
	INV_JSON_MUST_MATCH_PATTERN = 4,
	INV_JSON_MUST_NOT_BE_EMPTY = 5,
	INV_JSON_INVALID_SIZE = 6,
	INV_JSON_INVALID_RANGE = 7
} inv_json_constraint;

/* The wire name of a constraint ("MUST_NOT_BE_NULL"); "UNKNOWN" for any
 * value outside the enum.  Never NULL. */
INV_EXTERN const char *inv_json_constraint_name(int constraint);

/* One violation.  Frozen.  The strings are owned by the list. */
typedef struct inv_json_violation {
	const char *property;  /* "changes[1].change"; "" for the whole body */
	const char *message;   /* "must be greater than 0" */
	int32_t constraint;    /* inv_json_constraint */
	int32_t reserved;
} inv_json_violation;

/* A list of violations, in document order.  Opaque. */
typedef struct inv_json_violations inv_json_violations;

INV_EXTERN size_t inv_json_violations_count(const inv_json_violations *list);
/* The i-th violation; NULL when out of range. */
INV_EXTERN const inv_json_violation *inv_json_violations_at(const inv_json_violations *list,
                                                            size_t i);
/* NULL is a no-op. */
INV_EXTERN void inv_json_violations_free(inv_json_violations *list);

/* ------------------------------------------------------------ decoders */

/* One move as a body names it.  Frozen (72 bytes). */
typedef struct inv_json_change {
	inv_uuid product;
	inv_uuid variant;
	inv_uuid from;
	inv_uuid to;
	int64_t quantity;
} inv_json_change;

/*
 * A batch of moves: the v1 PUT body (externalUuid) or the v3 movements body
 * (identifier, reported as external_uuid).  Frozen; one allocation.
 */
typedef struct inv_json_changes {
	size_t count;
	const inv_json_change *changes;
	int32_t has_return_location;  /* returnBalanceForLocationUuid given */
	int32_t has_external_uuid;
	inv_uuid return_location;
	inv_uuid external_uuid;
} inv_json_changes;

/* PUT /organizations/{org}/inventory. */
INV_EXTERN int inv_json_decode_changes(inv_json_changes **out, inv_json_violations **violations,
                                       const char *text, size_t len);

/* POST /v3/movements (violations named movements[i].from and so on). */
INV_EXTERN int inv_json_decode_movements(inv_json_changes **out,
                                         inv_json_violations **violations,
                                         const char *text, size_t len);

/* One productChanges element of a v2 bulk.  Frozen. */
typedef struct inv_json_bulk_product {
	inv_uuid product;
	int32_t action;          /* 0: NO_CHANGE, else inv_tracking_action */
	int32_t reserved;
	size_t first_change;     /* its variantChanges are changes[first_change ..] */
	size_t change_count;
} inv_json_bulk_product;

/* A v2 bulk body; the moves of all products flattened in order.  Frozen;
 * one allocation. */
typedef struct inv_json_bulk {
	size_t product_count;
	const inv_json_bulk_product *products;
	size_t change_count;
	const inv_json_change *changes;
	int32_t has_return_location;
	int32_t has_external_uuid;
	inv_uuid return_location;
	inv_uuid external_uuid;
} inv_json_bulk;

/* POST /organizations/{org}/v2/inventory/bulk. */
INV_EXTERN int inv_json_decode_bulk(inv_json_bulk **out, inv_json_violations **violations,
                                    const char *text, size_t len);

/* POST /organizations/{org}/inventory: {"productUuid": "..."}. */
INV_EXTERN int inv_json_decode_start_tracking(inv_uuid *product,
                                              inv_json_violations **violations,
                                              const char *text, size_t len);

/* The filter read body {locationType, productUuids}.  Frozen; one allocation. */
typedef struct inv_json_product_filter {
	int32_t location_type;   /* inv_location_type */
	int32_t reserved;
	size_t count;
	const inv_uuid *products;
} inv_json_product_filter;

/* POST /organizations/{org}/inventory/products. */
INV_EXTERN int inv_json_decode_product_filter(inv_json_product_filter **out,
                                              inv_json_violations **violations,
                                              const char *text, size_t len);

/* PUT /custom-low-stock/locations/{loc}: one entry into *out. */
INV_EXTERN int inv_json_decode_low_stock(inv_low_stock *out, inv_json_violations **violations,
                                         const char *text, size_t len);

/* POST /custom-low-stock/locations/{loc}: {"requests": [...]}; free *out
 * with inv_free(). */
INV_EXTERN int inv_json_decode_low_stock_many(inv_low_stock **out, size_t *count,
                                              inv_json_violations **violations,
                                              const char *text, size_t len);

/* POST /custom-low-stock/locations/{loc}/delete: {"requests":
 * [{productUuid, variantUuid}]}; level and alert are 0 in *out. */
INV_EXTERN int inv_json_decode_low_stock_delete(inv_low_stock **out, size_t *count,
                                                inv_json_violations **violations,
                                                const char *text, size_t len);

/* POST /v3/products: [{productUuid, tracking: "enable"|"disable"}]. */
INV_EXTERN int inv_json_decode_v3_products(inv_tracking_change **out, size_t *count,
                                           inv_json_violations **violations,
                                           const char *text, size_t len);

/* POST /v3/products/status: ["<productUuid>", ...] (may be empty). */
INV_EXTERN int inv_json_decode_v3_products_status(inv_uuid **out, size_t *count,
                                                  inv_json_violations **violations,
                                                  const char *text, size_t len);

/* One v3 custom-low-stock element.  Frozen.  A level of null or 0 arrives
 * as has_level 0 (the v3 API removes the level then). */
typedef struct inv_json_v3_low_stock {
	inv_uuid location;       /* inventoryUuid */
	inv_low_stock entry;
} inv_json_v3_low_stock;

/* POST /v3/custom-low-stock. */
INV_EXTERN int inv_json_decode_v3_low_stock(inv_json_v3_low_stock **out, size_t *count,
                                            inv_json_violations **violations,
                                            const char *text, size_t len);

/* ------------------------------------------------------------ encoders */

/* A location as the encoders need it.  Frozen. */
typedef struct inv_json_location {
	inv_uuid uuid;
	int32_t type;            /* inv_location_type */
	int32_t is_default;
} inv_json_location;

/* GET .../locations: the bare array of location objects. */
INV_EXTERN int inv_json_encode_locations(char **out, size_t *len,
                                         const inv_json_location *locations, size_t count);

/* GET /v3/inventories: the array of inventory objects. */
INV_EXTERN int inv_json_encode_inventories(char **out, size_t *len,
                                           const inv_json_location *locations, size_t count);

/* GET /v3/inventories/{inv}: one inventory object. */
INV_EXTERN int inv_json_encode_inventory(char **out, size_t *len,
                                         const inv_json_location *location);

/*
 * The v1 status object {locationUuid, trackedProducts, variants}: the
 * balances of `location` (balances as strings).  `tracked` NULL omits
 * trackedProducts (single-product reads, change results); otherwise it
 * lists `tracked_count` product UUIDs.
 */
INV_EXTERN int inv_json_encode_status(char **out, size_t *len,
                                      const inv_json_location *location,
                                      const inv_balance *balances, size_t count,
                                      const inv_uuid *tracked, size_t tracked_count);

/* The PUT / bulk answer from a batch result: {locationUuid, variants}. */
INV_EXTERN int inv_json_encode_result(char **out, size_t *len, const inv_result *result);

/* GET /custom-low-stock/v2/locations/{loc}: entries sorted by product
 * (as inv_low_stock_list() returns them), grouped per product. */
INV_EXTERN int inv_json_encode_low_stock_location(char **out, size_t *len,
                                                  const inv_uuid *org, const inv_uuid *location,
                                                  const inv_low_stock *entries, size_t count);

/* GET /custom-low-stock/v2/locations/{loc}/products/{p}. */
INV_EXTERN int inv_json_encode_low_stock_product(char **out, size_t *len,
                                                 const inv_uuid *product,
                                                 const inv_low_stock *entries, size_t count);

/* GET /v3/stock...: balances read with low stock (balances as numbers,
 * `updated` from inv_balance.updated). */
INV_EXTERN int inv_json_encode_v3_stock(char **out, size_t *len, const inv_uuid *org,
                                        const inv_uuid *location,
                                        const inv_balance *balances, size_t count);

/* POST /v3/products/status: [{productUuid, enabled}]; enabled[i] != 0. */
INV_EXTERN int inv_json_encode_v3_products_status(char **out, size_t *len,
                                                  const inv_uuid *products,
                                                  const int32_t *enabled, size_t count);

/* The error body {developerMessage, errorType, violations}. */
INV_EXTERN int inv_json_encode_error(char **out, size_t *len, const char *error_type,
                                     const char *message,
                                     const inv_json_violation *violations, size_t count);

/* The payload object of a webhook for `event`: InventoryBalanceChanged,
 * InventoryTrackingStarted, InventoryTrackingStopped or
 * InventoryLowStockChanged (one payload per low-stock item: `item`). */
INV_EXTERN int inv_json_encode_event_payload(char **out, size_t *len, const inv_event *event,
                                             size_t item);

/* The eventName of an event type; NULL for an unknown type. */
INV_EXTERN const char *inv_json_event_name(int type);

/* Options of a webhook envelope; a versioned struct. */
typedef struct inv_json_envelope_options {
	uint32_t version;             /* INV_JSON_ENVELOPE_OPTIONS_VERSION */
	int32_t reserved;
	const inv_uuid *message_uuid; /* NULL: derived from org, sequence, item */
	const char *message_id;       /* NULL: the messageUuid text */
	int64_t timestamp;            /* ms since the epoch; 0: the entry's time */
	/* members above are valid for version 1 */
} inv_json_envelope_options;

#define INV_JSON_ENVELOPE_OPTIONS_VERSION 1
#define INV_JSON_ENVELOPE_OPTIONS_INIT { INV_JSON_ENVELOPE_OPTIONS_VERSION, 0, NULL, NULL, 0 }

/*
 * The Pusher envelope {organizationUuid, messageUuid, eventName, messageId,
 * payload, timestamp} with the payload of inv_json_encode_event_payload() as
 * a string.  `opts` may be NULL.
 */
INV_EXTERN int inv_json_encode_webhook(char **out, size_t *len, const inv_event *event,
                                       size_t item, const inv_json_envelope_options *opts);

/* Format ms since the epoch as "2021-04-19T13:18:11.966+0000" (webhook
 * payloads, `zulu` 0) or "2021-04-19T13:18:11.966Z" (envelope, v3, `zulu`
 * 1) into `out` (32 bytes).  Returns the length. */
INV_EXTERN size_t inv_json_format_time(char out[32], int64_t ms, int zulu);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_JSON_H */
