/*
 * sync.c - offline-first till sync: a state machine that hands out upstream
 * requests and takes their answers, with its state kept in the store.
 *
 * The state record (backend ops version 2) is JSON, versioned by "format":
 *   {"format":1, "till":UUID, "pushed":N,
 *    "locations":{"STORE":UUID,"SOLD":UUID,"BIN":UUID,"SUPPLIER":UUID},
 *    "rejected":[{"sequence":N,"status":S,"body":"..."}]}
 * "locations" is absent until the upstream's locations were fetched.
 *
 * Why the pull is right while sales go on: it computes, in one read
 * transaction, delta = upstream + pending - local per variant and moves
 * delta.  A sale committed between that read and the pull's batch adds the
 * same amount to `pending` and to `local`, so the delta it would have
 * computed is the same one, and moves commute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uuid/uuid.h>

#include "core_int.h"
#include "json_int.h"

#define SYNC_FORMAT 1
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

enum phase { PH_IDLE, PH_LOCATIONS, PH_PUSH, PH_PULL_STATUS, PH_PULL_LOW, PH_DONE };

typedef struct sync_rejected {
	int64_t sequence;
	int32_t status;
	char *body;
	size_t len;
} sync_rejected;

struct inv_sync {
	inv_org *org;
	inv_uuid till;
	int64_t pushed;
	int has_map;
	inv_uuid up[INV__LOC_COUNT];     /* upstream location per local type */
	sync_rejected *rej;
	size_t rej_count, rej_cap;

	int phase;
	int outstanding;                 /* a request awaits its answer */
	int retry;                       /* 1: report WAIT, 2: resend */
	int64_t inflight;                /* sequence of the pushed entry */
	unsigned failures;
	int64_t delay;
	int64_t n_pushed, n_pulled, n_rejected;

	char method[8];
	char path[160];
	char *body;
	size_t body_len;
	char idem[96];
	size_t header_count;
	const char *hname[2];
	const char *hvalue[2];

	json_t *status;                  /* the pulled status object */
};

static const char *const type_names[INV__LOC_COUNT] = { "STORE", "SOLD", "BIN", "SUPPLIER" };

static int pull_client(inv_uuid *out)
{
	return inv_uuid_parse(out, INV_SYNC_PULL_CLIENT, INV_UUID_STRLEN);
}

static int is_pulled(const inv_journal_entry_record *e)
{
	inv_uuid pc;

	pull_client(&pc);
	return e->has_client_uuid && inv__uuid_eq(&e->client_uuid, &pc);
}

/* ----------------------------------------------------------- the record */

static json_t *body_string(const char *body, size_t len)
{
	json_t *s = json_stringn(body ? body : "", body ? len : 0);
	char *copy;
	size_t i;

	if (s || !body)
		return s;
	/* Not UTF-8: keep it readable rather than lose the entry's reason. */
	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	for (i = 0; i < len; i++)
		copy[i] = (body[i] & 0x80) || body[i] == 0 ? '?' : body[i];
	s = json_stringn(copy, len);
	free(copy);
	return s;
}

static int state_encode(char **out, size_t *len, const inv_sync *s)
{
	json_t *o = json_object(), *rej = json_array();
	int bad = !o || !rej;
	size_t i;

	bad |= inv__json_set(o, "format", json_integer(SYNC_FORMAT));
	bad |= inv__json_set(o, "till", inv__json_uuid(&s->till));
	bad |= inv__json_set(o, "pushed", json_integer(s->pushed));
	if (s->has_map) {
		json_t *m = json_object();

		for (i = 0; i < INV__LOC_COUNT; i++)
			bad |= inv__json_set(m, type_names[i], inv__json_uuid(&s->up[i]));
		bad |= inv__json_set(o, "locations", m);
	}
	for (i = 0; i < s->rej_count; i++) {
		json_t *r = json_object();

		bad |= inv__json_set(r, "sequence", json_integer(s->rej[i].sequence));
		bad |= inv__json_set(r, "status", json_integer(s->rej[i].status));
		bad |= inv__json_set(r, "body", body_string(s->rej[i].body, s->rej[i].len));
		bad |= inv__json_push(rej, r);
	}
	bad |= inv__json_set(o, "rejected", rej);
	rej = NULL;
	if (bad) {
		json_decref(o);
		json_decref(rej);
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory encoding the sync state");
	}
	return inv__json_dump(out, len, o);
}

static int get_uuid(inv_uuid *out, json_t *v)
{
	return json_is_string(v) && inv_uuid_parse(out, json_string_value(v),
	                                           json_string_length(v)) == 0 ? 0 : -1;
}

