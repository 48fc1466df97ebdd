/*
 * zb_footprint.c - case 4: what a tracked variant costs to keep.
 *
 * Memory: resident set growth from opening a memory store to holding N
 * tracked variants with a balance (N/10 products; journal trimmed and the
 * heap handed back, so that only live state counts), per variant.  The raw
 * hash table of the memory case, measured the same way, is printed beside
 * it for scale.
 * SQLite: bytes of the database file per variant after loading N variants,
 * with the journal kept and after trimming it (VACUUMed).
 */
#include "zb.h"
#include "zb_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report_bytes(const char *name, double lib, double base, size_t n,
                         double target, const char *note)
{
	zb_row r;
	memset(&r, 0, sizeof r);
	snprintf(r.group, sizeof r.group, "footprint");
	snprintf(r.name, sizeof r.name, "%s", name);
	snprintf(r.unit, sizeof r.unit, "B/variant");
	snprintf(r.note, sizeof r.note, "%s", note ? note : "");
	r.lib = lib / (double)n;
	r.base = base / (double)n;
	r.target = target;
	r.target_on_value = 1;
	zb_report(&r);
}

/* RSS growth of the raw hash table holding the same variants. */
static double hash_footprint(const zb_catalog *cat)
{
	zb_htable t;
	uint64_t before, after;

	zb_heap_trim();
	before = zb_rss_bytes();
	if (zb_htable_init(&t, cat->count, 1) != 0)
		zb_die("malloc", INV_ENOMEM);
	for (size_t i = 0; i < cat->count; i++)
		if (zb_htable_insert(&t, cat->keys[i], 1000) != 0)
			zb_die("baseline insert", INV_ENOMEM);
	after = zb_rss_bytes();
	zb_htable_free(&t);
	return (double)(after - before);
}

/* RSS growth of a memory store holding the variants: first with the
 * organization handle open (variant handles resolved, as an application
 * holds them), then with it closed (the backend's records alone). */
static void lib_footprint(const zb_opts *o, const zb_catalog *cat, double *with_handles,
                          double *backend_only)
{
	size_t nprod = (cat->count + cat->per_product - 1) / cat->per_product;
	const size_t chunk = 8189;
	inv_store *store;
	inv_org *org;
	const inv_location *supplier, *storeloc;
	inv_change *buf = malloc(chunk * sizeof *buf);
	inv_uuid org_uuid;
	uint64_t st = o->seed ^ 0xf007, before;

	if (!buf)
		zb_die("malloc", INV_ENOMEM);
	zb_uuid_random(&org_uuid, &st);
	zb_heap_trim();
	before = zb_rss_bytes();
	ZB_CHECK(inv_store_open_memory(&store, NULL));
	ZB_CHECK(inv_org_open(&org, store, &org_uuid));
	ZB_CHECK(inv_location_by_type(&supplier, org, INV_LOCATION_SUPPLIER));
	ZB_CHECK(inv_location_by_type(&storeloc, org, INV_LOCATION_STORE));
	for (size_t p = 0; p < nprod; p++)
		ZB_CHECK(inv_tracking_start(org, &cat->products[p]));
	for (size_t i = 0; i < cat->count; i += chunk) {
		size_t n = cat->count - i < chunk ? cat->count - i : chunk;
		int64_t seq;
		for (size_t j = 0; j < n; j++) {
			ZB_CHECK(inv_variant_get(&buf[j].variant, org,
			                         &cat->products[(i + j) / cat->per_product],
			                         &cat->variants[i + j]));
			buf[j].from = supplier;
			buf[j].to = storeloc;
			buf[j].quantity = 1000;
		}
		ZB_CHECK(inv_apply_changes(NULL, org, buf, n, NULL));
		/* Journal entries are history, not per-variant state. */
		ZB_CHECK(inv_journal_last_sequence(&seq, org));
		ZB_CHECK(inv_journal_trim(org, seq));
	}
	free(buf);
	zb_heap_trim();
	*with_handles = (double)(zb_rss_bytes() - before);
	inv_org_close(org);
	zb_heap_trim();
	*backend_only = (double)(zb_rss_bytes() - before);
	inv_store_close(store);
}

void zb_case_footprint(const zb_opts *o)
{
	zb_catalog cat;
	double lib = ZB_NAN, backend = ZB_NAN, base;
	char note[96];

	if (zb_catalog_init(&cat, o->fp_variants, 10, o->seed) != 0)
		zb_die("footprint setup", INV_ENOMEM);
	lib_footprint(o, &cat, &lib, &backend);
	base = hash_footprint(&cat);
	snprintf(note, sizeof note, "RSS delta, %zu variants, baseline %zu-B slots at load <= 1/2",
	         cat.count, sizeof(zb_hslot));
	report_bytes("memory RSS, org open (handles)", lib, base, cat.count, 96, note);
	report_bytes("memory RSS, org closed", backend, base, cat.count, 0, NULL);
	zb_catalog_free(&cat);
	zb_sqlite_footprint(o);
}
