/*
 * zb_util.c - workload generation, clocks, memory readings and the report.
 */
#include "zb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define ZB_HAVE_CALLGRIND 1
#endif
#endif

/* splitmix64: fast, seedable, and good enough to spread hash keys. */
uint64_t zb_rand(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void zb_uuid_random(inv_uuid *out, uint64_t *state)
{
	uint64_t a = zb_rand(state), b = zb_rand(state);
	memcpy(out->bytes, &a, 8);
	memcpy(out->bytes + 8, &b, 8);
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x40); /* version 4 */
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80); /* RFC 4122 */
}

int zb_catalog_init(zb_catalog *cat, size_t count, size_t per_product, uint64_t seed)
{
	size_t nprod = (count + per_product - 1) / per_product;
	uint64_t st = seed;

	memset(cat, 0, sizeof *cat);
	cat->count = count;
	cat->per_product = per_product;
	cat->products = malloc((nprod ? nprod : 1) * sizeof *cat->products);
	cat->variants = malloc((count ? count : 1) * sizeof *cat->variants);
	cat->keys = malloc((count ? count : 1) * sizeof *cat->keys);
	if (!cat->products || !cat->variants || !cat->keys) {
		zb_catalog_free(cat);
		return -1;
	}
	for (size_t p = 0; p < nprod; p++)
		zb_uuid_random(&cat->products[p], &st);
	for (size_t i = 0; i < count; i++) {
		zb_uuid_random(&cat->variants[i], &st);
		memcpy(cat->keys[i], cat->products[i / per_product].bytes, 16);
		memcpy(cat->keys[i] + 16, cat->variants[i].bytes, 16);
	}
	return 0;
}

void zb_catalog_free(zb_catalog *cat)
{
	free(cat->products);
	free(cat->variants);
	free(cat->keys);
	memset(cat, 0, sizeof *cat);
}

zb_move *zb_moves_new(size_t count, size_t variants, uint64_t seed)
{
	/* The six ordered pairs of distinct locations. */
	static const uint8_t pairs[6][2] = {
		{ ZB_STORE, ZB_SOLD }, { ZB_STORE, ZB_SUPPLIER }, { ZB_SOLD, ZB_STORE },
		{ ZB_SUPPLIER, ZB_STORE }, { ZB_SOLD, ZB_SUPPLIER }, { ZB_SUPPLIER, ZB_SOLD },
	};
	zb_move *m = malloc((count ? count : 1) * sizeof *m);
	uint64_t st = seed ^ UINT64_C(0x5eed);

	if (!m)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		uint64_t r = zb_rand(&st);
		const uint8_t *p = pairs[(r >> 32) % 6];
		m[i].variant = (uint32_t)((r & 0xffffffffu) % variants);
		m[i].from = p[0];
		m[i].to = p[1];
		m[i].quantity = (uint16_t)(1 + (r >> 40) % 10);
	}
	return m;
}

uint64_t zb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t zb_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t zb_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void zb_heap_trim(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

void zb_cg_on(const zb_opts *o)
{
	(void)o;
#ifdef ZB_HAVE_CALLGRIND
	if (o->callgrind)
		CALLGRIND_TOGGLE_COLLECT;
#endif
}

void zb_cg_off(const zb_opts *o)
{
	zb_cg_on(o); /* a toggle */
}

void zb_cg_dump(const zb_opts *o, const char *label, size_t changes)
{
	(void)o;
	(void)label;
	(void)changes;
#ifdef ZB_HAVE_CALLGRIND
	if (o->callgrind) {
		char name[160];
		snprintf(name, sizeof name, "%s changes=%zu", label, changes);
		CALLGRIND_DUMP_STATS_AT(name);
	}
#endif
}

void zb_die(const char *what, int code)
{
	const inv_error *e = inv_error_last();
	fprintf(stderr, "zinv-bench: %s failed: %d (%s)", what, code, inv_strerror(code));
	if (e->code && e->message)
		fprintf(stderr, ": %s", e->message);
	if (e->code && e->field)
		fprintf(stderr, " [field %s]", e->field);
	if (e->code && e->index >= 0)
		fprintf(stderr, " [index %lld]", (long long)e->index);
	fputc('\n', stderr);
	exit(1);
}

/* ------------------------------------------------------------- report */

static zb_row *rows;
static size_t nrows, caprows;

static void fmt_value(char *buf, size_t n, double v, const char *unit)
{
	if (v != v) /* NaN: not measured */
		snprintf(buf, n, "-");
	else if (strcmp(unit, "changes/s") == 0 || strcmp(unit, "ops/s") == 0) {
		if (v >= 1e6)
			snprintf(buf, n, "%.2f M/s", v / 1e6);
		else
			snprintf(buf, n, "%.1f k/s", v / 1e3);
	} else
		snprintf(buf, n, "%.4g %s", v, unit);
}

/* 1 met, 0 missed, -1 no target or nothing to judge. */
static int row_met(const zb_row *r)
{
	double v = r->target_on_value ? r->lib : r->lib / r->base;
	if (r->target <= 0 || v != v)
		return -1;
	return r->higher_better ? v >= r->target : v <= r->target;
}

static void print_row(const zb_row *r)
{
	char lib[32], base[32], ratio[16] = "-", target[24] = "";
	int met = row_met(r);

	fmt_value(lib, sizeof lib, r->lib, r->unit);
	fmt_value(base, sizeof base, r->base, r->unit);
	if (r->lib == r->lib && r->base == r->base && r->base != 0)
		snprintf(ratio, sizeof ratio, "%.2f", r->lib / r->base);
	if (r->target > 0)
		snprintf(target, sizeof target, "%s%.4g%s %s", r->higher_better ? ">=" : "<=",
		         r->target, r->target_on_value ? "" : "x",
		         met < 0 ? "n/a" : met ? "ok" : "MISSED");
	printf("%-9s %-38s %16s %16s %6s  %-14s %s\n", r->group, r->name, lib, base, ratio,
	       target, r->note);
	fflush(stdout);
}

static void print_header(void)
{
	printf("%-9s %-38s %16s %16s %6s  %-14s %s\n", "group", "case", "libzinv", "baseline",
	       "ratio", "target", "note");
}

void zb_report(const zb_row *row)
{
	if (nrows == caprows) {
		size_t nc = caprows ? caprows * 2 : 32;
		zb_row *nr = realloc(rows, nc * sizeof *nr);
		if (!nr) {
			fprintf(stderr, "zinv-bench: out of memory\n");
			exit(1);
		}
		rows = nr;
		caprows = nc;
	}
	if (nrows == 0)
		print_header();
	rows[nrows++] = *row;
	print_row(row);
}

static json_t *num_or_null(double v)
{
	return v == v ? json_real(v) : json_null();
}

double zb_loadavg(void)
{
	double l = ZB_NAN;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = ZB_NAN;
		fclose(f);
	}
	return l;
}

