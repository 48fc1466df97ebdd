/*
 * webhooks.c - subscriptions and at-least-once delivery for zinv-server.
 *
 * Delivery is driven by the organization's journal, never by the live
 * events themselves: a subscription keeps a cursor (sequence, index) that
 * says "every message of entries <= sequence, and the messages of entry
 * sequence + 1 before index, were acknowledged".  The worker rebuilds the
 * events of the entries after it (inv_journal_entry_events), numbers their
 * messages (one per event; one per item of a low-stock event) and POSTs
 * them one at a time; a 2xx moves the cursor past the message in the side
 * database, anything else leaves it where it is and retries the same
 * message later.  So nothing is skipped, order holds per subscription, and
 * a crash resends at most the message that was in flight.  Live events only
 * wake the worker up.
 *
 * The side database runs with synchronous = NORMAL: a power loss may roll
 * a cursor back, which resends acknowledged messages (allowed by
 * at-least-once) but never loses one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <zinv.h>
#include <zinv/json.h>

#include "webhooks.h"
#include "webhooks_pg.h"

#define BATCH_ENTRIES 64    /* journal entries per read */
#define PASS_BUDGET 256     /* messages per subscription per pass: fairness */
#define MAX_VIOLATIONS 16

/* The service's schedule: 10 x 1 min, 9 x 10 min, then hourly. */
static const int64_t service_retry_ms[] = {
	60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000,
	600000, 600000, 600000, 600000, 600000, 600000, 600000, 600000, 600000,
	3600000
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS subscriptions ("
	/* Never reused: the worker's writes name the row it loaded, so they
	 * miss a subscription deleted and created again under the same uuid. */
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" uuid TEXT NOT NULL UNIQUE,"
	" org TEXT NOT NULL,"
	" destination TEXT NOT NULL,"
	" event_names TEXT NOT NULL,"      /* a JSON array; [] means every event */
	" contact_email TEXT NOT NULL,"
	" signing_key TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" updated INTEGER NOT NULL,"
	" cursor_sequence INTEGER NOT NULL,"
	" cursor_index INTEGER NOT NULL,"
	" test_pending INTEGER NOT NULL,"  /* the TestMessage is still to go */
	" next_attempt_ms INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS subscriptions_org ON subscriptions(org);";

struct webhooks {
	inv_store *store;
	sqlite3 *db;
	pthread_mutex_t db_lock;   /* one connection, shared by HTTP threads and the worker */
	pthread_mutex_t lock;      /* guards the fields below */
	pthread_cond_t wake;       /* generation moved on: the workers look */
	pthread_cond_t changed;    /* sub_generation moved on: the supervisor looks */
	uint64_t generation;       /* bumped by commits and subscription changes */
	int stop;
	int started;
	int subscribed;
	uint64_t event_sub;
	pthread_t thread;
	int64_t *retry_ms;
	size_t retry_count;
	int64_t poll_ms;
	long timeout_ms;
	int deny_private;
	int curl_ready;            /* curl_global_init() succeeded */
	struct subworker *workers; /* guarded by lock */
	uint64_t sub_generation;   /* bumped by subscription changes alone */
	struct whpg *pg;           /* PostgreSQL tables and leases; NULL: SQLite */
	int64_t lease_ms;          /* PostgreSQL: a lease lasts this long unrenewed */
};

/* A thread per subscription, so that one slow or hanging receiver never
 * delays another's deliveries.  It ends when its subscription is gone. */
struct subworker {
	struct webhooks *wh;
	int64_t row;
	char org[37];
	int leased;                /* this process delivers it; guarded by wh->lock */
	pthread_t thread;
	int done;                  /* the thread has returned; guarded by wh->lock */
	struct subworker *next;
};

/* One subscription as the worker sees it for a pass. */
struct sub {
	int64_t row;
	char uuid[37];
	inv_uuid id;
	inv_uuid org;
	char *destination;
	char key[80];
	int all;                   /* eventNames was empty */
	uint32_t mask;
	int64_t cursor_seq, cursor_idx;
	int64_t next_attempt_ms, attempts, updated;
	int test_pending;
	int lost;                  /* a cursor write found the lease gone (or failed) */
	CURL *curl;                /* the subscription's worker's handle */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *copy_text(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* ------------------------------------------------------------ options */

int webhooks_parse_retry(int64_t **out, size_t *count, const char *spec)
{
	size_t n = 1, i = 0;
	const char *p;
	int64_t *v;

	for (p = spec; *p; p++)
		n += *p == ',';
	v = calloc(n, sizeof(*v));
	if (!v)
		return -1;
	for (p = spec; i < n; i++) {
		char *end;
		double secs;

		errno = 0;
		secs = strtod(p, &end);
		if (end == p || errno || secs < 0 || secs > 86400.0 * 366 ||
		    (*end != ',' && *end != '\0')) {
			free(v);
			return -1;
		}
		v[i] = (int64_t)(secs * 1000.0 + 0.5);
		p = *end ? end + 1 : end;
	}
	*out = v;
	*count = n;
	return 0;
}

/* ------------------------------------------------- private destinations */

/* Loopback, private (RFC 1918, fc00::/7), link-local, CGNAT, unspecified. */
static int address_is_private(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);

		return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 24) == 10 ||
		       (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 || (a >> 16) == 0xa9fe ||
		       (a >> 22) == (100u << 2 | 1);
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			struct sockaddr_in v4 = { 0 };

			v4.sin_family = AF_INET;
			memcpy(&v4.sin_addr, a->s6_addr + 12, 4);
			return address_is_private((const struct sockaddr *)(const void *)&v4);
		}
		return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) ||
		       IN6_IS_ADDR_LINKLOCAL(a) || (a->s6_addr[0] & 0xfe) == 0xfc;
	}
	return 1;
}

/* Whether an http(s) URL's host resolves to any private address (or does
 * not resolve at all). */
static int url_is_private(const char *url)
{
	const char *p = strstr(url, "://"), *end, *at;
	struct addrinfo hints, *ai, *a;
	char host[256];
	size_t n;
	int private = 0;

	if (!p)
		return 1;
	p += 3;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (!close)
			return 1;
		p++;
		n = (size_t)(close - p);
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		n = (size_t)((colon ? colon : end) - p);
	}
	if (n == 0 || n >= sizeof(host))
		return 1;
	memcpy(host, p, n);
	host[n] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return 1;
	for (a = ai; a && !private; a = a->ai_next)
		private = address_is_private(a->ai_addr);
	freeaddrinfo(ai);
	return private;
}

/* At delivery too: a name may resolve differently than it did at
 * subscription time. */
static curl_socket_t open_public_socket(void *user, curlsocktype purpose,
                                        struct curl_sockaddr *addr)
{
	(void)user;
	(void)purpose;
	if (address_is_private(&addr->addr))
		return CURL_SOCKET_BAD;
	return socket(addr->family, addr->socktype, addr->protocol);
}

/* ------------------------------------------------------------ storage */

static int db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "zinv-server: webhooks database: %s\n", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "zinv-server: webhooks database: %s\n", sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

/* Step a write statement to its end; 0 or the SQLite code. */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* The cursor moved past an acknowledged message: the subscription is
 * healthy again.  `clear_test`: the TestMessage was the one. */
