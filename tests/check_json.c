/*
 * check_json.c - the codecs against spec/WIRE.md and its examples.
 *
 * Golden tests: each request example decodes to the values it holds; each
 * response example is rebuilt from its values by the encoder and must equal
 * the example as a JSON value (json_equal, not bytes).
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zinv.h>

#define ORG "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
#define STORE "5e0c1a22-9f3b-11ee-8c90-0242ac120002"
#define SOLD "5e0c1c3e-9f3b-11ee-8c90-0242ac120002"
#define BIN "5e0c1d6a-9f3b-11ee-8c90-0242ac120002"
#define SUPPLIER "5e0c1e8c-9f3b-11ee-8c90-0242ac120002"
#define P1 "7a51c3d0-9f3b-11ee-b962-0242ac120002"
#define V1 "7a51c6a0-9f3b-11ee-b962-0242ac120002"
#define V2 "7a51c7e0-9f3b-11ee-b962-0242ac120002"
#define P2 "8c2f0e1a-9f3b-11ee-a1b2-0242ac120002"
#define V3 "8c2f1102-9f3b-11ee-a1b2-0242ac120002"
#define EXT "947d712a-892d-11ea-bc55-0242ac130003"

static inv_uuid U(const char *text)
{
	inv_uuid u;

	ck_assert_int_eq(inv_uuid_parse(&u, text, strlen(text)), 0);
	return u;
}

#define ck_assert_uuid_eq(u, text) do { \
	char got_[37]; \
	inv_uuid_format(&(u), got_); \
	ck_assert_str_eq(got_, text); \
} while (0)

static char *slurp(const char *name, size_t *len)
{
	const char *dir = getenv("ZINV_TEST_DATA");
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/data", name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static json_t *load_example(const char *name)
{
	size_t len;
	char *text = slurp(name, &len);
	json_error_t err;
	json_t *j = json_loadb(text, len, 0, &err);

	ck_assert_msg(j != NULL, "%s: %s", name, err.text);
	free(text);
	return j;
}

/* The encoder's text must parse and equal the example as a JSON value. */
static void assert_json_equals_example(const char *text, size_t len, const char *example)
{
	json_error_t err;
	json_t *want = load_example(example);
	json_t *got = json_loadb(text, len, 0, &err);

	ck_assert_msg(got != NULL, "encoder output is not JSON: %s", text);
	ck_assert_uint_eq(strlen(text), len);
	if (!json_equal(want, got)) {
		char *w = json_dumps(want, JSON_COMPACT | JSON_PRESERVE_ORDER);

		ck_abort_msg("%s:\nexpected %s\n     got %s", example, w, text);
	}
	json_decref(want);
	json_decref(got);
}

