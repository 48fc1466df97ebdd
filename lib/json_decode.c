/*
 * json_decode.c - request body decoders.
 *
 * One walker per body shape over a jansson tree.  Every rule broken adds a
 * violation named by the request's own path, and the walk goes on, so one
 * answer lists every problem (up to INV__VIOLATIONS_MAX).  Nothing is
 * allocated for the caller unless the whole body is valid.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_int.h"
#include "json_int.h"

enum { ABSENT = 0, PRESENT = 1, BAD = -1 };

/* One step of the current property path: a key or an array index. */
struct step {
	const char *key;   /* NULL for an index */
	size_t index;
};

struct dec {
	inv_json_violations *v;
	struct step path[8]; /* bodies nest at most 4 deep; extra steps are dropped */
	size_t depth;
	int as_real;   /* the body had an integer beyond int64: reparsed as reals */
	int failed;    /* a violation was added */
	int oom;
};

/* ------------------------------------------------------------ paths */

/* The path is kept as steps and rendered only when a violation needs it:
 * valid bodies, the common case, never format a property name. */
static size_t push_key(struct dec *d, const char *key)
{
	size_t mark = d->depth;

	if (d->depth < sizeof(d->path) / sizeof(*d->path))
		d->path[d->depth] = (struct step){ key, 0 };
	d->depth++;
	return mark;
}

static size_t push_index(struct dec *d, size_t i)
{
	size_t mark = d->depth;

	if (d->depth < sizeof(d->path) / sizeof(*d->path))
		d->path[d->depth] = (struct step){ NULL, i };
	d->depth++;
	return mark;
}

static void pop(struct dec *d, size_t mark)
{
	d->depth = mark;
}