static void record_success(struct webhooks *wh, struct sub *s, int clear_test)
{
	sqlite3_stmt *st;

	if (wh->pg) {
		char org[37];

		inv_uuid_format(&s->org, org);
		if (whpg_save_cursor(wh->pg, org, s->row, s->cursor_seq, s->cursor_idx,
		                     clear_test) != 0)
			s->lost = 1;
		return;
	}
	pthread_mutex_lock(&wh->db_lock);
	st = prepare(wh->db, clear_test ?
	             "UPDATE subscriptions SET cursor_sequence = ?, cursor_index = ?,"
	             " status = 'ACTIVE', attempts = 0, next_attempt_ms = 0,"
	             " test_pending = 0 WHERE id = ?" :
	             "UPDATE subscriptions SET cursor_sequence = ?, cursor_index = ?,"
	             " status = 'ACTIVE', attempts = 0, next_attempt_ms = 0 WHERE id = ?");
	if (st) {
		sqlite3_bind_int64(st, 1, s->cursor_seq);
		sqlite3_bind_int64(st, 2, s->cursor_idx);
		sqlite3_bind_int64(st, 3, s->row);
		if (step_done(st))
			fprintf(stderr, "zinv-server: webhooks database: cannot save the cursor "
			        "of %s: %s\n", s->uuid, sqlite3_errmsg(wh->db));
	}
	pthread_mutex_unlock(&wh->db_lock);
}

static void record_failure(struct webhooks *wh, struct sub *s)
{
	size_t step = (size_t)s->attempts < wh->retry_count ? (size_t)s->attempts
	                                                     : wh->retry_count - 1;
	sqlite3_stmt *st;

	s->attempts++;
	s->next_attempt_ms = now_ms() + wh->retry_ms[step];
	if (wh->pg) {
		char org[37];

		inv_uuid_format(&s->org, org);
		if (whpg_save_failure(wh->pg, org, s->row, s->attempts, s->next_attempt_ms) != 0)
			s->lost = 1;
		return;
	}
	pthread_mutex_lock(&wh->db_lock);
	st = prepare(wh->db, "UPDATE subscriptions SET status = 'FAILING', attempts = ?,"
	             " next_attempt_ms = ? WHERE id = ?");
	if (st) {
		sqlite3_bind_int64(st, 1, s->attempts);
		sqlite3_bind_int64(st, 2, s->next_attempt_ms);
		sqlite3_bind_int64(st, 3, s->row);
		step_done(st);
	}
	pthread_mutex_unlock(&wh->db_lock);
}

/* Event names to a type mask; `all` when the list is empty.  Names this
 * server does not produce are kept but match nothing. */
static void names_to_mask(const json_t *names, int *all, uint32_t *mask)
{
	const json_t *n;
	size_t i;
	int t;

	*mask = 0;
	*all = json_array_size(names) == 0;
	json_array_foreach(names, i, n) {
		for (t = INV_EVENT_BALANCE_CHANGED; t <= INV_EVENT_LOW_STOCK; t++)
			if (json_is_string(n) && !strcmp(json_string_value(n), inv_json_event_name(t)))
				*mask |= INV_EVENT_MASK(t);
	}
}

static void subs_free(struct sub *subs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(subs[i].destination);
	free(subs);
}

/* Subscription rows through `fn` (see whpg_load()), from whichever
 * database holds them; takes the connection's lock. */
static int rows_load(struct webhooks *wh, int64_t id, const char *org, const char *uuid,
                     whrow_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int rc = 0, step;

	if (wh->pg)
		return whpg_load(wh->pg, id, org, uuid, fn, arg);
	pthread_mutex_lock(&wh->db_lock);
	st = prepare(wh->db, "SELECT id, uuid, org, destination, event_names, contact_email,"
	             " signing_key, status, updated, cursor_sequence, cursor_index, test_pending,"
	             " next_attempt_ms, attempts FROM subscriptions WHERE (?1 = 0 OR id = ?1)"
	             " AND (?2 IS NULL OR org = ?2) AND (?3 IS NULL OR uuid = ?3) ORDER BY id");
	if (st) {
		sqlite3_bind_int64(st, 1, id);
		bind_text(st, 2, org);
		bind_text(st, 3, uuid);
	}
	while (st && rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct whrow r;

		r.id = sqlite3_column_int64(st, 0);
		r.uuid = (const char *)sqlite3_column_text(st, 1);
		r.org = (const char *)sqlite3_column_text(st, 2);
		r.destination = (const char *)sqlite3_column_text(st, 3);
		r.event_names = (const char *)sqlite3_column_text(st, 4);
		r.contact_email = (const char *)sqlite3_column_text(st, 5);
		r.signing_key = (const char *)sqlite3_column_text(st, 6);
		r.status = (const char *)sqlite3_column_text(st, 7);
		r.updated = sqlite3_column_int64(st, 8);
		r.cursor_seq = sqlite3_column_int64(st, 9);
		r.cursor_idx = sqlite3_column_int64(st, 10);
		r.test_pending = sqlite3_column_int(st, 11);
		r.next_attempt_ms = sqlite3_column_int64(st, 12);
		r.attempts = sqlite3_column_int64(st, 13);
		if (!r.uuid || !r.org || !r.destination || !r.contact_email || !r.signing_key ||
		    !r.status)
			continue; /* not written by us; leave it alone */
		rc = fn(&r, arg) ? -1 : 0;
	}
	if (st && rc == 0 && step != SQLITE_DONE)
		rc = -1;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&wh->db_lock);
	return st ? rc : -1;
}

struct subs_acc {
	struct sub *subs;
	size_t n, cap;
};

static int sub_add(const struct whrow *r, void *arg)
{
	struct subs_acc *acc = arg;
	struct sub *s;
	json_t *list;

	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? 2 * acc->cap : 8;
		struct sub *grown = realloc(acc->subs, cap * sizeof(*grown));

		if (!grown)
			return -1;
		acc->subs = grown;
		acc->cap = cap;
	}
	s = &acc->subs[acc->n];
	memset(s, 0, sizeof(*s));
	if (strlen(r->signing_key) >= sizeof(s->key) ||
	    inv_uuid_parse(&s->id, r->uuid, strlen(r->uuid)) ||
	    inv_uuid_parse(&s->org, r->org, strlen(r->org)))
		return 0; /* not written by us; leave it alone */
	inv_uuid_format(&s->id, s->uuid);
	strcpy(s->key, r->signing_key);
	if (!(s->destination = strdup(r->destination)))
		return -1;
	list = json_loads(r->event_names ? r->event_names : "[]", 0, NULL);
	names_to_mask(list, &s->all, &s->mask);
	json_decref(list);
	s->cursor_seq = r->cursor_seq;
	s->cursor_idx = r->cursor_idx;
	s->test_pending = r->test_pending;
	s->next_attempt_ms = r->next_attempt_ms;
	s->attempts = r->attempts;
	s->updated = r->updated;
	s->row = r->id;
	acc->n++;
	return 0;
}

/* Every subscription (row 0), or the one of `org` with that row id. */
static int subs_load(struct webhooks *wh, int64_t row, const char *org, struct sub **out,
                     size_t *count)
{
	struct subs_acc acc = { 0 };

	if (rows_load(wh, row, org, NULL, sub_add, &acc) != 0) {
		subs_free(acc.subs, acc.n);
		return -1;
	}
	*out = acc.subs;
	*count = acc.n;
	return 0;
}