static const char *sv(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static inv_balance balance_of(json_t *v)
{
	inv_balance b;
	json_t *bal = json_object_get(v, "balance");

	memset(&b, 0, sizeof(b));
	b.product = U(sv(v, "productUuid"));
	b.variant = U(sv(v, "variantUuid"));
	b.balance = json_is_string(bal) ? strtoll(json_string_value(bal), NULL, 10)
	                                : json_integer_value(bal);
	return b;
}

static inv_json_location store_location(void)
{
	inv_json_location loc = { U(STORE), INV_LOCATION_STORE, 1 };

	return loc;
}

/* ------------------------------------------------------------ golden: requests */

START_TEST(test_golden_changes_request_decodes)
{
	size_t len;
	char *text = slurp("changes.request.json", &len);
	inv_json_changes *c = NULL;

	ck_assert_int_eq(inv_json_decode_changes(&c, NULL, text, len), 0);
	ck_assert_uint_eq(c->count, 3);
	ck_assert_uuid_eq(c->changes[0].product, P1);
	ck_assert_uuid_eq(c->changes[0].variant, V1);
	ck_assert_uuid_eq(c->changes[0].from, STORE);
	ck_assert_uuid_eq(c->changes[0].to, SOLD);
	ck_assert_int_eq(c->changes[0].quantity, 3);
	ck_assert_uuid_eq(c->changes[1].to, BIN);
	ck_assert_int_eq(c->changes[1].quantity, 1);
	ck_assert_uuid_eq(c->changes[2].product, P2);
	ck_assert_uuid_eq(c->changes[2].variant, V3);
	ck_assert_uuid_eq(c->changes[2].from, SUPPLIER);
	ck_assert_int_eq(c->changes[2].quantity, 7);
	ck_assert_int_eq(c->has_return_location, 0);
	ck_assert_int_eq(c->has_external_uuid, 1);
	ck_assert_uuid_eq(c->external_uuid, EXT);
	inv_free(c);
	free(text);
}
END_TEST

START_TEST(test_golden_bulk_request_decodes)
{
	size_t len;
	char *text = slurp("bulk.request.json", &len);
	inv_json_bulk *b = NULL;

	ck_assert_int_eq(inv_json_decode_bulk(&b, NULL, text, len), 0);
	ck_assert_uint_eq(b->product_count, 2);
	ck_assert_uuid_eq(b->products[0].product, P1);
	ck_assert_int_eq(b->products[0].action, INV_TRACKING_START);
	ck_assert_uint_eq(b->products[0].first_change, 0);
	ck_assert_uint_eq(b->products[0].change_count, 2);
	ck_assert_uuid_eq(b->products[1].product, P2);
	ck_assert_int_eq(b->products[1].action, INV_TRACKING_START);
	ck_assert_uint_eq(b->products[1].change_count, 0);
	ck_assert_uint_eq(b->change_count, 2);
	ck_assert_uuid_eq(b->changes[0].product, P1);
	ck_assert_uuid_eq(b->changes[0].variant, V1);
	ck_assert_uuid_eq(b->changes[0].from, SUPPLIER);
	ck_assert_uuid_eq(b->changes[0].to, STORE);
	ck_assert_int_eq(b->changes[0].quantity, 10);
	ck_assert_uuid_eq(b->changes[1].variant, V2);
	ck_assert_int_eq(b->changes[1].quantity, 4); /* "4": a string quantity */
	ck_assert_int_eq(b->has_return_location, 1);
	ck_assert_uuid_eq(b->return_location, STORE);
	ck_assert_int_eq(b->has_external_uuid, 1);
	ck_assert_uuid_eq(b->external_uuid, EXT);
	inv_free(b);
	free(text);
}
END_TEST

START_TEST(test_golden_start_tracking_request_decodes)
{
	size_t len;
	char *text = slurp("start-tracking.request.json", &len);
	inv_uuid p;

	ck_assert_int_eq(inv_json_decode_start_tracking(&p, NULL, text, len), 0);
	ck_assert_uuid_eq(p, P2);
	free(text);
}
END_TEST

START_TEST(test_golden_products_filter_request_decodes)
{
	size_t len;
	char *text = slurp("products-filter.request.json", &len);
	inv_json_product_filter *f = NULL;

	ck_assert_int_eq(inv_json_decode_product_filter(&f, NULL, text, len), 0);
	ck_assert_int_eq(f->location_type, INV_LOCATION_STORE);
	ck_assert_uint_eq(f->count, 1);
	ck_assert_uuid_eq(f->products[0], P2);
	inv_free(f);
	free(text);
}
END_TEST

START_TEST(test_golden_low_stock_set_request_decodes)
{
	size_t len;
	char *text = slurp("low-stock-set.request.json", &len);
	inv_low_stock e;

	ck_assert_int_eq(inv_json_decode_low_stock(&e, NULL, text, len), 0);
	ck_assert_uuid_eq(e.product, P1);
	ck_assert_uuid_eq(e.variant, V1);
	ck_assert_int_eq(e.has_level, 1);
	ck_assert_int_eq(e.level, 5);
	ck_assert_int_eq(e.alert, 1);
	free(text);
}
END_TEST

START_TEST(test_golden_low_stock_set_many_request_decodes)
{
	size_t len, n = 0;
	char *text = slurp("low-stock-set-many.request.json", &len);
	inv_low_stock *e = NULL;

	ck_assert_int_eq(inv_json_decode_low_stock_many(&e, &n, NULL, text, len), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uuid_eq(e[0].variant, V1);
	ck_assert_int_eq(e[0].has_level, 1);
	ck_assert_int_eq(e[0].level, 5);
	ck_assert_int_eq(e[0].alert, 1);
	ck_assert_uuid_eq(e[1].product, P1);
	ck_assert_uuid_eq(e[1].variant, V2);
	ck_assert_int_eq(e[1].has_level, 0);
	ck_assert_int_eq(e[1].alert, 1);
	inv_free(e);
	free(text);
}
END_TEST

START_TEST(test_golden_v3_movements_request_decodes)
{
	size_t len;
	char *text = slurp("v3-movements.request.json", &len);
	inv_json_changes *c = NULL;

	ck_assert_int_eq(inv_json_decode_movements(&c, NULL, text, len), 0);
	ck_assert_uint_eq(c->count, 1);
	ck_assert_uuid_eq(c->changes[0].product, P1);
	ck_assert_uuid_eq(c->changes[0].variant, V1);
	ck_assert_uuid_eq(c->changes[0].from, STORE);
	ck_assert_uuid_eq(c->changes[0].to, SOLD);
	ck_assert_int_eq(c->changes[0].quantity, 2);
	ck_assert_int_eq(c->has_external_uuid, 1);
	ck_assert_uuid_eq(c->external_uuid, EXT);
	inv_free(c);
	free(text);
}
END_TEST

/* ------------------------------------------------------------ golden: responses */

/* Rebuild a {locationUuid, [trackedProducts,] variants} example through
 * inv_json_encode_status(). */
static void status_round_trip(const char *example)
{
	json_t *ex = load_example(example);
	json_t *vars = json_object_get(ex, "variants"), *tp = json_object_get(ex, "trackedProducts");
	inv_balance b[8];
	inv_uuid tracked[8];
	inv_json_location loc = { U(sv(ex, "locationUuid")), INV_LOCATION_STORE, 1 };
	size_t i, n = json_array_size(vars), nt = json_array_size(tp);
	char *out;
	size_t len;

	ck_assert_uint_le(n, 8);
	ck_assert_uint_le(nt, 8);
	for (i = 0; i < n; i++)
		b[i] = balance_of(json_array_get(vars, i));
	for (i = 0; i < nt; i++)
		tracked[i] = U(json_string_value(json_array_get(tp, i)));
	ck_assert_int_eq(inv_json_encode_status(&out, &len, &loc, b, n, tp ? tracked : NULL, nt), 0);
	assert_json_equals_example(out, len, example);
	inv_free(out);
	json_decref(ex);
}

START_TEST(test_golden_changes_response_round_trips)
{
	status_round_trip("changes.response.json");
}
END_TEST

START_TEST(test_golden_bulk_response_round_trips)
{
	status_round_trip("bulk.response.json");
}
END_TEST

START_TEST(test_golden_location_balances_response_round_trips)
{
	status_round_trip("location-balances.response.json");
}
END_TEST

START_TEST(test_golden_product_balances_response_round_trips)
{
	status_round_trip("product-balances.response.json");
}
END_TEST

START_TEST(test_golden_locations_response_round_trips)
{
	json_t *ex = load_example("locations.response.json");
	inv_json_location locs[4];
	size_t i;
	char *out;
	size_t len;

	ck_assert_uint_eq(json_array_size(ex), 4);
	for (i = 0; i < 4; i++) {
		json_t *o = json_array_get(ex, i);
		const char *t = sv(o, "type");

		locs[i].uuid = U(sv(o, "uuid"));
		locs[i].type = !strcmp(t, "STORE") ? INV_LOCATION_STORE
		             : !strcmp(t, "SOLD") ? INV_LOCATION_SOLD
		             : !strcmp(t, "BIN") ? INV_LOCATION_BIN : INV_LOCATION_SUPPLIER;
		locs[i].is_default = json_is_true(json_object_get(o, "default"));
	}
	ck_assert_int_eq(inv_json_encode_locations(&out, &len, locs, 4), 0);
	assert_json_equals_example(out, len, "locations.response.json");
	ck_assert_str_eq(out, "[{\"uuid\":\"" STORE "\",\"type\":\"STORE\",\"name\":\"STORE\","
	                      "\"description\":\"System generated location\",\"default\":true},"
	                      "{\"uuid\":\"" SOLD "\",\"type\":\"SOLD\",\"name\":\"SOLD\","
	                      "\"description\":\"System generated location\",\"default\":false},"
	                      "{\"uuid\":\"" BIN "\",\"type\":\"BIN\",\"name\":\"BIN\","
	                      "\"description\":\"System generated location\",\"default\":false},"
	                      "{\"uuid\":\"" SUPPLIER "\",\"type\":\"SUPPLIER\",\"name\":\"SUPPLIER\","
	                      "\"description\":\"System generated location\",\"default\":false}]");
	inv_free(out);
	json_decref(ex);
}
END_TEST

START_TEST(test_golden_low_stock_location_response_round_trips)
{
	/* The read of what low-stock-set-many.request.json wrote. */
	size_t len, n;
	char *text = slurp("low-stock-set-many.request.json", &len);
	inv_low_stock *e = NULL;
	inv_uuid org = U(ORG), loc = U(STORE);
	char *out;

	ck_assert_int_eq(inv_json_decode_low_stock_many(&e, &n, NULL, text, len), 0);
	ck_assert_int_eq(inv_json_encode_low_stock_location(&out, &len, &org, &loc, e, n), 0);
	assert_json_equals_example(out, len, "low-stock-location.response.json");
	inv_free(out);
	inv_free(e);
	free(text);
}
END_TEST

START_TEST(test_golden_v3_stock_response_round_trips)
{
	json_t *ex = load_example("v3-stock.response.json");
	json_t *o = json_array_get(ex, 0);
	inv_balance b = balance_of(o);
	inv_uuid org = U(ORG), loc = U(STORE);
	char *out;
	size_t len;

	b.has_low_stock_level = 1;
	b.low_stock_level = json_integer_value(json_object_get(o, "lowStockLevel"));
	b.low_stock_alert = json_is_true(json_object_get(o, "lowStockAlert"));
	b.updated = INT64_C(1796033700000); /* 2026-11-30T10:15:00.000Z */
	ck_assert_int_eq(inv_json_encode_v3_stock(&out, &len, &org, &loc, &b, 1), 0);
	assert_json_equals_example(out, len, "v3-stock.response.json");
	inv_free(out);
	json_decref(ex);
}
END_TEST

START_TEST(test_golden_error_response_round_trips)
{
	inv_json_violations *v = NULL;
	const char *body = "{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                   "\",\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD
	                   "\",\"change\":1},{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                   "\",\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD
	                   "\",\"change\":0}]}";
	inv_json_changes *c = NULL;
	const inv_json_violation *first;
	char msg[256], *out;
	size_t len;

	ck_assert_int_eq(inv_json_decode_changes(&c, &v, body, strlen(body)), INV_EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(inv_json_violations_count(v), 1);
	first = inv_json_violations_at(v, 0);
	snprintf(msg, sizeof(msg), "%s %s", first->property, first->message);
	ck_assert_int_eq(inv_json_encode_error(&out, &len, "VALIDATION_ERROR", msg, first, 1), 0);
	assert_json_equals_example(out, len, "error-validation.response.json");
	inv_free(out);
	inv_json_violations_free(v);
}
END_TEST

START_TEST(test_time_formats_follow_section_1)
{
	char buf[32];

	ck_assert_uint_eq(inv_json_format_time(buf, INT64_C(1618838291966), 0), 28);
	ck_assert_str_eq(buf, "2021-04-19T13:18:11.966+0000");
	ck_assert_uint_eq(inv_json_format_time(buf, INT64_C(1618838291999), 1), 24);
	ck_assert_str_eq(buf, "2021-04-19T13:18:11.999Z");
}
END_TEST

START_TEST(test_v3_products_status_encodes_enabled)
{
	inv_uuid p[2] = { U(P1), U(P2) };
	int32_t en[2] = { 1, 0 };
	char *out;
	size_t len;

	ck_assert_int_eq(inv_json_encode_v3_products_status(&out, &len, p, en, 2), 0);
	ck_assert_str_eq(out, "[{\"productUuid\":\"" P1 "\",\"enabled\":true},"
	                      "{\"productUuid\":\"" P2 "\",\"enabled\":false}]");
	inv_free(out);
	ck_assert_int_eq(inv_json_encode_v3_products_status(&out, &len, NULL, NULL, 0), 0);
	ck_assert_str_eq(out, "[]");
	inv_free(out);
}
END_TEST

START_TEST(test_inventories_are_locations_with_v3_names)
{
	inv_json_location loc = store_location();
	char *out;
	size_t len;

	ck_assert_int_eq(inv_json_encode_inventory(&out, &len, &loc), 0);
	ck_assert_str_eq(out, "{\"inventoryUuid\":\"" STORE "\",\"inventoryType\":\"STORE\","
	                      "\"name\":\"STORE\",\"description\":\"System generated location\","
	                      "\"defaultInventory\":true}");
	inv_free(out);
}
END_TEST

START_TEST(test_status_balances_are_strings_and_uuids_lowercase)
{
	inv_json_location loc = store_location();
	inv_balance b;
	char *out;
	size_t len;

	memset(&b, 0, sizeof(b));
	b.product = U("7A51C3D0-9F3B-11EE-B962-0242AC120002");
	b.variant = U(V1);
	b.balance = -INT64_C(9007199254740991);
	ck_assert_int_eq(inv_json_encode_status(&out, &len, &loc, &b, 1, NULL, 0), 0);
	ck_assert_str_eq(out, "{\"locationUuid\":\"" STORE "\",\"variants\":[{\"locationUuid\":\""
	                      STORE "\",\"locationType\":\"STORE\",\"productUuid\":\"" P1
	                      "\",\"variantUuid\":\"" V1 "\",\"balance\":\"-9007199254740991\"}]}");
	inv_free(out);
}
END_TEST

/* ------------------------------------------------------------ decoder rules */

/* Decode `body` with `fn`-style decoder, expect INV_EINVAL and exactly one
 * violation at `property` with `constraint`. */
typedef int (*decode_fn)(const char *text, size_t len, inv_json_violations **v);

static int dec_changes(const char *text, size_t len, inv_json_violations **v)
{
	inv_json_changes *c = NULL;
	int rc = inv_json_decode_changes(&c, v, text, len);

	inv_free(c);
	return rc;
}

static int dec_bulk(const char *text, size_t len, inv_json_violations **v)
{
	inv_json_bulk *b = NULL;
	int rc = inv_json_decode_bulk(&b, v, text, len);

	inv_free(b);
	return rc;
}

static int dec_movements(const char *text, size_t len, inv_json_violations **v)
{
	inv_json_changes *c = NULL;
	int rc = inv_json_decode_movements(&c, v, text, len);

	inv_free(c);
	return rc;
}

static int dec_low_stock(const char *text, size_t len, inv_json_violations **v)
{
	inv_low_stock e;

	return inv_json_decode_low_stock(&e, v, text, len);
}

static int dec_low_stock_many(const char *text, size_t len, inv_json_violations **v)
{
	inv_low_stock *e = NULL;
	size_t n;
	int rc = inv_json_decode_low_stock_many(&e, &n, v, text, len);

	inv_free(e);
	return rc;
}

static int dec_v3_products(const char *text, size_t len, inv_json_violations **v)
{
	inv_tracking_change *t = NULL;
	size_t n;
	int rc = inv_json_decode_v3_products(&t, &n, v, text, len);

	inv_free(t);
	return rc;
}

static int dec_v3_low_stock(const char *text, size_t len, inv_json_violations **v)
{
	inv_json_v3_low_stock *t = NULL;
	size_t n;
	int rc = inv_json_decode_v3_low_stock(&t, &n, v, text, len);

	inv_free(t);
	return rc;
}

static int dec_filter(const char *text, size_t len, inv_json_violations **v)
{
	inv_json_product_filter *f = NULL;
	int rc = inv_json_decode_product_filter(&f, v, text, len);

	inv_free(f);
	return rc;
}

static void expect_violation(decode_fn fn, const char *body, const char *property,
                             int constraint)
{
	inv_json_violations *v = NULL;
	const inv_json_violation *x;
	int rc = fn(body, strlen(body), &v);

	ck_assert_msg(rc == INV_EINVAL, "body %s: expected INV_EINVAL, got %d", body, rc);
	ck_assert_msg(inv_json_violations_count(v) == 1, "body %s: expected 1 violation, got %zu",
	              body, inv_json_violations_count(v));
	x = inv_json_violations_at(v, 0);
	ck_assert_str_eq(x->property, property);
	ck_assert_str_eq(inv_json_constraint_name(x->constraint), inv_json_constraint_name(constraint));
	ck_assert_str_ne(x->message, "");
	inv_json_violations_free(v);
}

#define CHANGE(change) "{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1 \
	"\",\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD "\",\"change\":" \
	change "}]}"

START_TEST(test_quantity_accepts_integer_and_digit_string)
{
	inv_json_changes *c = NULL;
	const char *a = CHANGE("3"), *b = CHANGE("\"9007199254740991\"");

	ck_assert_int_eq(inv_json_decode_changes(&c, NULL, a, strlen(a)), 0);
	ck_assert_int_eq(c->changes[0].quantity, 3);
	inv_free(c);
	ck_assert_int_eq(inv_json_decode_changes(&c, NULL, b, strlen(b)), 0);
	ck_assert_int_eq(c->changes[0].quantity, INV_QUANTITY_MAX);
	inv_free(c);
}
END_TEST

START_TEST(test_quantity_rejects_fractions_exponents_bools_null)
{
	expect_violation(dec_changes, CHANGE("1.0"), "changes[0].change", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, CHANGE("1e2"), "changes[0].change", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, CHANGE("\"1.5\""), "changes[0].change", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, CHANGE("\"\""), "changes[0].change", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, CHANGE("\" 3\""), "changes[0].change", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, CHANGE("true"), "changes[0].change", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, CHANGE("[1]"), "changes[0].change", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, CHANGE("null"), "changes[0].change", INV_JSON_MUST_NOT_BE_NULL);
}
END_TEST

START_TEST(test_quantity_must_be_positive)
{
	expect_violation(dec_changes, CHANGE("0"), "changes[0].change", INV_JSON_MUST_BE_GREATER_THAN);
	expect_violation(dec_changes, CHANGE("-4"), "changes[0].change", INV_JSON_MUST_BE_GREATER_THAN);
	expect_violation(dec_changes, CHANGE("\"-4\""), "changes[0].change", INV_JSON_MUST_BE_GREATER_THAN);
}
END_TEST

START_TEST(test_quantity_must_not_exceed_2_pow_53_minus_1)
{
	expect_violation(dec_changes, CHANGE("9007199254740992"), "changes[0].change",
	                 INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN);
	expect_violation(dec_changes, CHANGE("\"9007199254740992\""), "changes[0].change",
	                 INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN);
	expect_violation(dec_changes, CHANGE("\"99999999999999999999999999\""), "changes[0].change",
	                 INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN);
	expect_violation(dec_changes, CHANGE("9223372036854775807"), "changes[0].change",
	                 INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN);
}
END_TEST

START_TEST(test_quantity_beyond_int64_names_the_property)
{
	/* jansson refuses these integers; the decoder still names the field. */
	expect_violation(dec_changes, CHANGE("9223372036854775808"), "changes[0].change",
	                 INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN);
	expect_violation(dec_changes, CHANGE("-99999999999999999999999"), "changes[0].change",
	                 INV_JSON_MUST_BE_GREATER_THAN);
}
END_TEST

START_TEST(test_real_overflow_is_not_json)
{
	inv_json_violations *v = NULL;
	const char *body = CHANGE("1e999");

	ck_assert_int_eq(dec_changes(body, strlen(body), &v), INV_EINVAL);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(inv_json_violations_count(v), 0);
	inv_json_violations_free(v);
}
END_TEST

START_TEST(test_uuids_accept_either_case)
{
	const char *body = "{\"changes\":[{\"productUuid\":\"7A51C3D0-9F3B-11EE-B962-0242AC120002\","
	                   "\"variantUuid\":\"7a51C6A0-9f3b-11ee-b962-0242ac120002\","
	                   "\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD
	                   "\",\"change\":1,\"extra\":{\"ignored\":[1,2]}}],\"unknown\":true}";
	inv_json_changes *c = NULL;

	ck_assert_int_eq(inv_json_decode_changes(&c, NULL, body, strlen(body)), 0);
	ck_assert_uuid_eq(c->changes[0].product, P1);
	ck_assert_uuid_eq(c->changes[0].variant, V1);
	inv_free(c);
}
END_TEST

START_TEST(test_uuid_violations_name_the_property)
{
	const char *bad = "{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"not-a-uuid\","
	                  "\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD
	                  "\",\"change\":1}]}";
	const char *missing = "{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                      "\",\"toLocationUuid\":\"" SOLD "\",\"change\":1}]}";
	const char *number = "{\"changes\":[{\"productUuid\":7,\"variantUuid\":\"" V1
	                     "\",\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD
	                     "\",\"change\":1}]}";

	expect_violation(dec_changes, bad, "changes[0].variantUuid", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_changes, missing, "changes[0].fromLocationUuid", INV_JSON_MUST_NOT_BE_NULL);
	expect_violation(dec_changes, number, "changes[0].productUuid", INV_JSON_MUST_MATCH_PATTERN);
}
END_TEST

START_TEST(test_same_from_and_to_names_to_location)
{
	const char *body = "{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                   "\",\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\""
	                   "5E0C1A22-9F3B-11EE-8C90-0242AC120002\",\"change\":1}]}";
	const char *v3 = "{\"movements\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                 "\",\"from\":\"" STORE "\",\"to\":\"" STORE "\",\"change\":1}]}";

	expect_violation(dec_changes, body, "changes[0].toLocationUuid", INV_JSON_UNKNOWN);
	expect_violation(dec_movements, v3, "movements[0].to", INV_JSON_UNKNOWN);
}
END_TEST

START_TEST(test_write_arrays_must_not_be_empty)
{
	expect_violation(dec_changes, "{\"changes\":[]}", "changes", INV_JSON_MUST_NOT_BE_EMPTY);
	expect_violation(dec_changes, "{}", "changes", INV_JSON_MUST_NOT_BE_NULL);
	expect_violation(dec_changes, "{\"changes\":{}}", "changes", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_bulk, "{\"productChanges\":[]}", "productChanges",
	                 INV_JSON_MUST_NOT_BE_EMPTY);
	expect_violation(dec_movements, "{\"movements\":[]}", "movements", INV_JSON_MUST_NOT_BE_EMPTY);
	expect_violation(dec_low_stock_many, "{\"requests\":[]}", "requests",
	                 INV_JSON_MUST_NOT_BE_EMPTY);
	expect_violation(dec_v3_products, "[]", "", INV_JSON_MUST_NOT_BE_EMPTY);
	expect_violation(dec_v3_low_stock, "[]", "", INV_JSON_MUST_NOT_BE_EMPTY);
}
END_TEST

START_TEST(test_v3_products_status_accepts_empty_array)
{
	inv_uuid *p = NULL;
	size_t n = 7;

	ck_assert_int_eq(inv_json_decode_v3_products_status(&p, &n, NULL, "[]", 2), 0);
	ck_assert_uint_eq(n, 0);
	inv_free(p);
}
END_TEST

START_TEST(test_bulk_violation_paths_are_nested)
{
	const char *body = "{\"productChanges\":[{\"productUuid\":\"" P1 "\",\"trackingStatusChange\":"
	                   "\"NO_CHANGE\"},{\"productUuid\":\"" P2 "\",\"trackingStatusChange\":"
	                   "\"START_TRACKING\",\"variantChanges\":[{\"variantUuid\":\"" V3
	                   "\",\"fromLocationUuid\":\"" SUPPLIER "\",\"toLocationUuid\":\"" STORE
	                   "\",\"change\":\"x\"}]}]}";
	const char *mismatch = "{\"productChanges\":[{\"productUuid\":\"" P2 "\",\"trackingStatusChange\":"
	                       "\"NO_CHANGE\",\"variantChanges\":[{\"productUuid\":\"" P1
	                       "\",\"variantUuid\":\"" V3 "\",\"fromLocationUuid\":\"" SUPPLIER
	                       "\",\"toLocationUuid\":\"" STORE "\",\"change\":1}]}]}";
	const char *enum_case = "{\"productChanges\":[{\"productUuid\":\"" P1 "\",\"trackingStatusChange\":"
	                        "\"start_tracking\"}]}";

	expect_violation(dec_bulk, body, "productChanges[1].variantChanges[0].change",
	                 INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_bulk, mismatch, "productChanges[0].variantChanges[0].productUuid",
	                 INV_JSON_UNKNOWN);
	expect_violation(dec_bulk, enum_case, "productChanges[0].trackingStatusChange",
	                 INV_JSON_MUST_MATCH_PATTERN);
}
END_TEST

START_TEST(test_bulk_return_location_may_be_null)
{
	const char *body = "{\"returnBalanceForLocationUuid\":null,\"externalUuid\":null,"
	                   "\"productChanges\":[{\"productUuid\":\"" P1 "\",\"trackingStatusChange\":"
	                   "\"STOP_TRACKING\",\"variantChanges\":[]}]}";
	inv_json_bulk *b = NULL;

	ck_assert_int_eq(inv_json_decode_bulk(&b, NULL, body, strlen(body)), 0);
	ck_assert_int_eq(b->has_return_location, 0);
	ck_assert_int_eq(b->has_external_uuid, 0);
	ck_assert_int_eq(b->products[0].action, INV_TRACKING_STOP);
	inv_free(b);
}
END_TEST

START_TEST(test_external_uuid_must_be_a_uuid)
{
	const char *body = "{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                   "\",\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD
	                   "\",\"change\":1}],\"externalUuid\":\"order-17\"}";
	const char *v3 = "{\"movements\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                 "\",\"from\":\"" STORE "\",\"to\":\"" SOLD "\",\"change\":1}],\"identifier\":5}";

	expect_violation(dec_changes, body, "externalUuid", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_movements, v3, "identifier", INV_JSON_MUST_MATCH_PATTERN);
}
END_TEST

START_TEST(test_every_violation_is_listed_in_document_order)
{
	const char *body = "{\"changes\":[{\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":\"" STORE
	                   "\",\"toLocationUuid\":\"" SOLD "\",\"change\":1},{\"productUuid\":\"" P1
	                   "\",\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":\"" STORE
	                   "\",\"toLocationUuid\":\"" SOLD "\",\"change\":0}, 5]}";
	inv_json_violations *v = NULL;

	ck_assert_int_eq(dec_changes(body, strlen(body), &v), INV_EINVAL);
	ck_assert_uint_eq(inv_json_violations_count(v), 3);
	ck_assert_str_eq(inv_json_violations_at(v, 0)->property, "changes[0].productUuid");
	ck_assert_str_eq(inv_json_violations_at(v, 1)->property, "changes[1].change");
	ck_assert_str_eq(inv_json_violations_at(v, 2)->property, "changes[2]");
	ck_assert_ptr_null(inv_json_violations_at(v, 3));
	inv_json_violations_free(v);
}
END_TEST

START_TEST(test_body_that_is_not_json_has_no_violations)
{
	const char *bodies[] = { "", "{", "not json", "{\"changes\":[1,]}", "\"x\"" };
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
		inv_json_violations *v = NULL;

		ck_assert_int_eq(dec_changes(bodies[i], strlen(bodies[i]), &v), INV_EINVAL);
		ck_assert_ptr_nonnull(v);
		ck_assert_uint_eq(inv_json_violations_count(v), 0);
		inv_json_violations_free(v);
	}
	expect_violation(dec_changes, "[1]", "", INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_v3_products, "{}", "", INV_JSON_MUST_MATCH_PATTERN);
}
END_TEST

START_TEST(test_more_than_10000_changes_is_too_big)
{
	const char *one = "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                  "\",\"fromLocationUuid\":\"" STORE "\",\"toLocationUuid\":\"" SOLD
	                  "\",\"change\":1},";
	size_t n = 10001, olen = strlen(one), i;
	char *body = malloc(n * olen + 64), *p = body;
	inv_json_changes *c = NULL;

	p += sprintf(p, "{\"changes\":[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s", one);
	p[-1] = ']';
	p += sprintf(p, "}");
	ck_assert_int_eq(inv_json_decode_changes(&c, NULL, body, (size_t)(p - body)), INV_ETOOBIG);
	ck_assert_ptr_null(c);
	/* 10,000 exactly is fine. */
	p = body + strlen("{\"changes\":[") + (n - 1) * olen;
	p[-1] = ']';
	p += sprintf(p, "}");
	ck_assert_int_eq(inv_json_decode_changes(&c, NULL, body, (size_t)(p - body)), 0);
	ck_assert_uint_eq(c->count, 10000);
	inv_free(c);
	free(body);
}
END_TEST

START_TEST(test_bulk_counts_every_variant_change_toward_the_limit)
{
	const char *one = "{\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":\"" SUPPLIER
	                  "\",\"toLocationUuid\":\"" STORE "\",\"change\":1},";
	size_t per = 5001, olen = strlen(one), i, k;
	char *body = malloc(2 * per * olen + 512), *p = body;
	inv_json_bulk *b = NULL;

	p += sprintf(p, "{\"productChanges\":[");
	for (k = 0; k < 2; k++) {
		p += sprintf(p, "{\"productUuid\":\"" P1 "\",\"trackingStatusChange\":\"NO_CHANGE\","
		                "\"variantChanges\":[");
		for (i = 0; i < per; i++)
			p += sprintf(p, "%s", one);
		p[-1] = ']';
		p += sprintf(p, "},");
	}
	p[-1] = ']';
	p += sprintf(p, "}");
	ck_assert_int_eq(inv_json_decode_bulk(&b, NULL, body, (size_t)(p - body)), INV_ETOOBIG);
	free(body);
}
END_TEST

START_TEST(test_low_stock_level_null_absent_and_range)
{
	inv_low_stock e;
	const char *absent = "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1 "\"}";
	const char *neg = "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                  "\",\"lowStockLevel\":-1,\"lowStockAlert\":true}";
	const char *alert = "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                    "\",\"lowStockLevel\":0,\"lowStockAlert\":\"yes\"}";

	ck_assert_int_eq(inv_json_decode_low_stock(&e, NULL, absent, strlen(absent)), 0);
	ck_assert_int_eq(e.has_level, 0);
	ck_assert_int_eq(e.alert, 0);
	expect_violation(dec_low_stock, neg, "lowStockLevel", INV_JSON_INVALID_RANGE);
	expect_violation(dec_low_stock, alert, "lowStockAlert", INV_JSON_MUST_MATCH_PATTERN);
}
END_TEST

START_TEST(test_v3_low_stock_zero_level_unsets)
{
	const char *body = "[{\"inventoryUuid\":\"" STORE "\",\"productUuid\":\"" P1
	                   "\",\"variantUuid\":\"" V1 "\",\"lowStockLevel\":0,\"lowStockAlert\":true},"
	                   "{\"inventoryUuid\":\"" STORE "\",\"productUuid\":\"" P1
	                   "\",\"variantUuid\":\"" V2 "\",\"lowStockLevel\":\"3\"}]";
	inv_json_v3_low_stock *t = NULL;
	size_t n;

	ck_assert_int_eq(inv_json_decode_v3_low_stock(&t, &n, NULL, body, strlen(body)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uuid_eq(t[0].location, STORE);
	ck_assert_int_eq(t[0].entry.has_level, 0);
	ck_assert_int_eq(t[0].entry.alert, 1);
	ck_assert_int_eq(t[1].entry.has_level, 1);
	ck_assert_int_eq(t[1].entry.level, 3);
	inv_free(t);
	expect_violation(dec_v3_low_stock, "[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1 "\"}]",
	                 "[0].inventoryUuid", INV_JSON_MUST_NOT_BE_NULL);
}
END_TEST

START_TEST(test_v3_products_tracking_enum_is_exact)
{
	const char *body = "[{\"productUuid\":\"" P1 "\",\"tracking\":\"enable\"},"
	                   "{\"productUuid\":\"" P2 "\",\"tracking\":\"disable\"}]";
	inv_tracking_change *t = NULL;
	size_t n;

	ck_assert_int_eq(inv_json_decode_v3_products(&t, &n, NULL, body, strlen(body)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(t[0].action, INV_TRACKING_START);
	ck_assert_int_eq(t[1].action, INV_TRACKING_STOP);
	ck_assert_uuid_eq(t[1].product, P2);
	inv_free(t);
	expect_violation(dec_v3_products, "[{\"productUuid\":\"" P1 "\",\"tracking\":\"ENABLE\"}]",
	                 "[0].tracking", INV_JSON_MUST_MATCH_PATTERN);
}
END_TEST

START_TEST(test_filter_requires_both_fields)
{
	expect_violation(dec_filter, "{\"productUuids\":[]}", "locationType", INV_JSON_MUST_NOT_BE_NULL);
	expect_violation(dec_filter, "{\"locationType\":\"STORE\"}", "productUuids",
	                 INV_JSON_MUST_NOT_BE_NULL);
	expect_violation(dec_filter, "{\"locationType\":\"store\",\"productUuids\":[]}", "locationType",
	                 INV_JSON_MUST_MATCH_PATTERN);
	expect_violation(dec_filter, "{\"locationType\":\"STORE\",\"productUuids\":[\"" P1 "\",\"x\"]}",
	                 "productUuids[1]", INV_JSON_MUST_MATCH_PATTERN);
}
END_TEST

START_TEST(test_violation_list_is_capped)
{
	size_t n = 500, i;
	char *body = malloc(n * 4 + 64), *p = body;
	inv_json_violations *v = NULL;

	p += sprintf(p, "{\"changes\":[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s1", i ? "," : "");
	p += sprintf(p, "]}");
	ck_assert_int_eq(dec_changes(body, (size_t)(p - body), &v), INV_EINVAL);
	ck_assert_uint_eq(inv_json_violations_count(v), 100);
	inv_json_violations_free(v);
	free(body);
}
END_TEST

START_TEST(test_constraint_names_are_the_service_enum)
{
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_MUST_NOT_BE_NULL), "MUST_NOT_BE_NULL");
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_MUST_BE_GREATER_THAN), "MUST_BE_GREATER_THAN");
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN),
	                 "MUST_BE_LESS_OR_EQUAL_THAN");
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_MUST_MATCH_PATTERN), "MUST_MATCH_PATTERN");
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_MUST_NOT_BE_EMPTY), "MUST_NOT_BE_EMPTY");
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_INVALID_SIZE), "INVALID_SIZE");
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_INVALID_RANGE), "INVALID_RANGE");
	ck_assert_str_eq(inv_json_constraint_name(INV_JSON_UNKNOWN), "UNKNOWN");
	ck_assert_str_eq(inv_json_constraint_name(99), "UNKNOWN");
}
END_TEST