static int add_rejected(inv_sync *s, int64_t seq, int status, const char *body, size_t len)
{
	sync_rejected *r;

	if (inv__grow(&s->rej, &s->rej_cap, s->rej_count + 1, sizeof(*s->rej)))
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	r = &s->rej[s->rej_count];
	r->body = malloc(len + 1);
	if (!r->body)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	if (len)
		memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->len = len;
	r->sequence = seq;
	r->status = status;
	s->rej_count++;
	return 0;
}

static int state_decode_fn(const void *data, size_t len, void *payload)
{
	inv_sync *s = payload;
	json_error_t err;
	json_t *o = json_loadb(data, len, 0, &err), *v, *m, *r;
	size_t i;
	int rc = INV_EFORMAT;

	if (!o || !json_is_object(o))
		goto bad;
	v = json_object_get(o, "format");
	if (!json_is_integer(v) || json_integer_value(v) != SYNC_FORMAT)
		goto bad;
	if (get_uuid(&s->till, json_object_get(o, "till")))
		goto bad;
	v = json_object_get(o, "pushed");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		goto bad;
	s->pushed = json_integer_value(v);
	m = json_object_get(o, "locations");
	if (m) {
		for (i = 0; i < INV__LOC_COUNT; i++)
			if (get_uuid(&s->up[i], json_object_get(m, type_names[i])))
				goto bad;
		s->has_map = 1;
	}
	r = json_object_get(o, "rejected");
	if (!json_is_array(r))
		goto bad;
	json_array_foreach(r, i, v) {
		json_t *seq = json_object_get(v, "sequence"), *st = json_object_get(v, "status");
		json_t *b = json_object_get(v, "body");

		if (!json_is_integer(seq) || !json_is_integer(st) || !json_is_string(b))
			goto bad;
		rc = add_rejected(s, json_integer_value(seq), (int)json_integer_value(st),
		                  json_string_value(b), json_string_length(b));
		if (rc)
			goto out;
	}
	rc = 0;
	goto out;
bad:
	rc = inv__error(INV_EFORMAT, -1, NULL,
	                "the stored sync state is corrupt or of a newer format");
out:
	json_decref(o);
	return rc;
}

static int state_put(inv_sync *s)
{
	inv_org *org = s->org;
	char *data = NULL;
	size_t len;
	void *txn;
	int rc = state_encode(&data, &len, s);

	if (rc)
		return rc;
	if ((rc = inv__org_lock_write(org)) != 0)
		goto out;
	if ((rc = inv__org_begin(org, 1, &txn)) == 0) {
		rc = inv__ops(org)->sync_state_put(txn, &org->node.key, data, len);
		if (rc) {
			inv__ops(org)->rollback(txn);
			rc = inv__error_keep(rc, -1, "cannot store the sync state");
		} else {
			rc = inv__org_commit(org, txn);
		}
	}
	inv__org_unlock_write(org);
out:
	inv_free(data);
	return rc;
}

/* ------------------------------------------------------------ open/close */

int inv_sync_open(inv_sync **out, inv_org *org, const inv_uuid *till)
{
	inv_sync *s;
	void *txn;
	int rc;

	if (!out || !org)
		return inv__error(INV_EINVAL, -1, out ? "org" : "out", "argument is NULL");
	*out = NULL;
	if (!inv__backend_has_sync_state(org->store))
		return inv__error(INV_EVERSION, -1, NULL,
		                  "%s backend keeps no sync state (ops version %u)",
		                  inv__ops(org)->name, inv__ops(org)->version);
	s = calloc(1, sizeof(*s));
	if (!s)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	s->org = org;
	if ((rc = inv__org_begin(org, 0, &txn)) != 0)
		goto fail;
	rc = inv__ops(org)->sync_state_get(txn, &org->node.key, state_decode_fn, s);
	inv__ops(org)->rollback(txn);
	if (rc == INV_ENOTFOUND) {
		if (till)
			s->till = *till;
		else
			inv__store_new_uuid(org->store, &s->till);
		rc = state_put(s);
	} else if (rc == 0 && till && !inv__uuid_eq(till, &s->till)) {
		rc = inv__error(INV_ECONFLICT, -1, "till",
		                "the store already syncs as another till");
	} else if (rc && rc != INV_EFORMAT && rc != INV_ENOMEM) {
		rc = inv__error_keep(rc, -1, "cannot read the sync state");
	}
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	inv_sync_close(s);
	return rc;
}

void inv_sync_close(inv_sync *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->rej_count; i++)
		free(s->rej[i].body);
	free(s->rej);
	free(s->body);
	json_decref(s->status);
	free(s);
}

/* -------------------------------------------------------------- requests */

