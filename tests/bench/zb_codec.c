/*
 * zb_codec.c - case 3: the JSON codec path.
 *
 * Decode: a PUT /organizations/self/inventory body of N changes through
 * libzinv (decode, resolve, apply on the memory backend, encode the answer)
 * against json_loadb() alone on the same bytes.
 * Encode: the status object of N variants by libzinv against building the
 * same jansson tree by hand and dumping it.
 */
#include "zb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <zinv/json.h>
#include <zinv/rest.h>

/* The PUT body of WIRE.md section 6, compact, as a client sends it. */
static char *put_body(const zb_catalog *cat, const zb_move *m, size_t n,
                      const inv_uuid loc[ZB_LOC_COUNT], size_t *len)
{
	size_t cap = 64 + n * 256, off = 0;
	char *buf = malloc(cap);
	char p[37], v[37], f[37], t[37];

	if (!buf)
		zb_die("malloc", INV_ENOMEM);
	off += (size_t)snprintf(buf + off, cap - off, "{\"changes\":[");
	for (size_t i = 0; i < n; i++) {
		inv_uuid_format(&cat->products[m[i].variant / cat->per_product], p);
		inv_uuid_format(&cat->variants[m[i].variant], v);
		inv_uuid_format(&loc[m[i].from], f);
		inv_uuid_format(&loc[m[i].to], t);
		off += (size_t)snprintf(buf + off, cap - off,
		                        "%s{\"productUuid\":\"%s\",\"variantUuid\":\"%s\","
		                        "\"fromLocationUuid\":\"%s\",\"toLocationUuid\":\"%s\","
		                        "\"change\":%u}",
		                        i ? "," : "", p, v, f, t, (unsigned)m[i].quantity);
	}
	off += (size_t)snprintf(buf + off, cap - off, "]}");
	*len = off;
	return buf;
}

/* A growable text buffer for json_dump_callback(). */
typedef struct zb_text {
	char *data;
	size_t len, cap;
} zb_text;

static int text_append(const char *bytes, size_t size, void *payload)
{
	zb_text *t = payload;
	if (t->len + size > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		char *d;
		while (cap < t->len + size)
			cap *= 2;
		if (!(d = realloc(t->data, cap)))
			return -1;
		t->data = d;
		t->cap = cap;
	}
	memcpy(t->data + t->len, bytes, size);
	t->len += size;
	return 0;
}

/*
 * The baseline encoder: a status object (WIRE.md section 4) the way a
 * careful program using jansson directly writes it: keys and known-ASCII
 * values without UTF-8 checks, the location string shared, and dumped
 * through a callback into one doubling buffer (json_dumps() takes twice as
 * long here).  Returns malloc'd NUL-terminated text.
 */
static char *status_by_hand(const inv_uuid *location, const inv_uuid *tracked,
                            size_t ntracked, const inv_balance *bal, size_t n)
{
	char u[37], num[24];
	json_t *root = json_object(), *tp = json_array(), *vars = json_array(), *loc;
	zb_text t = { NULL, 0, 0 };

	inv_uuid_format(location, u);
	loc = json_stringn_nocheck(u, 36);
	json_object_set_nocheck(root, "locationUuid", loc);
	for (size_t i = 0; i < ntracked; i++) {
		inv_uuid_format(&tracked[i], u);
		json_array_append_new(tp, json_stringn_nocheck(u, 36));
	}
	json_object_set_new_nocheck(root, "trackedProducts", tp);
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		int len;
		json_object_set_nocheck(o, "locationUuid", loc);
		json_object_set_new_nocheck(o, "locationType", json_stringn_nocheck("STORE", 5));
		inv_uuid_format(&bal[i].product, u);
		json_object_set_new_nocheck(o, "productUuid", json_stringn_nocheck(u, 36));
		inv_uuid_format(&bal[i].variant, u);
		json_object_set_new_nocheck(o, "variantUuid", json_stringn_nocheck(u, 36));
		len = snprintf(num, sizeof num, "%lld", (long long)bal[i].balance);
		json_object_set_new_nocheck(o, "balance", json_stringn_nocheck(num, (size_t)len));
		json_array_append_new(vars, o);
	}
	json_object_set_new_nocheck(root, "variants", vars);
	json_decref(loc);
	if (json_dump_callback(root, text_append, &t, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
	    text_append("", 1, &t) != 0) {
		free(t.data);
		t.data = NULL;
	}
	json_decref(root);
	return t.data;
}