/* ------------------------------------------------------------ webhooks */

/* The example's location UUIDs, handed out in the order the core creates
 * an organization's locations (STORE, SOLD, BIN, SUPPLIER). */
static void example_uuids(inv_uuid *out, void *payload)
{
	static const char *const ids[] = { STORE, SOLD, BIN, SUPPLIER };
	int *next = payload;

	if (*next < 4) {
		*out = U(ids[(*next)++]);
	} else {
		memset(out, 0, sizeof(*out));
		out->bytes[15] = (uint8_t)(*next)++;
	}
}

static int64_t example_clock(void *payload)
{
	(void)payload;
	return INT64_C(1796033700000); /* 2026-11-30T10:15:00.000Z */
}

struct captured {
	int types[16];
	char *payloads[16];
	char *webhooks[16];
	size_t n;
};

static void capture(const inv_event *event, void *payload)
{
	struct captured *c = payload;
	size_t items = inv_event_get_type(event) == INV_EVENT_BALANCE_CHANGED
	               ? 1 : inv_event_item_count(event), i;

	for (i = 0; i < items && c->n < 16; i++) {
		size_t len;

		c->types[c->n] = inv_event_get_type(event);
		ck_assert_int_eq(inv_json_encode_event_payload(&c->payloads[c->n], &len, event, i), 0);
		ck_assert_uint_eq(strlen(c->payloads[c->n]), len);
		ck_assert_int_eq(inv_json_encode_webhook(&c->webhooks[c->n], &len, event, i, NULL), 0);
		c->n++;
	}
}

