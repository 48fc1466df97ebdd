/*
 * zinv/rest.h - the transport-agnostic REST dispatcher.
 *
 * inv_rest_handle() serves every route of spec WIRE.md sections 3 to 9: it
 * takes one request (method, path, query, Idempotency-Key, body) and the
 * caller the embedding server authenticated, runs it against a store, and
 * produces the status, content type, body and headers to send.  It does no
 * I/O, so an HTTP server, a firmware stack or a test serves the whole API
 * by calling it.  Checks run in the order of WIRE.md section 12: 401, then
 * 404/405 (route), 403 (organization, scope), 413 (size), 400 (body), then
 * the domain's answers.
 *
 * An Idempotency-Key makes the batch writes (PUT changes, v2 bulk, v3
 * movements, tracking start/stop, v3 products) replay their first answer
 * when repeated with the same body, and answer 409 CONFLICT with another
 * body; the low-stock writes set absolute values and need no key.
 * Thread-safe: any number of threads may call it on one store at once.
 */
#ifndef ZINV_REST_H
#define ZINV_REST_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scope bits of a caller. */
#define INV_REST_SCOPE_READ  UINT32_C(1)  /* READ:PRODUCT */
#define INV_REST_SCOPE_WRITE UINT32_C(2)  /* WRITE:PRODUCT */

/* The largest body accepted (8 MiB); larger: 413.  A body over the limit is
 * refused before a byte of it is read, so a server that will not read an
 * oversized upload may pass its declared length with any non-NULL `body`. */
#define INV_REST_BODY_MAX (8u * 1024u * 1024u)

/* One request; a versioned struct.  Strings are NUL-terminated; the body is
 * `body_len` bytes and need not be. */
typedef struct inv_rest_request {
	uint32_t version;            /* INV_REST_REQUEST_VERSION */
	int32_t authenticated;       /* 0: no or unknown bearer token -> 401 */
	const char *method;          /* "GET", "POST", "PUT", "DELETE" */
	const char *path;            /* "/organizations/self/locations"; may carry
	                                "?query" when `query` is NULL */
	const char *query;           /* "type=STORE&limit=5", without '?'; may be NULL */
	const char *idempotency_key; /* the Idempotency-Key header, or NULL */
	const char *body;            /* may be NULL when body_len is 0 */
	size_t body_len;
	inv_uuid organization;       /* the caller's organization */
	uint32_t scopes;             /* INV_REST_SCOPE_* bits */
	int32_t reserved;
	const inv_uuid *user_uuid;   /* acting user for events; may be NULL */
	const inv_uuid *client_uuid; /* acting API client for events; may be NULL */
	/* members above are valid for version 1 */
} inv_rest_request;

#define INV_REST_REQUEST_VERSION 1
#define INV_REST_REQUEST_INIT \
	{ INV_REST_REQUEST_VERSION, 0, NULL, NULL, NULL, NULL, NULL, 0, {{0}}, 0, 0, NULL, NULL }

/* Fill *req with defaults for `version`; INV_EVERSION if unknown. */
INV_EXTERN int inv_rest_request_init(inv_rest_request *req, uint32_t version);

/* A response.  Opaque; free with inv_rest_response_free(). */
typedef struct inv_rest_response inv_rest_response;

/*
 * Handle one request.  Returns 0 whenever *out holds a response to send,
 * errors included (a 4xx or 5xx with the WIRE.md error body); a negative
 * code only when no response could be built (INV_EINVAL for a NULL
 * argument, INV_EVERSION, INV_ENOMEM).
 */
INV_EXTERN int inv_rest_handle(inv_rest_response **out, inv_store *store,
                               const inv_rest_request *req);

/* HTTP status code (200, 204, 400, ...). */
INV_EXTERN int inv_rest_response_status(const inv_rest_response *res);
/* "application/json", or NULL when there is no body (204). */
INV_EXTERN const char *inv_rest_response_content_type(const inv_rest_response *res);
/* The body (NUL-terminated; *len excludes the NUL); "" with length 0 when none. */
INV_EXTERN const char *inv_rest_response_body(const inv_rest_response *res, size_t *len);
/* Extra headers to send (`Link` for v3 pagination, `Allow` for 405,
 * `WWW-Authenticate` for 401). */
INV_EXTERN size_t inv_rest_response_header_count(const inv_rest_response *res);
INV_EXTERN const char *inv_rest_response_header_name(const inv_rest_response *res, size_t i);
INV_EXTERN const char *inv_rest_response_header_value(const inv_rest_response *res, size_t i);
/* The errorType of an error response ("VALIDATION_ERROR"), NULL on success. */
INV_EXTERN const char *inv_rest_response_error_type(const inv_rest_response *res);
/* NULL is a no-op. */
INV_EXTERN void inv_rest_response_free(inv_rest_response *res);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_REST_H */