static void set_request(inv_sync *s, const char *method, char *body, size_t len)
{
	snprintf(s->method, sizeof(s->method), "%s", method);
	free(s->body);
	s->body = body;
	s->body_len = len;
	s->header_count = 0;
	if (body) {
		s->hname[s->header_count] = "Content-Type";
		s->hvalue[s->header_count++] = "application/json";
	}
	s->outstanding = 1;
}

static int request_get(inv_sync *s, const char *path)
{
	snprintf(s->path, sizeof(s->path), "%s", path);
	set_request(s, "GET", NULL, 0);
	return INV_SYNC_REQUEST;
}

static int request_pull(inv_sync *s, int low)
{
	char loc[37], path[160];

	inv_uuid_format(&s->up[INV__LOC_STORE], loc);
	if (low)
		snprintf(path, sizeof(path), "/custom-low-stock/v2/locations/%s", loc);
	else
		snprintf(path, sizeof(path), "/organizations/self/inventory/locations/%s", loc);
	return request_get(s, path);
}

/* The upstream UUID of a local location. */
static json_t *up_location(const inv_sync *s, const inv_uuid *local)
{
	const inv_location *loc = inv__org_location(s->org, local);

	if (!loc || loc->type < 1 || loc->type > INV__LOC_COUNT)
		return NULL;
	return inv__json_uuid(&s->up[loc->type - 1]);
}

static json_t *move_object(const inv_sync *s, const inv_journal_record *r, int with_product)
{
	json_t *c = json_object();
	int bad = !c;

	if (with_product)
		bad |= inv__json_set(c, "productUuid", inv__json_uuid(&r->product));
	bad |= inv__json_set(c, "variantUuid", inv__json_uuid(&r->variant));
	bad |= inv__json_set(c, "fromLocationUuid", up_location(s, &r->from));
	bad |= inv__json_set(c, "toLocationUuid", up_location(s, &r->to));
	bad |= inv__json_set(c, "change", json_integer(r->quantity));
	if (bad) {
		json_decref(c);
		return NULL;
	}
	return c;
}

/* The v2 bulk body of an entry with tracking changes: one productChanges
 * element per product, in order of first appearance. */
