/*
 * zinv-bench - libzinv's speed against the hardware's and its dependencies'
 * limits, in one run.  `zinv-bench --help` lists the cases and sizes.
 *
 * Prints a table and writes bench-results.json.  Never asserts a timing:
 * a missed target is reported, not failed.  It fails only when a case goes
 * wrong (an error, or libzinv and its baseline disagreeing on balances).
 */
#include "zb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct zb_size_opt {
	const char *flag;   /* --flag N */
	const char *env;    /* ZINV_BENCH_... */
	size_t offset;      /* of the size_t in zb_opts */
	const char *help;
} zb_size_opt;

#define ZB_OPT(f, e, m, h) { f, e, offsetof(zb_opts, m), h }
static const zb_size_opt size_opts[] = {
	ZB_OPT("--mem-variants", "ZINV_BENCH_MEM_VARIANTS", mem_variants,
	       "tracked variants, memory case"),
	ZB_OPT("--mem-moves", "ZINV_BENCH_MEM_MOVES", mem_moves,
	       "moves per batch size, memory case"),
	ZB_OPT("--sql-variants", "ZINV_BENCH_SQL_VARIANTS", sql_variants,
	       "tracked variants, SQLite case"),
	ZB_OPT("--sql-moves", "ZINV_BENCH_SQL_MOVES", sql_moves,
	       "moves per batch size and sync mode, SQLite case"),
	ZB_OPT("--sql-max-commits", "ZINV_BENCH_SQL_MAX_COMMITS", sql_max_commits,
	       "at most this many transactions per SQLite run"),
	ZB_OPT("--sql-seconds", "ZINV_BENCH_SQL_SECONDS", sql_seconds,
	       "stop each SQLite run after about this long"),
	ZB_OPT("--pg-variants", "ZINV_BENCH_PG_VARIANTS", pg_variants,
	       "tracked variants, PostgreSQL case"),
	ZB_OPT("--pg-moves", "ZINV_BENCH_PG_MOVES", pg_moves,
	       "moves per batch size, PostgreSQL case"),
	ZB_OPT("--pg-seconds", "ZINV_BENCH_PG_SECONDS", pg_seconds,
	       "stop each PostgreSQL run after about this long"),
	ZB_OPT("--pg-conc-variants", "ZINV_BENCH_PG_CONC_VARIANTS", pg_conc_variants,
	       "variants per organization, many connections"),
	ZB_OPT("--pg-conc-batch", "ZINV_BENCH_PG_CONC_BATCH", pg_conc_batch,
	       "batch size, many connections"),
	ZB_OPT("--pg-conc-ms", "ZINV_BENCH_PG_CONC_MS", pg_conc_ms,
	       "milliseconds of each many-connection run"),
	ZB_OPT("--codec-changes", "ZINV_BENCH_CODEC_CHANGES", codec_changes,
	       "changes in the PUT body"),
	ZB_OPT("--codec-variants", "ZINV_BENCH_CODEC_VARIANTS", codec_variants,
	       "variants in the encoded status object"),
	ZB_OPT("--codec-reps", "ZINV_BENCH_CODEC_REPS", codec_reps,
	       "repetitions of each codec measurement"),
	ZB_OPT("--fp-variants", "ZINV_BENCH_FP_VARIANTS", fp_variants,
	       "variants, memory footprint"),
	ZB_OPT("--fp-sql-variants", "ZINV_BENCH_FP_SQL_VARIANTS", fp_sql_variants,
	       "variants, SQLite file size"),
};

static const char *const case_names[] = { "memory", "sqlite", "postgres", "codec",
                                           "footprint", "threads" };
static void (*const case_fns[])(const zb_opts *) = {
	zb_case_memory, zb_case_sqlite, zb_case_postgres, zb_case_codec, zb_case_footprint,
	zb_case_threads,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: zinv-bench [--smoke] [--only CASE[,CASE...]] [--json PATH] [--dir DIR]\n"
	           "                  [--seed N] [--batches N,N,...] [--callgrind] [SIZE OPTIONS]\n"
	           "cases: memory, sqlite, postgres, codec, footprint (default: all; postgres\n"
	           "needs a server: ZINV_BENCH_PG or ZINV_TEST_PG, see tests/pg/with-cluster.sh)\n"
	           "size options (flag, or the environment variable):\n");
	for (size_t i = 0; i < sizeof size_opts / sizeof size_opts[0]; i++)
		fprintf(f, "  %-18s N  %-28s %s\n", size_opts[i].flag, size_opts[i].env,
		        size_opts[i].help);
	fprintf(f, "  --batches, ZINV_BENCH_BATCHES: batch sizes (default 1,100,1000,8189)\n"
	           "  --dir, TMPDIR: where the SQLite files go (a temp dir inside it)\n");
}

static size_t parse_size(const char *what, const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || v == 0) {
		fprintf(stderr, "zinv-bench: %s: want a positive integer, got \"%s\"\n", what, s);
		exit(2);
	}
	return (size_t)v;
}