/* ------------------------------------------------------------ messages */

/* messageUuid, stable for (subscription, sequence, index): a receiver
 * drops a retry's duplicate by it.  Version 8 (custom) UUID. */
static void message_uuid(inv_uuid *out, const inv_uuid *sub, int64_t seq, int64_t index)
{
	unsigned char in[16 + 16], md[SHA256_DIGEST_LENGTH];
	int i;

	memcpy(in, sub->bytes, 16);
	for (i = 0; i < 8; i++) {
		in[16 + i] = (unsigned char)((uint64_t)seq >> (56 - 8 * i));
		in[24 + i] = (unsigned char)((uint64_t)index >> (56 - 8 * i));
	}
	SHA256(in, sizeof(in), md);
	memcpy(out->bytes, md, 16);
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x80);
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80);
}

/* X-iZettle-Signature: hex HMAC-SHA256 over timestamp "." payload, the raw
 * strings of the envelope as sent. */
static int sign_envelope(char out[65], const char *key, const char *env, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	json_t *root = json_loadb(env, len, 0, NULL);
	const json_t *ts = json_object_get(root, "timestamp");
	const json_t *payload = json_object_get(root, "payload");
	size_t tlen, plen;
	char *data;

	if (!json_is_string(ts) || !json_is_string(payload)) {
		json_decref(root);
		return -1;
	}
	tlen = json_string_length(ts);
	plen = json_string_length(payload);
	data = malloc(tlen + 1 + plen);
	if (!data) {
		json_decref(root);
		return -1;
	}
	memcpy(data, json_string_value(ts), tlen);
	data[tlen] = '.';
	memcpy(data + tlen + 1, json_string_value(payload), plen);
	json_decref(root);
	if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)data,
	          tlen + 1 + plen, md, &mdlen) || mdlen != 32) {
		free(data);
		return -1;
	}
	free(data);
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

/* The first delivery of a new subscription. */
static char *test_message(const struct sub *s, size_t *len)
{
	char org[37], mid[37], when[32];
	inv_uuid id;
	json_t *env;
	char *text;

	message_uuid(&id, &s->id, 0, -1);
	inv_uuid_format(&id, mid);
	inv_uuid_format(&s->org, org);
	inv_json_format_time(when, s->updated, 1);
	env = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "organizationUuid", org,
	                "messageUuid", mid, "eventName", "TestMessage", "messageId", mid,
	                "payload", "{\"data\":\"payload\"}", "timestamp", when);
	text = env ? json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(env);
	if (text)
		*len = strlen(text);
	return text;
}

/* Messages of one journal entry still to send, rendered. */
struct msg {
	int64_t index;
	char *envelope;    /* inv_free() */
	size_t len;
};

struct collect {
	const struct sub *s;
	int64_t seq;
	int64_t next;      /* index of the next message of the entry */
	int64_t start;     /* messages before it were acknowledged */
	struct msg *msgs;
	size_t n, cap;
	int rc;
};

static void collect_event(const inv_event *ev, void *payload)
{
	struct collect *c = payload;
	inv_event_type type = inv_event_get_type(ev);
	size_t items = type == INV_EVENT_BALANCE_CHANGED ? 1 : inv_event_item_count(ev), i;

	for (i = 0; i < items; i++, c->next++) {
		inv_json_envelope_options opts = INV_JSON_ENVELOPE_OPTIONS_INIT;
		inv_uuid id;
		struct msg *m;

		if (c->rc || c->next < c->start ||
		    !(c->s->all || (c->s->mask & INV_EVENT_MASK(type))))
			continue;
		if (c->n == c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 4;

			m = realloc(c->msgs, cap * sizeof(*m));
			if (!m) {
				c->rc = -1;
				continue;
			}
			c->msgs = m;
			c->cap = cap;
		}
		m = &c->msgs[c->n];
		message_uuid(&id, &c->s->id, c->seq, c->next);
		opts.message_uuid = &id;
		if (inv_json_encode_webhook(&m->envelope, &m->len, ev, i, &opts) != 0) {
			c->rc = -1;
			continue;
		}
		m->index = c->next;
		c->n++;
	}
}

static void collect_free(struct collect *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		inv_free(c->msgs[i].envelope);
	free(c->msgs);
	c->msgs = NULL;
	c->n = c->cap = 0;
}

/* ------------------------------------------------------------ delivery */

static size_t discard(char *data, size_t size, size_t n, void *user)
{
	(void)data;
	(void)user;
	return size * n;
}

/* Abort a transfer in flight when the server stops. */
static int abort_on_stop(void *user, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct webhooks *wh = user;
	int stop;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	pthread_mutex_lock(&wh->lock);
	stop = wh->stop;
	pthread_mutex_unlock(&wh->lock);
	return stop;
}

static int stopping(struct webhooks *wh)
{
	return abort_on_stop(wh, 0, 0, 0, 0);
}

/* A subscription worker's handle: it keeps the receiver's connection alive. */
static CURL *curl_new(struct webhooks *wh)
{
	CURL *curl = curl_easy_init();

	if (!curl) {
		fprintf(stderr, "zinv-server: cannot initialize libcurl\n");
		return NULL;
	}
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, wh->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, wh);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "zinv-server webhooks");
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (wh->deny_private)
		curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
	return curl;
}

/* POST one envelope; 0 on a 2xx. */
static int post(struct webhooks *wh, const struct sub *s, const char *env, size_t len)
{
	/* "Expect:": no 100-continue round trip for bodies over 1 KiB. */
	static const char *const fixed[] = { "Content-Type: application/json", "Expect:" };
	char sig[65], header[96];
	struct curl_slist *h = NULL, *h2;
	long code = 0;
	int i;
	CURLcode rc;

	if (sign_envelope(sig, s->key, env, len) != 0) {
		fprintf(stderr, "zinv-server: webhook %s: cannot sign a message\n", s->uuid);
		return -1;
	}
	snprintf(header, sizeof(header), "X-iZettle-Signature: %s", sig);
	for (i = 0; i < 3; i++) {
		h2 = curl_slist_append(h, i < 2 ? fixed[i] : header);
		if (!h2) {
			curl_slist_free_all(h);
			return -1;
		}
		h = h2;
	}
	curl_easy_setopt(s->curl, CURLOPT_URL, s->destination);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, env);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc = curl_easy_perform(s->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	if (rc == CURLE_OK && code >= 200 && code < 300)
		return 0;
	if (!stopping(wh)) {
		if (rc == CURLE_OK)
			fprintf(stderr, "zinv-server: webhook %s: %s answered %ld\n", s->uuid,
			        s->destination, code);
		else
			fprintf(stderr, "zinv-server: webhook %s: %s: %s\n", s->uuid,
			        s->destination, curl_easy_strerror(rc));
	}
	return -1;
}

/* A failed POST counts as an attempt, unless it failed because we stop. */
static int failed(struct webhooks *wh, struct sub *s)
{
	if (!stopping(wh))
		record_failure(wh, s);
	return -1;
}

/*
 * Deliver what is due for one subscription, up to PASS_BUDGET messages.
 * Returns the number delivered, or -1 after a failed attempt (recorded).
 * *more: there is more to deliver right away.
 */