static json_t *bulk_changes(const inv_sync *s, const inv_journal_entry_record *e)
{
	json_t *arr = json_array();
	size_t i, j;
	int bad = !arr;

	for (i = 0; i < e->record_count && !bad; i++) {
		const inv_journal_record *r = &e->records[i];
		const char *tracking = "NO_CHANGE";
		json_t *pc, *vc;

		if (r->kind == INV_RECORD_LOW_STOCK)
			continue;
		for (j = 0; j < i; j++)
			if (e->records[j].kind != INV_RECORD_LOW_STOCK &&
			    inv__uuid_eq(&e->records[j].product, &r->product))
				break;
		if (j < i)
			continue;   /* product done */
		pc = json_object();
		vc = json_array();
		for (j = i; j < e->record_count; j++) {
			const inv_journal_record *q = &e->records[j];

			if (!inv__uuid_eq(&q->product, &r->product))
				continue;
			if (q->kind == INV_RECORD_TRACKING_STARTED)
				tracking = "START_TRACKING";
			else if (q->kind == INV_RECORD_TRACKING_STOPPED)
				tracking = "STOP_TRACKING";
			else if (q->kind == INV_RECORD_MOVE)
				bad |= inv__json_push(vc, move_object(s, q, 0));
		}
		bad |= inv__json_set(pc, "productUuid", inv__json_uuid(&r->product));
		bad |= inv__json_set(pc, "trackingStatusChange", json_string(tracking));
		bad |= inv__json_set(pc, "variantChanges", vc);
		bad |= inv__json_push(arr, pc);
	}
	if (bad) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

struct entry_ctx {
	inv_sync *s;
	int64_t sequence;       /* 0: none found */
	int pushable;
	int rc;
};

/* Build the request of one entry (called with the lent record). */
static int entry_fn(const inv_journal_entry_record *e, void *payload)
{
	struct entry_ctx *c = payload;
	inv_sync *s = c->s;
	json_t *o, *arr;
	int tracking = 0, moves = 0, bad;
	char *body;
	size_t i, len;
	inv_uuid ext;

	c->sequence = e->sequence;
	if (is_pulled(e))
		return 0;
	for (i = 0; i < e->record_count; i++) {
		tracking += e->records[i].kind == INV_RECORD_TRACKING_STARTED ||
		            e->records[i].kind == INV_RECORD_TRACKING_STOPPED;
		moves += e->records[i].kind == INV_RECORD_MOVE;
	}
	if (!tracking && !moves)
		return 0;
	c->pushable = 1;
	if (e->has_external_uuid) {
		ext = e->external_uuid;
	} else {
		char name[32];
		uuid_t out;

		snprintf(name, sizeof(name), "%lld", (long long)e->sequence);
		uuid_generate_sha1(out, s->till.bytes, name, strlen(name));
		memcpy(ext.bytes, out, 16);
	}
	o = json_object();
	if (tracking) {
		arr = bulk_changes(s, e);
		bad = !o || inv__json_set(o, "productChanges", arr);
	} else {
		arr = json_array();
		bad = !o || !arr;
		for (i = 0; i < e->record_count && !bad; i++)
			if (e->records[i].kind == INV_RECORD_MOVE)
				bad |= inv__json_push(arr, move_object(s, &e->records[i], 1));
		bad |= inv__json_set(o, "changes", arr);
	}
	bad |= inv__json_set(o, "externalUuid", inv__json_uuid(&ext));
	if (bad) {
		json_decref(o);
		c->rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory building the request");
		return 1;
	}
	if ((c->rc = inv__json_dump(&body, &len, o)) != 0)
		return 1;
	snprintf(s->path, sizeof(s->path), "%s",
	         tracking ? "/organizations/self/v2/inventory/bulk" : "/organizations/self/inventory");
	set_request(s, tracking ? "POST" : "PUT", body, len);
	inv_uuid_format(&s->till, s->idem);
	snprintf(s->idem + INV_UUID_STRLEN, sizeof(s->idem) - INV_UUID_STRLEN, ":%lld",
	         (long long)e->sequence);
	s->hname[s->header_count] = "Idempotency-Key";
	s->hvalue[s->header_count++] = s->idem;
	s->inflight = e->sequence;
	return 0;
}

/* The request of the first pushable entry after the cursor, skipping (and
 * passing) pulled and empty ones; INV_SYNC_IDLE when none is left. */
static int next_push(inv_sync *s)
{
	inv_org *org = s->org;

	for (;;) {
		struct entry_ctx c = { s, 0, 0, 0 };
		void *txn;
		int rc = inv__org_begin(org, 0, &txn);

		if (rc)
			return rc;
		rc = inv__ops(org)->journal_read(txn, &org->node.key, s->pushed, 1, entry_fn, &c);
		inv__ops(org)->rollback(txn);
		if (c.rc)
			return c.rc;
		if (rc)
			return inv__error_keep(rc, -1, "cannot read the journal");
		if (!c.sequence)
			return INV_SYNC_IDLE;
		if (c.pushable)
			return INV_SYNC_REQUEST;
		s->pushed = c.sequence;   /* stored with the next acknowledgement */
	}
}

int inv_sync_next(inv_sync *s)
{
	int rc;

	if (!s)
		return inv__error(INV_EINVAL, -1, "sync", "sync is NULL");
	if (s->retry == 1) {
		s->retry = 2;
		return INV_SYNC_WAIT;
	}
	if (s->retry == 2) {
		s->retry = 0;
		s->outstanding = 1;
		return INV_SYNC_REQUEST;
	}
	if (s->outstanding)
		return INV_SYNC_REQUEST;
	switch (s->phase) {
	case PH_IDLE:
		s->n_pushed = s->n_pulled = s->n_rejected = 0;
		s->phase = s->has_map ? PH_PUSH : PH_LOCATIONS;
		return inv_sync_next(s);
	case PH_LOCATIONS:
		return request_get(s, "/organizations/self/locations");
	case PH_PUSH:
		rc = next_push(s);
		if (rc != INV_SYNC_IDLE)
			return rc;
		s->phase = PH_PULL_STATUS;
		return request_pull(s, 0);
	case PH_PULL_STATUS:
		return request_pull(s, 0);
	case PH_PULL_LOW:
		return request_pull(s, 1);
	default:
		s->phase = PH_IDLE;
		return INV_SYNC_IDLE;
	}
}

const char *inv_sync_request_method(const inv_sync *s)
{
	return s && s->outstanding ? s->method : NULL;
}

const char *inv_sync_request_path(const inv_sync *s)
{
	return s && s->outstanding ? s->path : NULL;
}

const char *inv_sync_request_body(const inv_sync *s, size_t *len)
{
	if (len)
		*len = s && s->outstanding && s->body ? s->body_len : 0;
	return s && s->outstanding && s->body ? s->body : "";
}

size_t inv_sync_request_header_count(const inv_sync *s)
{
	return s && s->outstanding ? s->header_count : 0;
}

const char *inv_sync_request_header_name(const inv_sync *s, size_t i)
{
	return s && s->outstanding && i < s->header_count ? s->hname[i] : NULL;
}

const char *inv_sync_request_header_value(const inv_sync *s, size_t i)
{
	return s && s->outstanding && i < s->header_count ? s->hvalue[i] : NULL;
}

/* --------------------------------------------------------------- answers */

/* Statuses that say nothing about the request itself: the link, the
 * upstream's health, throttling, or our credentials. */
static int retryable(int status)
{
	return status < 200 || status == 401 || status == 403 || status == 408 ||
	       status == 425 || status == 429 || status >= 500 || (status >= 300 && status < 400);
}

static int64_t retry_after(const char *const *headers, size_t count)
{
	size_t i;

	for (i = 0; headers && i < count; i++) {
		const char *n = headers[2 * i], *v = headers[2 * i + 1];
		char *end;
		long long secs;

		if (!n || !v || strcasecmp(n, "Retry-After") != 0)
			continue;
		secs = strtoll(v, &end, 10);
		if (end != v && secs >= 0 && secs <= 3600)
			return secs * 1000;
	}
	return -1;
}

static void backoff(inv_sync *s, const char *const *headers, size_t count)
{
	int64_t d = BACKOFF_MIN_MS, ra = retry_after(headers, count);
	unsigned i;

	for (i = 1; i < s->failures && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	s->delay = ra >= 0 ? ra : d;
	s->retry = 1;
}

static int take_locations(inv_sync *s, const char *body, size_t len)
{
	json_t *arr = json_loadb(body, len, 0, NULL), *v;
	int seen[INV__LOC_COUNT] = { 0 };
	inv_uuid up[INV__LOC_COUNT];
	size_t i;
	int t, rc = 0;

	if (!json_is_array(arr))
		goto bad;
	json_array_foreach(arr, i, v) {
		json_t *type = json_object_get(v, "type");
		inv_uuid u;

		if (!json_is_string(type) || get_uuid(&u, json_object_get(v, "uuid")))
			goto bad;
		t = inv__location_type_parse(json_string_value(type), json_string_length(type), 0);
		/* The default STORE wins when there are several. */
		if (t >= 1 && t <= INV__LOC_COUNT &&
		    (!seen[t - 1] || json_is_true(json_object_get(v, "default")))) {
			up[t - 1] = u;
			seen[t - 1] = 1;
		}
	}
	for (t = 0; t < INV__LOC_COUNT; t++)
		if (!seen[t])
			goto bad;
	memcpy(s->up, up, sizeof(up));
	s->has_map = 1;
	rc = state_put(s);
	goto out;
bad:
	rc = inv__error(INV_EFORMAT, -1, "locations",
	                "the upstream's locations are not four typed locations");
out:
	json_decref(arr);
	return rc;
}

/* ----------------------------------------------------------------- pull */

typedef struct pull_row {
	inv_uuid variant;
	inv_uuid product;
	int64_t up, local, pend;
	int has_up;
} pull_row;

typedef struct pull_ctx {
	inv_sync *s;
	pull_row *rows;
	size_t n, cap;
	inv_uuid *tracked;          /* local */
	size_t ntracked, tracked_cap;
	int rc;
} pull_ctx;

static pull_row *add_row(pull_ctx *c, const inv_uuid *product, const inv_uuid *variant)
{
	pull_row *r;

	if (inv__grow(&c->rows, &c->cap, c->n + 1, sizeof(*c->rows))) {
		c->rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		return NULL;
	}
	r = memset(&c->rows[c->n++], 0, sizeof(*r));
	r->product = *product;
	r->variant = *variant;
	return r;
}

static int local_variant_fn(const inv_variant_record *rec, void *payload)
{
	pull_row *r = add_row(payload, &rec->product, &rec->variant);

	if (!r)
		return 1;
	r->local = rec->balance;
	return 0;
}

static int pending_fn(const inv_journal_entry_record *e, void *payload)
{
	pull_ctx *c = payload;
	const inv_uuid *store = &inv__default_store(c->s->org)->uuid;
	size_t i;

	if (is_pulled(e))
		return 0;
	for (i = 0; i < e->record_count; i++) {
		const inv_journal_record *r = &e->records[i];
		pull_row *row;

		if (r->kind != INV_RECORD_MOVE || !inv__uuid_eq(&r->location, store) ||
		    r->after == r->before)
			continue;
		if (!(row = add_row(c, &r->product, &r->variant)))
			return 1;
		row->pend = r->after - r->before;
	}
	return 0;
}

static int tracked_fn(const inv_uuid *product, int32_t tracked, void *payload)
{
	pull_ctx *c = payload;

	if (!tracked)
		return 0;
	if (inv__grow(&c->tracked, &c->tracked_cap, c->ntracked + 1, sizeof(*c->tracked))) {
		c->rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		return 1;
	}
	c->tracked[c->ntracked++] = *product;
	return 0;
}

static int row_order(const void *a, const void *b)
{
	const pull_row *x = a, *y = b;
	int d = memcmp(&x->variant, &y->variant, sizeof(inv_uuid));

	return d ? d : y->has_up - x->has_up;   /* upstream's row first */
}

static int in_list(const inv_uuid *list, size_t n, const inv_uuid *u)
{
	return n && bsearch(u, list, n, sizeof(*u), inv__uuid_order) != NULL;
}

static int64_t json_quantity(json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v)) {
		char *end;
		long long n = strtoll(json_string_value(v), &end, 10);

		if (end != json_string_value(v) && *end == '\0')
			return n;
	}
	return INT64_MIN;
}

