/*
 * check_rest.c - the REST dispatcher against WIRE.md: one test per row of
 * the error table (status, errorType, propertyName, and stored state
 * unchanged), the section-12 edge cases, and a scenario through the
 * dispatcher alone.
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zinv.h>
#include <zinv/backend.h>

#include "fault_backend.h"

#define ORG "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"
#define OTHER_ORG "3c0b2f5e-1d2e-4f66-8a4c-8e2f3a4b5c6d"
#define P1 "7a51c3d0-9f3b-11ee-b962-0242ac120002"
#define V1 "7a51c6a0-9f3b-11ee-b962-0242ac120002"
#define V2 "7a51c7e0-9f3b-11ee-b962-0242ac120002"
#define P2 "8c2f0e1a-9f3b-11ee-a1b2-0242ac120002"
#define V3 "8c2f1102-9f3b-11ee-a1b2-0242ac120002"
#define EXT "947d712a-892d-11ea-bc55-0242ac130003"
#define RW (INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE)

static inv_store *store;
/* Location UUIDs of ORG, read through GET .../locations. */
static char store_loc[37], sold_loc[37], bin_loc[37], supplier_loc[37];
static void *fault;        /* the fault-injecting wrapper around the memory backend */

static int64_t fixed_clock(void *payload)
{
	(void)payload;
	return INT64_C(1796033700000); /* 2026-11-30T10:15:00.000Z */
}

struct reply {
	int status;
	json_t *json;       /* parsed body, NULL when empty */
	char *body;
	char link[512];
	char allow[64];
	const char *content_type;
};

static void reply_free(struct reply *r)
{
	json_decref(r->json);
	free(r->body);
}

static struct reply call_as(const char *org, int authenticated, uint32_t scopes,
                            const char *method, const char *path, const char *key,
                            const char *body, size_t body_len)
{
	inv_rest_request req = INV_REST_REQUEST_INIT;
	inv_rest_response *res = NULL;
	struct reply r;
	const char *text;
	size_t len, i;

	memset(&r, 0, sizeof(r));
	req.authenticated = authenticated;
	req.method = method;
	req.path = path;
	req.idempotency_key = key;
	req.body = body;
	req.body_len = body ? (body_len ? body_len : strlen(body)) : 0;
	req.scopes = scopes;
	ck_assert_int_eq(inv_uuid_parse(&req.organization, org, strlen(org)), 0);
	ck_assert_int_eq(inv_rest_handle(&res, store, &req), 0);
	r.status = inv_rest_response_status(res);
	text = inv_rest_response_body(res, &len);
	r.body = strdup(text);
	r.content_type = inv_rest_response_content_type(res) ? "application/json" : NULL;
	if (len) {
		json_error_t err;

		r.json = json_loadb(text, len, 0, &err);
		ck_assert_msg(r.json != NULL, "response is not JSON: %s", text);
		ck_assert_ptr_nonnull(inv_rest_response_content_type(res));
		ck_assert_str_eq(inv_rest_response_content_type(res), "application/json");
	}
	for (i = 0; i < inv_rest_response_header_count(res); i++) {
		if (!strcmp(inv_rest_response_header_name(res, i), "Link"))
			snprintf(r.link, sizeof(r.link), "%s", inv_rest_response_header_value(res, i));
		if (!strcmp(inv_rest_response_header_name(res, i), "Allow"))
			snprintf(r.allow, sizeof(r.allow), "%s", inv_rest_response_header_value(res, i));
	}
	inv_rest_response_free(res);
	return r;
}

static struct reply call(const char *method, const char *path, const char *body)
{
	return call_as(ORG, 1, RW, method, path, NULL, body, 0);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	va_start(ap, f);
	vsnprintf(s, (size_t)n + 1, f, ap);
	va_end(ap);
	return s;
}

static const char *sv(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Status, errorType and the first violation's propertyName (NULL: none). */
static void expect_error(struct reply *r, int status, const char *type, const char *property)
{
	json_t *v;

	ck_assert_msg(r->status == status, "expected status %d, got %d: %s", status, r->status,
	              r->body);
	ck_assert_ptr_nonnull(r->json);
	ck_assert_str_eq(sv(r->json, "errorType"), type);
	ck_assert_ptr_nonnull(sv(r->json, "developerMessage"));
	v = json_object_get(r->json, "violations");
	ck_assert_msg(json_is_array(v), "violations missing: %s", r->body);
	if (property) {
		ck_assert_msg(json_array_size(v) >= 1, "no violation in %s", r->body);
		ck_assert_str_eq(sv(json_array_get(v, 0), "propertyName"), property);
	} else {
		ck_assert_msg(json_array_size(v) == 0, "unexpected violations in %s", r->body);
	}
}

static void expect_status(struct reply *r, int status)
{
	ck_assert_msg(r->status == status, "expected status %d, got %d: %s", status, r->status,
	              r->body);
}

/* Everything a client can read, as one string. */
static char *snapshot(void)
{
	struct reply a = call("GET", "/v3/stock?limit=1000", NULL);
	char *path = fmt("/organizations/self/inventory/locations/%s", store_loc);
	struct reply b = call("GET", path, NULL);
	char *lpath = fmt("/custom-low-stock/v2/locations/%s", store_loc);
	struct reply c = call("GET", lpath, NULL);
	inv_org *org;
	inv_uuid ou;
	int64_t seq = -1;
	char *s;

	inv_uuid_parse(&ou, ORG, 36);
	ck_assert_int_eq(inv_org_open(&org, store, &ou), 0);
	ck_assert_int_eq(inv_journal_last_sequence(&seq, org), 0);
	inv_org_close(org);
	expect_status(&a, 200);
	expect_status(&b, 200);
	expect_status(&c, 200);
	s = fmt("%s\n%s\n%s\nseq=%lld", a.body, b.body, c.body, (long long)seq);
	reply_free(&a);
	reply_free(&b);
	reply_free(&c);
	free(path);
	free(lpath);
	return s;
}

static void setup(void)
{
	inv_store_options opts = INV_STORE_OPTIONS_INIT;
	struct reply r;
	size_t i;

	opts.clock = fixed_clock;
	{
		const inv_backend_ops *ops = NULL;
		void *inner = NULL;

		ck_assert_int_eq(inv_memory_backend_new(&inner), 0);
		ck_assert_int_eq(inv_fault_backend_wrap(&ops, &fault, inv_memory_backend_ops(), inner),
		                 0);
		ck_assert_int_eq(inv_store_open(&store, ops, fault, &opts), 0);
	}
	r = call("GET", "/organizations/self/locations", NULL);
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(r.json), 4);
	for (i = 0; i < 4; i++) {
		json_t *o = json_array_get(r.json, i);
		const char *t = sv(o, "type");
		char *dst = !strcmp(t, "STORE") ? store_loc : !strcmp(t, "SOLD") ? sold_loc
		          : !strcmp(t, "BIN") ? bin_loc : supplier_loc;

		snprintf(dst, 37, "%s", sv(o, "uuid"));
	}
	reply_free(&r);
}