static int run_sub(struct webhooks *wh, struct sub *s, int *more)
{
	inv_journal_query q = INV_JOURNAL_QUERY_INIT;
	inv_journal *j = NULL;
	inv_org *org = NULL;
	int64_t last = 0, saved_seq, saved_idx;
	int delivered = 0;
	size_t k, m;

	*more = 0;
	if (s->test_pending) {
		size_t len;
		char *env = test_message(s, &len);
		int rc = env ? post(wh, s, env, len) : -1;

		free(env);
		if (rc)
			return failed(wh, s);
		record_success(wh, s, 1);
		s->test_pending = 0;
		delivered++;
		if (s->lost)
			return delivered;
	}
	if (inv_org_open(&org, wh->store, &s->org) != 0 ||
	    inv_journal_last_sequence(&last, org) != 0) {
		fprintf(stderr, "zinv-server: webhook %s: cannot read the journal: %s\n", s->uuid,
		        inv_error_last()->message);
		inv_org_close(org);
		return delivered;
	}
	if (last <= s->cursor_seq) {
		inv_org_close(org);
		return delivered;
	}
	q.after_sequence = s->cursor_seq;
	q.limit = BATCH_ENTRIES;
	if (inv_journal_read(&j, org, &q) != 0) {
		fprintf(stderr, "zinv-server: webhook %s: cannot read the journal: %s\n", s->uuid,
		        inv_error_last()->message);
		inv_org_close(org);
		return delivered;
	}
	saved_seq = s->cursor_seq;
	saved_idx = s->cursor_idx;
	/* Only inv_journal_trim() makes holes; what it deleted is gone. */
	if (inv_journal_count(j) == 0 ||
	    inv_journal_entry_sequence(inv_journal_at(j, 0)) > s->cursor_seq + 1) {
		int64_t next = inv_journal_count(j) ? inv_journal_entry_sequence(inv_journal_at(j, 0))
		                                    : last + 1;

		fprintf(stderr, "zinv-server: webhook %s: journal entries %" PRId64 " to %" PRId64
		        " were trimmed before delivery; their events are lost\n", s->uuid,
		        s->cursor_seq + 1, next - 1);
		s->cursor_seq = next - 1;
		s->cursor_idx = 0;
	}
	for (k = 0; k < inv_journal_count(j) && !stopping(wh); k++) {
		const inv_journal_entry *e = inv_journal_at(j, k);
		struct collect c = { 0 };

		c.s = s;
		c.seq = inv_journal_entry_sequence(e);
		c.start = c.seq == s->cursor_seq + 1 ? s->cursor_idx : 0;
		if (inv_journal_entry_events(e, &s->org, collect_event, &c) != 0 || c.rc) {
			fprintf(stderr, "zinv-server: webhook %s: cannot rebuild the events of "
			        "entry %" PRId64 ": %s\n", s->uuid, c.seq, inv_error_last()->message);
			collect_free(&c);
			inv_journal_free(j);
			inv_org_close(org);
			return failed(wh, s); /* back off like any failed attempt */
		}
		for (m = 0; m < c.n; m++) {
			if (post(wh, s, c.msgs[m].envelope, c.msgs[m].len) != 0) {
				collect_free(&c);
				inv_journal_free(j);
				inv_org_close(org);
				return failed(wh, s);
			}
			s->cursor_seq = c.seq - 1;
			s->cursor_idx = c.msgs[m].index + 1;
			record_success(wh, s, 0);
			saved_seq = s->cursor_seq;
			saved_idx = s->cursor_idx;
			delivered++;
			if (s->lost) {
				/* Another process delivers from here on. */
				collect_free(&c);
				inv_journal_free(j);
				inv_org_close(org);
				return delivered;
			}
		}
		collect_free(&c);
		s->cursor_seq = c.seq;
		s->cursor_idx = 0;
		if (delivered >= PASS_BUDGET)
			break;
	}
	/* Entries with nothing for this subscription move the cursor too. */
	if (s->cursor_seq != saved_seq || s->cursor_idx != saved_idx)
		record_success(wh, s, 0);
	*more = s->cursor_seq < last;
	inv_journal_free(j);
	inv_org_close(org);
	return delivered;
}

/* Wait on `cv` until `deadline_ms`, the server stops, or (`counter` not
 * NULL) *counter moves on from `generation`. */