/* Read the upstream status object into rows and its tracked product list. */
static int upstream_rows(pull_ctx *c, inv_uuid **tracked, size_t *ntracked)
{
	json_t *tp = json_object_get(c->s->status, "trackedProducts");
	json_t *vars = json_object_get(c->s->status, "variants"), *v;
	size_t i;

	if (!json_is_array(tp) || !json_is_array(vars))
		goto bad;
	*tracked = calloc(json_array_size(tp) + 1, sizeof(inv_uuid));
	if (!*tracked)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	json_array_foreach(tp, i, v)
		if (get_uuid(&(*tracked)[i], v))
			goto bad;
	*ntracked = json_array_size(tp);
	qsort(*tracked, *ntracked, sizeof(inv_uuid), inv__uuid_order);
	json_array_foreach(vars, i, v) {
		inv_uuid p, var;
		int64_t q = json_quantity(json_object_get(v, "balance"));
		pull_row *r;

		if (get_uuid(&p, json_object_get(v, "productUuid")) ||
		    get_uuid(&var, json_object_get(v, "variantUuid")) || q == INT64_MIN)
			goto bad;
		if (!(r = add_row(c, &p, &var)))
			return c->rc;
		r->up = q;
		r->has_up = 1;
	}
	return 0;
bad:
	return inv__error(INV_EFORMAT, -1, "status",
	                  "the upstream's balances are not a status object");
}