static void captured_free(struct captured *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		inv_free(c->payloads[i]);
		inv_free(c->webhooks[i]);
	}
}

/* Send the example request `file`; compare the answer with `example`
 * when not NULL. */
static void rest_call_ex(inv_store *store, const char *method, const char *path,
                         const char *file, int expect, const char *example)
{
	inv_rest_request req = INV_REST_REQUEST_INIT;
	inv_rest_response *res = NULL;
	inv_uuid user = U("c0a80101-9f3b-11ee-8000-0242ac120002");
	size_t len = 0;
	char *body = file ? slurp(file, &len) : NULL;

	req.authenticated = 1;
	req.method = method;
	req.path = path;
	req.body = body;
	req.body_len = len;
	req.organization = U(ORG);
	req.scopes = INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE;
	req.user_uuid = &user;
	ck_assert_int_eq(inv_rest_handle(&res, store, &req), 0);
	ck_assert_msg(inv_rest_response_status(res) == expect, "%s %s: %d %s", method, path,
	              inv_rest_response_status(res), inv_rest_response_body(res, NULL));
	if (example) {
		size_t blen;
		const char *text = inv_rest_response_body(res, &blen);

		assert_json_equals_example(text, blen, example);
	}
	inv_rest_response_free(res);
	free(body);
}

