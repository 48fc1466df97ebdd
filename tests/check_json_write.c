/*
 * check_json_write.c - the response encoders' JSON writer (lib/json_write.c)
 * against the jansson trees the encoders built before it: for the same
 * values, the text must be byte for byte the compact dump of the tree
 * (keys in order, the same escapes, the same digits), on inputs chosen to
 * be hard: strings with quotes, control characters, non-ASCII and invalid
 * UTF-8, the int64 extremes, empty lists.
 */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zinv.h>

#define ORG "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
#define STORE "5e0c1a22-9f3b-11ee-8c90-0242ac120002"
#define P1 "7a51c3d0-9f3b-11ee-b962-0242ac120002"
#define V1 "7a51c6a0-9f3b-11ee-b962-0242ac120002"
#define P2 "8c2f0e1a-9f3b-11ee-a1b2-0242ac120002"
#define V3 "8c2f1102-9f3b-11ee-a1b2-0242ac120002"

static inv_uuid U(const char *text)
{
	inv_uuid u;

	ck_assert_int_eq(inv_uuid_parse(&u, text, strlen(text)), 0);
	return u;
}

/* ------------------------------------------------------------ the trees */

static json_t *ref_uuid(const inv_uuid *u)
{
	char text[37];

	inv_uuid_format(u, text);
	return json_string(text);
}

static json_t *ref_int_string(int64_t n)
{
	char text[24];

	snprintf(text, sizeof(text), "%lld", (long long)n);
	return json_string(text);
}

static const char *ref_type(int type)
{
	static const char *const names[] = { NULL, "STORE", "SOLD", "BIN", "SUPPLIER" };

	return type >= 1 && type <= 4 ? names[type] : "UNKNOWN";
}

/* What the error encoder did with a message: the string when jansson
 * accepts it as UTF-8, else its first 511 bytes in printable ASCII. */