/* Bring the local balances and tracking to upstream + pending. */
static int pull_apply(inv_sync *s)
{
	inv_org *org = s->org;
	pull_ctx c = { s, NULL, 0, 0, NULL, 0, 0, 0 };
	inv_uuid *up_tracked = NULL, pc;
	size_t nup = 0, i, j, nchanges = 0, ntrack = 0;
	inv_change *changes = NULL;
	inv_tracking_change *track = NULL;
	void *txn;
	int rc;

	if ((rc = upstream_rows(&c, &up_tracked, &nup)) != 0)
		goto out;
	if ((rc = inv__org_begin(org, 0, &txn)) != 0)
		goto out;
	rc = inv__ops(org)->tracking_scan(txn, &org->node.key, tracked_fn, &c);
	if (!rc)
		rc = inv__ops(org)->variant_scan(txn, &org->node.key, &inv__default_store(org)->uuid,
		                                 NULL, local_variant_fn, &c);
	if (!rc)
		rc = inv__ops(org)->journal_read(txn, &org->node.key, s->pushed, 0, pending_fn, &c);
	inv__ops(org)->rollback(txn);
	if (c.rc || rc) {
		rc = c.rc ? c.rc : inv__error_keep(rc, -1, "cannot read the local store");
		goto out;
	}
	if (c.ntracked)
		qsort(c.tracked, c.ntracked, sizeof(inv_uuid), inv__uuid_order);

	track = calloc(nup + c.ntracked + 1, sizeof(*track));
	changes = calloc(c.n + 1, sizeof(*changes));
	if (!track || !changes) {
		rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		goto out;
	}
	for (i = 0; i < nup; i++)
		if (!in_list(c.tracked, c.ntracked, &up_tracked[i]))
			track[ntrack++] = (inv_tracking_change){ up_tracked[i], INV_TRACKING_START, 0 };
	for (i = 0; i < c.ntracked; i++)
		if (!in_list(up_tracked, nup, &c.tracked[i]))
			track[ntrack++] = (inv_tracking_change){ c.tracked[i], INV_TRACKING_STOP, 0 };

	/* Fold the rows of each variant: upstream, local and pending parts. */
	if (c.n)
		qsort(c.rows, c.n, sizeof(*c.rows), row_order);
	for (i = 0; i < c.n; i = j) {
		pull_row sum = c.rows[i];
		const inv_variant *v;
		int64_t diff;

		for (j = i + 1; j < c.n && inv__uuid_eq(&c.rows[j].variant, &sum.variant); j++) {
			sum.local += c.rows[j].local;
			sum.pend += c.rows[j].pend;
		}
		if (!in_list(up_tracked, nup, &sum.product))
			continue;
		diff = sum.up + sum.pend - sum.local;
		if (diff == 0)
			continue;
		if ((rc = inv_variant_get(&v, org, &sum.product, &sum.variant)) != 0)
			goto out;
		changes[nchanges++] = (inv_change){
			v,
			diff > 0 ? &org->locations[INV__LOC_SUPPLIER] : inv__default_store(org),
			diff > 0 ? inv__default_store(org) : &org->locations[INV__LOC_SUPPLIER],
			diff > 0 ? diff : -diff
		};
	}
	if (nchanges || ntrack) {
		inv_apply_options opts = INV_APPLY_OPTIONS_INIT;

		pull_client(&pc);
		opts.client_uuid = &pc;
		opts.tracking = track;
		opts.tracking_count = ntrack;
		if ((rc = inv_apply_changes(NULL, org, changes, nchanges, &opts)) != 0)
			goto out;
	}
	s->n_pulled += (int64_t)(nchanges + ntrack);
out:
	free(c.rows);
	free(c.tracked);
	free(up_tracked);
	free(changes);
	free(track);
	return rc;
}