static void teardown(void)
{
	inv_store_close(store);
	store = NULL;
}

/* Track P1 and P2 and stock V1=10, V2=4 (bulk, as in the examples). */
static void stock_up(void)
{
	char *body = fmt("{\"productChanges\":["
	                 "{\"productUuid\":\"" P1 "\",\"trackingStatusChange\":\"START_TRACKING\","
	                 "\"variantChanges\":[{\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":\"%s\","
	                 "\"toLocationUuid\":\"%s\",\"change\":10},{\"productUuid\":\"" P1 "\","
	                 "\"variantUuid\":\"" V2 "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":"
	                 "\"%s\",\"change\":\"4\"}]},{\"productUuid\":\"" P2 "\","
	                 "\"trackingStatusChange\":\"START_TRACKING\",\"variantChanges\":[]}]}",
	                 supplier_loc, store_loc, supplier_loc, store_loc);
	struct reply r = call("POST", "/organizations/self/v2/inventory/bulk", body);

	expect_status(&r, 200);
	reply_free(&r);
	free(body);
}

/* A PUT body with one change. */
static char *one_change(const char *product, const char *variant, const char *from,
                        const char *to, const char *change)
{
	return fmt("{\"changes\":[{\"productUuid\":\"%s\",\"variantUuid\":\"%s\","
	           "\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":%s}]}",
	           product, variant, from, to, change);
}

/* Run a request that must fail as given and store nothing. */
static void expect_refused(const char *org, int auth, uint32_t scopes, const char *method,
                           const char *path, const char *key, const char *body, size_t body_len,
                           int status, const char *type, const char *property)
{
	char *before = snapshot(), *after;
	struct reply r = call_as(org, auth, scopes, method, path, key, body, body_len);

	expect_error(&r, status, type, property);
	reply_free(&r);
	after = snapshot();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}

/* ------------------------------------------------------------ error table */

START_TEST(test_error_body_not_json_is_validation_error_without_violations)
{
	stock_up();
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, "{\"changes\":[",
	               0, 400, "VALIDATION_ERROR", NULL);
}
END_TEST

START_TEST(test_error_wrong_type_missing_or_out_of_range_is_validation_error)
{
	char *bad = one_change(P1, V1, store_loc, sold_loc, "0");
	char *missing = fmt("{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                    "\",\"fromLocationUuid\":\"%s\",\"change\":1}]}", store_loc);
	char *type = one_change(P1, V1, store_loc, sold_loc, "true");

	stock_up();
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, bad, 0, 400,
	               "VALIDATION_ERROR", "changes[0].change");
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, missing, 0, 400,
	               "VALIDATION_ERROR", "changes[0].toLocationUuid");
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, type, 0, 400,
	               "VALIDATION_ERROR", "changes[0].change");
	free(bad);
	free(missing);
	free(type);
}
END_TEST

START_TEST(test_error_move_on_untracked_product_is_product_not_tracked)
{
	char *body;

	stock_up();
	body = fmt("{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	           "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":1},"
	           "{\"productUuid\":\"9d3e1f2a-9f3b-11ee-a1b2-0242ac120002\",\"variantUuid\":"
	           "\"9d3e1f2b-9f3b-11ee-a1b2-0242ac120002\",\"fromLocationUuid\":\"%s\","
	           "\"toLocationUuid\":\"%s\",\"change\":1}]}",
	           store_loc, sold_loc, supplier_loc, store_loc);
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, 0, 400,
	               "PRODUCT_NOT_TRACKED", "changes[1].productUuid");
	free(body);
}
END_TEST

START_TEST(test_error_stop_tracking_untracked_is_product_not_tracked)
{
	stock_up();
	expect_refused(ORG, 1, RW, "DELETE",
	               "/organizations/self/inventory/products/9d3e1f2a-9f3b-11ee-a1b2-0242ac120002",
	               NULL, NULL, 0, 400, "PRODUCT_NOT_TRACKED", "productUuid");
}
END_TEST

START_TEST(test_error_variant_of_another_product_is_mismatch)
{
	char *body;

	stock_up();
	body = one_change(P2, V1, supplier_loc, store_loc, "1");
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, 0, 400,
	               "VARIANT_PRODUCT_MISMATCH", "changes[0].variantUuid");
	free(body);
}
END_TEST

START_TEST(test_error_unknown_location_is_entity_not_found)
{
	char *body;
	struct reply r;

	stock_up();
	/* Another organization's STORE is as unknown as a made-up UUID. */
	r = call_as(OTHER_ORG, 1, RW, "GET", "/organizations/self/locations", NULL, NULL, 0);
	expect_status(&r, 200);
	body = one_change(P1, V1, store_loc, sv(json_array_get(r.json, 1), "uuid"), "1");
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, 0, 404,
	               "ENTITY_NOT_FOUND", "changes[0].toLocationUuid");
	free(body);
	body = fmt("/organizations/self/inventory/locations/%s", sv(json_array_get(r.json, 0), "uuid"));
	expect_refused(ORG, 1, RW, "GET", body, NULL, NULL, 0, 404, "ENTITY_NOT_FOUND",
	               "locationUuid");
	free(body);
	reply_free(&r);
}
END_TEST

START_TEST(test_error_no_token_is_unauthorized)
{
	stock_up();
	expect_refused(ORG, 0, RW, "GET", "/organizations/self/locations", NULL, NULL, 0, 401,
	               "UNAUTHORIZED", NULL);
	expect_refused(ORG, 0, RW, "GET", "/no/such/path", NULL, NULL, 0, 401, "UNAUTHORIZED", NULL);
}
END_TEST

