/*
 * main.c - zinv-sim: run the simulator over seeds and backends.
 *
 *   zinv-sim [--seed S] [--seeds N] [--steps N] [--backend memory|sqlite|postgres|all]
 *            [--faults [PER_MILLION]] [--crash | --kill] [--one-store] [--verbose]
 *   zinv-sim --sync [--seed S] [--seeds N] [--steps N]
 *
 * Runs seeds S .. S+N-1.  --faults injects backend failures; --crash and
 * --kill run crash-and-recover rounds (durable backends only); durable
 * backends otherwise run two stores on one database unless --one-store.  The first divergence
 * stops the run and prints the seed, the step, both answers and the make
 * command that replays it.  The postgres backend (not part of "all") runs on
 * the server of $ZINV_TEST_PG, in schema zinv_sim: `make sim BACKEND=postgres`
 * starts a throwaway cluster for it (tests/pg/with-cluster.sh).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "sync_sim.h"

#ifdef SIM_HAVE_SQLITE
#include <zinv/sqlite.h>
#endif
#ifdef SIM_HAVE_POSTGRES
#include <libpq-fe.h>
#include <zinv/postgres.h>
#endif

static int memory_open(const inv_backend_ops **ops, void **instance, int fresh, void *ctx)
{
	(void)fresh;
	(void)ctx;
	*ops = inv_memory_backend_ops();
	return inv_memory_backend_new(instance);
}

#ifdef SIM_HAVE_SQLITE
static void remove_db(const char *path)
{
	static const char *const suffix[] = { "", "-journal", "-wal", "-shm" };
	char name[4200];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", path, suffix[i]);
		unlink(name);
	}
}

static int sqlite_open(const inv_backend_ops **ops, void **instance, int fresh, void *ctx)
{
	const char *path = ctx;

	if (fresh)
		remove_db(path);
	inv_sqlite_options opts = INV_SQLITE_OPTIONS_INIT;

	/* The simulated crashes are process crashes, which NORMAL survives;
	 * FULL would only make the runs slower. */
	opts.sync = INV_SQLITE_SYNC_NORMAL;
	return inv_sqlite_backend_open(ops, instance, path, &opts);
}
#endif

#ifdef SIM_HAVE_POSTGRES
#define SIM_PG_SCHEMA "zinv_sim"

static const char *pg_conninfo(void)
{
	const char *c = getenv("ZINV_TEST_PG");

	if (!c || !*c) {
		fprintf(stderr, "zinv-sim: the postgres backend needs ZINV_TEST_PG (a conninfo); "
		        "run under tests/pg/with-cluster.sh, as `make sim BACKEND=postgres` does\n");
		exit(2);
	}
	return c;
}

/* Run `sql` on a connection of its own, then close it; the first column of
 * the first row as a number. */
static long pg_sql(const char *sql)
{
	PGconn *c = PQconnectdb(pg_conninfo());
	PGresult *r = NULL;
	long v = -1;

	if (PQstatus(c) == CONNECTION_OK)
		r = PQexec(c, sql);
	if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)) {
		fprintf(stderr, "zinv-sim: postgres: %s: %s", sql, PQerrorMessage(c));
		exit(2);
	}
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}

/*
 * Every instance names its sessions after its process.  A reopen waits
 * until no other process's session is left: a crashed child's transaction,
 * a COMMIT perhaps still on its way, must be over before its state is read,
 * as a file's last write is before the file is reopened.
 */
static int postgres_open(const inv_backend_ops **ops, void **instance, int fresh, void *ctx)
{
	inv_postgres_options opts = INV_POSTGRES_OPTIONS_INIT;
	char app[48], sql[200];

	(void)ctx;
	snprintf(app, sizeof(app), "zinv-sim-%ld", (long)getpid());
	if (fresh)
		pg_sql("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " SIM_PG_SCHEMA
		       " CASCADE");
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE application_name"
	         " LIKE 'zinv-sim-%%' AND application_name <> '%s'", app);
	for (int i = 0; pg_sql(sql) > 0; i++) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		if (i == 2000) {
			fprintf(stderr, "zinv-sim: postgres: an earlier process's session stays\n");
			return INV_EBACKEND;
		}
		nanosleep(&ts, NULL);
	}
	opts.schema = SIM_PG_SCHEMA;
	opts.application_name = app;
	opts.pool_size = 2;
	return inv_postgres_backend_open(ops, instance, pg_conninfo(), &opts);
}
#endif