/* One row per measurement, in ns per item (the target is on the ratio);
 * the note gives MB/s of JSON text. */
static void report_rows(const char *name, double lib_ns, double base_ns, double target,
                        size_t items, size_t bytes, const char *item)
{
	zb_row r;
	char lib_mbs[24] = "-";

	memset(&r, 0, sizeof r);
	snprintf(r.group, sizeof r.group, "codec");
	snprintf(r.name, sizeof r.name, "%s", name);
	snprintf(r.unit, sizeof r.unit, "ns/%s", item);
	if (lib_ns == lib_ns)
		snprintf(lib_mbs, sizeof lib_mbs, "%.1f", (double)bytes / lib_ns * 1e3);
	snprintf(r.note, sizeof r.note, "MB/s %s vs %.1f; %zu %ss, %zu B, best of reps",
	         lib_mbs, (double)bytes / base_ns * 1e3, items, item, bytes);
	r.lib = lib_ns / (double)items;
	r.base = base_ns / (double)items;
	r.target = target;
	zb_report(&r);
}

/* A measured body of work, run `reps` times; the fastest run counts (the
 * least disturbed by the other tenants of the machine).  `between` runs
 * outside the clock after each repetition (journal trims). */
typedef struct zb_work {
	void (*run)(struct zb_work *w);
	void (*between)(struct zb_work *w, size_t rep);
	const char *body;
	size_t len;
	const zb_catalog *cat;
	const inv_uuid *location;
	const inv_balance *bal;
	size_t nbal;
	inv_store *store;
	inv_org *org;
} zb_work;

static uint64_t time_once(const zb_opts *o, zb_work *w, size_t rep)
{
	uint64_t t0;
	zb_cg_on(o);
	t0 = zb_cpu_ns();
	w->run(w);
	t0 = zb_cpu_ns() - t0;
	zb_cg_off(o);
	if (w->between)
		w->between(w, rep);
	return t0;
}

/*
 * Best time of `reps` runs of libzinv's work and of the baseline's.  The
 * two alternate, so that a burst of load from the machine's other tenants
 * hits both; under callgrind they run one after the other instead, so that
 * each gets its own dump.
 */
static void best_of(const zb_opts *o, zb_work *lib, const char *lib_label, zb_work *base,
                    const char *base_label, size_t items, double *lib_ns, double *base_ns)
{
	uint64_t bl = UINT64_MAX, bb = UINT64_MAX, t;

	for (size_t r = 0; r < o->codec_reps; r++) {
		if ((t = time_once(o, base, r)) < bb)
			bb = t;
		if (!o->callgrind && (t = time_once(o, lib, r)) < bl)
			bl = t;
	}
	zb_cg_dump(o, base_label, items * o->codec_reps);
	for (size_t r = 0; o->callgrind && r < o->codec_reps; r++)
		if ((t = time_once(o, lib, r)) < bl)
			bl = t;
	zb_cg_dump(o, lib_label, items * o->codec_reps);
	*lib_ns = (double)bl;
	*base_ns = (double)bb;
}

static void run_loadb(zb_work *w)
{
	json_error_t err;
	json_t *j = json_loadb(w->body, w->len, 0, &err);
	if (!j)
		zb_die(err.text, INV_EINVAL);
	json_decref(j);
}

static size_t nproducts(const zb_work *w)
{
	return (w->nbal + w->cat->per_product - 1) / w->cat->per_product;
}

static void run_status_by_hand(zb_work *w)
{
	char *text = status_by_hand(w->location, w->cat->products, nproducts(w), w->bal, w->nbal);
	if (!text)
		zb_die("json_dumps", INV_ENOMEM);
	free(text);
}

static void run_decode(zb_work *w)
{
	inv_json_changes *c;
	ZB_CHECK(inv_json_decode_changes(&c, NULL, w->body, w->len));
	inv_free(c);
}