START_TEST(test_error_other_organization_or_missing_scope_is_forbidden)
{
	char *body = one_change(P1, V1, store_loc, sold_loc, "1");

	stock_up();
	expect_refused(ORG, 1, RW, "PUT", "/organizations/" OTHER_ORG "/inventory", NULL, body, 0,
	               403, "FORBIDDEN", NULL);
	expect_refused(ORG, 1, INV_REST_SCOPE_READ, "PUT", "/organizations/self/inventory", NULL,
	               body, 0, 403, "FORBIDDEN", NULL);
	expect_refused(ORG, 1, INV_REST_SCOPE_WRITE, "GET", "/organizations/self/locations", NULL,
	               NULL, 0, 403, "FORBIDDEN", NULL);
	free(body);
}
END_TEST

START_TEST(test_error_store_below_zero_under_deny_is_insufficient_stock)
{
	inv_org *org;
	inv_uuid ou;
	char *body;

	stock_up();
	inv_uuid_parse(&ou, ORG, 36);
	ck_assert_int_eq(inv_org_open(&org, store, &ou), 0);
	ck_assert_int_eq(inv_org_set_negative_policy(org, INV_NEGATIVE_DENY), 0);
	inv_org_close(org);
	body = fmt("{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	           "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":6},"
	           "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	           "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":\"5\"}]}",
	           store_loc, sold_loc, store_loc, bin_loc);
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, 0, 409,
	               "INSUFFICIENT_STOCK", "changes[1].change");
	free(body);
}
END_TEST

START_TEST(test_error_idempotency_key_reused_with_other_body_is_conflict)
{
	char *a = one_change(P1, V1, store_loc, sold_loc, "1");
	char *b = one_change(P1, V1, store_loc, sold_loc, "2");
	struct reply r;

	stock_up();
	r = call_as(ORG, 1, RW, "PUT", "/organizations/self/inventory", "key-1", a, 0);
	expect_status(&r, 200);
	reply_free(&r);
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", "key-1", b, 0, 409,
	               "CONFLICT", "Idempotency-Key");
	free(a);
	free(b);
}
END_TEST

START_TEST(test_error_balance_beyond_2_pow_53_is_out_of_range)
{
	char *max = one_change(P1, V1, supplier_loc, store_loc, "9007199254740981");
	struct reply r;

	stock_up(); /* V1 = 10 */
	r = call("PUT", "/organizations/self/inventory", max);
	expect_status(&r, 200);
	reply_free(&r);
	free(max);
	max = one_change(P1, V1, supplier_loc, store_loc, "1");
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, max, 0, 400,
	               "BALANCE_OUT_OF_RANGE", "changes[0].change");
	free(max);
}
END_TEST

START_TEST(test_error_more_than_10000_changes_is_payload_too_large)
{
	char *one = fmt("{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":"
	                "\"%s\",\"toLocationUuid\":\"%s\",\"change\":1},", store_loc, sold_loc);
	size_t olen = strlen(one), i;
	char *body = malloc(10001 * olen + 32), *p = body;

	stock_up();
	p += sprintf(p, "{\"changes\":[");
	for (i = 0; i < 10001; i++)
		p += sprintf(p, "%s", one);
	p[-1] = ']';
	sprintf(p, "}");
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, 0, 413,
	               "PAYLOAD_TOO_LARGE", NULL);
	free(body);
	free(one);
}
END_TEST

START_TEST(test_error_body_over_8_mib_is_payload_too_large)
{
	size_t n = 8u * 1024u * 1024u + 1;
	char *body = malloc(n);

	stock_up();
	memset(body, ' ', n);
	body[0] = '{';
	body[n - 1] = '}';
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, n, 413,
	               "PAYLOAD_TOO_LARGE", NULL);
	free(body);
}
END_TEST

START_TEST(test_error_unknown_path_is_not_found_and_wrong_method_405)
{
	struct reply r;

	stock_up();
	expect_refused(ORG, 1, RW, "GET", "/organizations/self/nothing", NULL, NULL, 0, 404,
	               "NOT_FOUND", NULL);
	expect_refused(ORG, 1, RW, "GET", "/organizations//locations", NULL, NULL, 0, 404,
	               "NOT_FOUND", NULL);
	expect_refused(ORG, 1, RW, "PATCH", "/organizations/self/inventory", NULL, NULL, 0, 405,
	               "METHOD_NOT_ALLOWED", NULL);
	r = call("DELETE", "/organizations/self/inventory", NULL);
	expect_error(&r, 405, "METHOD_NOT_ALLOWED", NULL);
	ck_assert_str_eq(r.allow, "POST, PUT");
	reply_free(&r);
}
END_TEST

/*
 * Fail each storage operation of a request in turn: every failure answers
 * 500 (503 when the backend says busy) and stores nothing, until k passes
 * the request's last operation and it succeeds.
 */
static void fail_each_operation(const char *method, const char *path, const char *body,
                                int code, int status, const char *type)
{
	uint64_t k;

	for (k = 1;; k++) {
		char *before = snapshot(), *after;
		struct reply r;
		const char *op = NULL;
		int fired;

		inv_fault_backend_fail_at(fault, k, code);
		r = call(method, path, body);
		fired = inv_fault_backend_fired(fault, &op);
		inv_fault_backend_fail_at(fault, 0, 0);
		if (!fired) {
			ck_assert_msg(r.status == 200 || r.status == 204, "k=%llu: %d %s",
			              (unsigned long long)k, r.status, r.body);
			reply_free(&r);
			free(before);
			break;
		}
		ck_assert_msg(r.status == status, "failing %s (k=%llu): expected %d, got %d %s", op,
		              (unsigned long long)k, status, r.status, r.body);
		expect_error(&r, status, type, NULL);
		reply_free(&r);
		after = snapshot();
		ck_assert_msg(strcmp(after, before) == 0, "failing %s changed the stored state", op);
		free(before);
		free(after);
		ck_assert_uint_lt(k, 200);
	}
}