static void usage(void)
{
	fprintf(stderr,
	        "usage: zinv-sim [--seed S] [--seeds N] [--steps N] "
	        "[--backend memory|sqlite|postgres|all]\n"
	        "                [--faults [PER_MILLION]] [--crash | --kill] [--one-store] "
	        "[--verbose]\n"
	        "       zinv-sim --sync [--seed S] [--seeds N] [--steps N]\n");
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t seed = 1;
	long seeds = 1, steps = 500;
	const char *which = "memory";
	uint32_t faults = 0;
	int crash = 0, verbose = 0, two = 1, sync = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(a, "--seeds") && i + 1 < argc)
			seeds = strtol(argv[++i], NULL, 0);
		else if (!strcmp(a, "--steps") && i + 1 < argc)
			steps = strtol(argv[++i], NULL, 0);
		else if (!strcmp(a, "--backend") && i + 1 < argc)
			which = argv[++i];
		else if (!strcmp(a, "--faults")) {
			faults = 200000;
			if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')
				faults = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(a, "--crash"))
			crash = 1;
		else if (!strcmp(a, "--kill"))
			crash = 2;
		else if (!strcmp(a, "--sync"))
			sync = 1;
		else if (!strcmp(a, "--one-store"))
			two = 0;
		else if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
			verbose = 1;
		else
			usage();
	}
	if (seeds < 1 || steps < 0)
		usage();
	sim_report_fatal_signals();
	if (sync) {
		/* The sync object against an upstream store over a faulty link. */
		sim_sync_stats ss;
		int src = 0;

		memset(&ss, 0, sizeof(ss));
		for (long k = 0; k < seeds && !src; k++)
			src = sim_sync_run(seed + (uint64_t)k, steps, &ss);
		printf("zinv-sim: sync: %" PRIu64 " seed(s) from %" PRIu64 ", %ld steps, %" PRIu64
		       " till moves, %" PRIu64 " requests (%" PRIu64 " dropped, %" PRIu64
		       " 500/429, %" PRIu64 " duplicated, %" PRIu64 " answers lost), %" PRIu64
		       " rejections, %" PRIu64 " restarts: %s\n",
		       ss.seeds, seed, steps, ss.till_moves, ss.requests, ss.drops, ss.errors,
		       ss.duplicates, ss.lost_answers, ss.rejections, ss.reopens,
		       src ? "FAILED" : "ok");
		return src;
	}

	sim_backend memory = { "memory", memory_open, NULL, 0 };
	sim_backend backends[3];
	int n_backends = 0;
#ifdef SIM_HAVE_SQLITE
	/* The database goes to $TMPDIR, else to /dev/shm: the simulated
	 * crashes are process crashes, which a RAM file system survives like
	 * a disk, and the runs are twice as fast there. */
	char path[4096];
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(path, sizeof(path), "%s/zinv-sim-%ld.db", tmp, (long)getpid());
	sim_backend sqlite = { "sqlite", sqlite_open, path, 1 };
#endif

	if (!strcmp(which, "memory") || !strcmp(which, "all"))
		backends[n_backends++] = memory;
	if (!strcmp(which, "sqlite") || !strcmp(which, "all")) {
#ifdef SIM_HAVE_SQLITE
		backends[n_backends++] = sqlite;
#else
		if (!strcmp(which, "sqlite")) {
			fprintf(stderr, "zinv-sim: built without the SQLite backend\n");
			return 77;
		}
#endif
	}
	if (!strcmp(which, "postgres")) {
#ifdef SIM_HAVE_POSTGRES
		static const sim_backend postgres = { "postgres", postgres_open, NULL, 1 };

		pg_conninfo();
		backends[n_backends++] = postgres;
#else
		fprintf(stderr, "zinv-sim: built without the PostgreSQL backend\n");
		return 77;
#endif
	}
	if (!n_backends)
		usage();

	int rc = 0;
	for (int b = 0; b < n_backends && !rc; b++) {
		sim_stats st;
		double t0 = now_s();

		memset(&st, 0, sizeof(st));
		for (long k = 0; k < seeds && !rc; k++) {
			sim_config cfg;

			memset(&cfg, 0, sizeof(cfg));
			cfg.seed = seed + (uint64_t)k;
			cfg.steps = steps;
			cfg.backend = &backends[b];
			cfg.replay_backend = &memory;
			cfg.faults_per_million = faults;
			cfg.crash = backends[b].durable ? crash : 0;
			cfg.verbose = verbose;
			cfg.two_stores = two;
			rc = sim_run(&cfg, &st);
		}
		printf("zinv-sim: %s%s%s: %ld seed(s) from %" PRIu64 ", %ld steps, %" PRIu64
		       " calls (%" PRIu64 " failed as expected), %" PRIu64 " changes, %" PRIu64
		       " events, %" PRIu64 " backend ops, %" PRIu64 " faults injected (%" PRIu64
		       " calls hit), %" PRIu64 " crashes (%" PRIu64 " in-flight commits kept), %"
		       PRIu64 " reopens, %.2fs: %s\n",
		       backends[b].name, faults ? " +faults" : "",
		       !backends[b].durable ? "" : crash == 2 ? " +kill" : crash ? " +crash" : "", st.seeds, seed, st.steps,
		       st.calls_ok + st.calls_failed, st.calls_failed, st.changes, st.events,
		       st.backend_ops, st.faults, st.faulted_calls, st.crashes,
		       st.crash_unacked_survived, st.reopens, now_s() - t0,
		       rc ? "DIVERGED" : "ok");
		printf("  idempotent replays: %" PRIu64 "; events: %" PRIu64 " balance, %" PRIu64
		       " tracking started, %" PRIu64 " stopped, %" PRIu64 " low-stock\n", st.replays,
		       st.events_by_type[1], st.events_by_type[2], st.events_by_type[3],
		       st.events_by_type[4]);
		printf("  return codes:");
		for (int c = 0; c < 16; c++)
			if (st.by_code[c])
				printf(" %s=%" PRIu64, c ? inv_strerror(-c) : "ok", st.by_code[c]);
		printf("\n");
#ifdef SIM_HAVE_SQLITE
		if (backends[b].durable && !rc)
			remove_db(path);
#endif
	}
	return rc;
}