/* Set the default STORE's low-stock entries to the upstream's; with
 * `write` 0 only check that the answer reads, so that a pull whose second
 * answer is malformed moves nothing. */
static int pull_lowstock(inv_sync *s, const char *body, size_t len, int write)
{
	inv_org *org = s->org;
	json_t *o = json_loadb(body, len, 0, NULL), *prods, *p, *v;
	inv__low_stock_write *w = NULL;
	inv_low_stock *local = NULL;
	size_t nlocal = 0, nw = 0, cap = 0, i, k, x;
	int rc;

	prods = json_object_get(o, "customLowStockLevelsForProducts");
	if (!json_is_array(prods))
		goto bad;
	rc = inv_low_stock_list(&local, &nlocal, org, inv__default_store(org), NULL);
	if (rc)
		goto out;
	json_array_foreach(prods, i, p) {
		json_t *vars = json_object_get(p, "customLowStockLevelForVariants");
		inv_uuid product;

		if (get_uuid(&product, json_object_get(p, "productUuid")) || !json_is_array(vars))
			goto bad;
		json_array_foreach(vars, k, v) {
			json_t *lvl = json_object_get(v, "customLowStockLevel");
			inv__low_stock_write *e;

			if (inv__grow(&w, &cap, nw + 1, sizeof(*w))) {
				rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
				goto out;
			}
			e = memset(&w[nw], 0, sizeof(*w));
			e->location = inv__default_store(org);
			e->entry.product = product;
			if (get_uuid(&e->entry.variant, json_object_get(v, "variantUuid")))
				goto bad;
			if (json_is_integer(lvl)) {
				e->entry.level = json_integer_value(lvl);
				e->entry.has_level = 1;
			} else if (json_is_real(lvl)) {
				e->entry.level = (int64_t)json_real_value(lvl);
				e->entry.has_level = 1;
			}
			e->entry.alert = json_is_true(json_object_get(v, "lowStockAlert"));
			for (x = 0; x < nlocal; x++)
				if (inv__uuid_eq(&local[x].product, &product) &&
				    inv__uuid_eq(&local[x].variant, &e->entry.variant))
					break;
			if (x < nlocal) {
				int same = local[x].has_level == e->entry.has_level &&
				           local[x].alert == e->entry.alert &&
				           (!e->entry.has_level || local[x].level == e->entry.level);

				local[x].has_level = -1;   /* seen upstream */
				if (same)
					continue;
			}
			nw++;
		}
	}
	for (x = 0; x < nlocal; x++) {
		if (local[x].has_level == -1)
			continue;
		if (inv__grow(&w, &cap, nw + 1, sizeof(*w))) {
			rc = inv__error(INV_ENOMEM, -1, NULL, "out of memory");
			goto out;
		}
		memset(&w[nw], 0, sizeof(*w));
		w[nw].location = inv__default_store(org);
		w[nw].entry = local[x];
		w[nw++].remove = 1;
	}
	if (nw && write)
		rc = inv__low_stock_write_many(org, w, nw);
	s->n_pulled += rc || !write ? 0 : (int64_t)nw;
	goto out;
bad:
	rc = inv__error(INV_EFORMAT, -1, "lowStock",
	                "the upstream's low-stock levels are not a location's list");
out:
	json_decref(o);
	inv_free(local);
	free(w);
	return rc;
}