static char *lib_status(const zb_work *w, size_t *len)
{
	inv_json_location loc;
	char *text;
	loc.uuid = *w->location;
	loc.type = INV_LOCATION_STORE;
	loc.is_default = 1;
	ZB_CHECK(inv_json_encode_status(&text, len, &loc, w->bal, w->nbal, w->cat->products,
	                                nproducts(w)));
	return text;
}

static void run_status(zb_work *w)
{
	size_t len;
	inv_free(lib_status(w, &len));
}

/* What a server does with the PUT body: decode, resolve UUIDs to handles,
 * apply, encode the answer. */
static void put(zb_work *w, int encode)
{
	inv_apply_options ao = INV_APPLY_OPTIONS_INIT;
	inv_json_changes *c;
	inv_change *ch;
	inv_result *res;
	char *out;
	size_t outlen;

	ZB_CHECK(inv_json_decode_changes(&c, NULL, w->body, w->len));
	ch = malloc(c->count * sizeof *ch);
	if (!ch)
		zb_die("malloc", INV_ENOMEM);
	for (size_t i = 0; i < c->count; i++) {
		const inv_json_change *jc = &c->changes[i];
		ZB_CHECK(inv_variant_get(&ch[i].variant, w->org, &jc->product, &jc->variant));
		ZB_CHECK(inv_location_by_uuid(&ch[i].from, w->org, &jc->from));
		ZB_CHECK(inv_location_by_uuid(&ch[i].to, w->org, &jc->to));
		ch[i].quantity = jc->quantity;
	}
	if (c->has_return_location)
		ZB_CHECK(inv_location_by_uuid(&ao.return_location, w->org, &c->return_location));
	if (c->has_external_uuid)
		ao.external_uuid = &c->external_uuid;
	ZB_CHECK(inv_apply_changes(&res, w->org, ch, c->count, &ao));
	if (encode) {
		ZB_CHECK(inv_json_encode_result(&out, &outlen, res));
		inv_free(out);
	}
	inv_result_free(res);
	free(ch);
	inv_free(c);
}

static void run_put_apply(zb_work *w)
{
	put(w, 0);
}

static void run_put(zb_work *w)
{
	put(w, 1);
}

/* The same PUT as an embedding HTTP server hands it over. */
static void run_rest(zb_work *w)
{
	inv_rest_request req = INV_REST_REQUEST_INIT;
	inv_rest_response *res;

	req.authenticated = 1;
	req.method = "PUT";
	req.path = "/organizations/self/inventory";
	req.body = w->body;
	req.body_len = w->len;
	req.organization = *inv_org_uuid(w->org);
	req.scopes = INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE;
	ZB_CHECK(inv_rest_handle(&res, w->store, &req));
	if (inv_rest_response_status(res) != 200) {
		size_t len;
		fprintf(stderr, "zinv-bench: codec: PUT answered %d: %s\n",
		        inv_rest_response_status(res), inv_rest_response_body(res, &len));
		exit(1);
	}
	inv_rest_response_free(res);
}

static void trim_between(zb_work *w, size_t rep)
{
	int64_t seq;
	(void)rep;
	ZB_CHECK(inv_journal_last_sequence(&seq, w->org));
	ZB_CHECK(inv_journal_trim(w->org, seq));
}

/* A memory store whose products are tracked; loc[] gets its location UUIDs
 * (STORE, SOLD, SUPPLIER), which the PUT body names. */
static void open_store(zb_work *w, const zb_catalog *cat, uint64_t *st, inv_uuid *loc)
{
	static const inv_location_type types[ZB_LOC_COUNT] = {
		INV_LOCATION_STORE, INV_LOCATION_SOLD, INV_LOCATION_SUPPLIER };
	size_t nprod = (cat->count + cat->per_product - 1) / cat->per_product;
	inv_uuid org_uuid;

	zb_uuid_random(&org_uuid, st);
	ZB_CHECK(inv_store_open_memory(&w->store, NULL));
	ZB_CHECK(inv_org_open(&w->org, w->store, &org_uuid));
	for (int i = 0; i < ZB_LOC_COUNT; i++) {
		const inv_location *l;
		ZB_CHECK(inv_location_by_type(&l, w->org, types[i]));
		loc[i] = *inv_location_uuid(l);
	}
	for (size_t p = 0; p < nprod; p++)
		ZB_CHECK(inv_tracking_start(w->org, &cat->products[p]));
}