static void rest_call(inv_store *store, const char *method, const char *path, const char *file,
                      int expect)
{
	rest_call_ex(store, method, path, file, expect, NULL);
}

/* The examples' scenario through the dispatcher: the events it yields are
 * the example payload, and the answers are the example responses. */
static inv_store *example_store(struct captured *c, int *next)
{
	inv_store_options opts = INV_STORE_OPTIONS_INIT;
	inv_store *store = NULL;
	uint64_t id;

	opts.clock = example_clock;
	opts.uuid_generate = example_uuids;
	opts.uuid_payload = next;
	ck_assert_int_eq(inv_store_open_memory(&store, &opts), 0);
	ck_assert_int_eq(inv_subscribe(&id, store, 0, capture, c), 0);
	return store;
}

START_TEST(test_golden_balance_changed_payload_from_the_scenario)
{
	struct captured c;
	int next = 0;
	inv_store *store;
	size_t i;

	memset(&c, 0, sizeof(c));
	store = example_store(&c, &next);
	rest_call(store, "POST", "/organizations/self/v2/inventory/bulk", "bulk.request.json", 200);
	captured_free(&c);
	memset(&c, 0, sizeof(c));
	rest_call(store, "PUT", "/organizations/self/inventory", "changes.request.json", 200);
	ck_assert_uint_ge(c.n, 1);
	for (i = 0; i < c.n && c.types[i] != INV_EVENT_BALANCE_CHANGED; i++)
		;
	ck_assert_uint_lt(i, c.n);
	assert_json_equals_example(c.payloads[i], strlen(c.payloads[i]),
	                           "InventoryBalanceChanged.payload.json");
	captured_free(&c);
	inv_store_close(store);
}
END_TEST