START_TEST(test_error_backend_failure_is_internal_server_error)
{
	char *put = one_change(P1, V1, store_loc, sold_loc, "1");
	char *mov = fmt("{\"movements\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V2
	                "\",\"change\":1,\"from\":\"%s\",\"to\":\"%s\"}]}", store_loc, bin_loc);
	char *bulk = fmt("{\"productChanges\":[{\"productUuid\":\"9d3e1f2a-9f3b-11ee-a1b2-0242ac120002\","
	                 "\"trackingStatusChange\":\"START_TRACKING\",\"variantChanges\":[{\"variantUuid\":"
	                 "\"9d3e1f2b-9f3b-11ee-a1b2-0242ac120002\",\"fromLocationUuid\":\"%s\","
	                 "\"toLocationUuid\":\"%s\",\"change\":3}]}]}", supplier_loc, store_loc);
	char *ls_path = fmt("/custom-low-stock/locations/%s", store_loc);
	char *v3ls = fmt("[{\"inventoryUuid\":\"%s\",\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                 "\",\"lowStockLevel\":2},{\"inventoryUuid\":\"%s\",\"productUuid\":\"" P1
	                 "\",\"variantUuid\":\"" V2 "\",\"lowStockAlert\":true}]", store_loc, store_loc);

	stock_up();
	fail_each_operation("PUT", "/organizations/self/inventory", put, INV_EBACKEND, 500,
	                    "INTERNAL_SERVER_ERROR");
	fail_each_operation("POST", "/v3/movements", mov, INV_EBACKEND, 500, "INTERNAL_SERVER_ERROR");
	fail_each_operation("DELETE", "/organizations/self/inventory/products/" P2, NULL, INV_EBACKEND,
	                    500, "INTERNAL_SERVER_ERROR");
	fail_each_operation("POST", "/organizations/self/v2/inventory/bulk", bulk, INV_EBACKEND, 500,
	                    "INTERNAL_SERVER_ERROR");
	fail_each_operation("PUT", ls_path, "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                    "\",\"lowStockLevel\":5,\"lowStockAlert\":true}", INV_EBACKEND, 500,
	                    "INTERNAL_SERVER_ERROR");
	fail_each_operation("POST", ls_path, "{\"requests\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\""
	                    V1 "\",\"lowStockLevel\":6},{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V2
	                    "\",\"lowStockLevel\":6}]}", INV_EBACKEND, 500, "INTERNAL_SERVER_ERROR");
	fail_each_operation("POST", "/v3/custom-low-stock", v3ls, INV_EBACKEND, 500,
	                    "INTERNAL_SERVER_ERROR");
	free(put);
	free(mov);
	free(bulk);
	free(ls_path);
	free(v3ls);
}
END_TEST

START_TEST(test_error_busy_backend_is_service_unavailable)
{
	char *put = one_change(P1, V1, store_loc, sold_loc, "1");

	stock_up();
	fail_each_operation("PUT", "/organizations/self/inventory", put, INV_EBUSY, 503,
	                    "SERVICE_UNAVAILABLE");
	free(put);
}
END_TEST

/* A write to the same organization from inside an event callback is
 * refused by the core with INV_EBUSY. */
static struct reply busy_reply;

static void write_from_callback(const inv_event *event, void *payload)
{
	(void)event;
	if (busy_reply.status == 0)
		busy_reply = call("PUT", "/organizations/self/inventory", payload);
}

START_TEST(test_error_busy_storage_is_service_unavailable)
{
	char *body = one_change(P1, V1, store_loc, sold_loc, "1");
	uint64_t id;
	struct reply r;

	stock_up();
	memset(&busy_reply, 0, sizeof(busy_reply));
	ck_assert_int_eq(inv_subscribe(&id, store, 0, write_from_callback, body), 0);
	r = call("PUT", "/organizations/self/inventory", body);
	expect_status(&r, 200);
	reply_free(&r);
	ck_assert_int_eq(inv_unsubscribe(store, id), 0);
	expect_error(&busy_reply, 503, "SERVICE_UNAVAILABLE", NULL);
	reply_free(&busy_reply);
	free(body);
}
END_TEST

/* ------------------------------------------------------------ section 12 */

START_TEST(test_checks_run_401_404_403_413_400_in_order)
{
	size_t n = 8u * 1024u * 1024u + 1;
	char *huge = malloc(n);

	memset(huge, 'x', n);
	/* Route before organization: an unknown path under another org is 404. */
	expect_refused(ORG, 1, RW, "GET", "/organizations/" OTHER_ORG "/nothing", NULL, NULL, 0, 404,
	               "NOT_FOUND", NULL);
	/* Organization before size. */
	expect_refused(ORG, 1, RW, "PUT", "/organizations/" OTHER_ORG "/inventory", NULL, huge, n,
	               403, "FORBIDDEN", NULL);
	/* Size before body. */
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, huge, n, 413,
	               "PAYLOAD_TOO_LARGE", NULL);
	/* Body before domain: an unknown location in a body that is also invalid. */
	{
		char *body = one_change(P1, V1, store_loc, "00000000-0000-0000-0000-000000000000", "0");

		expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, 0, 400,
		               "VALIDATION_ERROR", "changes[0].change");
		free(body);
	}
	free(huge);
}
END_TEST

START_TEST(test_self_and_own_uuid_are_the_same_organization)
{
	struct reply a = call("GET", "/organizations/self/locations", NULL);
	struct reply b = call("GET", "/organizations/" ORG "/locations", NULL);
	struct reply c = call("GET", "/organizations/2B9A1F4E-0C1D-4E55-9A3B-7D1E2F3A4B5C/locations/",
	                      NULL);

	expect_status(&a, 200);
	expect_status(&b, 200);
	expect_status(&c, 200);
	ck_assert_str_eq(a.body, b.body);
	ck_assert_str_eq(a.body, c.body);
	reply_free(&a);
	reply_free(&b);
	reply_free(&c);
}
END_TEST

START_TEST(test_locations_are_four_with_default_store)
{
	struct reply r = call("GET", "/organizations/self/locations", NULL);
	json_t *first = json_array_get(r.json, 0);

	ck_assert_str_eq(sv(first, "type"), "STORE");
	ck_assert_str_eq(sv(first, "name"), "STORE");
	ck_assert_str_eq(sv(first, "description"), "System generated location");
	ck_assert(json_is_true(json_object_get(first, "default")));
	ck_assert(json_is_false(json_object_get(json_array_get(r.json, 3), "default")));
	reply_free(&r);
}
END_TEST

