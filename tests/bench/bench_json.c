/*
 * bench_json.c - cost per change of the PUT codecs against jansson alone.
 *
 * Builds a 1,000-change PUT body (distinct products and variants, half the
 * quantities as strings), then times on the same bytes, in the same run:
 *   json_loadb + json_decref          (the floor: jansson's parse)
 *   inv_json_decode_changes           (parse + walk + validate + copy out)
 *   inv_json_encode_status, 1,000 balances (the PUT's answer)
 *   json_dumps of the parsed body     (jansson's serializer, for scale)
 *   inv_rest_handle of the PUT        (decode, resolve, apply on the memory
 *                                      backend, encode: the whole request)
 *
 * Build and run (from the repository root, after make):
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude tests/bench/bench_json.c \
 *      -Llib -Wl,-rpath,$PWD/lib -lzinv -ljansson -o build/bench_json && build/bench_json
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zinv.h>

#define CHANGES 1000
#define ROUNDS 300

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double min(double a, double b)
{
	return a < b ? a : b;
}

/* The body names STORE 5e0c1a22-... and SOLD 5e0c1c3e-...: hand those out
 * as the organization's first two location UUIDs. */
static void fixed_locations(inv_uuid *out, void *payload)
{
	static const char *const ids[] = { "5e0c1a22-9f3b-11ee-8c90-0242ac120002",
		                           "5e0c1c3e-9f3b-11ee-8c90-0242ac120002" };
	int *next = payload;

	memset(out, 0, sizeof(*out));
	if (*next < 2)
		inv_uuid_parse(out, ids[*next], 36);
	else
		memcpy(out->bytes, next, sizeof(*next));
	(*next)++;
}

static void uuid_text(char out[37], unsigned tag, unsigned i)
{
	snprintf(out, 37, "%08x-9f3b-11ee-b962-%012x", tag, i);
}

int main(void)
{
	char *body = malloc(CHANGES * 256 + 64), *p = body;
	char prod[37], var[37];
	const char *store = "5e0c1a22-9f3b-11ee-8c90-0242ac120002";
	const char *sold = "5e0c1c3e-9f3b-11ee-8c90-0242ac120002";
	inv_balance *bal = calloc(CHANGES, sizeof(*bal));
	inv_json_location loc;
	json_t *dumpable;
	size_t len, i, r;
	double t0, t_load, t_decode, t_encode, t_dump, t_rest;

	p += sprintf(p, "{\"changes\":[");
	for (i = 0; i < CHANGES; i++) {
		uuid_text(prod, 0x7a51c3d0u, (unsigned)i);
		uuid_text(var, 0x7a51c6a0u, (unsigned)i);
		p += sprintf(p, "%s{\"productUuid\":\"%s\",\"variantUuid\":\"%s\",\"fromLocationUuid\":"
		                "\"%s\",\"toLocationUuid\":\"%s\",\"change\":%s%zu%s}",
		             i ? "," : "", prod, var, store, sold, i % 2 ? "\"" : "", i + 1,
		             i % 2 ? "\"" : "");
	}
	p += sprintf(p, "],\"externalUuid\":\"947d712a-892d-11ea-bc55-0242ac130003\"}");
	len = (size_t)(p - body);

	inv_uuid_parse(&loc.uuid, store, 36);
	loc.type = INV_LOCATION_STORE;
	loc.is_default = 1;
	dumpable = json_loadb(body, len, 0, NULL);
	t_load = t_decode = t_encode = t_dump = 1e9;
	/* Interleaved, and the fastest round of each kept: the machine is
	 * shared, and the minimum is the cost without interference. */
	for (r = 0; r < ROUNDS; r++) {
		inv_json_changes *c = NULL;
		json_t *j;
		char *out;
		size_t olen;

		t0 = now();
		j = json_loadb(body, len, 0, NULL);
		json_decref(j);
		t_load = min(t_load, now() - t0);

		t0 = now();
		if (inv_json_decode_changes(&c, NULL, body, len) != 0 || c->count != CHANGES)
			return 1;
		inv_free(c);
		t_decode = min(t_decode, now() - t0);

		if (r == 0) {
			inv_json_decode_changes(&c, NULL, body, len);
			for (i = 0; i < CHANGES; i++) {
				bal[i].product = c->changes[i].product;
				bal[i].variant = c->changes[i].variant;
				bal[i].balance = c->changes[i].quantity;
			}
			inv_free(c);
		}

		t0 = now();
		if (inv_json_encode_status(&out, &olen, &loc, bal, CHANGES, NULL, 0) != 0)
			return 1;
		inv_free(out);
		t_encode = min(t_encode, now() - t0);

		t0 = now();
		free(json_dumps(dumpable, JSON_COMPACT | JSON_PRESERVE_ORDER));
		t_dump = min(t_dump, now() - t0);
	}
	json_decref(dumpable);

	{
		/* The whole request through the dispatcher on a memory store
		 * whose 1,000 products were tracked first by one bulk. */
		inv_store_options so = INV_STORE_OPTIONS_INIT;
		inv_store *st = NULL;
		inv_rest_request req = INV_REST_REQUEST_INIT;
		inv_rest_response *res = NULL;
		char *bulk = malloc(CHANGES * 128 + 64), *q = bulk;
		int next = 0;

		so.uuid_generate = fixed_locations;
		so.uuid_payload = &next;
		inv_store_open_memory(&st, &so);
		req.authenticated = 1;
		req.scopes = INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE;
		inv_uuid_parse(&req.organization, "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c", 36);
		q += sprintf(q, "{\"productChanges\":[");
		for (i = 0; i < CHANGES; i++) {
			uuid_text(prod, 0x7a51c3d0u, (unsigned)i);
			q += sprintf(q, "%s{\"productUuid\":\"%s\",\"trackingStatusChange\":"
			                "\"START_TRACKING\"}", i ? "," : "", prod);
		}
		sprintf(q, "]}");
		req.method = "POST";
		req.path = "/organizations/self/v2/inventory/bulk";
		req.body = bulk;
		req.body_len = strlen(bulk);
		if (inv_rest_handle(&res, st, &req) != 0 || inv_rest_response_status(res) != 200)
			return 1;
		inv_rest_response_free(res);
		req.method = "PUT";
		req.path = "/organizations/self/inventory";
		req.body = body;
		req.body_len = len;
		t_rest = 1e9;
		for (r = 0; r < ROUNDS / 10; r++) {
			t0 = now();
			if (inv_rest_handle(&res, st, &req) != 0 || inv_rest_response_status(res) != 200)
				return 1;
			inv_rest_response_free(res);
			t_rest = min(t_rest, now() - t0);
		}
		inv_store_close(st);
		free(bulk);
	}

#define PER(t) ((t) / CHANGES * 1e9)
	printf("body: %zu bytes, %d changes, best of %d interleaved rounds\n", len, CHANGES,
	       ROUNDS);
	printf("json_loadb alone:          %7.0f ns/change\n", PER(t_load));
	printf("inv_json_decode_changes:   %7.0f ns/change  (%.2fx json_loadb)\n", PER(t_decode),
	       t_decode / t_load);
	printf("inv_json_encode_status:    %7.0f ns/change  (%.2fx json_loadb)\n", PER(t_encode),
	       t_encode / t_load);
	printf("json_dumps of the body:    %7.0f ns/change\n", PER(t_dump));
	printf("inv_rest_handle, the PUT:  %7.0f ns/change  (%.2fx json_loadb)\n", PER(t_rest),
	       t_rest / t_load);
	free(body);
	free(bal);
	return 0;
}