static void render_path(const struct dec *d, char *buf, size_t size)
{
	size_t i, n = 0, max = sizeof(d->path) / sizeof(*d->path);

	buf[0] = '\0';
	for (i = 0; i < d->depth && i < max && n < size; i++) {
		int w = d->path[i].key
		        ? snprintf(buf + n, size - n, "%s%s", n ? "." : "", d->path[i].key)
		        : snprintf(buf + n, size - n, "[%zu]", d->path[i].index);

		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static void violation(struct dec *d, int constraint, const char *message)
{
	char path[256];

	d->failed = 1;
	render_path(d, path, sizeof(path));
	if (inv__violation_add(d->v, path, constraint, message) != 0)
		d->oom = 1;
}

/* Violation on `key` of the current object. */
static void violation_at(struct dec *d, const char *key, int constraint, const char *message)
{
	size_t mark = push_key(d, key);

	violation(d, constraint, message);
	pop(d, mark);
}

/* ------------------------------------------------------------ values */

static int uuid_value(struct dec *d, json_t *value, inv_uuid *out, int required)
{
	if (!value || json_is_null(value)) {
		if (!required)
			return ABSENT;
		violation(d, INV_JSON_MUST_NOT_BE_NULL, "must not be null");
		return BAD;
	}
	if (!json_is_string(value) ||
	    inv_uuid_parse(out, json_string_value(value), json_string_length(value)) != 0) {
		violation(d, INV_JSON_MUST_MATCH_PATTERN, "must be a UUID");
		return BAD;
	}
	return PRESENT;
}

static int uuid_field(struct dec *d, json_t *obj, const char *key, inv_uuid *out, int required)
{
	size_t mark = push_key(d, key);
	int rc = uuid_value(d, json_object_get(obj, key), out, required);

	pop(d, mark);
	return rc;
}

/*
 * An integer quantity in min ..= INV_QUANTITY_MAX: a JSON integer or a
 * string of decimal digits (optionally signed, so that "-3" is reported as
 * too small rather than malformed).
 */
static int quantity_value(struct dec *d, json_t *value, int64_t min, int64_t *out, int required)
{
	int64_t n;
	int too_big = 0;

	if (!value || json_is_null(value)) {
		if (!required)
			return ABSENT;
		violation(d, INV_JSON_MUST_NOT_BE_NULL, "must not be null");
		return BAD;
	}
	if (json_is_integer(value)) {
		n = json_integer_value(value);
	} else if (json_is_real(value) && d->as_real) {
		/* Only in a body that also holds an integer beyond int64 (see
		 * decode_parse): reals stand for integers there. */
		double r = json_real_value(value);

		if (r != floor(r)) {
			violation(d, INV_JSON_MUST_MATCH_PATTERN, "must be an integer");
			return BAD;
		}
		if (r > (double)INV_QUANTITY_MAX)
			too_big = 1, n = INV_QUANTITY_MAX;
		else if (r < -(double)INV_QUANTITY_MAX)
			n = -INV_QUANTITY_MAX;
		else
			n = (int64_t)r;
	} else if (json_is_string(value)) {
		const char *s = json_string_value(value);
		size_t len = json_string_length(value), i = 0;
		int neg = 0;

		if (len > 0 && s[0] == '-')
			neg = 1, i = 1;
		if (i == len) {
			violation(d, INV_JSON_MUST_MATCH_PATTERN, "must be an integer");
			return BAD;
		}
		n = 0;
		for (; i < len; i++) {
			if (s[i] < '0' || s[i] > '9') {
				violation(d, INV_JSON_MUST_MATCH_PATTERN, "must be an integer");
				return BAD;
			}
			if (n <= INV_QUANTITY_MAX)
				n = n * 10 + (s[i] - '0');
		}
		if (n > INV_QUANTITY_MAX)
			too_big = 1;
		if (neg)
			n = -n;
	} else {
		violation(d, INV_JSON_MUST_MATCH_PATTERN, "must be an integer");
		return BAD;
	}
	if (too_big || n > INV_QUANTITY_MAX) {
		violation(d, INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN,
		          "must be less than or equal to 9007199254740991");
		return BAD;
	}
	if (n < min) {
		if (min == 1)
			violation(d, INV_JSON_MUST_BE_GREATER_THAN, "must be greater than 0");
		else
			violation(d, INV_JSON_INVALID_RANGE, "must be greater than or equal to 0");
		return BAD;
	}
	*out = n;
	return PRESENT;
}

static int quantity_field(struct dec *d, json_t *obj, const char *key, int64_t min,
                          int64_t *out, int required)
{
	size_t mark = push_key(d, key);
	int rc = quantity_value(d, json_object_get(obj, key), min, out, required);

	pop(d, mark);
	return rc;
}

/* A boolean; absent or null is false. */
static int bool_field(struct dec *d, json_t *obj, const char *key, int32_t *out)
{
	json_t *value = json_object_get(obj, key);

	*out = 0;
	if (!value || json_is_null(value))
		return ABSENT;
	if (!json_is_boolean(value)) {
		violation_at(d, key, INV_JSON_MUST_MATCH_PATTERN, "must be a boolean");
		return BAD;
	}
	*out = json_is_true(value);
	return PRESENT;
}

/* An exact enum value; required. */
static int enum_field(struct dec *d, json_t *obj, const char *key, const char *const *names,
                      const int *values, size_t n, const char *message, int *out)
{
	json_t *value = json_object_get(obj, key);
	size_t i;

	if (!value || json_is_null(value)) {
		violation_at(d, key, INV_JSON_MUST_NOT_BE_NULL, "must not be null");
		return BAD;
	}
	if (json_is_string(value)) {
		for (i = 0; i < n; i++) {
			if (json_string_length(value) == strlen(names[i]) &&
			    strcmp(json_string_value(value), names[i]) == 0) {
				*out = values[i];
				return PRESENT;
			}
		}
	}
	violation_at(d, key, INV_JSON_MUST_MATCH_PATTERN, message);
	return BAD;
}

/* The array under `key` (the current value when key is NULL). */
static json_t *array_field(struct dec *d, json_t *obj, const char *key, int required,
                           int nonempty)
{
	json_t *value = key ? json_object_get(obj, key) : obj;
	size_t mark = key ? push_key(d, key) : d->depth;

	if (!value || json_is_null(value)) {
		if (required)
			violation(d, INV_JSON_MUST_NOT_BE_NULL, "must not be null");
		value = NULL;
	} else if (!json_is_array(value)) {
		violation(d, INV_JSON_MUST_MATCH_PATTERN, "must be an array");
		value = NULL;
	} else if (nonempty && json_array_size(value) == 0) {
		violation(d, INV_JSON_MUST_NOT_BE_EMPTY, "must not be empty");
		value = NULL;
	}
	pop(d, mark);
	return value;
}

/* Elements of arrays must be objects. */
static int object_element(struct dec *d, json_t *value)
{
	if (json_is_object(value))
		return 1;
	violation(d, value && !json_is_null(value) ? INV_JSON_MUST_MATCH_PATTERN
	                                           : INV_JSON_MUST_NOT_BE_NULL,
	          value && !json_is_null(value) ? "must be an object" : "must not be null");
	return 0;
}

/* ------------------------------------------------------------ framing */

/*
 * Parse the body.  jansson refuses integers beyond int64 outright; such a
 * body is still JSON, and its author deserves to hear which property is too
 * large, so it is parsed again with every number as a real and the walk
 * reports the property (quantity_value's as_real branch).
 */
static int decode_begin(struct dec *d, json_t **root, inv_json_violations **violations,
                        const char *text, size_t len)
{
	json_error_t err;

	memset(d, 0, sizeof(*d));
	if (violations)
		*violations = NULL;
	d->v = inv__violations_new();
	if (!d->v)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	*root = text ? json_loadb(text, len, 0, &err) : NULL;
	if (!*root && text && json_error_code(&err) == json_error_numeric_overflow) {
		*root = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &err);
		d->as_real = *root != NULL;
	}
	if (!*root) {
		if (text && json_error_code(&err) == json_error_out_of_memory) {
			inv_json_violations_free(d->v);
			return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		}
		d->failed = 1;
		if (violations)
			*violations = d->v;
		else
			inv_json_violations_free(d->v);
		return inv__error(INV_EINVAL, -1, NULL, "body is not JSON: %s",
		                  text ? err.text : "no body");
	}
	return 0;
}

/* Close a decode: hand out the violations on failure, free them otherwise. */
static int decode_end(struct dec *d, json_t *root, inv_json_violations **violations, int rc)
{
	json_decref(root);
	if (d->oom)
		rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	else if (rc == 0 && d->failed)
		rc = inv__error(INV_EINVAL, -1, d->v->count ? d->v->items[0].property : NULL,
		                "%s%s%s", d->v->count ? d->v->items[0].property : "",
		                d->v->count && d->v->items[0].property[0] ? " " : "",
		                d->v->count ? d->v->items[0].message : "invalid body");
	if (rc == INV_EINVAL && violations)
		*violations = d->v;
	else
		inv_json_violations_free(d->v);
	return rc;
}

static int expect_object(struct dec *d, json_t *root)
{
	if (json_is_object(root))
		return 1;
	violation(d, INV_JSON_MUST_MATCH_PATTERN, "body must be a JSON object");
	return 0;
}

static int expect_array(struct dec *d, json_t *root)
{
	if (json_is_array(root))
		return 1;
	violation(d, INV_JSON_MUST_MATCH_PATTERN, "body must be a JSON array");
	return 0;
}

static int too_many(size_t n)
{
	return inv__error(INV_ETOOBIG, -1, NULL, "%zu changes; at most %d per request", n,
	                  INV_JSON_MAX_CHANGES);
}

/* One allocation holding a header of `head` bytes and an array. */
static void *block_new(size_t head, size_t count, size_t size, void **array)
{
	size_t off = (head + 15) & ~(size_t)15;
	char *p = calloc(1, off + (count ? count * size : 1));

	if (p)
		*array = p + off;
	return p;
}

/* ------------------------------------------------------------ changes */

/* One move object; names are the v1 ones or the v3 ones. */
struct change_names {
	const char *from, *to, *quantity;
};

static const struct change_names v1_names = { "fromLocationUuid", "toLocationUuid", "change" };
static const struct change_names v3_names = { "from", "to", "change" };

/* `parent`: the product of a bulk element (NULL outside a bulk);
 * `parent_ok` 0 when that product was itself invalid. */
static void change_object(struct dec *d, json_t *obj, const struct change_names *names,
                          const inv_uuid *parent, int parent_ok, inv_json_change *out)
{
	int from, to;

	if (parent) {
		inv_uuid p;

		/* The bulk's variant changes may repeat their parent's product. */
		if (uuid_field(d, obj, "productUuid", &p, 0) == PRESENT && parent_ok &&
		    inv_uuid_compare(&p, parent) != 0)
			violation_at(d, "productUuid", INV_JSON_UNKNOWN,
			             "must match the productUuid of its productChanges element");
		out->product = *parent;
	} else {
		uuid_field(d, obj, "productUuid", &out->product, 1);
	}
	uuid_field(d, obj, "variantUuid", &out->variant, 1);
	from = uuid_field(d, obj, names->from, &out->from, 1);
	to = uuid_field(d, obj, names->to, &out->to, 1);
	if (from == PRESENT && to == PRESENT && inv_uuid_compare(&out->from, &out->to) == 0)
		violation_at(d, names->to, INV_JSON_UNKNOWN,
		             names == &v1_names ? "must differ from fromLocationUuid"
		                                : "must differ from from");
	quantity_field(d, obj, names->quantity, 1, &out->quantity, 1);
}

static int decode_change_list(inv_json_changes **out, inv_json_violations **violations,
                              const char *text, size_t len, const char *list_key,
                              const char *external_key, const struct change_names *names,
                              int with_return)
{
	struct dec d;
	json_t *root, *list = NULL;
	inv_json_changes *res = NULL, head;
	inv_json_change *changes = NULL;
	size_t i, n = 0;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	*out = NULL;
	rc = decode_begin(&d, &root, violations, text, len);
	if (rc)
		return rc;
	memset(&head, 0, sizeof(head));
	if (!expect_object(&d, root))
		return decode_end(&d, root, violations, 0);
	list = array_field(&d, root, list_key, 1, 1);
	n = list ? json_array_size(list) : 0;
	if (n > INV_JSON_MAX_CHANGES)
		return decode_end(&d, root, violations, too_many(n));
	res = block_new(sizeof(*res), n, sizeof(*changes), (void **)&changes);
	if (!res)
		return decode_end(&d, root, violations,
		                  inv__error(INV_ENOMEM, -1, NULL, "out of memory"));
	for (i = 0; i < n; i++) {
		size_t mark = push_key(&d, list_key);
		json_t *obj = json_array_get(list, i);

		push_index(&d, i);
		if (object_element(&d, obj))
			change_object(&d, obj, names, NULL, 0, &changes[i]);
		pop(&d, mark);
	}
	if (with_return)
		head.has_return_location = uuid_field(&d, root, "returnBalanceForLocationUuid",
		                                      &head.return_location, 0) == PRESENT;
	head.has_external_uuid = uuid_field(&d, root, external_key, &head.external_uuid, 0) ==
	                         PRESENT;
	rc = decode_end(&d, root, violations, 0);
	if (rc) {
		free(res);
		return rc;
	}
	head.count = n;
	head.changes = changes;
	*res = head;
	*out = res;
	return 0;
}

int inv_json_decode_changes(inv_json_changes **out, inv_json_violations **violations,
                            const char *text, size_t len)
{
	return decode_change_list(out, violations, text, len, "changes", "externalUuid",
	                          &v1_names, 1);
}

int inv_json_decode_movements(inv_json_changes **out, inv_json_violations **violations,
                              const char *text, size_t len)
{
	return decode_change_list(out, violations, text, len, "movements", "identifier",
	                          &v3_names, 0);
}

/* ------------------------------------------------------------ bulk */

static const char *const tracking_names[] = { "START_TRACKING", "STOP_TRACKING", "NO_CHANGE" };
static const int tracking_values[] = { INV_TRACKING_START, INV_TRACKING_STOP, 0 };

int inv_json_decode_bulk(inv_json_bulk **out, inv_json_violations **violations,
                         const char *text, size_t len)
{
	struct dec d;
	json_t *root, *list;
	inv_json_bulk *res, head;
	inv_json_bulk_product *products = NULL;
	inv_json_change *changes;
	size_t i, n, moves = 0, next = 0;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	*out = NULL;
	rc = decode_begin(&d, &root, violations, text, len);
	if (rc)
		return rc;
	memset(&head, 0, sizeof(head));
	if (!expect_object(&d, root))
		return decode_end(&d, root, violations, 0);
	list = array_field(&d, root, "productChanges", 1, 1);
	n = list ? json_array_size(list) : 0;
	/* Count every move first: 413 is decided before any 400. */
	for (i = 0; i < n; i++) {
		json_t *vc = json_object_get(json_array_get(list, i), "variantChanges");

		if (json_is_array(vc))
			moves += json_array_size(vc);
	}
	if (moves > INV_JSON_MAX_CHANGES)
		return decode_end(&d, root, violations, too_many(moves));
	if (n > INV_JSON_MAX_CHANGES)
		return decode_end(&d, root, violations,
		                  inv__error(INV_ETOOBIG, -1, NULL, "%zu productChanges; at most %d",
		                             n, INV_JSON_MAX_CHANGES));
	/* Products and changes share one block: header, products, changes. */
	{
		size_t head_sz = (sizeof(*res) + 15) & ~(size_t)15;
		size_t prod_sz = (n * sizeof(*products) + 15) & ~(size_t)15;
		char *p = calloc(1, head_sz + prod_sz + moves * sizeof(*changes) + 1);

		if (!p)
			return decode_end(&d, root, violations,
			                  inv__error(INV_ENOMEM, -1, NULL, "out of memory"));
		res = (inv_json_bulk *)p;
		products = (inv_json_bulk_product *)(p + head_sz);
		changes = (inv_json_change *)(p + head_sz + prod_sz);
	}
	for (i = 0; i < n; i++) {
		size_t mark = push_key(&d, "productChanges");
		json_t *obj = json_array_get(list, i), *vcs;
		inv_json_bulk_product *bp = &products[i];
		int has_product;

		push_index(&d, i);
		if (!object_element(&d, obj)) {
			pop(&d, mark);
			continue;
		}
		has_product = uuid_field(&d, obj, "productUuid", &bp->product, 1) == PRESENT;
		enum_field(&d, obj, "trackingStatusChange", tracking_names, tracking_values, 3,
		           "must be START_TRACKING, STOP_TRACKING or NO_CHANGE", &bp->action);
		vcs = array_field(&d, obj, "variantChanges", 0, 0);
		bp->first_change = next;
		bp->change_count = vcs ? json_array_size(vcs) : 0;
		if (vcs) {
			size_t j, vmark = push_key(&d, "variantChanges");

			for (j = 0; j < bp->change_count; j++) {
				json_t *vc = json_array_get(vcs, j);
				size_t imark = push_index(&d, j);

				if (object_element(&d, vc))
					change_object(&d, vc, &v1_names, &bp->product, has_product,
					              &changes[next + j]);
				pop(&d, imark);
			}
			pop(&d, vmark);
		}
		next += bp->change_count;
		pop(&d, mark);
	}
	head.has_return_location = uuid_field(&d, root, "returnBalanceForLocationUuid",
	                                      &head.return_location, 0) == PRESENT;
	head.has_external_uuid = uuid_field(&d, root, "externalUuid", &head.external_uuid, 0) ==
	                         PRESENT;
	rc = decode_end(&d, root, violations, 0);
	if (rc) {
		free(res);
		return rc;
	}
	head.product_count = n;
	head.products = products;
	head.change_count = next;
	head.changes = changes;
	*res = head;
	*out = res;
	return 0;
}

/* ------------------------------------------------------------ tracking */

int inv_json_decode_start_tracking(inv_uuid *product, inv_json_violations **violations,
                                   const char *text, size_t len)
{
	struct dec d;
	json_t *root;
	inv_uuid p;
	int rc;

	if (!product)
		return inv__error(INV_EINVAL, -1, "product", "product is NULL");
	rc = decode_begin(&d, &root, violations, text, len);
	if (rc)
		return rc;
	if (expect_object(&d, root))
		uuid_field(&d, root, "productUuid", &p, 1);
	rc = decode_end(&d, root, violations, 0);
	if (rc == 0)
		*product = p;
	return rc;
}

/* ------------------------------------------------------------ filter */

/* Array of UUID strings under the current path. */
static void uuid_array(struct dec *d, json_t *list, inv_uuid *out)
{
	size_t i;

	for (i = 0; i < json_array_size(list); i++) {
		size_t mark = push_index(d, i);

		uuid_value(d, json_array_get(list, i), &out[i], 1);
		pop(d, mark);
	}
}

int inv_json_decode_product_filter(inv_json_product_filter **out,
                                   inv_json_violations **violations,
                                   const char *text, size_t len)
{
	static const char *const names[] = { "STORE", "SOLD", "BIN", "SUPPLIER" };
	static const int values[] = { INV_LOCATION_STORE, INV_LOCATION_SOLD, INV_LOCATION_BIN,
		                      INV_LOCATION_SUPPLIER };
	struct dec d;
	json_t *root, *list = NULL;
	inv_json_product_filter *res, head;
	inv_uuid *products;
	size_t n;
	int rc, type = 0;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	*out = NULL;
	rc = decode_begin(&d, &root, violations, text, len);
	if (rc)
		return rc;
	memset(&head, 0, sizeof(head));
	if (expect_object(&d, root)) {
		enum_field(&d, root, "locationType", names, values, 4,
		           "must be STORE, SOLD, BIN or SUPPLIER", &type);
		list = array_field(&d, root, "productUuids", 1, 0);
	}
	n = list ? json_array_size(list) : 0;
	res = block_new(sizeof(*res), n, sizeof(*products), (void **)&products);
	if (!res)
		return decode_end(&d, root, violations,
		                  inv__error(INV_ENOMEM, -1, NULL, "out of memory"));
	if (list) {
		size_t mark = push_key(&d, "productUuids");

		uuid_array(&d, list, products);
		pop(&d, mark);
	}
	rc = decode_end(&d, root, violations, 0);
	if (rc) {
		free(res);
		return rc;
	}
	head.location_type = type;
	head.count = n;
	head.products = products;
	*res = head;
	*out = res;
	return 0;
}

/* ------------------------------------------------------------ low stock */

/* {productUuid, variantUuid[, lowStockLevel, lowStockAlert]} */
static void low_stock_object(struct dec *d, json_t *obj, int with_level, int zero_unsets,
                             inv_low_stock *out)
{
	memset(out, 0, sizeof(*out));
	uuid_field(d, obj, "productUuid", &out->product, 1);
	uuid_field(d, obj, "variantUuid", &out->variant, 1);
	if (!with_level)
		return;
	if (quantity_field(d, obj, "lowStockLevel", 0, &out->level, 0) == PRESENT)
		out->has_level = !(zero_unsets && out->level == 0);
	if (!out->has_level)
		out->level = 0;
	bool_field(d, obj, "lowStockAlert", &out->alert);
}

int inv_json_decode_low_stock(inv_low_stock *out, inv_json_violations **violations,
                              const char *text, size_t len)
{
	struct dec d;
	json_t *root;
	inv_low_stock e;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	rc = decode_begin(&d, &root, violations, text, len);
	if (rc)
		return rc;
	memset(&e, 0, sizeof(e));
	if (expect_object(&d, root))
		low_stock_object(&d, root, 1, 0, &e);
	rc = decode_end(&d, root, violations, 0);
	if (rc == 0)
		*out = e;
	return rc;
}

/*
 * The frame shared by every body that is one list of like items: the list
 * is the member `key` of a top-level object ({"requests": [...]}), or with
 * `key` NULL the top-level array itself.  `each` decodes one element into
 * its `size`-byte item, under the element's own path.
 */
typedef void (*item_fn)(struct dec *d, json_t *elem, void *item, int arg);

static int decode_list(void **out, size_t *count, size_t size, const char *key,
                       int nonempty, item_fn each, int arg,
                       inv_json_violations **violations, const char *text, size_t len)
{
	struct dec d;
	json_t *root, *list = NULL;
	char *items;
	size_t i, n;
	int rc;

	if (!count)
		return inv__error(INV_EINVAL, -1, "count", "count is NULL");
	*count = 0;
	rc = decode_begin(&d, &root, violations, text, len);
	if (rc)
		return rc;
	if (key ? expect_object(&d, root) : expect_array(&d, root))
		list = array_field(&d, root, key, 1, nonempty);
	n = list ? json_array_size(list) : 0;
	if (n > INV_JSON_MAX_CHANGES)
		return decode_end(&d, root, violations, too_many(n));
	items = calloc(n ? n : 1, size);
	if (!items)
		return decode_end(&d, root, violations,
		                  inv__error(INV_ENOMEM, -1, NULL, "out of memory"));
	for (i = 0; i < n; i++) {
		size_t mark = key ? push_key(&d, key) : d.depth;

		push_index(&d, i);
		each(&d, json_array_get(list, i), items + i * size, arg);
		pop(&d, mark);
	}
	rc = decode_end(&d, root, violations, 0);
	if (rc) {
		free(items);
		return rc;
	}
	*out = items;
	*count = n;
	return 0;
}

/* One element of "requests": arg is 1 when it carries level and alert. */
static void request_item(struct dec *d, json_t *elem, void *item, int with_level)
{
	if (object_element(d, elem))
		low_stock_object(d, elem, with_level, 0, item);
}

int inv_json_decode_low_stock_many(inv_low_stock **out, size_t *count,
                                   inv_json_violations **violations, const char *text,
                                   size_t len)
{
	void *items = NULL;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	rc = decode_list(&items, count, sizeof(**out), "requests", 1, request_item, 1,
	                 violations, text, len);
	*out = items;
	return rc;
}

int inv_json_decode_low_stock_delete(inv_low_stock **out, size_t *count,
                                     inv_json_violations **violations, const char *text,
                                     size_t len)
{
	void *items = NULL;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	rc = decode_list(&items, count, sizeof(**out), "requests", 1, request_item, 0,
	                 violations, text, len);
	*out = items;
	return rc;
}

/* ------------------------------------------------------------ v3 */

static void v3_product_item(struct dec *d, json_t *elem, void *item, int unused)
{
	static const char *const names[] = { "enable", "disable" };
	static const int values[] = { INV_TRACKING_START, INV_TRACKING_STOP };
	inv_tracking_change *t = item;
	int action = 0;

	(void)unused;
	if (object_element(d, elem)) {
		uuid_field(d, elem, "productUuid", &t->product, 1);
		enum_field(d, elem, "tracking", names, values, 2, "must be enable or disable",
		           &action);
		t->action = action;
	}
}

int inv_json_decode_v3_products(inv_tracking_change **out, size_t *count,
                                inv_json_violations **violations, const char *text, size_t len)
{
	void *items = NULL;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	rc = decode_list(&items, count, sizeof(**out), NULL, 1, v3_product_item, 0,
	                 violations, text, len);
	*out = items;
	return rc;
}

static void uuid_item(struct dec *d, json_t *elem, void *item, int unused)
{
	(void)unused;
	uuid_value(d, elem, item, 1);
}

/* An empty list is a valid question with an empty answer. */
int inv_json_decode_v3_products_status(inv_uuid **out, size_t *count,
                                       inv_json_violations **violations, const char *text,
                                       size_t len)
{
	void *items = NULL;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	rc = decode_list(&items, count, sizeof(**out), NULL, 0, uuid_item, 0,
	                 violations, text, len);
	*out = items;
	return rc;
}

static void v3_low_stock_item(struct dec *d, json_t *elem, void *item, int unused)
{
	inv_json_v3_low_stock *e = item;

	(void)unused;
	if (object_element(d, elem)) {
		uuid_field(d, elem, "inventoryUuid", &e->location, 1);
		low_stock_object(d, elem, 1, 1, &e->entry);
	}
}

int inv_json_decode_v3_low_stock(inv_json_v3_low_stock **out, size_t *count,
                                 inv_json_violations **violations, const char *text, size_t len)
{
	void *items = NULL;
	int rc;

	if (!out)
		return inv__error(INV_EINVAL, -1, "out", "out is NULL");
	rc = decode_list(&items, count, sizeof(**out), NULL, 1, v3_low_stock_item, 0,
	                 violations, text, len);
	*out = items;
	return rc;
}
