/*
 * zinv-server - a local, faithful Zettle Inventory service over libzinv.
 *
 *     zinv-server [--listen HOST:PORT] [--db PATH|CONNINFO] [--tokens FILE]
 *                 [--webhook-retry SECONDS,...] [--webhook-deny-private]
 *                 [--webhook-lease SECONDS]
 *                 [--tls-cert FILE --tls-key FILE]
 *
 * Every inventory route is served by the library's dispatcher,
 * inv_rest_handle(): this program only parses HTTP (libmicrohttpd), maps the
 * bearer token to a caller, and writes the answer back.  It is meant as a
 * reference for anyone embedding libzinv in their own server.  The webhook
 * subscriptions (/organizations/{org}/subscriptions) and their delivery
 * are the server's own: webhooks.c.
 *
 * Defaults: listen 127.0.0.1:8080, database zinv.db (the embedded SQLite
 * store; ":memory:" selects the memory backend; a PostgreSQL URI or
 * key=value conninfo selects libzinv-postgres, and then any number of
 * processes may serve one database: webhook subscriptions, cursors and
 * delivery leases live there too, see webhooks_pg.h).  The tokens file is JSON:
 *
 *     {"tokens": [{"token": "...", "organizationUuid": "...",
 *                  "scopes": ["READ:PRODUCT", "WRITE:PRODUCT"],
 *                  "negativePolicy": "DENY"}]}      (optional; stored with the org)
 *
 * Without --tokens one development token for one new organization is made
 * up and printed at start-up.  One access-log line per request goes to
 * stderr: method, path, status, microseconds, request id (X-Request-Id).
 * GET /healthz, /readyz and /metrics (Prometheus text) need no token.  SIGINT or SIGTERM stops
 * accepting connections, lets in-flight requests finish, closes the store
 * and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <uuid/uuid.h>

#include <zinv.h>
#include <zinv/rest.h>
#include <zinv/postgres.h>
#include <zinv/sqlite.h>

#include "metrics.h"
#include "webhooks.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

/* ------------------------------------------------------------ tokens */

struct token {
	char *token;
	inv_uuid org;
	uint32_t scopes;
	int policy;           /* negativePolicy: -1 not given, else inv_negative_policy */
};

struct tokens {
	struct token *items;
	size_t count;
};

static void tokens_free(struct tokens *t)
{
	size_t i;

	for (i = 0; i < t->count; i++)
		free(t->items[i].token);
	free(t->items);
	t->items = NULL;
	t->count = 0;
}

/* Read the tokens file; on failure print why and return -1. */
static int tokens_load(struct tokens *t, const char *path)
{
	json_error_t jerr;
	json_t *root, *list, *item;
	size_t i;

	root = json_load_file(path, 0, &jerr);
	if (!root) {
		fprintf(stderr, "zinv-server: %s:%d: %s\n", path, jerr.line, jerr.text);
		return -1;
	}
	list = json_object_get(root, "tokens");
	if (!json_is_array(list) || json_array_size(list) == 0) {
		fprintf(stderr, "zinv-server: %s: \"tokens\" must be a non-empty array\n", path);
		json_decref(root);
		return -1;
	}
	t->items = calloc(json_array_size(list), sizeof(*t->items));
	if (!t->items) {
		json_decref(root);
		return -1;
	}
	json_array_foreach(list, i, item) {
		struct token *tk = &t->items[t->count];
		const char *token = json_string_value(json_object_get(item, "token"));
		const char *org = json_string_value(json_object_get(item, "organizationUuid"));
		json_t *scopes = json_object_get(item, "scopes"), *s;
		const char *policy = json_string_value(json_object_get(item, "negativePolicy"));
		size_t j;

		if (!token || !*token || !org ||
		    inv_uuid_parse(&tk->org, org, strlen(org)) != 0 || !json_is_array(scopes)) {
			fprintf(stderr, "zinv-server: %s: tokens[%zu] needs \"token\", a UUID "
			        "\"organizationUuid\" and a \"scopes\" array\n", path, i);
			json_decref(root);
			tokens_free(t);
			return -1;
		}
		tk->policy = -1;
		if (policy && !strcmp(policy, "ALLOW")) {
			tk->policy = INV_NEGATIVE_ALLOW;
		} else if (policy && !strcmp(policy, "DENY")) {
			tk->policy = INV_NEGATIVE_DENY;
		} else if (json_object_get(item, "negativePolicy")) {
			fprintf(stderr, "zinv-server: %s: tokens[%zu].negativePolicy must be "
			        "\"ALLOW\" or \"DENY\"\n", path, i);
			json_decref(root);
			tokens_free(t);
			return -1;
		}
		json_array_foreach(scopes, j, s) {
			const char *name = json_string_value(s);

			if (name && !strcmp(name, "READ:PRODUCT"))
				tk->scopes |= INV_REST_SCOPE_READ;
			else if (name && !strcmp(name, "WRITE:PRODUCT"))
				tk->scopes |= INV_REST_SCOPE_WRITE;
		}
		tk->token = strdup(token);
		if (!tk->token) {
			json_decref(root);
			tokens_free(t);
			return -1;
		}
		t->count++;
	}
	json_decref(root);
	return 0;
}