START_TEST(test_webhook_envelope_carries_payload_as_string)
{
	struct captured c;
	int next = 0;
	inv_store *store;
	json_t *env, *payload;
	json_error_t err;
	const char *text;

	memset(&c, 0, sizeof(c));
	store = example_store(&c, &next);
	rest_call(store, "POST", "/organizations/self/v2/inventory/bulk", "bulk.request.json", 200);
	/* Bulk: two tracking starts, then the balance change. */
	ck_assert_uint_eq(c.n, 3);
	ck_assert_int_eq(c.types[0], INV_EVENT_TRACKING_STARTED);
	ck_assert_int_eq(c.types[2], INV_EVENT_BALANCE_CHANGED);
	ck_assert_str_eq(c.payloads[0], "{\"organizationUuid\":\"" ORG "\",\"productUuid\":\"" P1
	                                "\",\"created\":{\"uuid\":\"c0a80101-9f3b-11ee-8000-0242ac120002\","
	                                "\"timestamp\":\"2026-11-30T10:15:00.000+0000\","
	                                "\"userType\":\"USER\",\"clientUuid\":null}}");
	env = json_loads(c.webhooks[2], 0, &err);
	ck_assert_ptr_nonnull(env);
	ck_assert_str_eq(json_string_value(json_object_get(env, "organizationUuid")), ORG);
	ck_assert_str_eq(json_string_value(json_object_get(env, "eventName")),
	                 "InventoryBalanceChanged");
	ck_assert_str_eq(json_string_value(json_object_get(env, "timestamp")),
	                 "2026-11-30T10:15:00.000Z");
	text = json_string_value(json_object_get(env, "messageUuid"));
	ck_assert_ptr_nonnull(text);
	{
		inv_uuid m;

		ck_assert_int_eq(inv_uuid_parse(&m, text, strlen(text)), 0);
	}
	ck_assert_str_eq(json_string_value(json_object_get(env, "messageId")), text);
	/* The payload is a string holding exactly the payload JSON. */
	text = json_string_value(json_object_get(env, "payload"));
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, c.payloads[2]);
	payload = json_loads(text, 0, &err);
	ck_assert_ptr_nonnull(payload);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(payload, "balanceAfter"), 1), "balance")), "4");
	ck_assert_str_eq(json_string_value(json_object_get(payload, "externalUuid")), EXT);
	json_decref(payload);
	json_decref(env);
	/* Stopping tracking. */
	captured_free(&c);
	memset(&c, 0, sizeof(c));
	rest_call(store, "DELETE", "/organizations/self/inventory/products/" P2, NULL, 204);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_int_eq(c.types[0], INV_EVENT_TRACKING_STOPPED);
	ck_assert_str_eq(c.payloads[0], "{\"organizationUuid\":\"" ORG "\",\"productUuid\":\"" P2
	                                "\",\"changeInformation\":{\"uuid\":"
	                                "\"c0a80101-9f3b-11ee-8000-0242ac120002\","
	                                "\"timestamp\":\"2026-11-30T10:15:00.000+0000\","
	                                "\"userType\":\"USER\",\"clientUuid\":null}}");
	captured_free(&c);
	inv_store_close(store);
}
END_TEST

