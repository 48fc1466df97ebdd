/*
 * zb.h - shared pieces of zinv-bench: options, workload, clock, report.
 *
 * The benchmark measures libzinv against what the hardware and its
 * dependencies (a plain hash table, hand-written SQLite, jansson alone) do
 * with the same work, in the same run, so that a ratio survives a noisy
 * machine better than a raw number does.
 */
#ifndef ZB_H
#define ZB_H

#include <stddef.h>
#include <stdint.h>

#include <zinv.h>

/* Run-wide options; every size can be changed by flag or environment. */
typedef struct zb_opts {
	int smoke;                  /* tiny sizes, every case once: make check */
	const char *only;           /* run only the cases whose name starts so */
	const char *json_path;      /* bench-results.json */
	const char *dir;            /* parent of the temp dir for SQLite files */
	uint64_t seed;
	size_t mem_variants;        /* tracked variants in the memory case */
	size_t mem_moves;           /* moves per batch size */
	size_t sql_variants;
	size_t sql_moves;
	size_t sql_max_commits;     /* caps moves at batch size b to b * this */
	size_t sql_seconds;         /* and each run (both sides) to about this long */
	size_t pg_variants;         /* PostgreSQL case, one connection */
	size_t pg_moves;
	size_t pg_seconds;
	size_t pg_conc_variants;    /* per organization, many connections */
	size_t pg_conc_batch;
	size_t pg_conc_ms;          /* each run of many connections */
	size_t codec_changes;       /* changes in the PUT body */
	size_t codec_variants;      /* variants in the encoded status object */
	size_t codec_reps;          /* repetitions of each codec measurement */
	size_t fp_variants;         /* variants of the footprint case */
	size_t fp_sql_variants;
	size_t batches[8];          /* batch sizes */
	size_t batch_count;
	int callgrind;              /* toggle callgrind collection around loops */
	double load_start;          /* 1-minute load average when the run began */
} zb_opts;

/* One move of the workload, independent of who runs it. */
enum { ZB_STORE = 0, ZB_SOLD = 1, ZB_SUPPLIER = 2, ZB_LOC_COUNT = 3 };

typedef struct zb_move {
	uint32_t variant;           /* index into the variant table */
	uint8_t from;               /* ZB_STORE, ZB_SOLD or ZB_SUPPLIER */
	uint8_t to;
	uint16_t quantity;
} zb_move;

/* The catalogue: `count` variants, `per_product` per product, random v4
 * UUIDs, and each variant's 32-byte (product, variant) key. */
typedef struct zb_catalog {
	size_t count;
	size_t per_product;
	inv_uuid *products;         /* count / per_product (rounded up) */
	inv_uuid *variants;         /* count */
	uint8_t (*keys)[32];        /* count: product bytes, then variant bytes */
} zb_catalog;

uint64_t zb_rand(uint64_t *state);
void zb_uuid_random(inv_uuid *out, uint64_t *state);
int zb_catalog_init(zb_catalog *cat, size_t count, size_t per_product, uint64_t seed);
void zb_catalog_free(zb_catalog *cat);
/* `count` random moves among STORE, SOLD and SUPPLIER, quantity 1..10. */
zb_move *zb_moves_new(size_t count, size_t variants, uint64_t seed);

/* Monotonic clock in nanoseconds: for disk-bound work (SQLite). */
uint64_t zb_now_ns(void);
/* CPU time of the calling thread (user + system) in nanoseconds: for
 * CPU-bound work, so that time the scheduler gives the machine's other
 * tenants is not charged to the code under test. */
uint64_t zb_cpu_ns(void);
/* Resident set size in bytes, from /proc/self/statm. */
uint64_t zb_rss_bytes(void);
/* The 1-minute load average (NaN when unknown): the machine may be
 * shared, and the report says so. */
double zb_loadavg(void);
/* Give freed heap back to the system where the C library can, so that RSS
 * deltas measure what is live. */
void zb_heap_trim(void);

/*
 * Callgrind (--callgrind, under valgrind --collect-atstart=no): count only
 * inside measured loops.  zb_cg_on/off bracket each timed stretch;
 * zb_cg_dump writes the counts since the last dump as a part named
 * "<label> changes=<n>", which `make bench-callgrind` divides by n.
 * No-ops otherwise.
 */
void zb_cg_on(const zb_opts *o);
void zb_cg_off(const zb_opts *o);
void zb_cg_dump(const zb_opts *o, const char *label, size_t changes);

/*
 * One row of the report.  `lib` and `base` are in `unit` (NaN: not
 * measured); `higher_better` says which way is good; `target` is the goal
 * (0: none) for the ratio lib / base, or for `lib` itself when
 * `target_on_value`; a missed goal is flagged, never failed.
 */
typedef struct zb_row {
	char group[24];
	char name[64];
	char unit[16];
	double lib;
	double base;
	double target;
	int higher_better;
	int target_on_value;
	char note[96];
} zb_row;

#define ZB_NAN (0.0 / 0.0)

void zb_report(const zb_row *row);
int zb_report_write_json(const zb_opts *o, const char *path);
void zb_report_free(void);

/* Fail loudly: a benchmark that measured an error measured nothing. */
void zb_die(const char *what, int code);
#define ZB_CHECK(call) do { int zb_rc_ = (call); if (zb_rc_ != 0) zb_die(#call, zb_rc_); } while (0)

/* The cases. */
void zb_case_memory(const zb_opts *o);
void zb_case_sqlite(const zb_opts *o);
void zb_case_postgres(const zb_opts *o);
void zb_case_codec(const zb_opts *o);
void zb_case_footprint(const zb_opts *o);
void zb_case_threads(const zb_opts *o);
/* The SQLite half of the footprint case (zb_sqlite.c). */
void zb_sqlite_footprint(const zb_opts *o);

#endif /* ZB_H */