/* A development token for a new organization, printed for the user. */
static int tokens_make_dev(struct tokens *t)
{
	unsigned char raw[24];
	char hex[2 * sizeof(raw) + 1], org[37];
	uuid_t u;
	size_t i;
	int fd;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "zinv-server: cannot read /dev/urandom: %s\n", strerror(errno));
		return -1;
	}
	close(fd);
	for (i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	t->items = calloc(1, sizeof(*t->items));
	if (!t->items || !(t->items[0].token = strdup(hex)))
		return -1;
	uuid_generate_time(u);
	memcpy(t->items[0].org.bytes, u, 16);
	t->items[0].scopes = INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE;
	t->items[0].policy = -1;
	t->count = 1;
	inv_uuid_format(&t->items[0].org, org);
	printf("development token: %s\norganization:      %s\n", hex, org);
	fflush(stdout);
	return 0;
}

/* The caller of an Authorization header, or NULL. */
static const struct token *tokens_find(const struct tokens *t, const char *authorization)
{
	static const char bearer[] = "Bearer ";
	size_t i;

	if (!authorization || strncasecmp(authorization, bearer, sizeof(bearer) - 1) != 0)
		return NULL;
	authorization += sizeof(bearer) - 1;
	for (i = 0; i < t->count; i++)
		if (!strcmp(t->items[i].token, authorization))
			return &t->items[i];
	return NULL;
}

/* ---------------------------------------------------------- requests */

struct server {
	inv_store *store;
	struct tokens tokens;
	struct webhooks *webhooks;
	struct metrics *metrics;
	uint64_t metrics_sub;
};

/* Per-connection state of one request, from its first header to its log line. */
struct request {
	struct timespec start;
	char *body;
	size_t len, cap;
	size_t declared;      /* Content-Length, when over the limit */
	int too_large;
	int status;
	char method[8];
	char path[256];       /* for the log line; longer paths are cut */
	char query[512];      /* type=, limit= and cursor= fit with room to spare */
	size_t query_len;
	char request_id[129]; /* X-Request-Id, taken from the request or made */
};

/* Append one query argument; arguments that do not fit are dropped, which
 * the dispatcher answers like any missing argument. */
static MHD_RESULT query_join(void *cls, enum MHD_ValueKind kind, const char *key,
                             const char *value)
{
	struct request *r = cls;
	size_t room = sizeof(r->query) - r->query_len;
	int n;

	(void)kind;
	n = snprintf(r->query + r->query_len, room, "%s%s%s%s", r->query_len ? "&" : "",
	             key, value ? "=" : "", value ? value : "");
	if (n > 0 && (size_t)n < room)
		r->query_len += (size_t)n;
	else
		r->query[r->query_len] = '\0';
	return MHD_YES;
}