START_TEST(test_path_uuid_that_is_not_a_uuid_names_the_parameter)
{
	expect_refused(ORG, 1, RW, "GET", "/organizations/self/inventory/locations/nope", NULL, NULL,
	               0, 400, "VALIDATION_ERROR", "locationUuid");
	expect_refused(ORG, 1, RW, "GET", "/v3/stock/1234", NULL, NULL, 0, 400, "VALIDATION_ERROR",
	               "inventoryUuid");
}
END_TEST

START_TEST(test_same_from_and_to_is_validation_error_on_to)
{
	char *body = one_change(P1, V1, store_loc, store_loc, "1");

	stock_up();
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, body, 0, 400,
	               "VALIDATION_ERROR", "changes[0].toLocationUuid");
	free(body);
}
END_TEST

START_TEST(test_type_query_is_case_insensitive)
{
	struct reply r;

	stock_up();
	r = call("GET", "/organizations/self/inventory/locations?type=store", NULL);
	expect_status(&r, 200);
	ck_assert_str_eq(sv(r.json, "locationUuid"), store_loc);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "trackedProducts")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 2);
	reply_free(&r);
	r = call("GET", "/organizations/self/inventory/locations/?type=Sold", NULL);
	expect_status(&r, 200);
	ck_assert_str_eq(sv(r.json, "locationUuid"), sold_loc);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 0);
	reply_free(&r);
	r = call("GET", "/organizations/self/inventory/locations?type=SHELF", NULL);
	expect_error(&r, 400, "VALIDATION_ERROR", "type");
	reply_free(&r);
}
END_TEST

START_TEST(test_reads_sent_as_post_need_read_scope_only)
{
	struct reply r = call_as(ORG, 1, INV_REST_SCOPE_READ, "POST",
	                         "/organizations/self/inventory/products", NULL,
	                         "{\"locationType\":\"STORE\",\"productUuids\":[]}", 0);

	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "trackedProducts")), 0);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 0);
	reply_free(&r);
	r = call_as(ORG, 1, INV_REST_SCOPE_READ, "POST", "/v3/products/status", NULL, "[]", 0);
	expect_status(&r, 200);
	ck_assert_str_eq(r.body, "[]");
	reply_free(&r);
}
END_TEST

START_TEST(test_filter_read_lists_requested_tracked_products_only)
{
	struct reply r;

	stock_up();
	r = call("POST", "/organizations/self/inventory/products",
	         "{\"locationType\":\"STORE\",\"productUuids\":[\"" P1 "\","
	         "\"9d3e1f2a-9f3b-11ee-a1b2-0242ac120002\",\"" P1 "\"]}");
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "trackedProducts")), 1);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r.json, "trackedProducts"), 0)), P1);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 2);
	reply_free(&r);
}
END_TEST

START_TEST(test_write_arrays_must_not_be_empty_but_status_may)
{
	expect_refused(ORG, 1, RW, "PUT", "/organizations/self/inventory", NULL, "{\"changes\":[]}", 0,
	               400, "VALIDATION_ERROR", "changes");
	expect_refused(ORG, 1, RW, "POST", "/v3/movements", NULL, "{\"movements\":[]}", 0, 400,
	               "VALIDATION_ERROR", "movements");
	expect_refused(ORG, 1, RW, "POST", "/v3/products", NULL, "[]", 0, 400, "VALIDATION_ERROR", "");
}
END_TEST

START_TEST(test_bulk_nested_product_mismatch_and_stop_untracked)
{
	char *body = fmt("{\"productChanges\":[{\"productUuid\":\"" P2 "\",\"trackingStatusChange\":"
	                 "\"NO_CHANGE\",\"variantChanges\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":"
	                 "\"" V3 "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":1}]}]}",
	                 supplier_loc, store_loc);

	stock_up();
	expect_refused(ORG, 1, RW, "POST", "/organizations/self/v2/inventory/bulk", NULL, body, 0,
	               400, "VALIDATION_ERROR", "productChanges[0].variantChanges[0].productUuid");
	free(body);
	body = fmt("{\"productChanges\":[{\"productUuid\":\"" P1 "\",\"trackingStatusChange\":"
	           "\"NO_CHANGE\",\"variantChanges\":[{\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":"
	           "\"%s\",\"toLocationUuid\":\"%s\",\"change\":1}]},{\"productUuid\":"
	           "\"9d3e1f2a-9f3b-11ee-a1b2-0242ac120002\",\"trackingStatusChange\":\"STOP_TRACKING\"}]}",
	           store_loc, sold_loc);
	expect_refused(ORG, 1, RW, "POST", "/organizations/self/v2/inventory/bulk", NULL, body, 0,
	               400, "PRODUCT_NOT_TRACKED", "productChanges[1].trackingStatusChange");
	free(body);
}
END_TEST

START_TEST(test_bulk_failure_names_nested_change)
{
	char *body = fmt("{\"productChanges\":[{\"productUuid\":\"" P2 "\",\"trackingStatusChange\":"
	                 "\"NO_CHANGE\",\"variantChanges\":[{\"variantUuid\":\"" V3 "\","
	                 "\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":1}]},"
	                 "{\"productUuid\":\"" P1 "\",\"trackingStatusChange\":\"NO_CHANGE\","
	                 "\"variantChanges\":[{\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":\"%s\","
	                 "\"toLocationUuid\":\"%s\",\"change\":1},{\"variantUuid\":\"" V2 "\","
	                 "\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":1}]}]}",
	                 supplier_loc, store_loc, store_loc, sold_loc, store_loc,
	                 "11111111-2222-3333-4444-555555555555");

	stock_up();
	expect_refused(ORG, 1, RW, "POST", "/organizations/self/v2/inventory/bulk", NULL, body, 0,
	               404, "ENTITY_NOT_FOUND", "productChanges[1].variantChanges[1].toLocationUuid");
	free(body);
}
END_TEST