static void wait_until(struct webhooks *wh, pthread_cond_t *cv, const uint64_t *counter,
                       uint64_t generation, int64_t deadline_ms)
{
	pthread_mutex_lock(&wh->lock);
	while (!wh->stop && (!counter || *counter == generation)) {
		int64_t left = deadline_ms - now_ms();
		struct timespec ts;

		if (left <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(cv, &wh->lock, &ts);
	}
	pthread_mutex_unlock(&wh->lock);
}

static void set_leased(struct subworker *w, int leased)
{
	pthread_mutex_lock(&w->wh->lock);
	w->leased = leased;
	pthread_mutex_unlock(&w->wh->lock);
}

/* Deliver one subscription until it is deleted or the server stops; on
 * PostgreSQL only while this process holds its lease. */
static void *sub_worker(void *arg)
{
	struct subworker *w = arg;
	struct webhooks *wh = w->wh;
	CURL *curl = curl_new(wh);

	while (curl && !stopping(wh)) {
		struct sub *s = NULL;
		size_t n = 0;
		uint64_t generation;
		int64_t now, deadline;
		int more = 0, rc = 0, leased;

		pthread_mutex_lock(&wh->lock);
		generation = wh->generation;
		leased = w->leased;
		pthread_mutex_unlock(&wh->lock);
		now = now_ms();
		deadline = now + wh->poll_ms;
		if (!leased) {
			/* Taken before the cursor is read, so that the cursor is
			 * the last one the previous owner wrote. */
			rc = whpg_lease_take(wh->pg, w->org, w->row);
			if (rc == 2)
				break; /* deleted */
			if (rc != 1) {
				/* Another process delivers it: look again in a
				 * third of a lease. */
				wait_until(wh, &wh->wake, NULL, 0, now + wh->lease_ms / 3);
				continue;
			}
			set_leased(w, 1);
			rc = 0;
		}
		if (subs_load(wh, w->row, w->org, &s, &n) != 0) {
			wait_until(wh, &wh->wake, &wh->generation, generation, deadline);
			continue;
		}
		if (n == 0)
			break; /* deleted */
		s->curl = curl;
		if (s->next_attempt_ms > now)
			deadline = s->next_attempt_ms < deadline ? s->next_attempt_ms : deadline;
		else
			rc = run_sub(wh, s, &more);
		if (rc < 0 && s->next_attempt_ms < deadline)
			deadline = s->next_attempt_ms;
		if (s->lost)
			set_leased(w, 0);
		subs_free(s, n);
		if (rc <= 0 && !more)
			wait_until(wh, &wh->wake, &wh->generation, generation, deadline);
	}
	if (curl)
		curl_easy_cleanup(curl);
	pthread_mutex_lock(&wh->lock);
	w->leased = 0;
	w->done = 1;
	pthread_mutex_unlock(&wh->lock);
	return NULL;
}

/* Join the workers that ended (all of them when `all`, after stop). */
static void reap(struct webhooks *wh, int all)
{
	struct subworker **p = &wh->workers, *w;

	pthread_mutex_lock(&wh->lock);
	while ((w = *p)) {
		if (all || w->done) {
			*p = w->next;
			pthread_mutex_unlock(&wh->lock);
			pthread_join(w->thread, NULL);
			free(w);
			pthread_mutex_lock(&wh->lock);
		} else {
			p = &w->next;
		}
	}
	pthread_mutex_unlock(&wh->lock);
}

/* The supervisor: a worker for every subscription that has none, and on
 * PostgreSQL the renewal of this process's leases every third of a lease. */
static void *worker(void *arg)
{
	struct webhooks *wh = arg;
	int64_t renewed = 0, period = wh->poll_ms;

	if (wh->pg && wh->lease_ms / 3 < period)
		period = wh->lease_ms / 3;
	while (!stopping(wh)) {
		struct sub *subs = NULL;
		size_t n = 0, i;
		uint64_t generation;

		pthread_mutex_lock(&wh->lock);
		generation = wh->sub_generation;
		pthread_mutex_unlock(&wh->lock);
		if (wh->pg && now_ms() - renewed >= wh->lease_ms / 3) {
			renewed = now_ms();
			whpg_lease_renew(wh->pg);
		}
		reap(wh, 0);
		if (subs_load(wh, 0, NULL, &subs, &n) != 0)
			n = 0;
		for (i = 0; i < n; i++) {
			struct subworker *w;

			pthread_mutex_lock(&wh->lock);
			for (w = wh->workers; w && w->row != subs[i].row; w = w->next)
				;
			pthread_mutex_unlock(&wh->lock);
			if (w || !(w = calloc(1, sizeof(*w))))
				continue;
			w->wh = wh;
			w->row = subs[i].row;
			inv_uuid_format(&subs[i].org, w->org);
			w->leased = !wh->pg; /* SQLite and memory: one process, no leases */
			if (pthread_create(&w->thread, NULL, sub_worker, w) != 0) {
				free(w);
				continue;
			}
			pthread_mutex_lock(&wh->lock);
			w->next = wh->workers;
			wh->workers = w;
			pthread_mutex_unlock(&wh->lock);
		}
		subs_free(subs, n);
		wait_until(wh, &wh->changed, &wh->sub_generation, generation, now_ms() + period);
	}
	reap(wh, 1);
	return NULL;
}

/* Every commit wakes the worker; it finds the work in the journal. */
static void on_commit(const inv_event *event, void *payload)
{
	struct webhooks *wh = payload;

	(void)event;
	pthread_mutex_lock(&wh->lock);
	wh->generation++;
	pthread_cond_broadcast(&wh->wake);
	pthread_mutex_unlock(&wh->lock);
}

/* A subscription changed: the supervisor and the workers look again. */
static void kick(struct webhooks *wh)
{
	pthread_mutex_lock(&wh->lock);
	wh->sub_generation++;
	pthread_cond_broadcast(&wh->changed);
	pthread_mutex_unlock(&wh->lock);
	on_commit(NULL, wh);
}

/* ------------------------------------------------------- open and close */

int webhooks_open(struct webhooks **out, inv_store *store, const char *db,
                  const struct webhooks_options *opts)
{
	struct webhooks *wh;
	pthread_condattr_t ca;
	char *path;
	size_t count;
	int rc;

	*out = NULL;
	wh = calloc(1, sizeof(*wh));
	if (!wh)
		return -1;
	wh->store = store;
	count = opts && opts->retry_ms && opts->retry_count ? opts->retry_count
	        : sizeof(service_retry_ms) / sizeof(service_retry_ms[0]);
	wh->retry_ms = malloc(count * sizeof(*wh->retry_ms));
	if (!wh->retry_ms) {
		free(wh);
		return -1;
	}
	memcpy(wh->retry_ms, opts && opts->retry_ms && opts->retry_count ? opts->retry_ms
	                                                                 : service_retry_ms,
	       count * sizeof(*wh->retry_ms));
	wh->retry_count = count;
	wh->poll_ms = opts && opts->poll_ms > 0 ? opts->poll_ms : 1000;
	wh->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
	wh->deny_private = opts && opts->deny_private;
	pthread_mutex_init(&wh->db_lock, NULL);
	pthread_mutex_init(&wh->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wh->wake, &ca);
	pthread_cond_init(&wh->changed, &ca);
	pthread_condattr_destroy(&ca);

	if (opts && opts->postgres) {
		char owner[300], host[256] = "";
		unsigned char raw[4];

		wh->lease_ms = opts->lease_ms > 0 ? opts->lease_ms : 3000;
		/* Lease rows name the process: host, pid, and a random part
		 * for a pid reused after a restart. */
		gethostname(host, sizeof(host) - 1);
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			webhooks_close(wh);
			return -1;
		}
		snprintf(owner, sizeof(owner), "%s:%ld:%02x%02x%02x%02x", host, (long)getpid(),
		         raw[0], raw[1], raw[2], raw[3]);
		if (whpg_open(&wh->pg, db, owner, wh->lease_ms) != 0) {
			fprintf(stderr, "zinv-server: cannot open the webhook tables in PostgreSQL\n");
			webhooks_close(wh);
			return -1;
		}
		path = NULL;
		goto opened;
	}
	if (!strcmp(db, ":memory:")) {
		path = strdup(":memory:");
	} else {
		path = malloc(strlen(db) + sizeof(".webhooks"));
		if (path)
			sprintf(path, "%s.webhooks", db);
	}
	if (!path) {
		webhooks_close(wh);
		return -1;
	}
	rc = sqlite3_open_v2(path, &wh->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                     SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK ||
	    sqlite3_busy_timeout(wh->db, 5000) != SQLITE_OK ||
	    (strcmp(path, ":memory:") && db_exec(wh->db, "PRAGMA journal_mode = WAL")) ||
	    db_exec(wh->db, "PRAGMA synchronous = NORMAL") || db_exec(wh->db, schema)) {
		fprintf(stderr, "zinv-server: cannot open the webhooks database %s: %s\n", path,
		        wh->db ? sqlite3_errmsg(wh->db) : "out of memory");
		free(path);
		webhooks_close(wh);
		return -1;
	}
	free(path);
opened:
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "zinv-server: cannot initialize libcurl\n");
		webhooks_close(wh);
		return -1;
	}
	wh->curl_ready = 1;
	if (inv_subscribe(&wh->event_sub, store, 0, on_commit, wh) != 0) {
		fprintf(stderr, "zinv-server: cannot subscribe to events: %s\n",
		        inv_error_last()->message);
		webhooks_close(wh);
		return -1;
	}
	wh->subscribed = 1;
	*out = wh;
	return 0;
}

int webhooks_start(struct webhooks *wh)
{
	if (pthread_create(&wh->thread, NULL, worker, wh) != 0)
		return -1;
	wh->started = 1;
	return 0;
}