static int64_t micros_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - start->tv_sec) * 1000000 +
	       (now.tv_nsec - start->tv_nsec) / 1000;
}

/* Keep the upload, up to one byte over the limit (enough to answer 413). */
static int request_append(struct request *r, const char *data, size_t size)
{
	size_t room = (size_t)INV_REST_BODY_MAX + 1 - r->len;

	if (r->too_large)
		return 0;
	if (size > room) {
		r->too_large = 1;
		r->declared = r->len + size;
		free(r->body);
		r->body = NULL;
		r->len = r->cap = 0;
		return 0;
	}
	if (r->len + size > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *p;

		while (cap < r->len + size)
			cap *= 2;
		p = realloc(r->body, cap);
		if (!p)
			return -1;
		r->body = p;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, size);
	r->len += size;
	return 0;
}

/* Every answer carries the request id. */
static MHD_RESULT queue(struct MHD_Connection *conn, struct request *r, unsigned status,
                       struct MHD_Response *res)
{
	MHD_add_response_header(res, "X-Request-Id", r->request_id);
	r->status = (int)status;
	return MHD_queue_response(conn, status, res);
}

static MHD_RESULT send_plain(struct MHD_Connection *conn, struct request *r,
                             unsigned status, const char *json)
{
	struct MHD_Response *res;
	MHD_RESULT ret;

	res = MHD_create_response_from_buffer(strlen(json), (void *)json,
	                                      MHD_RESPMEM_PERSISTENT);
	if (!res)
		return MHD_NO;
	MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = queue(conn, r, status, res);
	MHD_destroy_response(res);
	return ret;
}

/* A /subscriptions request: answered by webhooks.c, not the dispatcher. */
static MHD_RESULT send_webhooks(struct server *srv, struct MHD_Connection *conn,
                                struct request *r, const inv_rest_request *req)
{
	struct webhooks_answer a;
	struct MHD_Response *mres;
	MHD_RESULT ret;

	if (webhooks_handle(srv->webhooks, req, &a) != 0)
		return send_plain(conn, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                  "{\"developerMessage\":\"out of memory\","
		                  "\"errorType\":\"INTERNAL_SERVER_ERROR\",\"violations\":[]}");
	mres = MHD_create_response_from_buffer(a.len, a.body ? a.body : (void *)"",
	                                       a.body ? MHD_RESPMEM_MUST_FREE
	                                              : MHD_RESPMEM_PERSISTENT);
	if (!mres) {
		free(a.body);
		return MHD_NO;
	}
	if (a.body)
		MHD_add_response_header(mres, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (a.status == 401)
		MHD_add_response_header(mres, "WWW-Authenticate", "Bearer");
	if (a.allow)
		MHD_add_response_header(mres, "Allow", a.allow);
	ret = queue(conn, r, (unsigned)a.status, mres);
	MHD_destroy_response(mres);
	return ret;
}

/* GET /healthz, /readyz and /metrics: no authentication, no organization
 * data.  Returns -1 when `url` is none of them. */
static int send_operating(struct server *srv, struct MHD_Connection *conn,
                          struct request *r, const char *method, const char *url,
                          MHD_RESULT *ret)
{
	struct MHD_Response *res;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (strcmp(url, "/healthz") && strcmp(url, "/readyz") && strcmp(url, "/metrics"))
		return -1;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		*ret = send_plain(conn, r, MHD_HTTP_METHOD_NOT_ALLOWED,
		                  "{\"developerMessage\":\"method not allowed on this path\","
		                  "\"errorType\":\"METHOD_NOT_ALLOWED\",\"violations\":[]}");
		return 0;
	}
	if (!strcmp(url, "/healthz")) {
		*ret = send_plain(conn, r, MHD_HTTP_OK, "{\"status\":\"alive\"}");
		return 0;
	}
	if (!strcmp(url, "/readyz")) {
		/* The store answers a read of an organization it already holds
		 * (every token's organization is opened at start-up). */
		inv_org *org = NULL;
		int64_t last = 0;
		int ok = inv_org_open(&org, srv->store, &srv->tokens.items[0].org) == 0 &&
		         inv_journal_last_sequence(&last, org) == 0;

		inv_org_close(org);
		*ret = ok ? send_plain(conn, r, MHD_HTTP_OK, "{\"status\":\"ready\"}")
		          : send_plain(conn, r, MHD_HTTP_SERVICE_UNAVAILABLE,
		                       "{\"status\":\"the store does not answer\"}");
		return 0;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		*ret = MHD_NO;
		return 0;
	}
	metrics_write(srv->metrics, f);
	webhooks_metrics(srv->webhooks, f);
	fclose(f);
	res = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!res) {
		free(text);
		*ret = MHD_NO;
		return 0;
	}
	MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        "text/plain; version=0.0.4; charset=utf-8");
	*ret = queue(conn, r, MHD_HTTP_OK, res);
	MHD_destroy_response(res);
	return 0;
}