static json_t *ref_text(const char *s)
{
	json_t *j = json_string(s ? s : "");
	char buf[512];
	size_t i;

	if (j)
		return j;
	for (i = 0; i < sizeof(buf) - 1 && s[i]; i++)
		buf[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

static json_t *ref_status(const inv_json_location *loc, const inv_balance *b, size_t n,
                          const inv_uuid *tracked, size_t nt)
{
	json_t *o = json_object(), *vars = json_array();
	size_t i;

	json_object_set_new(o, "locationUuid", ref_uuid(&loc->uuid));
	if (tracked) {
		json_t *tp = json_array();

		for (i = 0; i < nt; i++)
			json_array_append_new(tp, ref_uuid(&tracked[i]));
		json_object_set_new(o, "trackedProducts", tp);
	}
	for (i = 0; i < n; i++) {
		json_t *v = json_object();

		json_object_set_new(v, "locationUuid", ref_uuid(&loc->uuid));
		json_object_set_new(v, "locationType", json_string(ref_type(loc->type)));
		json_object_set_new(v, "productUuid", ref_uuid(&b[i].product));
		json_object_set_new(v, "variantUuid", ref_uuid(&b[i].variant));
		json_object_set_new(v, "balance", ref_int_string(b[i].balance));
		json_array_append_new(vars, v);
	}
	json_object_set_new(o, "variants", vars);
	return o;
}

static json_t *ref_error(const char *type, const char *message, const inv_json_violation *v,
                         size_t n)
{
	json_t *o = json_object(), *arr = json_array();
	size_t i;

	json_object_set_new(o, "developerMessage", ref_text(message ? message : type));
	json_object_set_new(o, "errorType", ref_text(type));
	for (i = 0; i < n; i++) {
		json_t *x = json_object();

		json_object_set_new(x, "propertyName", ref_text(v[i].property));
		json_object_set_new(x, "developerMessage", ref_text(v[i].message));
		json_object_set_new(x, "constraintType",
		                    json_string(inv_json_constraint_name(v[i].constraint)));
		json_array_append_new(arr, x);
	}
	json_object_set_new(o, "violations", arr);
	return o;
}

static json_t *ref_v3_stock(const inv_uuid *org, const inv_uuid *loc, const inv_balance *b,
                            size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		json_t *o = json_object();
		char when[32];

		inv_json_format_time(when, b[i].updated, 1);
		json_object_set_new(o, "organizationUuid", ref_uuid(org));
		json_object_set_new(o, "inventoryUuid", ref_uuid(loc));
		json_object_set_new(o, "productUuid", ref_uuid(&b[i].product));
		json_object_set_new(o, "variantUuid", ref_uuid(&b[i].variant));
		json_object_set_new(o, "balance", json_integer(b[i].balance));
		json_object_set_new(o, "lowStockLevel", b[i].has_low_stock_level
		                                        ? json_integer(b[i].low_stock_level)
		                                        : json_null());
		json_object_set_new(o, "lowStockAlert", json_boolean(b[i].low_stock_alert));
		json_object_set_new(o, "updated", b[i].updated ? json_string(when) : json_null());
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *ref_low_stock_product(const inv_uuid *product, const inv_low_stock *e, size_t n)
{
	json_t *o = json_object(), *arr = json_array();
	size_t i;

	json_object_set_new(o, "productUuid", ref_uuid(product));
	for (i = 0; i < n; i++) {
		json_t *x = json_object();

		json_object_set_new(x, "variantUuid", ref_uuid(&e[i].variant));
		json_object_set_new(x, "customLowStockLevel",
		                    e[i].has_level ? json_integer(e[i].level) : json_null());
		json_object_set_new(x, "lowStockAlert", json_boolean(e[i].alert));
		json_array_append_new(arr, x);
	}
	json_object_set_new(o, "customLowStockLevelForVariants", arr);
	return o;
}

static json_t *ref_location(const inv_json_location *loc, int v3)
{
	json_t *o = json_object();
	const char *name = ref_type(loc->type);

	json_object_set_new(o, v3 ? "inventoryUuid" : "uuid", ref_uuid(&loc->uuid));
	json_object_set_new(o, v3 ? "inventoryType" : "type", json_string(name));
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "description", json_string("System generated location"));
	json_object_set_new(o, v3 ? "defaultInventory" : "default", json_boolean(loc->is_default));
	return o;
}

/* The encoder's text must be the tree's compact dump, byte for byte;
 * takes the tree. */
static void assert_text_of_tree(int rc, char *text, size_t len, json_t *tree, const char *what)
{
	char *want;

	ck_assert_msg(rc == 0, "%s: encoder failed with %d", what, rc);
	ck_assert_ptr_nonnull(tree);
	want = json_dumps(tree, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	ck_assert_ptr_nonnull(want);
	ck_assert_msg(len == strlen(text), "%s: len %zu but the text has %zu bytes", what, len,
	              strlen(text));
	ck_assert_msg(strcmp(text, want) == 0, "%s:\nexpected %s\n     got %s", what, want, text);
	free(want);
	json_decref(tree);
	inv_free(text);
}

/* ------------------------------------------------------------ numbers */

static const int64_t extremes[] = {
	INT64_MIN, INT64_MIN + 1, -INT64_C(9007199254740991), -1, 0, 1, 9, 10,
	INT64_C(9007199254740991), INT64_MAX - 1, INT64_MAX,
};
#define NEXTREMES (sizeof(extremes) / sizeof(*extremes))

START_TEST(test_balances_keep_every_digit_of_the_int64_range)
{
	inv_json_location loc = { U(STORE), INV_LOCATION_STORE, 1 };
	inv_uuid org = U(ORG);
	inv_balance b[NEXTREMES];
	char *out;
	size_t i, len;
	int rc;

	memset(b, 0, sizeof(b));
	for (i = 0; i < NEXTREMES; i++) {
		b[i].product = U(P1);
		b[i].variant = U(V1);
		b[i].balance = extremes[i];
		b[i].has_low_stock_level = (int32_t)(i & 1);
		b[i].low_stock_level = extremes[NEXTREMES - 1 - i];
		b[i].low_stock_alert = (int32_t)(i & 2);
		b[i].updated = i % 3 ? INT64_C(1618838291966) + (int64_t)i : 0;
	}
	rc = inv_json_encode_status(&out, &len, &loc, b, NEXTREMES, NULL, 0);
	assert_text_of_tree(rc, out, len, ref_status(&loc, b, NEXTREMES, NULL, 0), "v1 balances");
	rc = inv_json_encode_v3_stock(&out, &len, &org, &loc.uuid, b, NEXTREMES);
	assert_text_of_tree(rc, out, len, ref_v3_stock(&org, &loc.uuid, b, NEXTREMES), "v3 stock");
}
END_TEST

START_TEST(test_low_stock_levels_are_numbers_or_null)
{
	inv_low_stock e[NEXTREMES];
	inv_uuid p = U(P2);
	char *out;
	size_t i, len;
	int rc;

	memset(e, 0, sizeof(e));
	for (i = 0; i < NEXTREMES; i++) {
		e[i].product = p;
		e[i].variant = U(V3);
		e[i].has_level = (int32_t)(i % 3 != 0);
		e[i].level = extremes[i];
		e[i].alert = (int32_t)(i & 1);
	}
	rc = inv_json_encode_low_stock_product(&out, &len, &p, e, NEXTREMES);
	assert_text_of_tree(rc, out, len, ref_low_stock_product(&p, e, NEXTREMES), "low stock");
}
END_TEST

/* ------------------------------------------------------------ lists */

START_TEST(test_empty_lists_are_written_as_empty_arrays)
{
	inv_json_location loc = { U(STORE), INV_LOCATION_STORE, 1 };
	inv_uuid org = U(ORG), p = U(P1);
	json_t *tree;
	char *out;
	size_t len;
	int rc;

	rc = inv_json_encode_status(&out, &len, &loc, NULL, 0, &org, 0);
	assert_text_of_tree(rc, out, len, ref_status(&loc, NULL, 0, &org, 0),
	                    "status, no tracked products");
	rc = inv_json_encode_status(&out, &len, &loc, NULL, 0, NULL, 0);
	assert_text_of_tree(rc, out, len, ref_status(&loc, NULL, 0, NULL, 0), "status, no tracked");
	rc = inv_json_encode_locations(&out, &len, NULL, 0);
	assert_text_of_tree(rc, out, len, json_array(), "locations");
	rc = inv_json_encode_v3_stock(&out, &len, &org, &loc.uuid, NULL, 0);
	assert_text_of_tree(rc, out, len, json_array(), "v3 stock");
	rc = inv_json_encode_v3_products_status(&out, &len, NULL, NULL, 0);
	assert_text_of_tree(rc, out, len, json_array(), "v3 products status");
	rc = inv_json_encode_low_stock_product(&out, &len, &p, NULL, 0);
	assert_text_of_tree(rc, out, len, ref_low_stock_product(&p, NULL, 0), "low stock product");
	rc = inv_json_encode_low_stock_location(&out, &len, &org, &loc.uuid, NULL, 0);
	tree = json_object();
	json_object_set_new(tree, "organizationUuid", ref_uuid(&org));
	json_object_set_new(tree, "locationUuid", ref_uuid(&loc.uuid));
	json_object_set_new(tree, "customLowStockLevelsForProducts", json_array());
	assert_text_of_tree(rc, out, len, tree, "low stock location");
	rc = inv_json_encode_error(&out, &len, "NOT_FOUND", NULL, NULL, 0);
	assert_text_of_tree(rc, out, len, ref_error("NOT_FOUND", NULL, NULL, 0), "error");
}
END_TEST

START_TEST(test_every_location_type_is_named_and_others_are_unknown)
{
	static const int32_t types[] = { INV_LOCATION_STORE, INV_LOCATION_SOLD, INV_LOCATION_BIN,
	                                 INV_LOCATION_SUPPLIER, 0, 99, -1 };
	inv_json_location locs[7];
	inv_balance b;
	json_t *v1 = json_array(), *v3 = json_array();
	char *out;
	size_t i, len;
	int rc;

	memset(&b, 0, sizeof(b));
	b.product = U(P1);
	b.variant = U(V1);
	b.balance = 3;
	for (i = 0; i < 7; i++) {
		locs[i].uuid = U(STORE);
		locs[i].uuid.bytes[15] = (uint8_t)i;
		locs[i].type = types[i];
		locs[i].is_default = i == 0;
		json_array_append_new(v1, ref_location(&locs[i], 0));
		json_array_append_new(v3, ref_location(&locs[i], 1));
		rc = inv_json_encode_status(&out, &len, &locs[i], &b, 1, NULL, 0);
		assert_text_of_tree(rc, out, len, ref_status(&locs[i], &b, 1, NULL, 0), "status");
	}
	rc = inv_json_encode_locations(&out, &len, locs, 7);
	assert_text_of_tree(rc, out, len, v1, "locations");
	rc = inv_json_encode_inventories(&out, &len, locs, 7);
	assert_text_of_tree(rc, out, len, v3, "inventories");
	rc = inv_json_encode_inventory(&out, &len, &locs[1]);
	assert_text_of_tree(rc, out, len, ref_location(&locs[1], 1), "inventory");
}
END_TEST

START_TEST(test_tracked_products_keep_their_order)
{
	inv_json_location loc = { U(STORE), INV_LOCATION_STORE, 1 };
	inv_uuid tracked[3] = { U(P2), U(P1), U(P2) };
	int32_t enabled[3] = { 1, 0, 7 };
	inv_balance b[2];
	json_t *tree = json_array();
	char *out;
	size_t i, len;
	int rc;

	memset(b, 0, sizeof(b));
	b[0].product = U(P2), b[0].variant = U(V3), b[0].balance = 12;
	b[1].product = U(P1), b[1].variant = U(V1), b[1].balance = -4;
	rc = inv_json_encode_status(&out, &len, &loc, b, 2, tracked, 3);
	assert_text_of_tree(rc, out, len, ref_status(&loc, b, 2, tracked, 3), "status");
	for (i = 0; i < 3; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "productUuid", ref_uuid(&tracked[i]));
		json_object_set_new(o, "enabled", json_boolean(enabled[i]));
		json_array_append_new(tree, o);
	}
	rc = inv_json_encode_v3_products_status(&out, &len, tracked, enabled, 3);
	assert_text_of_tree(rc, out, len, tree, "v3 products status");
}
END_TEST

/* ------------------------------------------------------------ strings */

/* An error with one violation carrying `text` as property and message. */
static void error_round(const char *message, const char *text, const char *what)
{
	inv_json_violation v = { text, text, INV_JSON_MUST_MATCH_PATTERN, 0 };
	char *out;
	size_t len;
	int rc = inv_json_encode_error(&out, &len, "VALIDATION_ERROR", message, &v, 1);

	assert_text_of_tree(rc, out, len, ref_error("VALIDATION_ERROR", message, &v, 1), what);
}

START_TEST(test_strings_escape_what_rfc_8259_requires)
{
	char controls[40];
	inv_json_violation v = { "a\"b\\c/d", "\x01\x1f\t\n\r\b\f\x7f", INV_JSON_UNKNOWN, 0 };
	char *out;
	size_t i, len;

	/* The exact escapes: two-character forms where they exist, \u00XX in
	 * capitals for the other control characters; '/' and DEL as they are. */
	ck_assert_int_eq(inv_json_encode_error(&out, &len, "T", "m", &v, 1), 0);
	ck_assert_str_eq(out, "{\"developerMessage\":\"m\",\"errorType\":\"T\",\"violations\":"
	                      "[{\"propertyName\":\"a\\\"b\\\\c/d\",\"developerMessage\":"
	                      "\"\\u0001\\u001F\\t\\n\\r\\b\\f\x7f\",\"constraintType\":\"UNKNOWN\"}]}");
	inv_free(out);
	for (i = 1; i < 0x20; i++)
		controls[i - 1] = (char)i;
	controls[31] = '"';
	controls[32] = '\\';
	controls[33] = '\0';
	error_round(controls, controls, "every control character");
	error_round("\"\"\"", "\\\\", "only escapes");
	error_round("", "", "empty strings");
	error_round(NULL, "x", "no message");
}
END_TEST

START_TEST(test_valid_utf8_is_kept_and_other_bytes_become_question_marks)
{
	static const char *const valid[] = {
		"caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x98\x80", "\xe2\x80\xa8\xe2\x80\xa9",
		"\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xc2\x80",
	};
	static const char *const invalid[] = {
		"\xff", "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80", "\xe2\x82", "x\x80y", "\xf0\x9f\x98", "ok \"q\" \xfe\n\\",
	};
	char longer[700];
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(*valid); i++)
		error_round(valid[i], valid[i], valid[i]);
	for (i = 0; i < sizeof(invalid) / sizeof(*invalid); i++)
		error_round(invalid[i], invalid[i], "invalid UTF-8");
	/* A message that is not UTF-8 is cut at 511 bytes; a valid one is not. */
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	error_round(longer, longer, "long valid");
	longer[3] = '\xff';
	error_round(longer, longer, "long invalid");
}
END_TEST

static Suite *json_write_suite(void)
{
	Suite *s = suite_create("json_write");
	TCase *t = tcase_create("the text of the tree");

	tcase_add_test(t, test_balances_keep_every_digit_of_the_int64_range);
	tcase_add_test(t, test_low_stock_levels_are_numbers_or_null);
	tcase_add_test(t, test_empty_lists_are_written_as_empty_arrays);
	tcase_add_test(t, test_every_location_type_is_named_and_others_are_unknown);
	tcase_add_test(t, test_tracked_products_keep_their_order);
	tcase_add_test(t, test_strings_escape_what_rfc_8259_requires);
	tcase_add_test(t, test_valid_utf8_is_kept_and_other_bytes_become_question_marks);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_write_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