START_TEST(test_put_answer_lists_every_touched_variant_zero_included)
{
	char *body;
	struct reply r;

	stock_up();
	body = fmt("{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V2
	           "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":4}]}",
	           store_loc, bin_loc);
	r = call("PUT", "/organizations/self/inventory", body);
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 1);
	ck_assert_str_eq(sv(json_array_get(json_object_get(r.json, "variants"), 0), "balance"), "0");
	ck_assert_ptr_null(json_object_get(r.json, "trackedProducts"));
	reply_free(&r);
	free(body);
	body = fmt("{\"returnBalanceForLocationUuid\":\"%s\",\"changes\":[{\"productUuid\":\"" P1
	           "\",\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":"
	           "\"%s\",\"change\":1}]}", sold_loc, store_loc, sold_loc);
	r = call("PUT", "/organizations/self/inventory", body);
	expect_status(&r, 200);
	ck_assert_str_eq(sv(r.json, "locationUuid"), sold_loc);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 0);
	reply_free(&r);
	free(body);
}
END_TEST

START_TEST(test_untracked_product_reads_empty_variants)
{
	char *path;
	struct reply r;

	stock_up();
	r = call("DELETE", "/organizations/self/inventory/products/" P1, "not json at all");
	expect_status(&r, 204);
	ck_assert_str_eq(r.body, "");
	ck_assert_ptr_null(r.content_type);
	reply_free(&r);
	path = fmt("/organizations/self/inventory/locations/%s/products/" P1, store_loc);
	r = call("GET", path, NULL);
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 0);
	ck_assert_ptr_null(json_object_get(r.json, "trackedProducts"));
	reply_free(&r);
	/* Starting again brings the kept balances back. */
	r = call("POST", "/organizations/self/inventory", "{\"productUuid\":\"" P1 "\"}");
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 2);
	ck_assert_ptr_null(json_object_get(r.json, "trackedProducts"));
	reply_free(&r);
	free(path);
}
END_TEST

START_TEST(test_idempotent_put_replays_first_answer)
{
	char *body = one_change(P1, V1, store_loc, sold_loc, "3");
	struct reply a, b, c;

	stock_up();
	a = call_as(ORG, 1, RW, "PUT", "/organizations/self/inventory", "k", body, 0);
	b = call_as(ORG, 1, RW, "PUT", "/organizations/self/inventory", "k", body, 0);
	expect_status(&a, 200);
	expect_status(&b, 200);
	ck_assert_str_eq(a.body, b.body);
	ck_assert_str_eq(sv(json_array_get(json_object_get(b.json, "variants"), 0), "balance"), "7");
	c = call("GET", "/v3/stock", NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(c.json, 0), "balance")), 7);
	reply_free(&a);
	reply_free(&b);
	reply_free(&c);
	free(body);
}
END_TEST

START_TEST(test_low_stock_only_for_store_and_round_trip)
{
	char *path = fmt("/custom-low-stock/locations/%s", sold_loc);
	struct reply r;

	expect_refused(ORG, 1, RW, "PUT", path, NULL,
	               "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1 "\",\"lowStockLevel\":5}", 0,
	               400, "VALIDATION_ERROR", "locationUuid");
	free(path);
	path = fmt("/custom-low-stock/locations/%s", store_loc);
	r = call("POST", path, "{\"requests\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                       "\",\"lowStockLevel\":5,\"lowStockAlert\":true},{\"productUuid\":\"" P1
	                       "\",\"variantUuid\":\"" V2 "\",\"lowStockLevel\":null,"
	                       "\"lowStockAlert\":true}]}");
	expect_status(&r, 204);
	reply_free(&r);
	free(path);
	path = fmt("/custom-low-stock/v2/locations/%s", store_loc);
	r = call("GET", path, NULL);
	expect_status(&r, 200);
	{
		json_t *p = json_array_get(json_object_get(r.json, "customLowStockLevelsForProducts"), 0);
		json_t *v = json_object_get(p, "customLowStockLevelForVariants");

		ck_assert_str_eq(sv(r.json, "organizationUuid"), ORG);
		ck_assert_str_eq(sv(p, "productUuid"), P1);
		ck_assert_uint_eq(json_array_size(v), 2);
		ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(v, 0),
		                                                    "customLowStockLevel")), 5);
		ck_assert(json_is_null(json_object_get(json_array_get(v, 1), "customLowStockLevel")));
	}
	reply_free(&r);
	free(path);
	path = fmt("/custom-low-stock/locations/%s/products/" P1 "/variants/" V1, store_loc);
	r = call("DELETE", path, NULL);
	expect_status(&r, 204);
	reply_free(&r);
	free(path);
	path = fmt("/custom-low-stock/locations/%s/delete", store_loc);
	r = call("POST", path, "{\"requests\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V2 "\"}]}");
	expect_status(&r, 204);
	reply_free(&r);
	free(path);
	path = fmt("/custom-low-stock/v2/locations/%s/products/" P1, store_loc);
	r = call("GET", path, NULL);
	expect_status(&r, 200);
	ck_assert_str_eq(r.body, "{\"productUuid\":\"" P1 "\",\"customLowStockLevelForVariants\":[]}");
	reply_free(&r);
	free(path);
}
END_TEST

START_TEST(test_v3_limit_outside_range_is_400)
{
	expect_refused(ORG, 1, RW, "GET", "/v3/stock?limit=0", NULL, NULL, 0, 400, "VALIDATION_ERROR",
	               "limit");
	expect_refused(ORG, 1, RW, "GET", "/v3/stock?limit=1001", NULL, NULL, 0, 400,
	               "VALIDATION_ERROR", "limit");
	expect_refused(ORG, 1, RW, "GET", "/v3/stock?limit=ten", NULL, NULL, 0, 400,
	               "VALIDATION_ERROR", "limit");
	expect_refused(ORG, 1, RW, "GET", "/v3/stock?cursor=zz", NULL, NULL, 0, 400,
	               "VALIDATION_ERROR", "cursor");
}
END_TEST

START_TEST(test_v3_inventories_are_the_locations)
{
	struct reply r = call("GET", "/v3/inventories", NULL), one;
	char *path;

	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(r.json), 4);
	ck_assert_str_eq(sv(json_array_get(r.json, 0), "inventoryUuid"), store_loc);
	ck_assert_str_eq(sv(json_array_get(r.json, 0), "name"), "STORE");
	path = fmt("/v3/inventories/%s", bin_loc);
	one = call("GET", path, NULL);
	expect_status(&one, 200);
	ck_assert_str_eq(sv(one.json, "inventoryType"), "BIN");
	ck_assert(json_is_false(json_object_get(one.json, "defaultInventory")));
	reply_free(&one);
	reply_free(&r);
	free(path);
	expect_refused(ORG, 1, RW, "GET", "/v3/inventories/11111111-2222-3333-4444-555555555555",
	               NULL, NULL, 0, 404, "ENTITY_NOT_FOUND", "inventoryUuid");
}
END_TEST