static MHD_RESULT dispatch(struct server *srv, struct MHD_Connection *conn,
                           struct request *r, const char *method, const char *url)
{
	static const char oversize[1] = { 0 };
	inv_rest_request req = INV_REST_REQUEST_INIT;
	const struct token *caller;
	inv_rest_response *res = NULL;
	struct MHD_Response *mres;
	const char *body;
	size_t len, i, n;
	MHD_RESULT ret;

	if (send_operating(srv, conn, r, method, url, &ret) == 0)
		return ret;
	caller = tokens_find(&srv->tokens,
	                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_AUTHORIZATION));
	req.authenticated = caller != NULL;
	if (caller) {
		req.organization = caller->org;
		req.scopes = caller->scopes;
	}
	req.method = method;
	req.path = url;
	/* libmicrohttpd takes the query off `url` and splits it; join it
	 * again for the dispatcher, which parses its own. */
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_join, r);
	req.query = r->query_len ? r->query : NULL;
	req.idempotency_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                  "Idempotency-Key");
	if (r->too_large) {
		/* Documented by inv_rest_handle(): a body over INV_REST_BODY_MAX
		 * is refused before it is read, so its length alone will do. */
		req.body = oversize;
		req.body_len = r->declared;
	} else {
		req.body = r->body;
		req.body_len = r->len;
	}
	if (webhooks_is_route(url))
		return send_webhooks(srv, conn, r, &req);
	if (inv_rest_handle(&res, srv->store, &req) != 0)
		return send_plain(conn, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                  "{\"developerMessage\":\"out of memory\","
		                  "\"errorType\":\"INTERNAL_SERVER_ERROR\",\"violations\":[]}");
	body = inv_rest_response_body(res, &len);
	mres = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!mres) {
		inv_rest_response_free(res);
		return MHD_NO;
	}
	if (inv_rest_response_content_type(res))
		MHD_add_response_header(mres, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        inv_rest_response_content_type(res));
	n = inv_rest_response_header_count(res);
	for (i = 0; i < n; i++)
		MHD_add_response_header(mres, inv_rest_response_header_name(res, i),
		                        inv_rest_response_header_value(res, i));
	ret = queue(conn, r, (unsigned)inv_rest_response_status(res), mres);
	MHD_destroy_response(mres);
	inv_rest_response_free(res);
	return ret;
}

/* The client's X-Request-Id when it is 1 to 128 visible ASCII characters
 * (it goes into the log line), else a new random UUID. */