void webhooks_close(struct webhooks *wh)
{
	if (!wh)
		return;
	if (wh->subscribed)
		inv_unsubscribe(wh->store, wh->event_sub);
	pthread_mutex_lock(&wh->lock);
	wh->stop = 1;
	pthread_cond_broadcast(&wh->wake);
	pthread_cond_broadcast(&wh->changed);
	pthread_mutex_unlock(&wh->lock);
	if (wh->started)
		pthread_join(wh->thread, NULL);
	if (wh->curl_ready)
		curl_global_cleanup();
	whpg_close(wh->pg); /* after the workers: it releases their leases */
	sqlite3_close(wh->db);
	pthread_cond_destroy(&wh->wake);
	pthread_cond_destroy(&wh->changed);
	pthread_mutex_destroy(&wh->lock);
	pthread_mutex_destroy(&wh->db_lock);
	free(wh->retry_ms);
	free(wh);
}

/* ------------------------------------------------------------ metrics */

void webhooks_metrics(struct webhooks *wh, FILE *out)
{
	struct sub *subs = NULL;
	size_t n = 0, i;
	int64_t now = now_ms(), *backlog, *age_ms;

	if (!wh || subs_load(wh, 0, NULL, &subs, &n) != 0)
		return;
	backlog = calloc(2 * n + 1, sizeof(*backlog));
	if (!backlog) {
		subs_free(subs, n);
		return;
	}
	age_ms = backlog + n;
	fputs("# HELP zinv_webhook_backlog_entries Journal entries after the subscription's "
	      "delivery cursor.\n# TYPE zinv_webhook_backlog_entries gauge\n", out);
	for (i = 0; i < n; i++) {
		inv_journal_query q = INV_JOURNAL_QUERY_INIT;
		inv_journal *j = NULL;
		inv_org *org = NULL;
		int64_t last = 0;

		if (inv_org_open(&org, wh->store, &subs[i].org) == 0 &&
		    inv_journal_last_sequence(&last, org) == 0 && last > subs[i].cursor_seq) {
			q.after_sequence = subs[i].cursor_seq;
			q.limit = 1;
			if (inv_journal_read(&j, org, &q) == 0 && inv_journal_count(j))
				age_ms[i] = now - inv_journal_entry_time(inv_journal_at(j, 0));
			inv_journal_free(j);
		}
		inv_org_close(org);
		backlog[i] = last > subs[i].cursor_seq ? last - subs[i].cursor_seq : 0;
	}
	for (i = 0; i < n; i++)
		fprintf(out, "zinv_webhook_backlog_entries{subscription=\"%s\"} %" PRId64 "\n",
		        subs[i].uuid, backlog[i] + subs[i].test_pending);
	fputs("# HELP zinv_webhook_oldest_undelivered_seconds Age of the oldest journal entry "
	      "not yet delivered; 0 when none.\n"
	      "# TYPE zinv_webhook_oldest_undelivered_seconds gauge\n", out);
	for (i = 0; i < n; i++)
		fprintf(out, "zinv_webhook_oldest_undelivered_seconds{subscription=\"%s\"} %.3f\n",
		        subs[i].uuid, age_ms[i] > 0 ? (double)age_ms[i] / 1e3 : 0.0);
	/* SQLite and memory: one process, which delivers everything. */
	fputs("# HELP zinv_webhook_lease_owned Whether this process delivers the "
	      "subscription (holds its lease).\n# TYPE zinv_webhook_lease_owned gauge\n", out);
	for (i = 0; i < n; i++) {
		struct subworker *w;
		int owned;

		pthread_mutex_lock(&wh->lock);
		for (w = wh->workers; w && w->row != subs[i].row; w = w->next)
			;
		owned = wh->pg ? w && w->leased : 1;
		pthread_mutex_unlock(&wh->lock);
		fprintf(out, "zinv_webhook_lease_owned{subscription=\"%s\"} %d\n", subs[i].uuid,
		        owned);
	}
	free(backlog);
	subs_free(subs, n);
}

/* ------------------------------------------------------------ HTTP API */

static int answer_error(struct webhooks_answer *a, int status, const char *type,
                        const char *message, const inv_json_violation *v, size_t n)
{
	char *text;
	size_t len;

	a->status = status;
	if (inv_json_encode_error(&text, &len, type, message, v, n) != 0)
		return -1;
	a->body = copy_text(text, len);
	a->len = len;
	inv_free(text);
	return a->body ? 0 : -1;
}

static int answer_json(struct webhooks_answer *a, int status, json_t *value)
{
	a->status = status;
	a->body = value ? json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(value);
	if (!a->body)
		return -1;
	a->len = strlen(a->body);
	return 0;
}

/* Path segments, without empty ones (a trailing slash is allowed). */
struct segs {
	const char *s[8];
	size_t len[8];
	size_t n;
};

static int split(struct segs *sg, const char *path)
{
	const char *p = path, *q;

	sg->n = 0;
	while (*p && *p != '?') {
		while (*p == '/')
			p++;
		if (!*p || *p == '?')
			break;
		for (q = p; *q && *q != '/' && *q != '?'; q++)
			;
		if (sg->n == 8)
			return -1;
		sg->s[sg->n] = p;
		sg->len[sg->n++] = (size_t)(q - p);
		p = q;
	}
	return 0;
}

static int seg_is(const struct segs *sg, size_t i, const char *word)
{
	return i < sg->n && sg->len[i] == strlen(word) && !memcmp(sg->s[i], word, sg->len[i]);
}

int webhooks_is_route(const char *path)
{
	struct segs sg;

	return path && split(&sg, path) == 0 && seg_is(&sg, 0, "organizations") &&
	       seg_is(&sg, 2, "subscriptions");
}

/* The row view of GET, PUT and POST; `with_key` only for POST. */
static json_t *row_view(const struct whrow *r, int with_key)
{
	char when[32];
	json_t *names = json_loads(r->event_names, 0, NULL);
	json_t *o;

	inv_json_format_time(when, r->updated, 1);
	o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s}",
	              "uuid", r->uuid,
	              "transportName", "WEBHOOK",
	              "eventNames", names ? names : json_array(),
	              "updated", when,
	              "destination", r->destination,
	              "contactEmail", r->contact_email,
	              "status", r->status);
	if (o && with_key)
		json_object_set_new(o, "signingKey", json_string(r->signing_key));
	return o;
}

struct view_acc {
	int with_key;
	int found;
	json_t *view;      /* one row */
	json_t *list;      /* or all of them, when not NULL */
};

static int view_add(const struct whrow *r, void *arg)
{
	struct view_acc *acc = arg;
	json_t *o = row_view(r, acc->with_key);

	if (!o)
		return -1;
	acc->found = 1;
	if (acc->list)
		return json_array_append_new(acc->list, o);
	json_decref(acc->view);
	acc->view = o;
	return 0;
}

/* One subscription of `org` as JSON, or NULL (*found 0 when missing). */
static json_t *load_view(struct webhooks *wh, const char *org, const char *uuid, int with_key,
                         int *found)
{
	struct view_acc acc = { 0 };

	acc.with_key = with_key;
	if (rows_load(wh, 0, org, uuid, view_add, &acc) != 0) {
		json_decref(acc.view);
		acc.view = NULL;
	}
	*found = acc.found;
	return acc.view;
}

struct fields {
	inv_json_violation v[MAX_VIOLATIONS];
	size_t n;
	const char *uuid, *destination, *email;
	const json_t *names;      /* NULL: not given */
};