static void parse_batches(zb_opts *o, const char *s)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof buf, "%s", s);
	o->batch_count = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->batch_count == sizeof o->batches / sizeof o->batches[0]) {
			fprintf(stderr, "zinv-bench: too many batch sizes\n");
			exit(2);
		}
		o->batches[o->batch_count++] = parse_size("--batches", tok);
	}
}

static void defaults(zb_opts *o, int smoke)
{
	memset(o, 0, sizeof *o);
	o->smoke = smoke;
	o->json_path = "bench-results.json";
	o->seed = 20261201;
	o->mem_variants = smoke ? 1000 : 100000;
	o->mem_moves = smoke ? 5000 : 10000000;
	o->sql_variants = smoke ? 500 : 100000;
	o->sql_moves = smoke ? 2000 : 200000;
	o->sql_max_commits = smoke ? 20 : 20000;
	o->sql_seconds = smoke ? 5 : 8;
	o->pg_variants = smoke ? 500 : 100000;
	o->pg_moves = smoke ? 2000 : 200000;
	o->pg_seconds = smoke ? 5 : 8;
	o->pg_conc_variants = smoke ? 200 : 10000;
	o->pg_conc_batch = smoke ? 100 : 1000;
	o->pg_conc_ms = smoke ? 200 : 5000;
	o->codec_changes = smoke ? 50 : 1000;
	o->codec_variants = smoke ? 50 : 1000;
	o->codec_reps = smoke ? 2 : 500;
	o->fp_variants = smoke ? 2000 : 1000000;
	o->fp_sql_variants = smoke ? 500 : 200000;
	parse_batches(o, "1,100,1000,8189");
}

static int case_selected(const char *only, const char *name)
{
	size_t n = strlen(name);
	if (!only)
		return 1;
	for (const char *p = only; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

int main(int argc, char **argv)
{
	zb_opts o;
	int smoke = 0;
	const char *env;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--smoke") == 0)
			smoke = 1;
	defaults(&o, smoke);
	/* Environment first, so that flags win. */
	for (size_t k = 0; k < sizeof size_opts / sizeof size_opts[0]; k++)
		if ((env = getenv(size_opts[k].env)) && *env)
			*(size_t *)((char *)&o + size_opts[k].offset) = parse_size(size_opts[k].env, env);
	if ((env = getenv("ZINV_BENCH_BATCHES")) && *env)
		parse_batches(&o, env);
	o.dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t k;
		if (strcmp(a, "--smoke") == 0)
			continue;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "--callgrind") == 0) {
			o.callgrind = 1;
			continue;
		}
		if (!v) {
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "--only") == 0)
			o.only = v;
		else if (strcmp(a, "--json") == 0)
			o.json_path = v;
		else if (strcmp(a, "--dir") == 0)
			o.dir = v;
		else if (strcmp(a, "--seed") == 0)
			o.seed = parse_size(a, v);
		else if (strcmp(a, "--batches") == 0)
			parse_batches(&o, v);
		else {
			for (k = 0; k < sizeof size_opts / sizeof size_opts[0]; k++)
				if (strcmp(a, size_opts[k].flag) == 0)
					break;
			if (k == sizeof size_opts / sizeof size_opts[0]) {
				usage(stderr);
				return 2;
			}
			*(size_t *)((char *)&o + size_opts[k].offset) = parse_size(a, v);
		}
	}
	if (o.only)
		for (const char *p = o.only; *p;) {
			const char *e = strchr(p, ',');
			size_t len = e ? (size_t)(e - p) : strlen(p), k;
			for (k = 0; k < sizeof case_names / sizeof case_names[0]; k++)
				if (strlen(case_names[k]) == len && strncmp(p, case_names[k], len) == 0)
					break;
			if (k == sizeof case_names / sizeof case_names[0]) {
				fprintf(stderr, "zinv-bench: unknown case \"%.*s\"\n", (int)len, p);
				return 2;
			}
			p += len + (e != NULL);
		}

	o.load_start = zb_loadavg();
	printf("zinv-bench: libzinv %s%s; %ld CPUs, load average %.2f\n", inv_version(),
	       o.smoke ? " (smoke: tiny sizes)" : "", sysconf(_SC_NPROCESSORS_ONLN), o.load_start);
	printf("ratio = libzinv / baseline; memory and codec timed in thread CPU time, "
	       "sqlite and postgres in wall-clock time\n");
	for (size_t k = 0; k < sizeof case_names / sizeof case_names[0]; k++)
		if (case_selected(o.only, case_names[k]))
			case_fns[k](&o);
	if (zb_report_write_json(&o, o.json_path) != 0) {
		fprintf(stderr, "zinv-bench: cannot write %s\n", o.json_path);
		return 1;
	}
	printf("load average at the end %.2f; results written to %s\n", zb_loadavg(),
	       o.json_path);
	zb_report_free();
	return 0;
}