START_TEST(test_v3_products_and_custom_low_stock)
{
	struct reply r;
	char *body;

	r = call("POST", "/v3/products", "[{\"productUuid\":\"" P1 "\",\"tracking\":\"enable\"}]");
	expect_status(&r, 204);
	reply_free(&r);
	r = call("POST", "/v3/products/status", "[\"" P1 "\",\"" P2 "\"]");
	expect_status(&r, 200);
	ck_assert_str_eq(r.body, "[{\"productUuid\":\"" P1 "\",\"enabled\":true},"
	                         "{\"productUuid\":\"" P2 "\",\"enabled\":false}]");
	reply_free(&r);
	body = fmt("[{\"inventoryUuid\":\"%s\",\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	           "\",\"lowStockLevel\":3,\"lowStockAlert\":true}]", store_loc);
	r = call("POST", "/v3/custom-low-stock", body);
	expect_status(&r, 204);
	reply_free(&r);
	free(body);
	body = fmt("[{\"inventoryUuid\":\"%s\",\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	           "\",\"lowStockLevel\":0,\"lowStockAlert\":false},{\"inventoryUuid\":\"%s\","
	           "\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V2 "\",\"lowStockLevel\":1}]",
	           store_loc, bin_loc);
	expect_refused(ORG, 1, RW, "POST", "/v3/custom-low-stock", NULL, body, 0, 400,
	               "VALIDATION_ERROR", "[1].inventoryUuid");
	free(body);
}
END_TEST

/* ------------------------------------------------------------ threads */

struct seller {
	char *body;
	int failures;
};

static void *sell(void *arg)
{
	struct seller *s = arg;
	int i;

	for (i = 0; i < 100; i++) {
		struct reply r = call("PUT", "/organizations/self/inventory", s->body);

		if (r.status != 200)
			s->failures++;
		reply_free(&r);
	}
	return NULL;
}

START_TEST(test_concurrent_requests_lose_no_update)
{
	struct seller s[4];
	pthread_t t[4];
	struct reply r;
	int i;

	stock_up(); /* V1 = 10 */
	for (i = 0; i < 4; i++) {
		s[i].body = one_change(P1, V1, store_loc, sold_loc, "1");
		s[i].failures = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, sell, &s[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(s[i].failures, 0);
		free(s[i].body);
	}
	r = call("GET", "/v3/stock/", NULL);
	ck_assert_str_eq(sv(json_array_get(r.json, 0), "variantUuid"), V1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(r.json, 0), "balance")),
	                 10 - 400);
	reply_free(&r);
}
END_TEST

/* ------------------------------------------------------------ scenario */

START_TEST(test_scenario_through_the_dispatcher_alone)
{
	char *body, *path;
	struct reply r;
	size_t i, seen[25] = { 0 }, pages = 0, total = 0;
	char next[512];

	stock_up();
	/* Sales and a discard, as in the examples. */
	body = fmt("{\"changes\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	           "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":3},"
	           "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1 "\",\"fromLocationUuid\":"
	           "\"%s\",\"toLocationUuid\":\"%s\",\"change\":1},{\"productUuid\":\"" P2
	           "\",\"variantUuid\":\"" V3 "\",\"fromLocationUuid\":\"%s\",\"toLocationUuid\":"
	           "\"%s\",\"change\":7}],\"externalUuid\":\"" EXT "\"}",
	           store_loc, sold_loc, store_loc, bin_loc, supplier_loc, store_loc);
	r = call("PUT", "/organizations/self/inventory", body);
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 2);
	ck_assert_str_eq(sv(json_array_get(json_object_get(r.json, "variants"), 0), "balance"), "6");
	ck_assert_str_eq(sv(json_array_get(json_object_get(r.json, "variants"), 1), "balance"), "7");
	reply_free(&r);
	free(body);
	/* Location-wide read. */
	path = fmt("/organizations/self/inventory/locations/%s", store_loc);
	r = call("GET", path, NULL);
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "trackedProducts")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 3);
	reply_free(&r);
	free(path);
	/* Low stock on V1 at 5, then a v3 movement of 2 takes it to 4. */
	path = fmt("/custom-low-stock/locations/%s", store_loc);
	r = call("PUT", path, "{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	                      "\",\"lowStockLevel\":5,\"lowStockAlert\":true}");
	expect_status(&r, 204);
	reply_free(&r);
	free(path);
	body = fmt("{\"movements\":[{\"productUuid\":\"" P1 "\",\"variantUuid\":\"" V1
	           "\",\"change\":2,\"from\":\"%s\",\"to\":\"%s\"}],\"identifier\":\"" EXT "\"}",
	           store_loc, sold_loc);
	r = call("POST", "/v3/movements", body);
	expect_status(&r, 204);
	reply_free(&r);
	free(body);
	path = fmt("/v3/stock/%s/products/" P1, store_loc);
	r = call("GET", path, NULL);
	expect_status(&r, 200);
	{
		json_t *o = json_array_get(r.json, 0);

		ck_assert_str_eq(sv(o, "organizationUuid"), ORG);
		ck_assert_str_eq(sv(o, "inventoryUuid"), store_loc);
		ck_assert_str_eq(sv(o, "variantUuid"), V1);
		ck_assert_int_eq(json_integer_value(json_object_get(o, "balance")), 4);
		ck_assert_int_eq(json_integer_value(json_object_get(o, "lowStockLevel")), 5);
		ck_assert(json_is_true(json_object_get(o, "lowStockAlert")));
		ck_assert_str_eq(sv(o, "updated"), "2026-11-30T10:15:00.000Z");
		o = json_array_get(r.json, 1);
		ck_assert(json_is_null(json_object_get(o, "lowStockLevel")));
		ck_assert(json_is_false(json_object_get(o, "lowStockAlert")));
	}
	ck_assert_str_eq(r.link, "");
	reply_free(&r);
	free(path);

	/* 25 variants of a third product, paged 10 at a time. */
	{
		char *changes = malloc(25 * 256 + 256), *p = changes;

		p += sprintf(p, "{\"productChanges\":[{\"productUuid\":\"aaaaaaaa-0000-4000-8000-000000000000\","
		                "\"trackingStatusChange\":\"START_TRACKING\",\"variantChanges\":[");
		for (i = 0; i < 25; i++)
			p += sprintf(p, "%s{\"variantUuid\":\"bbbbbbbb-0000-4000-8000-0000000000%02zu\","
			                "\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\",\"change\":%zu}",
			             i ? "," : "", i, supplier_loc, store_loc, i + 1);
		sprintf(p, "]}]}");
		r = call("POST", "/organizations/self/v2/inventory/bulk", changes);
		expect_status(&r, 200);
		ck_assert_uint_eq(json_array_size(json_object_get(r.json, "variants")), 25);
		reply_free(&r);
		free(changes);
	}
	path = fmt("/v3/stock/%s/products/aaaaaaaa-0000-4000-8000-000000000000?limit=10", store_loc);
	snprintf(next, sizeof(next), "%s", path);
	free(path);
	while (next[0]) {
		r = call("GET", next, NULL);
		expect_status(&r, 200);
		pages++;
		for (i = 0; i < json_array_size(r.json); i++) {
			json_t *o = json_array_get(r.json, i);
			unsigned idx;

			ck_assert_int_eq(sscanf(sv(o, "variantUuid"), "bbbbbbbb-0000-4000-8000-0000000000%02u",
			                        &idx), 1);
			ck_assert_uint_lt(idx, 25);
			ck_assert_int_eq(json_integer_value(json_object_get(o, "balance")), idx + 1);
			seen[idx]++;
			total++;
		}
		next[0] = '\0';
		if (r.link[0]) {
			char *end = strchr(r.link, '>');

			ck_assert_msg(!strncmp(r.link, "</v3/stock/", 11), "Link %s is not path-absolute",
			              r.link);
			ck_assert_ptr_nonnull(strstr(r.link, "limit=10>; rel=\"next\""));
			ck_assert_ptr_nonnull(end);
			snprintf(next, sizeof(next), "%.*s", (int)(end - r.link - 1), r.link + 1);
		}
		reply_free(&r);
	}
	ck_assert_uint_eq(pages, 3);
	ck_assert_uint_eq(total, 25);
	for (i = 0; i < 25; i++)
		ck_assert_uint_eq(seen[i], 1);
	/* All STORE stock: 3 example variants + 25. */
	r = call("GET", "/v3/stock/", NULL);
	expect_status(&r, 200);
	ck_assert_uint_eq(json_array_size(r.json), 28);
	reply_free(&r);
}
END_TEST

