/*
 * libFuzzer target: the whole dispatcher.  Input: a first line
 * "[KEY:<key> ][SCOPE:<0-3> ][NOAUTH ]METHOD PATH[?QUERY]" (the prefixes
 * set Idempotency-Key, the caller's scope bits, an unauthenticated
 * caller), the rest is the body.  Each run uses a fresh memory store holding one
 * stocked product, so findings reproduce from the input alone.  Every
 * answer must be a known status with a JSON body (or none for 204) whose
 * error bodies carry developerMessage and errorType.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zinv.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORG "2b9a1f4e-0c1d-4e55-9a3b-7d1e2f3a4b5c"

static void uuids(inv_uuid *out, void *payload)
{
	static const char *const ids[] = {
		"5e0c1a22-9f3b-11ee-8c90-0242ac120002", "5e0c1c3e-9f3b-11ee-8c90-0242ac120002",
		"5e0c1d6a-9f3b-11ee-8c90-0242ac120002", "5e0c1e8c-9f3b-11ee-8c90-0242ac120002",
	};
	int *next = payload;

	if (*next < 4) {
		inv_uuid_parse(out, ids[*next], 36);
	} else {
		memset(out, 0, sizeof(*out));
		memcpy(out->bytes, next, sizeof(*next));
	}
	(*next)++;
}

struct caller {
	const char *key;
	uint32_t scopes;
	int authenticated;
};

static int send(inv_store *store, const char *method, const char *path,
                const struct caller *who, const char *body, size_t len, int check)
{
	inv_rest_request req = INV_REST_REQUEST_INIT;
	inv_rest_response *res = NULL;
	const char *text;
	size_t blen;
	int status;

	req.authenticated = who->authenticated;
	req.method = method;
	req.path = path;
	req.idempotency_key = who->key;
	req.body = body;
	req.body_len = len;
	req.scopes = who->scopes;
	inv_uuid_parse(&req.organization, ORG, 36);
	if (inv_rest_handle(&res, store, &req) != 0)
		abort();
	status = inv_rest_response_status(res);
	text = inv_rest_response_body(res, &blen);
	if (check) {
		if (status == 204) {
			if (blen != 0)
				abort();
		} else {
			json_error_t err;
			json_t *j = json_loadb(text, blen, JSON_DECODE_ANY, &err);

			if (!j || strlen(text) != blen)
				abort();
			if (status >= 400 && (!json_is_string(json_object_get(j, "developerMessage")) ||
			                      !json_is_string(json_object_get(j, "errorType")) ||
			                      !json_is_array(json_object_get(j, "violations"))))
				abort();
			json_decref(j);
		}
		switch (status) {
		case 200: case 204: case 400: case 401: case 403: case 404: case 405: case 409:
		case 413:
			break;
		default:
			abort(); /* 500/503 from a memory store is a bug */
		}
	}
	inv_rest_response_free(res);
	return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	inv_store_options opts = INV_STORE_OPTIONS_INIT;
	inv_store *store = NULL;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t line = nl ? (size_t)(nl - data) : size;
	char head[512], *method, *path, *sp;
	struct caller owner = { NULL, INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE, 1 };
	struct caller who = owner;
	int next = 0;
	static const char stock[] =
		"{\"productChanges\":[{\"productUuid\":\"7a51c3d0-9f3b-11ee-b962-0242ac120002\","
		"\"trackingStatusChange\":\"START_TRACKING\",\"variantChanges\":[{\"variantUuid\":"
		"\"7a51c6a0-9f3b-11ee-b962-0242ac120002\",\"fromLocationUuid\":"
		"\"5e0c1e8c-9f3b-11ee-8c90-0242ac120002\",\"toLocationUuid\":"
		"\"5e0c1a22-9f3b-11ee-8c90-0242ac120002\",\"change\":10}]}]}";

	if (line >= sizeof(head) || memchr(data, '\0', line))
		return 0;
	memcpy(head, data, line);
	head[line] = '\0';
	method = head;
	if (!strncmp(method, "KEY:", 4)) {
		who.key = method + 4;
		sp = strchr(method, ' ');
		if (!sp)
			return 0;
		*sp = '\0';
		method = sp + 1;
	}
	if (!strncmp(method, "SCOPE:", 6) && method[6] >= '0' && method[6] <= '3' &&
	    method[7] == ' ') {
		who.scopes = (uint32_t)(method[6] - '0');
		method += 8;
	}
	if (!strncmp(method, "NOAUTH ", 7)) {
		who.authenticated = 0;
		method += 7;
	}
	sp = strchr(method, ' ');
	if (!sp)
		return 0;
	*sp = '\0';
	path = sp + 1;
	opts.uuid_generate = uuids;
	opts.uuid_payload = &next;
	if (inv_store_open_memory(&store, &opts) != 0)
		abort();
	if (send(store, "POST", "/organizations/self/v2/inventory/bulk", &owner, stock,
	         sizeof(stock) - 1, 0) != 200)
		abort();
	send(store, method, path, &who, nl ? (const char *)nl + 1 : NULL,
	     nl ? size - line - 1 : 0, 1);
	/* A second identical request exercises the idempotent replay path. */
	if (who.key)
		send(store, method, path, &who, nl ? (const char *)nl + 1 : NULL,
		     nl ? size - line - 1 : 0, 1);
	inv_store_close(store);
	return 0;
}