int zb_report_write_json(const zb_opts *o, const char *path)
{
	json_t *root = json_object(), *arr = json_array(), *cfg = json_object();
	int rc;

	json_object_set_new(cfg, "seed", json_integer((json_int_t)o->seed));
	json_object_set_new(cfg, "smoke", json_boolean(o->smoke));
	json_object_set_new(cfg, "mem_variants", json_integer((json_int_t)o->mem_variants));
	json_object_set_new(cfg, "mem_moves", json_integer((json_int_t)o->mem_moves));
	json_object_set_new(cfg, "sql_variants", json_integer((json_int_t)o->sql_variants));
	json_object_set_new(cfg, "sql_moves", json_integer((json_int_t)o->sql_moves));
	json_object_set_new(cfg, "sql_max_commits", json_integer((json_int_t)o->sql_max_commits));
	json_object_set_new(cfg, "sql_seconds", json_integer((json_int_t)o->sql_seconds));
	json_object_set_new(cfg, "pg_variants", json_integer((json_int_t)o->pg_variants));
	json_object_set_new(cfg, "pg_moves", json_integer((json_int_t)o->pg_moves));
	json_object_set_new(cfg, "pg_conc_variants", json_integer((json_int_t)o->pg_conc_variants));
	json_object_set_new(cfg, "pg_conc_batch", json_integer((json_int_t)o->pg_conc_batch));
	json_object_set_new(cfg, "pg_conc_ms", json_integer((json_int_t)o->pg_conc_ms));
	json_object_set_new(cfg, "codec_changes", json_integer((json_int_t)o->codec_changes));
	json_object_set_new(cfg, "codec_variants", json_integer((json_int_t)o->codec_variants));
	json_object_set_new(cfg, "fp_variants", json_integer((json_int_t)o->fp_variants));
	json_object_set_new(root, "libzinv_version", json_string(inv_version()));
	json_object_set_new(root, "online_cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_set_new(root, "loadavg_start", num_or_null(o->load_start));
	json_object_set_new(root, "loadavg_end", num_or_null(zb_loadavg()));
	json_object_set_new(root, "clocks", json_string("memory and codec: thread CPU time; "
	                                                "sqlite, postgres: wall clock"));
	json_object_set_new(root, "config", cfg);
	for (size_t i = 0; i < nrows; i++) {
		const zb_row *r = &rows[i];
		json_t *j = json_object();
		int met = row_met(r);
		json_object_set_new(j, "group", json_string(r->group));
		json_object_set_new(j, "case", json_string(r->name));
		json_object_set_new(j, "unit", json_string(r->unit));
		json_object_set_new(j, "libzinv", num_or_null(r->lib));
		json_object_set_new(j, "baseline", num_or_null(r->base));
		json_object_set_new(j, "ratio", r->lib == r->lib && r->base == r->base && r->base != 0
		                                    ? json_real(r->lib / r->base) : json_null());
		json_object_set_new(j, "target", r->target > 0 ? json_real(r->target) : json_null());
		json_object_set_new(j, "target_of", json_string(r->target_on_value ? "libzinv"
		                                                                    : "ratio"));
		json_object_set_new(j, "target_is_minimum", json_boolean(r->higher_better));
		json_object_set_new(j, "target_met", met < 0 ? json_null() : json_boolean(met));
		if (r->note[0])
			json_object_set_new(j, "note", json_string(r->note));
		json_array_append_new(arr, j);
	}
	json_object_set_new(root, "results", arr);
	rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return rc;
}

void zb_report_free(void)
{
	free(rows);
	rows = NULL;
	nrows = caprows = 0;
}