static void violation(struct fields *f, const char *property, const char *message,
                      int constraint)
{
	if (f->n < MAX_VIOLATIONS) {
		f->v[f->n].property = property;
		f->v[f->n].message = message;
		f->v[f->n].constraint = constraint;
		f->v[f->n].reserved = 0;
		f->n++;
	}
}

/* Check a POST (`create`) or PUT body's fields; violations go to f->v. */
static void check_fields(const struct webhooks *wh, struct fields *f, json_t *body,
                         int create)
{
	const json_t *transport = json_object_get(body, "transportName");
	const json_t *uuid = json_object_get(body, "uuid");
	const json_t *dest = json_object_get(body, "destination");
	const json_t *email = json_object_get(body, "contactEmail");
	const json_t *names = json_object_get(body, "eventNames"), *n;
	inv_uuid parsed;
	size_t i;

	memset(f, 0, sizeof(*f));
	if (create && (!uuid || json_is_null(uuid)))
		violation(f, "uuid", "must not be null", INV_JSON_MUST_NOT_BE_NULL);
	else if (create && (!json_is_string(uuid) ||
	                    inv_uuid_parse(&parsed, json_string_value(uuid),
	                                   json_string_length(uuid)) != 0))
		violation(f, "uuid", "must be a UUID", INV_JSON_MUST_MATCH_PATTERN);
	else if (create)
		f->uuid = json_string_value(uuid);
	if (create && (!transport || json_is_null(transport)))
		violation(f, "transportName", "must not be null", INV_JSON_MUST_NOT_BE_NULL);
	else if (transport && !json_is_null(transport) &&
	         (!json_is_string(transport) || strcmp(json_string_value(transport), "WEBHOOK")))
		violation(f, "transportName", "must be WEBHOOK", INV_JSON_MUST_MATCH_PATTERN);
	if (create && (!dest || json_is_null(dest)))
		violation(f, "destination", "must not be null", INV_JSON_MUST_NOT_BE_NULL);
	else if (dest && !json_is_null(dest) &&
	         (!json_is_string(dest) || json_string_length(dest) > 2048 ||
	          (strncmp(json_string_value(dest), "http://", 7) &&
	           strncmp(json_string_value(dest), "https://", 8)) ||
	          json_string_length(dest) <= 8))
		violation(f, "destination", "must be an http or https URL",
		          INV_JSON_MUST_MATCH_PATTERN);
	else if (dest && !json_is_null(dest) && wh->deny_private &&
	         url_is_private(json_string_value(dest)))
		violation(f, "destination", "must not be a loopback or private address",
		          INV_JSON_MUST_MATCH_PATTERN);
	else if (dest && !json_is_null(dest))
		f->destination = json_string_value(dest);
	if (create && (!email || json_is_null(email)))
		violation(f, "contactEmail", "must not be null", INV_JSON_MUST_NOT_BE_NULL);
	else if (email && !json_is_null(email) &&
	         (!json_is_string(email) || !strchr(json_string_value(email), '@') ||
	          json_string_length(email) > 320))
		violation(f, "contactEmail", "must be an email address",
		          INV_JSON_MUST_MATCH_PATTERN);
	else if (email && !json_is_null(email))
		f->email = json_string_value(email);
	if (names && !json_is_null(names)) {
		if (!json_is_array(names)) {
			violation(f, "eventNames", "must be an array of event names",
			          INV_JSON_UNKNOWN);
		} else {
			json_array_foreach(names, i, n) {
				if (!json_is_string(n) || json_string_length(n) == 0) {
					violation(f, "eventNames", "must hold non-empty strings",
					          INV_JSON_MUST_NOT_BE_EMPTY);
					break;
				}
			}
			f->names = names;
		}
	}
}

static int handle_create(struct webhooks *wh, struct webhooks_answer *a, const char *org,
                         const inv_uuid *org_uuid, json_t *body)
{
	unsigned char raw[32];
	char key[65], uuid[37], *names;
	struct fields f;
	inv_uuid id;
	inv_org *o = NULL;
	int64_t last = 0, now = now_ms();
	sqlite3_stmt *st;
	json_t *view;
	int rc, found;
	size_t i;

	check_fields(wh, &f, body, 1);
	if (f.n)
		return answer_error(a, 400, "VALIDATION_ERROR", "the subscription is invalid",
		                    f.v, f.n);
	inv_uuid_parse(&id, f.uuid, strlen(f.uuid));
	inv_uuid_format(&id, uuid);
	/* From now on: the events of entries after the current last one. */
	if (inv_org_open(&o, wh->store, org_uuid) != 0 ||
	    inv_journal_last_sequence(&last, o) != 0) {
		inv_org_close(o);
		return answer_error(a, 503, "SERVICE_UNAVAILABLE", inv_error_last()->message,
		                    NULL, 0);
	}
	inv_org_close(o);
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return answer_error(a, 500, "INTERNAL_SERVER_ERROR", "no random signing key",
		                    NULL, 0);
	for (i = 0; i < sizeof(raw); i++)
		snprintf(key + 2 * i, 3, "%02x", raw[i]);
	names = json_dumps(f.names ? f.names : json_array(), JSON_COMPACT);
	if (!names)
		return -1;
	if (wh->pg) {
		struct view_acc acc = { 1, 0, NULL, NULL };

		rc = whpg_insert(wh->pg, org, uuid, f.destination, names, f.email, key, now, last,
		                 view_add, &acc);
		free(names);
		view = acc.view;
		if (rc == 1)
			return answer_error(a, 400, "SUBSCRIPTION_ALREADY_EXIST",
			                    "a subscription with this uuid exists", NULL, 0);
		goto answer;
	}
	pthread_mutex_lock(&wh->db_lock);
	st = prepare(wh->db, "INSERT INTO subscriptions (uuid, org, destination, event_names,"
	             " contact_email, signing_key, status, updated, cursor_sequence,"
	             " cursor_index, test_pending, next_attempt_ms, attempts)"
	             " VALUES (?, ?, ?, ?, ?, ?, 'ACTIVE', ?, ?, 0, 1, 0, 0)");
	if (st) {
		bind_text(st, 1, uuid);
		bind_text(st, 2, org);
		bind_text(st, 3, f.destination);
		bind_text(st, 4, names);
		bind_text(st, 5, f.email);
		bind_text(st, 6, key);
		sqlite3_bind_int64(st, 7, now);
		sqlite3_bind_int64(st, 8, last);
		rc = step_done(st);
	} else {
		rc = SQLITE_ERROR;
	}
	pthread_mutex_unlock(&wh->db_lock);
	view = rc == 0 ? load_view(wh, org, uuid, 1, &found) : NULL;
	free(names);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return answer_error(a, 400, "SUBSCRIPTION_ALREADY_EXIST",
		                    "a subscription with this uuid exists", NULL, 0);
answer:
	if (rc || !view)
		return answer_error(a, 503, "SERVICE_UNAVAILABLE", "the webhooks database failed",
		                    NULL, 0);
	kick(wh);
	return answer_json(a, 200, view);
}