static Suite *rest_suite(void)
{
	Suite *s = suite_create("rest");
	TCase *errors = tcase_create("error table");
	TCase *edges = tcase_create("section 12");
	TCase *scenario = tcase_create("scenario");

	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_checked_fixture(edges, setup, teardown);
	tcase_add_checked_fixture(scenario, setup, teardown);
	tcase_set_timeout(errors, 60);

	tcase_add_test(errors, test_error_body_not_json_is_validation_error_without_violations);
	tcase_add_test(errors, test_error_wrong_type_missing_or_out_of_range_is_validation_error);
	tcase_add_test(errors, test_error_move_on_untracked_product_is_product_not_tracked);
	tcase_add_test(errors, test_error_stop_tracking_untracked_is_product_not_tracked);
	tcase_add_test(errors, test_error_variant_of_another_product_is_mismatch);
	tcase_add_test(errors, test_error_unknown_location_is_entity_not_found);
	tcase_add_test(errors, test_error_no_token_is_unauthorized);
	tcase_add_test(errors, test_error_other_organization_or_missing_scope_is_forbidden);
	tcase_add_test(errors, test_error_store_below_zero_under_deny_is_insufficient_stock);
	tcase_add_test(errors, test_error_idempotency_key_reused_with_other_body_is_conflict);
	tcase_add_test(errors, test_error_balance_beyond_2_pow_53_is_out_of_range);
	tcase_add_test(errors, test_error_more_than_10000_changes_is_payload_too_large);
	tcase_add_test(errors, test_error_body_over_8_mib_is_payload_too_large);
	tcase_add_test(errors, test_error_unknown_path_is_not_found_and_wrong_method_405);
	tcase_add_test(errors, test_error_backend_failure_is_internal_server_error);
	tcase_add_test(errors, test_error_busy_backend_is_service_unavailable);
	tcase_add_test(errors, test_error_busy_storage_is_service_unavailable);
	suite_add_tcase(s, errors);

	tcase_add_test(edges, test_checks_run_401_404_403_413_400_in_order);
	tcase_add_test(edges, test_self_and_own_uuid_are_the_same_organization);
	tcase_add_test(edges, test_locations_are_four_with_default_store);
	tcase_add_test(edges, test_path_uuid_that_is_not_a_uuid_names_the_parameter);
	tcase_add_test(edges, test_same_from_and_to_is_validation_error_on_to);
	tcase_add_test(edges, test_type_query_is_case_insensitive);
	tcase_add_test(edges, test_reads_sent_as_post_need_read_scope_only);
	tcase_add_test(edges, test_filter_read_lists_requested_tracked_products_only);
	tcase_add_test(edges, test_write_arrays_must_not_be_empty_but_status_may);
	tcase_add_test(edges, test_bulk_nested_product_mismatch_and_stop_untracked);
	tcase_add_test(edges, test_bulk_failure_names_nested_change);
	tcase_add_test(edges, test_put_answer_lists_every_touched_variant_zero_included);
	tcase_add_test(edges, test_untracked_product_reads_empty_variants);
	tcase_add_test(edges, test_idempotent_put_replays_first_answer);
	tcase_add_test(edges, test_low_stock_only_for_store_and_round_trip);
	tcase_add_test(edges, test_v3_limit_outside_range_is_400);
	tcase_add_test(edges, test_v3_inventories_are_the_locations);
	tcase_add_test(edges, test_v3_products_and_custom_low_stock);
	suite_add_tcase(s, edges);

	tcase_add_test(scenario, test_scenario_through_the_dispatcher_alone);
	tcase_add_test(scenario, test_concurrent_requests_lose_no_update);
	suite_add_tcase(s, scenario);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