static void request_id(struct request *r, const char *given)
{
	size_t i;
	uuid_t u;

	for (i = 0; given && given[i] > ' ' && given[i] < 127 && i < 128; i++)
		;
	if (given && i > 0 && !given[i]) {
		memcpy(r->request_id, given, i + 1);
		return;
	}
	uuid_generate_random(u);
	uuid_unparse_lower(u, r->request_id);
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version,
                             const char *upload, size_t *upload_size, void **con_cls)
{
	struct server *srv = cls;
	struct request *r = *con_cls;

	(void)version;
	if (!r) {
		const char *cl;

		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->path, sizeof(r->path), "%s", url);
		request_id(r, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"));
		*con_cls = r;
		/* An upload declared over the limit is answered before it is
		 * read; the dispatcher still puts 401, 404 and 403 first. */
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > INV_REST_BODY_MAX) {
			r->too_large = 1;
			r->declared = (size_t)strtoull(cl, NULL, 10);
			return dispatch(srv, conn, r, method, url);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->status == 0 && request_append(r, upload, *upload_size) != 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->status)
		return MHD_YES; /* answered early */
	return dispatch(srv, conn, r, method, url);
}

/* One access-log line per request: method, path, status, microseconds. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct server *srv = cls;
	struct request *r = *con_cls;
	char route[128];
	int64_t micros;

	(void)conn;
	if (!r)
		return;
	micros = micros_since(&r->start);
	metrics_route(route, sizeof(route), r->path);
	metrics_request(srv->metrics, r->method, route, r->status, micros);
	fprintf(stderr, "%s %s %d %" PRId64 "us %s%s\n", r->method, r->path, r->status,
	        micros, r->request_id,
	        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
	free(r->body);
	free(r);
	*con_cls = NULL;
}

/* ------------------------------------------------------- start and stop */

/* Connections served at once, each by its own thread (an idle keep-alive
 * one is closed after 30 s).  libmicrohttpd accepts and at once closes a
 * connection beyond it, logging "Server reached connection limit".  512
 * keeps the descriptors, with the store's and the webhook worker's, under
 * the usual limit of 1024, and the threads' memory small (~20 KiB resident
 * each). */
#define CONNECTION_LIMIT 512

/* Bind HOST:PORT ourselves so that a taken port gets a clear message. */
static int listen_on(const char *spec)
{
	struct addrinfo hints, *ai, *a;
	char host[256];
	const char *colon = strrchr(spec, ':');
	int fd = -1, rc, one = 1, err = 0;

	if (!colon || colon == spec || !colon[1] || (size_t)(colon - spec) >= sizeof(host)) {
		fprintf(stderr, "zinv-server: --listen wants HOST:PORT, not \"%s\"\n", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:8080 */
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc) {
		fprintf(stderr, "zinv-server: cannot resolve %s: %s\n", spec, gai_strerror(rc));
		return -1;
	}
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		fprintf(stderr, "zinv-server: cannot listen on %s: %s\n", spec, strerror(err));
	return fd;
}

/* A libpq URI (postgresql://, postgres://) or key=value conninfo, rather
 * than a file path: "host=/run/pg dbname=zinv", "dbname = zinv". */
static int is_conninfo(const char *db)
{
	const char *p = db;

	if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11))
		return 1;
	while ((*p >= 'a' && *p <= 'z') || *p == '_')
		p++;
	while (p > db && *p == ' ')
		p++;
	return p > db && *p == '=';
}

static int open_store(inv_store **out, const char *db)
{
	int rc;

	if (is_conninfo(db))
		rc = inv_store_open_postgres(out, db, NULL, NULL);
	else if (!strcmp(db, ":memory:"))
		rc = inv_store_open_memory(out, NULL);
	else
		rc = inv_store_open_sqlite(out, db, NULL, NULL);
	if (rc)
		fprintf(stderr, "zinv-server: cannot open the database %s: %s (%s)\n",
		        is_conninfo(db) ? "(PostgreSQL)" : db, /* a conninfo may hold a password */
		        inv_error_last()->message, inv_strerror(rc));
	return rc;
}

/* A whole PEM file, NUL-terminated, for libmicrohttpd; NULL after a message. */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	long n;

	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1L << 20) &&
	    fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1)) &&
	    fread(text, 1, (size_t)n, f) == (size_t)n) {
		text[n] = '\0';
		fclose(f);
		return text;
	}
	fprintf(stderr, "zinv-server: cannot read %s: %s\n", path,
	        errno ? strerror(errno) : "empty or over 1 MiB");
	free(text);
	if (f)
		fclose(f);
	return NULL;
}

