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

/* The baseline encoder: what a program using jansson directly writes to
 * render a status object (WIRE.md section 4). */
static char *status_by_hand(const inv_uuid *location, const inv_uuid *tracked,
                            size_t ntracked, const inv_balance *bal, size_t n)
{
	char u[37], num[24];
	json_t *root = json_object(), *tp = json_array(), *vars = json_array();
	char *text;

	inv_uuid_format(location, u);
	json_object_set_new(root, "locationUuid", json_string(u));
	for (size_t i = 0; i < ntracked; i++) {
		inv_uuid_format(&tracked[i], u);
		json_array_append_new(tp, json_string(u));
	}
	json_object_set_new(root, "trackedProducts", tp);
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		inv_uuid_format(location, u);
		json_object_set_new(o, "locationUuid", json_string(u));
		json_object_set_new(o, "locationType", json_string("STORE"));
		inv_uuid_format(&bal[i].product, u);
		json_object_set_new(o, "productUuid", json_string(u));
		inv_uuid_format(&bal[i].variant, u);
		json_object_set_new(o, "variantUuid", json_string(u));
		snprintf(num, sizeof num, "%lld", (long long)bal[i].balance);
		json_object_set_new(o, "balance", json_string(num));
		json_array_append_new(vars, o);
	}
	json_object_set_new(root, "variants", vars);
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}

/* Three rows per measurement: time per body (the target is on its
 * ratio), ns per item, MB/s of JSON text. */
static void report_pair(const char *name, double lib_ns, double base_ns, double target,
                        size_t items, size_t bytes, const char *item)
{
	zb_row r;

	memset(&r, 0, sizeof r);
	snprintf(r.group, sizeof r.group, "codec");
	snprintf(r.name, sizeof r.name, "%s", name);
	snprintf(r.unit, sizeof r.unit, "us");
	snprintf(r.note, sizeof r.note, "%zu %ss, %zu bytes, best of reps", items, item, bytes);
	r.lib = lib_ns / 1e3;
	r.base = base_ns / 1e3;
	r.target = target;
	zb_report(&r);

	r.target = 0;
	r.note[0] = 0;
	snprintf(r.name, sizeof r.name, "%s per %s", name, item);
	snprintf(r.unit, sizeof r.unit, "ns");
	r.lib = lib_ns / (double)items;
	r.base = base_ns / (double)items;
	zb_report(&r);

	snprintf(r.name, sizeof r.name, "%s throughput", name);
	snprintf(r.unit, sizeof r.unit, "MB/s");
	r.lib = (double)bytes / lib_ns * 1e3;
	r.base = (double)bytes / base_ns * 1e3;
	r.higher_better = 1;
	zb_report(&r);
}

void zb_case_codec(const zb_opts *o)
{
	zb_catalog cat;
	zb_move *moves = NULL;
	inv_uuid loc[ZB_LOC_COUNT], location;
	inv_balance *bal;
	char *body, *text;
	size_t len, text_len, nprod;
	uint64_t st = o->seed ^ 0xc0dec, t0, best;
	double base_dec_ns, base_enc_ns, lib_dec_ns = ZB_NAN, lib_enc_ns = ZB_NAN;

	size_t nvar = o->codec_variants > o->codec_changes ? o->codec_variants : o->codec_changes;
	if (zb_catalog_init(&cat, nvar, 10, o->seed) != 0 ||
	    !(moves = zb_moves_new(o->codec_changes, o->codec_changes, o->seed)))
		zb_die("codec case setup", INV_ENOMEM);
	for (int i = 0; i < ZB_LOC_COUNT; i++)
		zb_uuid_random(&loc[i], &st);
	body = put_body(&cat, moves, o->codec_changes, loc, &len);

	/* Decode baseline: jansson parses the body, nothing else. */
	best = UINT64_MAX;
	zb_cg_on(o);
	for (size_t r = 0; r < o->codec_reps; r++) {
		json_error_t err;
		json_t *j;
		t0 = zb_now_ns();
		j = json_loadb(body, len, 0, &err);
		if (!j)
			zb_die(err.text, INV_EINVAL);
		json_decref(j);
		t0 = zb_now_ns() - t0;
		if (t0 < best)
			best = t0;
	}
	zb_cg_off(o);
	zb_cg_dump(o, "codec baseline json_loadb", o->codec_changes * o->codec_reps);
	base_dec_ns = (double)best;

	/* Encode baseline: the status object of codec_variants variants. */
	nprod = (o->codec_variants + cat.per_product - 1) / cat.per_product;
	bal = calloc(o->codec_variants, sizeof *bal);
	if (!bal)
		zb_die("malloc", INV_ENOMEM);
	location = loc[ZB_STORE];
	for (size_t i = 0; i < o->codec_variants; i++) {
		bal[i].product = cat.products[i / cat.per_product];
		bal[i].variant = cat.variants[i];
		bal[i].balance = (int64_t)(1 + zb_rand(&st) % 5000);
	}
	best = UINT64_MAX;
	text_len = 0;
	zb_cg_on(o);
	for (size_t r = 0; r < o->codec_reps; r++) {
		t0 = zb_now_ns();
		text = status_by_hand(&location, cat.products, nprod, bal, o->codec_variants);
		t0 = zb_now_ns() - t0;
		if (!text)
			zb_die("json_dumps", INV_ENOMEM);
		text_len = strlen(text);
		free(text);
		if (t0 < best)
			best = t0;
	}
	zb_cg_off(o);
	zb_cg_dump(o, "codec baseline status encode", o->codec_variants * o->codec_reps);
	base_enc_ns = (double)best;

	report_pair("PUT decode+apply+encode", lib_dec_ns, base_dec_ns, 1.3, o->codec_changes,
	            len, "change");
	report_pair("status encode", lib_enc_ns, base_enc_ns, 1.2, o->codec_variants, text_len,
	            "variant");
	free(bal);
	free(body);
	free(moves);
	zb_catalog_free(&cat);
}