START_TEST(test_low_stock_crossing_payload)
{
	struct captured c;
	int next = 0;
	inv_store *store;
	size_t i;

	memset(&c, 0, sizeof(c));
	store = example_store(&c, &next);
	rest_call(store, "POST", "/organizations/self/v2/inventory/bulk", "bulk.request.json", 200);
	rest_call(store, "PUT", "/custom-low-stock/locations/" STORE, "low-stock-set.request.json", 204);
	captured_free(&c);
	memset(&c, 0, sizeof(c));
	/* V1: 10 -> 6 (changes) is not below 5; then 6 -> 4 (v3 movement) is. */
	rest_call(store, "PUT", "/organizations/self/inventory", "changes.request.json", 200);
	for (i = 0; i < c.n; i++)
		ck_assert_int_ne(c.types[i], INV_EVENT_LOW_STOCK);
	captured_free(&c);
	memset(&c, 0, sizeof(c));
	rest_call(store, "POST", "/v3/movements", "v3-movements.request.json", 204);
	for (i = 0; i < c.n && c.types[i] != INV_EVENT_LOW_STOCK; i++)
		;
	ck_assert_uint_lt(i, c.n);
	ck_assert_str_eq(c.payloads[i], "{\"organizationUuid\":\"" ORG "\",\"locationUuid\":\"" STORE
	                                "\",\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                                "\",\"balance\":\"4\",\"lowStockLevel\":5,\"low\":true}");
	ck_assert_ptr_nonnull(strstr(c.webhooks[i], "\"eventName\":\"InventoryLowStockChanged\""));
	captured_free(&c);
	inv_store_close(store);
}
END_TEST