static void on_event(const inv_event *event, void *payload)
{
	metrics_event(payload, event);
}

/* Open every token's organization once (so that /readyz only reads) and
 * store the negativePolicy the tokens file gives it. */
static int prepare_orgs(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->tokens.count; i++) {
		const struct token *tk = &srv->tokens.items[i];
		inv_org *org = NULL;
		int rc = inv_org_open(&org, srv->store, &tk->org);

		if (rc == 0 && tk->policy >= 0)
			rc = inv_org_set_negative_policy(org, (inv_negative_policy)tk->policy);
		inv_org_close(org);
		if (rc) {
			fprintf(stderr, "zinv-server: cannot prepare organization of tokens[%zu]: "
			        "%s (%s)\n", i, inv_error_last()->message, inv_strerror(rc));
			return -1;
		}
	}
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: zinv-server [--listen HOST:PORT] [--db PATH] [--tokens FILE]\n"
	      "                   [--webhook-retry SECONDS,...]\n"
	      "                   [--webhook-deny-private] [--tls-cert FILE --tls-key FILE]\n"
	      "  --listen  address to serve (default 127.0.0.1:8080)\n"
	      "  --db      SQLite database file, or :memory: (default zinv.db);\n"
	      "            webhook subscriptions go to PATH.webhooks.  A PostgreSQL\n"
	      "            URI (postgresql://...) or key=value conninfo keeps the store\n"
	      "            and the subscriptions there, shared by every process on it\n"
	      "  --tokens  JSON file of bearer tokens (default: one development token)\n"
	      "  --webhook-retry  delays between delivery attempts, the last repeating\n"
	      "            (default: 10 x 60, 9 x 600, then 3600)\n"
	      "  --tls-cert FILE, --tls-key FILE  serve HTTPS with this PEM certificate\n"
	      "            and key (libmicrohttpd's GnuTLS)\n"
	      "  --webhook-deny-private  refuse webhook destinations on loopback, private\n"
	      "            or link-local addresses (at subscription and at delivery)\n"
	      "  --webhook-lease SECONDS  PostgreSQL: a subscription's delivery lease;\n"
	      "            a dead owner's subscriptions are taken over within\n"
	      "            SECONDS * 4/3 (default 3, so within 4 s)\n", f);
}