int inv_sync_answer(inv_sync *s, int status, const char *const *headers, size_t header_count,
                    const char *body, size_t body_len)
{
	int ok = status >= 200 && status < 300, rc = 0;

	if (!s || (!body && body_len))
		return inv__error(INV_EINVAL, -1, s ? "body" : "sync", "argument is NULL");
	if (!s->outstanding || s->retry)
		return inv__error(INV_EINVAL, -1, NULL, "no request is waiting for an answer");
	if (!body)
		body = "";
	if (retryable(status) || (!ok && s->phase != PH_PUSH)) {
		s->failures++;
		backoff(s, headers, header_count);
		s->outstanding = 0;
		return 0;
	}
	s->failures = 0;
	s->outstanding = 0;
	switch (s->phase) {
	case PH_LOCATIONS:
		rc = take_locations(s, body, body_len);
		if (rc == INV_EFORMAT) {   /* a broken answer: ask again later */
			s->failures++;
			backoff(s, NULL, 0);
			s->outstanding = 0;
			return rc;
		}
		s->phase = PH_PUSH;
		break;
	case PH_PUSH:
		if (ok) {
			s->n_pushed++;
		} else {
			s->n_rejected++;
			if ((rc = add_rejected(s, s->inflight, status, body, body_len)) != 0)
				break;
		}
		s->pushed = s->inflight;
		rc = state_put(s);
		break;
	case PH_PULL_STATUS:
		json_decref(s->status);
		s->status = json_loadb(body, body_len, 0, NULL);
		s->phase = PH_PULL_LOW;
		break;
	case PH_PULL_LOW:
		rc = pull_lowstock(s, body, body_len, 0);
		if (!rc)
			rc = pull_apply(s);
		if (!rc)
			rc = pull_lowstock(s, body, body_len, 1);
		json_decref(s->status);
		s->status = NULL;
		s->phase = PH_DONE;
		break;
	default:
		break;
	}
	if (rc && s->phase != PH_PUSH)
		s->phase = PH_DONE;   /* end the round; the next one starts over */
	return rc;
}

/* ----------------------------------------------------------------- reads */

int64_t inv_sync_delay(const inv_sync *s)
{
	return s ? s->delay : 0;
}

const inv_uuid *inv_sync_till(const inv_sync *s)
{
	return s ? &s->till : NULL;
}

int64_t inv_sync_pushed_sequence(const inv_sync *s)
{
	return s ? s->pushed : 0;
}

struct count_ctx {
	int64_t n;
};

static int count_fn(const inv_journal_entry_record *e, void *payload)
{
	struct count_ctx *c = payload;
	size_t i;

	if (is_pulled(e))
		return 0;
	for (i = 0; i < e->record_count; i++)
		if (e->records[i].kind != INV_RECORD_LOW_STOCK) {
			c->n++;
			break;
		}
	return 0;
}

int inv_sync_pending(int64_t *out, inv_sync *s)
{
	struct count_ctx c = { 0 };
	void *txn;
	int rc;

	if (!out || !s)
		return inv__error(INV_EINVAL, -1, out ? "sync" : "out", "argument is NULL");
	*out = 0;
	if ((rc = inv__org_begin(s->org, 0, &txn)) != 0)
		return rc;
	rc = inv__ops(s->org)->journal_read(txn, &s->org->node.key, s->pushed, 0, count_fn, &c);
	inv__ops(s->org)->rollback(txn);
	if (rc)
		return inv__error_keep(rc, -1, "cannot read the journal");
	*out = c.n;
	return 0;
}

void inv_sync_round(const inv_sync *s, int64_t *pushed, int64_t *pulled, int64_t *rejected)
{
	if (pushed)
		*pushed = s ? s->n_pushed : 0;
	if (pulled)
		*pulled = s ? s->n_pulled : 0;
	if (rejected)
		*rejected = s ? s->n_rejected : 0;
}

size_t inv_sync_rejected_count(const inv_sync *s)
{
	return s ? s->rej_count : 0;
}

int inv_sync_rejected_at(const inv_sync *s, size_t i, int64_t *sequence, int *status,
                         const char **body, size_t *body_len)
{
	if (!s || i >= s->rej_count)
		return inv__error(INV_ENOTFOUND, (int64_t)i, NULL, "no rejected entry %zu", i);
	if (sequence)
		*sequence = s->rej[i].sequence;
	if (status)
		*status = s->rej[i].status;
	if (body)
		*body = s->rej[i].body;
	if (body_len)
		*body_len = s->rej[i].len;
	return 0;
}