/* Each libzinv stage of the PUT against json_loadb() of the same body. */
static void codec_put(const zb_opts *o, zb_work *w)
{
	static const struct {
		void (*run)(zb_work *w);
		const char *name;
		double target;
	} stages[] = {
		{ run_decode, "PUT decode", 0 },
		{ run_put_apply, "PUT decode+resolve+apply", 0 },
		{ run_put, "PUT decode+resolve+apply+encode", 0 },
		{ run_rest, "PUT through inv_rest_handle", 1.3 },
	};
	zb_work wb = *w;

	wb.run = run_loadb;
	wb.between = NULL;
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
		char label[96];
		double lib_ns, base_ns;

		snprintf(label, sizeof label, "codec libzinv %s", stages[i].name);
		w->run = stages[i].run;
		w->between = stages[i].run == run_decode ? NULL : trim_between;
		best_of(o, w, label, &wb, "codec baseline json_loadb", o->codec_changes, &lib_ns,
		        &base_ns);
		report_rows(stages[i].name, lib_ns, base_ns, stages[i].target, o->codec_changes,
		            w->len, "change");
	}
	w->between = NULL;
}

/* inv_json_encode_status() against the hand-built tree, on the same
 * balances, after checking that both write the same bytes. */
static void codec_status(const zb_opts *o, zb_work *w, uint64_t *st)
{
	const zb_catalog *cat = w->cat;
	inv_balance *bal = calloc(o->codec_variants, sizeof *bal);
	size_t base_len, lib_len;
	char *base_text, *lib_text;
	double lib_ns, base_ns;
	zb_work wb;

	if (!bal)
		zb_die("malloc", INV_ENOMEM);
	for (size_t i = 0; i < o->codec_variants; i++) {
		bal[i].product = cat->products[i / cat->per_product];
		bal[i].variant = cat->variants[i];
		bal[i].balance = (int64_t)(1 + zb_rand(st) % 5000);
	}
	w->bal = bal;
	w->nbal = o->codec_variants;
	base_text = status_by_hand(w->location, cat->products, nproducts(w), bal, w->nbal);
	lib_text = lib_status(w, &lib_len);
	base_len = base_text ? strlen(base_text) : 0;
	if (lib_len != base_len || memcmp(lib_text, base_text, base_len) != 0)
		fprintf(stderr, "zinv-bench: codec: note: libzinv's status text differs from the "
		                "baseline's (%zu vs %zu bytes)\n", lib_len, base_len);
	inv_free(lib_text);
	free(base_text);
	wb = *w;
	wb.run = run_status_by_hand;
	w->run = run_status;
	best_of(o, w, "codec libzinv status encode", &wb, "codec baseline status encode",
	        o->codec_variants, &lib_ns, &base_ns);
	report_rows("status encode", lib_ns, base_ns, 1.1, o->codec_variants, base_len,
	            "variant");
	free(bal);
}

void zb_case_codec(const zb_opts *o)
{
	size_t nvar = o->codec_variants > o->codec_changes ? o->codec_variants : o->codec_changes;
	uint64_t st = o->seed ^ 0xc0dec;
	inv_uuid loc[ZB_LOC_COUNT];
	zb_catalog cat;
	zb_move *moves = NULL;
	zb_work w;

	memset(&w, 0, sizeof w);
	if (zb_catalog_init(&cat, nvar, 10, o->seed) != 0 ||
	    !(moves = zb_moves_new(o->codec_changes, o->codec_changes, o->seed)))
		zb_die("codec case setup", INV_ENOMEM);
	open_store(&w, &cat, &st, loc);
	w.cat = &cat;
	w.location = &loc[ZB_STORE];
	w.body = put_body(&cat, moves, o->codec_changes, loc, &w.len);
	codec_put(o, &w);
	codec_status(o, &w, &st);
	inv_org_close(w.org);
	inv_store_close(w.store);
	free((char *)w.body);
	free(moves);
	zb_catalog_free(&cat);
}