int main(int argc, char **argv)
{
	const char *listen_spec = "127.0.0.1:8080", *db = "zinv.db", *tokens_path = NULL;
	const char *tls_cert = NULL, *tls_key = NULL;
	char *cert_pem = NULL, *key_pem = NULL;
	struct MHD_OptionItem tls[3] = { { MHD_OPTION_END, 0, NULL } };
	/* One thread per connection, not a pool: a write waits for its
	 * organization's lock (held across the commit's fsync on SQLite), and
	 * a pool thread blocked there would also stall every other connection
	 * it polls, reads included.  A thread per connection blocks only its
	 * own client; CONNECTION_LIMIT bounds the threads. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct server srv = { 0 };
	struct webhooks_options wopts = { 0 };
	int64_t *retry = NULL;
	struct MHD_Daemon *d;
	sigset_t sigs;
	int i, fd, sig;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (i + 1 < argc && !strcmp(argv[i], "--listen")) {
			listen_spec = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--db")) {
			db = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--tokens")) {
			tokens_path = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--tls-cert")) {
			tls_cert = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--tls-key")) {
			tls_key = argv[++i];
		} else if (i + 1 < argc && !strcmp(argv[i], "--webhook-lease")) {
			char *end;
			double secs = strtod(argv[++i], &end);

			if (end == argv[i] || *end || !(secs >= 0.3 && secs <= 3600)) {
				fprintf(stderr, "zinv-server: --webhook-lease wants seconds from 0.3 "
				        "to 3600, not \"%s\"\n", argv[i]);
				return 2;
			}
			wopts.lease_ms = (int64_t)(secs * 1000.0 + 0.5);
		} else if (!strcmp(argv[i], "--webhook-deny-private")) {
			wopts.deny_private = 1;
		} else if (i + 1 < argc && !strcmp(argv[i], "--webhook-retry")) {
			free(retry);
			if (webhooks_parse_retry(&retry, &wopts.retry_count, argv[++i]) != 0) {
				fprintf(stderr, "zinv-server: --webhook-retry wants seconds like "
				        "\"60,60,600\", not \"%s\"\n", argv[i]);
				return 2;
			}
			wopts.retry_ms = retry;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!tls_cert != !tls_key) {
		fprintf(stderr, "zinv-server: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			fprintf(stderr, "zinv-server: this libmicrohttpd is built without TLS\n");
			return 1;
		}
		if (!(cert_pem = read_pem(tls_cert)) || !(key_pem = read_pem(tls_key))) {
			free(cert_pem);
			return 1;
		}
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, cert_pem };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, key_pem };
		flags |= MHD_USE_TLS;
	}
	if (tokens_path ? tokens_load(&srv.tokens, tokens_path) : tokens_make_dev(&srv.tokens))
		return 1;
	fd = listen_on(listen_spec);
	if (fd < 0) {
		tokens_free(&srv.tokens);
		return 1;
	}
	wopts.postgres = is_conninfo(db);
	if (open_store(&srv.store, db) != 0) {
		close(fd);
		tokens_free(&srv.tokens);
		free(retry);
		return 1;
	}
	if (!(srv.metrics = metrics_new()) ||
	    inv_subscribe(&srv.metrics_sub, srv.store, 0, on_event, srv.metrics) != 0 ||
	    prepare_orgs(&srv) != 0 ||
	    webhooks_open(&srv.webhooks, srv.store, db, &wopts) != 0) {
		metrics_free(srv.metrics);
		inv_store_close(srv.store);
		close(fd);
		tokens_free(&srv.tokens);
		free(retry);
		return 1;
	}
	free(retry);

	/* Signals are taken by sigwait() below, never by a connection thread. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &srv,
	                     MHD_OPTION_ARRAY, tls,
	                     MHD_OPTION_LISTEN_SOCKET, fd,
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
	                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
	                     MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	                     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "zinv-server: cannot start the HTTP daemon on %s\n", listen_spec);
		webhooks_close(srv.webhooks);
		metrics_free(srv.metrics);
		inv_store_close(srv.store);
		close(fd);
		tokens_free(&srv.tokens);
		return 1;
	}
	if (webhooks_start(srv.webhooks) != 0) {
		fprintf(stderr, "zinv-server: cannot start the webhook worker\n");
		MHD_stop_daemon(d);
		webhooks_close(srv.webhooks);
		metrics_free(srv.metrics);
		inv_store_close(srv.store);
		close(fd);
		tokens_free(&srv.tokens);
		return 1;
	}
	fprintf(stderr, "zinv-server: listening on %s%s, database %s, "
	        "a thread per connection (at most %d)\n",
	        listen_spec, tls_cert ? " (TLS)" : "", wopts.postgres ? "(PostgreSQL)" : db,
	        CONNECTION_LIMIT);

	sigwait(&sigs, &sig);
	fprintf(stderr, "zinv-server: %s, finishing in-flight requests\n",
	        sig == SIGINT ? "SIGINT" : "SIGTERM");
	/* Stop accepting, let open connections finish (bounded), then stop. */
	MHD_quiesce_daemon(d);
	for (i = 0; i < 100; i++) {
		const union MHD_DaemonInfo *info =
			MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

		if (!info || info->num_connections == 0)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	}
	MHD_stop_daemon(d);
	close(fd);
	webhooks_close(srv.webhooks);
	inv_store_close(srv.store);
	metrics_free(srv.metrics);
	tokens_free(&srv.tokens);
	free(cert_pem);
	free(key_pem);
	fprintf(stderr, "zinv-server: stopped\n");
	return 0;
}
