/*
 * compat.c - a program of the 1.0 era.  It is compiled against
 * tests/abi/compat/include, a frozen copy of the 1.0 headers that is never
 * edited, and run against the library just built.  If a later release
 * changes a frozen layout, an enum value, a versioned struct's existing
 * members or a function's behaviour in a way a 1.0 caller can see, this
 * fails: that is the promise of the soname libzinv.so.1.
 *
 * Every failure prints what was expected and what came.
 */
#include <stdio.h>
#include <string.h>

#include <zinv.h>
#include <zinv/backend.h>
#include <zinv/json.h>
#include <zinv/rest.h>

static int failures;

#define EXPECT_INT(what, want, got) do { \
	long long w_ = (long long)(want), g_ = (long long)(got); \
	if (w_ != g_) { \
		fprintf(stderr, "compat: %s: expected %lld, got %lld (%s)\n", \
		        what, w_, g_, inv_error_last()->message); \
		failures++; \
	} \
} while (0)

#define MUST(call) do { \
	int rc_ = (call); \
	if (rc_ != 0) { \
		fprintf(stderr, "compat: %s: expected 0, got %d (%s)\n", \
		        #call, rc_, inv_error_last()->message); \
		return 1; \
	} \
} while (0)

static inv_uuid uuid(const char *text)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	inv_uuid_parse(&u, text, strlen(text));
	return u;
}

/* A 1.0 clock callback: fixed time, so journal times are known. */
static int64_t clock_1_0(void *payload)
{
	return *(const int64_t *)payload;
}

struct seen {
	int balance_events;
	int64_t last_after;
};

static void on_event(const inv_event *ev, void *payload)
{
	struct seen *s = payload;

	if (inv_event_get_type(ev) == INV_EVENT_BALANCE_CHANGED &&
	    inv_event_item_count(ev) > 0) {
		s->balance_events++;
		s->last_after = inv_event_items(ev)[0].after;
	}
}