static int handle_update(struct webhooks *wh, struct webhooks_answer *a, const char *org,
                         const char *uuid, json_t *body)
{
	struct fields f;
	sqlite3_stmt *st;
	char *names = NULL;
	json_t *view = NULL;
	int rc = SQLITE_ERROR, found = 0;

	check_fields(wh, &f, body, 0);
	if (f.n)
		return answer_error(a, 400, "VALIDATION_ERROR", "the subscription is invalid",
		                    f.v, f.n);
	if (f.names && !(names = json_dumps(f.names, JSON_COMPACT)))
		return -1;
	if (wh->pg) {
		struct view_acc acc = { 0, 0, NULL, NULL };

		rc = whpg_update(wh->pg, org, uuid, f.destination, names, f.email, now_ms(),
		                 view_add, &acc);
		found = rc == 0;
		view = acc.view;
		rc = rc < 0;
		goto answer;
	}
	pthread_mutex_lock(&wh->db_lock);
	st = prepare(wh->db, "UPDATE subscriptions SET"
	             " destination = coalesce(?1, destination),"
	             " event_names = coalesce(?2, event_names),"
	             " contact_email = coalesce(?3, contact_email), updated = ?4,"
	             /* A new destination is tried at once, not at the next retry. */
	             " next_attempt_ms = CASE WHEN ?1 IS NULL THEN next_attempt_ms ELSE 0 END"
	             " WHERE org = ?5 AND uuid = ?6");
	if (st) {
		bind_text(st, 1, f.destination);
		bind_text(st, 2, names);
		bind_text(st, 3, f.email);
		sqlite3_bind_int64(st, 4, now_ms());
		bind_text(st, 5, org);
		bind_text(st, 6, uuid);
		rc = step_done(st);
		found = rc == 0 && sqlite3_changes(wh->db) == 1;
	}
	pthread_mutex_unlock(&wh->db_lock);
	if (found)
		view = load_view(wh, org, uuid, 0, &found);
answer:
	free(names);
	if (rc)
		return answer_error(a, 503, "SERVICE_UNAVAILABLE", "the webhooks database failed",
		                    NULL, 0);
	if (!found)
		return answer_error(a, 404, "SUBSCRIPTION_NOT_FOUND", "no such subscription",
		                    NULL, 0);
	if (!view)
		return -1;
	kick(wh);
	return answer_json(a, 200, view);
}

static int handle_delete(struct webhooks *wh, struct webhooks_answer *a, const char *org,
                         const char *uuid)
{
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR, changed = 0;

	if (wh->pg) {
		rc = whpg_delete(wh->pg, org, uuid);
		changed = rc == 0;
		rc = rc < 0;
		goto answer;
	}
	pthread_mutex_lock(&wh->db_lock);
	st = prepare(wh->db, "DELETE FROM subscriptions WHERE org = ? AND uuid = ?");
	if (st) {
		bind_text(st, 1, org);
		bind_text(st, 2, uuid);
		rc = step_done(st);
		changed = rc == 0 && sqlite3_changes(wh->db) == 1;
	}
	pthread_mutex_unlock(&wh->db_lock);
answer:
	if (rc)
		return answer_error(a, 503, "SERVICE_UNAVAILABLE", "the webhooks database failed",
		                    NULL, 0);
	if (!changed)
		return answer_error(a, 404, "SUBSCRIPTION_NOT_FOUND", "no such subscription",
		                    NULL, 0);
	a->status = 204;
	return 0;
}

static int handle_list(struct webhooks *wh, struct webhooks_answer *a, const char *org)
{
	struct view_acc acc = { 0 };

	if (!(acc.list = json_array()))
		return -1;
	if (rows_load(wh, 0, org, NULL, view_add, &acc) != 0) {
		json_decref(acc.list);
		return answer_error(a, 503, "SERVICE_UNAVAILABLE", "the webhooks database failed",
		                    NULL, 0);
	}
	return answer_json(a, 200, acc.list);
}

static int route(struct webhooks *wh, const inv_rest_request *req, struct webhooks_answer *a)
{
	const char *method = req->method ? req->method : "";
	char org[37], uuid[37] = "";
	const char *useg = NULL;
	size_t ulen = 0;
	int item, found, rc, write;
	struct segs sg;
	inv_uuid named;
	json_t *body;

	if (!req->authenticated)
		return answer_error(a, 401, "UNAUTHORIZED", "no or unknown bearer token", NULL, 0);
	split(&sg, req->path);
	if (sg.n == 3) {
		item = 0;
	} else if (sg.n == 4) {
		item = 1;
		useg = sg.s[3];
		ulen = sg.len[3];
	} else if (sg.n == 5 && seg_is(&sg, 3, "uuid")) {
		item = 1;
		useg = sg.s[4];
		ulen = sg.len[4];
	} else {
		return answer_error(a, 404, "NOT_FOUND", "no such path", NULL, 0);
	}
	if (item ? strcmp(method, "PUT") && strcmp(method, "DELETE") && strcmp(method, "GET")
	         : strcmp(method, "POST") && strcmp(method, "GET")) {
		a->allow = item ? "GET, PUT, DELETE" : "GET, POST";
		return answer_error(a, 405, "METHOD_NOT_ALLOWED", "method not allowed on this path",
		                    NULL, 0);
	}
	if (!seg_is(&sg, 1, "self") &&
	    (inv_uuid_parse(&named, sg.s[1], sg.len[1]) != 0 ||
	     inv_uuid_compare(&named, &req->organization) != 0))
		return answer_error(a, 403, "FORBIDDEN", "the path names another organization",
		                    NULL, 0);
	write = strcmp(method, "GET") != 0;
	if (!(req->scopes & (write ? INV_REST_SCOPE_WRITE : INV_REST_SCOPE_READ)))
		return answer_error(a, 403, "FORBIDDEN", write ? "scope WRITE:PRODUCT is required"
		                                               : "scope READ:PRODUCT is required",
		                    NULL, 0);
	if (req->body_len > INV_REST_BODY_MAX && strcmp(method, "DELETE"))
		return answer_error(a, 413, "PAYLOAD_TOO_LARGE", "the body is over 8 MiB", NULL, 0);
	inv_uuid_format(&req->organization, org);
	if (item) {
		if (inv_uuid_parse(&named, useg, ulen) != 0)
			return answer_error(a, 404, "SUBSCRIPTION_NOT_FOUND", "no such subscription",
			                    NULL, 0);
		inv_uuid_format(&named, uuid);
	}
	if (!strcmp(method, "GET") && !item)
		return handle_list(wh, a, org);
	if (!strcmp(method, "GET")) {
		json_t *view;

		view = load_view(wh, org, uuid, 0, &found);
		if (!found)
			return answer_error(a, 404, "SUBSCRIPTION_NOT_FOUND", "no such subscription",
			                    NULL, 0);
		return answer_json(a, 200, view);
	}
	if (!strcmp(method, "DELETE"))
		return handle_delete(wh, a, org, uuid);
	body = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	if (!json_is_object(body)) {
		json_decref(body);
		return answer_error(a, 400, "VALIDATION_ERROR", "the body is not a JSON object",
		                    NULL, 0);
	}
	rc = item ? handle_update(wh, a, org, uuid, body)
	          : handle_create(wh, a, org, &req->organization, body);
	json_decref(body);
	return rc;
}

int webhooks_handle(struct webhooks *wh, const inv_rest_request *req,
                    struct webhooks_answer *answer)
{
	memset(answer, 0, sizeof(*answer));
	if (route(wh, req, answer) != 0) {
		free(answer->body);
		answer->body = NULL;
		return -1;
	}
	return 0;
}