START_TEST(test_golden_responses_through_the_dispatcher)
{
	struct captured c;
	int next = 0;
	inv_store *store;
	inv_rest_request req = INV_REST_REQUEST_INIT;
	inv_rest_response *res = NULL;
	size_t len;
	const char *body;

	memset(&c, 0, sizeof(c));
	store = example_store(&c, &next);
	req.authenticated = 1;
	req.organization = U(ORG);
	req.scopes = INV_REST_SCOPE_READ;
	req.method = "GET";
	req.path = "/organizations/self/locations";
	ck_assert_int_eq(inv_rest_handle(&res, store, &req), 0);
	body = inv_rest_response_body(res, &len);
	assert_json_equals_example(body, len, "locations.response.json");
	inv_rest_response_free(res);
	rest_call_ex(store, "POST", "/organizations/self/v2/inventory/bulk", "bulk.request.json",
	             200, "bulk.response.json");
	rest_call_ex(store, "PUT", "/organizations/self/inventory", "changes.request.json", 200,
	             "changes.response.json");
	req.path = "/organizations/self/inventory/locations/" STORE;
	ck_assert_int_eq(inv_rest_handle(&res, store, &req), 0);
	body = inv_rest_response_body(res, &len);
	assert_json_equals_example(body, len, "location-balances.response.json");
	inv_rest_response_free(res);
	req.path = "/organizations/self/inventory/locations/" STORE "/products/" P1;
	ck_assert_int_eq(inv_rest_handle(&res, store, &req), 0);
	body = inv_rest_response_body(res, &len);
	assert_json_equals_example(body, len, "product-balances.response.json");
	inv_rest_response_free(res);
	rest_call(store, "POST", "/custom-low-stock/locations/" STORE,
	          "low-stock-set-many.request.json", 204);
	req.path = "/custom-low-stock/v2/locations/" STORE;
	ck_assert_int_eq(inv_rest_handle(&res, store, &req), 0);
	body = inv_rest_response_body(res, &len);
	assert_json_equals_example(body, len, "low-stock-location.response.json");
	inv_rest_response_free(res);
	rest_call(store, "POST", "/organizations/self/inventory", "start-tracking.request.json", 200);
	rest_call(store, "POST", "/v3/movements", "v3-movements.request.json", 204);
	req.path = "/v3/stock/" STORE "/products/" P1 "?limit=1";
	ck_assert_int_eq(inv_rest_handle(&res, store, &req), 0);
	body = inv_rest_response_body(res, &len);
	assert_json_equals_example(body, len, "v3-stock.response.json");
	ck_assert_uint_eq(inv_rest_response_header_count(res), 1);
	ck_assert_str_eq(inv_rest_response_header_name(res, 0), "Link");
	inv_rest_response_free(res);
	captured_free(&c);
	inv_store_close(store);
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *golden = tcase_create("golden");
	TCase *rules = tcase_create("decoder rules");
	TCase *hooks = tcase_create("webhooks and end to end");

	tcase_add_test(golden, test_golden_changes_request_decodes);
	tcase_add_test(golden, test_golden_bulk_request_decodes);
	tcase_add_test(golden, test_golden_start_tracking_request_decodes);
	tcase_add_test(golden, test_golden_products_filter_request_decodes);
	tcase_add_test(golden, test_golden_low_stock_set_request_decodes);
	tcase_add_test(golden, test_golden_low_stock_set_many_request_decodes);
	tcase_add_test(golden, test_golden_v3_movements_request_decodes);
	tcase_add_test(golden, test_golden_changes_response_round_trips);
	tcase_add_test(golden, test_golden_bulk_response_round_trips);
	tcase_add_test(golden, test_golden_location_balances_response_round_trips);
	tcase_add_test(golden, test_golden_product_balances_response_round_trips);
	tcase_add_test(golden, test_golden_locations_response_round_trips);
	tcase_add_test(golden, test_golden_low_stock_location_response_round_trips);
	tcase_add_test(golden, test_golden_v3_stock_response_round_trips);
	tcase_add_test(golden, test_golden_error_response_round_trips);
	tcase_add_test(golden, test_time_formats_follow_section_1);
	tcase_add_test(golden, test_v3_products_status_encodes_enabled);
	tcase_add_test(golden, test_inventories_are_locations_with_v3_names);
	tcase_add_test(golden, test_status_balances_are_strings_and_uuids_lowercase);
	suite_add_tcase(s, golden);

	tcase_add_test(rules, test_quantity_accepts_integer_and_digit_string);
	tcase_add_test(rules, test_quantity_rejects_fractions_exponents_bools_null);
	tcase_add_test(rules, test_quantity_must_be_positive);
	tcase_add_test(rules, test_quantity_must_not_exceed_2_pow_53_minus_1);
	tcase_add_test(rules, test_quantity_beyond_int64_names_the_property);
	tcase_add_test(rules, test_real_overflow_is_not_json);
	tcase_add_test(rules, test_uuids_accept_either_case);
	tcase_add_test(rules, test_uuid_violations_name_the_property);
	tcase_add_test(rules, test_same_from_and_to_names_to_location);
	tcase_add_test(rules, test_write_arrays_must_not_be_empty);
	tcase_add_test(rules, test_v3_products_status_accepts_empty_array);
	tcase_add_test(rules, test_bulk_violation_paths_are_nested);
	tcase_add_test(rules, test_bulk_return_location_may_be_null);
	tcase_add_test(rules, test_external_uuid_must_be_a_uuid);
	tcase_add_test(rules, test_every_violation_is_listed_in_document_order);
	tcase_add_test(rules, test_body_that_is_not_json_has_no_violations);
	tcase_add_test(rules, test_more_than_10000_changes_is_too_big);
	tcase_add_test(rules, test_bulk_counts_every_variant_change_toward_the_limit);
	tcase_add_test(rules, test_low_stock_level_null_absent_and_range);
	tcase_add_test(rules, test_v3_low_stock_zero_level_unsets);
	tcase_add_test(rules, test_v3_products_tracking_enum_is_exact);
	tcase_add_test(rules, test_filter_requires_both_fields);
	tcase_add_test(rules, test_violation_list_is_capped);
	tcase_add_test(rules, test_constraint_names_are_the_service_enum);
	suite_add_tcase(s, rules);

	tcase_add_test(hooks, test_golden_balance_changed_payload_from_the_scenario);
	tcase_add_test(hooks, test_webhook_envelope_carries_payload_as_string);
	tcase_add_test(hooks, test_low_stock_crossing_payload);
	tcase_add_test(hooks, test_golden_responses_through_the_dispatcher);
	suite_add_tcase(s, hooks);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