int main(void)
{
	inv_uuid org_id = uuid("0b7c1e5e-2f4a-11ef-9a4b-0242ac120002");
	inv_uuid prod = uuid("1c2d3e4f-2f4a-11ef-9a4b-0242ac120002");
	inv_uuid var = uuid("2d3e4f50-2f4a-11ef-9a4b-0242ac120002");
	inv_uuid untracked = uuid("3e4f5061-2f4a-11ef-9a4b-0242ac120002");
	int64_t now = 1700000000000;
	inv_store_options so = INV_STORE_OPTIONS_INIT;
	inv_apply_options ao = INV_APPLY_OPTIONS_INIT;
	inv_balance_query bq = INV_BALANCE_QUERY_INIT;
	inv_journal_query jq = INV_JOURNAL_QUERY_INIT;
	inv_store *store;
	inv_org *org;
	const inv_location *shop, *supplier, *sold, *bin;
	const inv_variant *v, *u;
	inv_result *res;
	inv_balance *bal;
	inv_journal *journal;
	inv_low_stock ls;
	struct seen seen = { 0, 0 };
	uint64_t sub;
	size_t n;
	int more, tracked;
	int64_t b, level = 5, expected;

	/* The frozen values a 1.0 caller compiled in. */
	EXPECT_INT("sizeof(inv_uuid)", 16, sizeof(inv_uuid));
	EXPECT_INT("sizeof(inv_balance)", 64, sizeof(inv_balance));
	EXPECT_INT("sizeof(inv_low_stock)", 48, sizeof(inv_low_stock));
	EXPECT_INT("sizeof(inv_journal_record)", 112, sizeof(inv_journal_record));
	EXPECT_INT("INV_VERSION_MAJOR of the library", INV_VERSION_MAJOR,
	           inv_version()[0] - '0');
	EXPECT_INT("inv_store_options_init(v1)", 0,
	           inv_store_options_init(&so, INV_STORE_OPTIONS_VERSION));

	so.clock = clock_1_0;
	so.clock_payload = &now;
	MUST(inv_store_open_memory(&store, &so));
	MUST(inv_subscribe(&sub, store, INV_EVENT_MASK(INV_EVENT_BALANCE_CHANGED),
	                   on_event, &seen));
	MUST(inv_org_open(&org, store, &org_id));
	EXPECT_INT("inv_org_location_count", 4, inv_org_location_count(org));
	MUST(inv_location_by_type(&shop, org, INV_LOCATION_STORE));
	MUST(inv_location_by_type(&supplier, org, INV_LOCATION_SUPPLIER));
	MUST(inv_location_by_type(&sold, org, INV_LOCATION_SOLD));
	MUST(inv_location_by_type(&bin, org, INV_LOCATION_BIN));
	EXPECT_INT("inv_location_is_default(STORE)", 1, inv_location_is_default(shop));
	EXPECT_INT("strcmp(inv_location_name(BIN), \"BIN\")", 0,
	           strcmp(inv_location_name(bin), "BIN"));
	EXPECT_INT("inv_location_get_type(SOLD)", INV_LOCATION_SOLD,
	           inv_location_get_type(sold));

	MUST(inv_tracking_start(org, &prod));
	MUST(inv_tracking_get(&tracked, org, &prod));
	EXPECT_INT("tracked", 1, tracked);
	MUST(inv_variant_get(&v, org, &prod, &var));
	MUST(inv_variant_get(&u, org, &untracked, &untracked));

	/* A batch with 1.0 options: idempotent, replayed the second time. */
	{
		inv_change ch[2];

		ch[0].variant = v; ch[0].from = supplier; ch[0].to = shop; ch[0].quantity = 10;
		ch[1].variant = v; ch[1].from = shop; ch[1].to = bin; ch[1].quantity = 2;
		ao.idempotency_key = "compat-1";
		MUST(inv_apply_changes(&res, org, ch, 2, &ao));
		EXPECT_INT("first batch sequence", 2, inv_result_sequence(res));
		EXPECT_INT("first batch replayed", 0, inv_result_replayed(res));
		EXPECT_INT("first batch count", 1, inv_result_count(res));
		EXPECT_INT("first batch balance", 8, inv_result_balances(res)[0].balance);
		EXPECT_INT("first batch updated", now, inv_result_balances(res)[0].updated);
		inv_result_free(res);
		MUST(inv_apply_changes(&res, org, ch, 2, &ao));
		EXPECT_INT("replay replayed", 1, inv_result_replayed(res));
		EXPECT_INT("replay sequence", 2, inv_result_sequence(res));
		inv_result_free(res);
	}

	/* A sale with an untracked line: skipped, reported by index. */
	{
		inv_sale_line lines[2];

		lines[0].variant = u; lines[0].quantity = 1;
		lines[1].variant = v; lines[1].quantity = 3;
		MUST(inv_record_sale(&res, org, lines, 2, NULL));
		EXPECT_INT("sale skipped count", 1, inv_result_skipped_count(res));
		EXPECT_INT("sale skipped index", 0, inv_result_skipped(res)[0]);
		inv_result_free(res);
		MUST(inv_record_refund(NULL, org, &lines[1], 1, NULL));
	}
	MUST(inv_balance_get(&b, org, v, NULL));
	EXPECT_INT("balance after sale and refund", 8, b);
	EXPECT_INT("events seen", 3, seen.balance_events);
	EXPECT_INT("last event after", 8, seen.last_after);

	/* Errors: the 1.0 codes and detail layout. */
	{
		inv_change bad[2];

		bad[0].variant = v; bad[0].from = supplier; bad[0].to = shop; bad[0].quantity = 1;
		bad[1].variant = v; bad[1].from = shop; bad[1].to = shop; bad[1].quantity = 1;
		EXPECT_INT("same from and to", INV_EINVAL, inv_apply_changes(NULL, org, bad, 2, NULL));
		EXPECT_INT("error index", 1, inv_error_last()->index);
		EXPECT_INT("error code", INV_EINVAL, inv_error_last()->code);
		MUST(inv_balance_get(&b, org, v, NULL));
		EXPECT_INT("balance after refused batch", 8, b);
	}
	expected = 7;
	EXPECT_INT("compare-and-set with a stale balance", INV_ECONFLICT,
	           inv_set_balance(NULL, org, v, NULL, 4, &expected, bin, NULL));
	expected = 8;
	MUST(inv_set_balance(NULL, org, v, NULL, 4, &expected, bin, NULL));

	/* Reads with 1.0 query structs. */
	MUST(inv_low_stock_set(org, shop, &prod, &var, &level, 1));
	MUST(inv_low_stock_get(&ls, org, shop, &prod, &var));
	EXPECT_INT("low stock level", 5, ls.level);
	EXPECT_INT("low stock alert", 1, ls.alert);
	bq.with_low_stock = 1;
	MUST(inv_balances_read(&bal, &n, &more, org, &bq));
	EXPECT_INT("balances count", 1, n);
	if (n == 1) {
		EXPECT_INT("balances balance", 4, bal[0].balance);
		EXPECT_INT("balances low level", 5, bal[0].low_stock_level);
		EXPECT_INT("balances product", 0, inv_uuid_compare(&bal[0].product, &prod));
	}
	inv_free(bal);

	jq.after_sequence = 1;
	MUST(inv_journal_read(&journal, org, &jq));
	n = inv_journal_count(journal);
	EXPECT_INT("journal entries after 1", 4, n);
	if (n > 0) {
		const inv_journal_entry *e = inv_journal_at(journal, 0);

		EXPECT_INT("first entry sequence", 2, inv_journal_entry_sequence(e));
		EXPECT_INT("first entry time", now, inv_journal_entry_time(e));
		EXPECT_INT("first entry records", 2, inv_journal_entry_record_count(e));
		EXPECT_INT("first record kind", INV_RECORD_MOVE,
		           inv_journal_entry_records(e)[0].kind);
		EXPECT_INT("first record after", 10, inv_journal_entry_records(e)[0].after);
	}
	inv_journal_free(journal);

	/* The codecs and the dispatcher, as a 1.0 server calls them. */
	{
		static const char body[] = "{\"changes\":[{\"productUuid\":"
			"\"1c2d3e4f-2f4a-11ef-9a4b-0242ac120002\",\"variantUuid\":"
			"\"2d3e4f50-2f4a-11ef-9a4b-0242ac120002\",\"fromLocationUuid\":"
			"\"2d3e4f50-2f4a-11ef-9a4b-0242ac120002\",\"toLocationUuid\":"
			"\"3e4f5061-2f4a-11ef-9a4b-0242ac120002\",\"change\":0}]}";
		inv_json_changes *decoded = NULL;
		inv_json_violations *viol = NULL;
		inv_rest_request rq = INV_REST_REQUEST_INIT;
		inv_rest_response *rs;
		const char *text;
		size_t len;

		EXPECT_INT("decode a zero change", INV_EINVAL,
		           inv_json_decode_changes(&decoded, &viol, body, sizeof(body) - 1));
		EXPECT_INT("violations", 1, inv_json_violations_count(viol));
		if (inv_json_violations_count(viol) == 1) {
			const inv_json_violation *x = inv_json_violations_at(viol, 0);

			EXPECT_INT("violation constraint", INV_JSON_MUST_BE_GREATER_THAN,
			           x->constraint);
			EXPECT_INT("violation property is changes[0].change", 0,
			           strcmp(x->property, "changes[0].change"));
		}
		inv_json_violations_free(viol);
		inv_free(decoded);

		rq.authenticated = 1;
		rq.method = "GET";
		rq.path = "/organizations/self/locations";
		rq.organization = org_id;
		rq.scopes = INV_REST_SCOPE_READ;
		MUST(inv_rest_handle(&rs, store, &rq));
		EXPECT_INT("GET locations status", 200, inv_rest_response_status(rs));
		text = inv_rest_response_body(rs, &len);
		EXPECT_INT("GET locations names the STORE", 1, strstr(text, "\"STORE\"") != NULL);
		inv_rest_response_free(rs);
	}

	MUST(inv_unsubscribe(store, sub));
	inv_org_close(org);
	inv_store_close(store);

	/* A 1.0 backend: an ops table of the 1.0 size and version, here the
	 * memory backend's members as a 1.0 header declares them.  The core
	 * must open it and never read past its end. */
	{
		static inv_backend_ops v1;
		void *inst = NULL;
		const inv_variant *bv;
		int64_t bal = -1;
		inv_change in = { NULL, NULL, NULL, 4 };

		v1 = *inv_memory_backend_ops();
		v1.version = 1;
		v1.name = "memory 1.0";
		MUST(inv_memory_backend_new(&inst));
		MUST(inv_store_open(&store, &v1, inst, NULL));
		MUST(inv_org_open(&org, store, &org_id));
		MUST(inv_location_by_type(&shop, org, INV_LOCATION_STORE));
		MUST(inv_location_by_type(&supplier, org, INV_LOCATION_SUPPLIER));
		MUST(inv_tracking_start(org, &prod));
		MUST(inv_variant_get(&bv, org, &prod, &var));
		in.variant = bv;
		in.from = supplier;
		in.to = shop;
		MUST(inv_apply_changes(NULL, org, &in, 1, NULL));
		MUST(inv_balance_get(&bal, org, bv, NULL));
		EXPECT_INT("balance through a 1.0 ops table", 4, bal);
		inv_org_close(org);
		inv_store_close(store);
	}

	if (failures)
		return 1;
	printf("compat: a 1.0 program runs against libzinv %s\n", inv_version());
	return 0;
}
