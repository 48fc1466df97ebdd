/*
 * check_postgres_crash.c - libzinv-postgres through the public API under the
 * failures only a client/server database has: the server killed
 * (pg_ctl stop -m immediate) and restarted during a run of batches, a
 * connection terminated from the server side (pg_terminate_backend) in the
 * middle of a batch, during COMMIT and at random moments, and the client
 * process SIGKILLed at random moments.
 *
 * After each failure the stored state is checked the same way: every
 * acknowledged batch is there, no batch is there in part, the journal has
 * no gap, and every balance equals the replay of the journal's records.
 * A writer also checks what each failed call said: a batch reported as
 * failed (and not as "unknown") must not be stored.
 *
 * Runs under tests/pg/with-cluster.sh (ZINV_TEST_PG, ZINV_TEST_PG_BIN,
 * ZINV_TEST_PG_DIR, ZINV_TEST_PG_RUN); each test uses a PostgreSQL schema
 * of its own.  CRASH_KILLS (default 50) sets how many times the client is
 * killed; `make check-crash` runs 500.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>
#include <zinv.h>
#include <zinv/postgres.h>

enum { VARIANTS = 8, MAX_BATCH = 40 };

/* ------------------------------------------------------------ helpers */

static const char *env_need(const char *name)
{
	const char *s = getenv(name);

	ck_assert_msg(s != NULL, "%s is not set: run under tests/pg/with-cluster.sh", name);
	return s;
}

static const char *conninfo(void)
{
	return env_need("ZINV_TEST_PG");
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : def;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* The test's PostgreSQL schema, and the application_name prefix of its
 * sessions: unique to the process, so clusters and runs never mix. */
static char schema[64];

static void fresh_schema(void)
{
	static unsigned counter;

	snprintf(schema, sizeof(schema), "c_%ld_%u", (long)getpid(), counter++);
}

/* One statement as another client would run it; the first column of the
 * first row as a number (-1: no row).  Fails the test on an error. */
static long long sql_int(const char *sql)
{
	PGconn *conn = PQconnectdb(conninfo());
	PGresult *res;
	long long v = -1;

	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
	PQsetNoticeProcessor(conn, quiet, NULL);
	res = PQexec(conn, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK ||
	              PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql,
	              PQresultErrorMessage(res));
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
	    !PQgetisnull(res, 0, 0))
		v = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	return v;
}

/* Sessions of application `app` that are still there. */
static long long sessions_of(const char *app)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity"
	         " WHERE application_name = '%s'", app);
	return sql_int(sql);
}

/* Wait (up to 30 s) until the server has no session of `app` left: a killed
 * client's transaction has then been committed or rolled back. */
static void wait_sessions_gone(const char *app)
{
	int64_t until = now_us() + 30 * 1000000;

	while (sessions_of(app) > 0) {
		ck_assert_msg(now_us() < until, "sessions of %s outlive their client", app);
		sleep_ms(2);
	}
}

static void drop_schema(void)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
	sql_int(sql);
}

static inv_uuid uuid_n(unsigned n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = 0x5c;
	u.bytes[6] = 0x40;
	u.bytes[8] = 0x80;
	u.bytes[14] = (uint8_t)(n >> 8);
	u.bytes[15] = (uint8_t)n;
	return u;
}

/* ------------------------------------------------------------ the workload */

struct world {
	inv_store *store;
	inv_org *org;
	const inv_location *loc[4]; /* STORE, SOLD, BIN, SUPPLIER */
	const inv_variant *variant[VARIANTS];
};

/* Open organization 1 of the test's schema through `info` (NULL: the
 * cluster's conninfo) with application_name `app` (NULL: libzinv's). */
static int world_open(struct world *w, const char *info, const char *app, int pool)
{
	inv_postgres_options o = INV_POSTGRES_OPTIONS_INIT;
	inv_uuid product = uuid_n(2), org = uuid_n(1);
	int rc, i;

	memset(w, 0, sizeof(*w));
	o.schema = schema;
	o.application_name = app;
	o.pool_size = pool;
	if ((rc = inv_store_open_postgres(&w->store, info ? info : conninfo(), &o, NULL)))
		return rc;
	if ((rc = inv_org_open(&w->org, w->store, &org)))
		return rc;
	for (i = 0; i < 4; i++)
		if ((rc = inv_location_by_type(&w->loc[i], w->org, (inv_location_type)(i + 1))))
			return rc;
	for (i = 0; i < VARIANTS; i++) {
		inv_uuid v = uuid_n(100 + (unsigned)i);

		if ((rc = inv_variant_get(&w->variant[i], w->org, &product, &v)))
			return rc;
	}
	return 0;
}

static void world_close(struct world *w)
{
	inv_org_close(w->org);
	inv_store_close(w->store);
	memset(w, 0, sizeof(*w));
}

/* The batch that gets sequence `seq`: its size and moves follow from the
 * sequence alone, so the checker knows what a whole batch looks like. */
static size_t batch_size(int64_t seq)
{
	return 1 + (size_t)((seq * 7919) % MAX_BATCH);
}

static size_t make_batch(struct world *w, int64_t seq, inv_change *out)
{
	size_t n = batch_size(seq), i;

	for (i = 0; i < n; i++) {
		unsigned r = (unsigned)(seq * 31 + (int64_t)i * 17);
		int other = 1 + (int)(r % 3); /* SOLD, BIN or SUPPLIER */

		out[i].variant = w->variant[r % VARIANTS];
		out[i].quantity = 1 + (int64_t)(r % 5);
		if ((r / 3) % 2) {
			out[i].from = w->loc[other];
			out[i].to = w->loc[0];
		} else {
			out[i].from = w->loc[0];
			out[i].to = w->loc[other];
		}
	}
	return n;
}

/* Sequences up to this one are the setup's, not the writers' batches. */
static int64_t setup_sequence;

/* A fresh schema with organization 1 and its product tracked. */
static void world_setup(void)
{
	struct world w;
	inv_uuid product = uuid_n(2);
	int rc;

	fresh_schema();
	rc = world_open(&w, NULL, NULL, 1);
	ck_assert_msg(rc == 0, "open: %d (%s)", rc, inv_error_last()->message);
	ck_assert_int_eq(inv_tracking_start(w.org, &product), 0);
	ck_assert_int_eq(inv_journal_last_sequence(&setup_sequence, w.org), 0);
	world_close(&w);
}

/* ------------------------------------------------------------ the checker */

static int variant_index(const inv_uuid *v)
{
	int i;

	for (i = 0; i < VARIANTS; i++) {
		inv_uuid u = uuid_n(100 + (unsigned)i);

		if (inv_uuid_compare(&u, v) == 0)
			return i;
	}
	return -1;
}

/* What a previous check verified: entries up to `sequence`, and the
 * balances their replay gives.  Zeroed: verify from the start. */
struct replay {
	int64_t sequence;
	int64_t balance[VARIANTS];
};

/*
 * Check the journal entries after rp->sequence and every balance, extending
 * the replay; return the last sequence, or fail the test with what was
 * wrong.  A zeroed replay checks the whole journal.
 */
static int64_t check_since(const char *when, struct replay *rp)
{
	inv_journal_query q = INV_JOURNAL_QUERY_INIT;
	struct world w;
	inv_journal *j = NULL;
	int64_t last = -1;
	size_t i, k;
	int rc = world_open(&w, NULL, NULL, 1);

	ck_assert_msg(rc == 0, "%s: reopen: %d (%s)", when, rc, inv_error_last()->message);
	ck_assert_int_eq(inv_journal_last_sequence(&last, w.org), 0);
	ck_assert_msg(last >= rp->sequence, "%s: last sequence %lld went back from %lld", when,
	              (long long)last, (long long)rp->sequence);
	q.after_sequence = rp->sequence;
	ck_assert_int_eq(inv_journal_read(&j, w.org, &q), 0);
	ck_assert_msg(inv_journal_count(j) == (size_t)(last - rp->sequence),
	              "%s: journal has %zu entries after %lld, last sequence is %lld", when,
	              inv_journal_count(j), (long long)rp->sequence, (long long)last);
	for (i = 0; i < inv_journal_count(j); i++) {
		const inv_journal_entry *e = inv_journal_at(j, i);
		const inv_journal_record *r = inv_journal_entry_records(e);
		size_t n = inv_journal_entry_record_count(e), moves = 0;
		int64_t seq = inv_journal_entry_sequence(e);

		ck_assert_msg(seq == rp->sequence + 1, "%s: gap: sequence %lld after %lld", when,
		              (long long)seq, (long long)rp->sequence);
		for (k = 0; k < n; k++) {
			int64_t *bal;
			int v;

			if (r[k].kind != INV_RECORD_MOVE)
				continue;
			moves++;
			v = variant_index(&r[k].variant);
			ck_assert_int_ge(v, 0);
			bal = &rp->balance[v];
			ck_assert_msg(r[k].before == *bal,
			              "%s: seq %lld record %zu: before %lld, replay says %lld", when,
			              (long long)seq, k, (long long)r[k].before, (long long)*bal);
			if (inv_uuid_compare(&r[k].to, inv_location_uuid(w.loc[0])) == 0)
				*bal += r[k].quantity;
			else
				*bal -= r[k].quantity;
			ck_assert_int_eq(r[k].after, *bal);
		}
		if (seq > setup_sequence)
			ck_assert_msg(moves == batch_size(seq),
			              "%s: partial batch: seq %lld has %zu moves, expected %zu",
			              when, (long long)seq, moves, batch_size(seq));
		rp->sequence = seq;
	}
	for (k = 0; k < VARIANTS; k++) {
		int64_t got = 0;

		ck_assert_int_eq(inv_balance_get(&got, w.org, w.variant[k], NULL), 0);
		ck_assert_msg(got == rp->balance[k], "%s: variant %zu: balance %lld, replay %lld",
		              when, k, (long long)got, (long long)rp->balance[k]);
	}
	inv_journal_free(j);
	world_close(&w);
	return last;
}

static int64_t check_consistent(const char *when)
{
	struct replay r;

	memset(&r, 0, sizeof(r));
	return check_since(when, &r);
}

/* ------------------------------------------------ a writer that survives */

/*
 * A writer thread in the test process: batches until told to stop,
 * counting what each call said.  A call that failed without "unknown" in
 * its message said nothing was stored; the next read of the last sequence
 * shows whether that was true.
 */
struct writer {
	struct world w;
	pthread_t thread;
	volatile int stop;
	pthread_mutex_t m;
	int64_t acked;              /* last acknowledged sequence */
	long acks, failures, unknown, busy, read_failures;
	long lies;                  /* failed, yet stored */
	int64_t lie_seq;
	char last_error[600];
};

static void *writer_main(void *p)
{
	struct writer *wr = p;
	static _Thread_local inv_change changes[MAX_BATCH];
	int64_t failed_seq = -1;

	while (!wr->stop) {
		inv_result *res = NULL;
		int64_t seq;
		int rc;

		if (inv_journal_last_sequence(&seq, wr->w.org) != 0) {
			wr->read_failures++;
			sleep_ms(10);
			continue;
		}
		if (failed_seq >= 0 && seq >= failed_seq) {
			wr->lies++;
			wr->lie_seq = failed_seq;
		}
		failed_seq = -1;
		seq++;
		rc = inv_apply_changes(&res, wr->w.org, changes, make_batch(&wr->w, seq, changes),
		                       NULL);
		pthread_mutex_lock(&wr->m);
		if (rc == 0) {
			if (inv_result_sequence(res) == seq)
				wr->acked = seq;
			else
				wr->lies++, wr->lie_seq = seq;
			wr->acks++;
			inv_result_free(res);
		} else if (rc == INV_EBUSY) {
			wr->busy++;
		} else {
			const char *msg = inv_error_last()->message;

			snprintf(wr->last_error, sizeof(wr->last_error), "%d %s", rc, msg);
			wr->failures++;
			if (strstr(msg, "unknown"))
				wr->unknown++;
			else
				failed_seq = seq;
		}
		pthread_mutex_unlock(&wr->m);
		if (rc != 0)
			sleep_ms(5);
	}
	return NULL;
}

static void writer_start(struct writer *wr, const char *info, const char *app)
{
	int rc;

	memset(wr, 0, sizeof(*wr));
	pthread_mutex_init(&wr->m, NULL);
	rc = world_open(&wr->w, info, app, 2);
	ck_assert_msg(rc == 0, "writer open: %d (%s)", rc, inv_error_last()->message);
	ck_assert_int_eq(pthread_create(&wr->thread, NULL, writer_main, wr), 0);
}

static long writer_acks(struct writer *wr)
{
	long n;

	pthread_mutex_lock(&wr->m);
	n = wr->acks;
	pthread_mutex_unlock(&wr->m);
	return n;
}

/* Wait (up to 60 s) until the writer has `more` acknowledgements more. */
static void writer_wait_acks(struct writer *wr, long more)
{
	long want = writer_acks(wr) + more;
	int64_t until = now_us() + 60 * 1000000;

	while (writer_acks(wr) < want) {
		ck_assert_msg(now_us() < until, "the writer stopped making progress (%ld acks, %ld "
		              "failures, last: %s)", writer_acks(wr), wr->failures, wr->last_error);
		sleep_ms(2);
	}
}

/* Stop the writer, check the store, and say what the writer saw. */
static void writer_finish(struct writer *wr, const char *what)
{
	int64_t last;

	wr->stop = 1;
	ck_assert_int_eq(pthread_join(wr->thread, NULL), 0);
	world_close(&wr->w);
	pthread_mutex_destroy(&wr->m);
	fprintf(stderr, "%s: %ld batches acknowledged, %ld failed (%ld unknown), %ld busy, "
	        "%ld failed reads; last error: %s\n", what, wr->acks, wr->failures, wr->unknown,
	        wr->busy, wr->read_failures, wr->last_error[0] ? wr->last_error : "none");
	ck_assert_msg(wr->lies == 0, "%s: %ld batches reported failed yet stored (sequence %lld)",
	              what, wr->lies, (long long)wr->lie_seq);
	last = check_consistent(what);
	ck_assert_msg(last >= wr->acked, "%s: last sequence %lld < acknowledged %lld", what,
	              (long long)last, (long long)wr->acked);
	ck_assert_int_gt(wr->acked, setup_sequence);
	drop_schema();
}

/* ------------------------------------------------------ server restarts */

static void pg_ctl(const char *action)
{
	char cmd[1400];
	const char *dir = env_need("ZINV_TEST_PG_DIR");

	snprintf(cmd, sizeof(cmd), "%s '%s/pg_ctl' -D '%s/data' -l '%s/server.log' -w -t 60 %s "
	         ">/dev/null 2>&1", env_need("ZINV_TEST_PG_RUN"), env_need("ZINV_TEST_PG_BIN"),
	         dir, dir, action);
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

START_TEST(test_server_killed_and_restarted_loses_no_acknowledged_batch)
{
	enum { RESTARTS = 3 };
	struct writer wr;
	int i;

	world_setup();
	writer_start(&wr, NULL, NULL);
	for (i = 0; i < RESTARTS; i++) {
		writer_wait_acks(&wr, 3);
		sleep_ms(rand() % 50);
		pg_ctl("-m immediate stop");
		sleep_ms(rand() % 200);
		pg_ctl("start");
	}
	writer_wait_acks(&wr, 3);
	writer_finish(&wr, "server restarts");
	/* the restarts did break the writer's connections */
	ck_assert_int_ge(wr.failures + wr.read_failures, 1);
}
END_TEST

/* ------------------------------------------------ terminated connections */

/*
 * Terminate the writer's sessions that wait on `event` (NULL: whatever
 * they do, at random moments 0-20 ms apart) until `count` were; returns
 * how many were terminated inside a transaction.
 */
/*
 * Terminate `count` distinct sessions of `app` (those waiting on `event`
 * when it is not NULL); the number of them that were inside a transaction.
 * A terminated backend shows in pg_stat_activity until it has exited, so
 * the pids already terminated are left out: each one counts once.
 */
static long terminate_sessions(struct writer *wr, const char *app, const char *event,
                               long count)
{
	PGconn *conn = PQconnectdb(conninfo());
	char sql[400 + 12 * 64], gone[12 * 64] = "";
	long done = 0, in_txn = 0;
	size_t used = 0;
	int64_t until = now_us() + 60 * 1000000;

	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
	ck_assert_int_le(count, 64);
	while (done < count) {
		PGresult *res;

		snprintf(sql, sizeof(sql), "SELECT pid, xact_start IS NOT NULL,"
		         " pg_terminate_backend(pid) FROM pg_stat_activity"
		         " WHERE application_name = '%s' AND pid <> ALL ('{%s}'::int[])%s%s%s",
		         app, gone, event ? " AND wait_event = '" : "", event ? event : "",
		         event ? "'" : "");
		res = PQexec(conn, sql);
		ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
		              PQresultErrorMessage(res));
		for (int i = 0; i < PQntuples(res) && done < count; i++) {
			if (strcmp(PQgetvalue(res, i, 2), "t") != 0)
				continue;
			used += (size_t)snprintf(gone + used, sizeof(gone) - used, "%s%s",
			                         used ? "," : "", PQgetvalue(res, i, 0));
			in_txn += strcmp(PQgetvalue(res, i, 1), "t") == 0;
			done++;
		}
		PQclear(res);
		ck_assert_msg(now_us() < until, "only %ld of %ld sessions of %s were terminated (%ld "
		              "acks, last error: %s)", done, count, app, writer_acks(wr),
		              wr->last_error);
		sleep_ms(event ? 1 : rand() % 20);
	}
	PQfinish(conn);
	return in_txn;
}

START_TEST(test_connection_terminated_during_commit_reports_the_stored_batch_as_stored)
{
	enum { KILLS = 10 };
	char info[600], app[80];
	struct writer wr;

	world_setup();
	snprintf(app, sizeof(app), "commit-%s", schema);
	/* with-cluster.sh: a session with synchronous_commit = on commits
	 * locally, then waits in COMMIT for a standby that never comes */
	snprintf(info, sizeof(info), "%s options='-c synchronous_commit=on'", conninfo());
	writer_start(&wr, info, app);
	terminate_sessions(&wr, app, "SyncRep", KILLS);
	writer_finish(&wr, "terminated during COMMIT");
	ck_assert_int_ge(wr.acks, KILLS - 1);
	ck_assert_int_eq(wr.failures, 0);
}
END_TEST

START_TEST(test_connection_terminated_in_the_middle_of_a_batch_stores_none_of_it)
{
	enum { KILLS = 10 };
	char app[80], sql[600];
	struct writer wr;
	long acks;

	world_setup();
	snprintf(app, sizeof(app), "mid-%s", schema);
	/* every batch pauses once its balances are written, until the trigger
	 * is dropped */
	snprintf(sql, sizeof(sql),
	         "CREATE FUNCTION \"%s\".pause() RETURNS trigger LANGUAGE plpgsql AS"
	         " $$BEGIN PERFORM pg_sleep(30); RETURN NULL; END$$;"
	         " CREATE TRIGGER pause AFTER INSERT OR UPDATE ON \"%s\".variants"
	         " FOR EACH STATEMENT EXECUTE FUNCTION \"%s\".pause()", schema, schema, schema);
	sql_int(sql);
	writer_start(&wr, NULL, app);
	ck_assert_int_eq(terminate_sessions(&wr, app, "PgSleep", KILLS), KILLS);
	pthread_mutex_lock(&wr.m);
	acks = wr.acks;
	pthread_mutex_unlock(&wr.m);
	ck_assert_int_eq(acks, 0);
	snprintf(sql, sizeof(sql), "DROP TRIGGER pause ON \"%s\".variants", schema);
	sql_int(sql);
	writer_wait_acks(&wr, 3);
	writer_finish(&wr, "terminated in the middle of a batch");
	ck_assert_int_ge(wr.failures, KILLS);
	ck_assert_int_eq(wr.unknown, 0);
}
END_TEST

START_TEST(test_connection_terminated_at_random_moments_loses_no_acknowledged_batch)
{
	enum { KILLS = 30 };
	char app[80];
	struct writer wr;
	long in_txn;

	world_setup();
	snprintf(app, sizeof(app), "rand-%s", schema);
	writer_start(&wr, NULL, app);
	writer_wait_acks(&wr, 1);
	in_txn = terminate_sessions(&wr, app, NULL, KILLS);
	writer_wait_acks(&wr, 3);
	fprintf(stderr, "random terminations: %d, %ld inside a transaction\n", KILLS, in_txn);
	writer_finish(&wr, "terminated at random moments");
}
END_TEST

/* ------------------------------------------------------ client SIGKILL */

static void write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(3);
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

/* The child: batches forever, each acknowledged sequence written to
 * `ack_fd` once inv_apply_changes() said it is stored; 0 first: ready. */
static void child_writer(int ack_fd, const char *app)
{
	static inv_change changes[MAX_BATCH];
	struct world w;
	int64_t seq = 0;

	if (world_open(&w, NULL, app, 1) != 0) {
		fprintf(stderr, "child: open: %s\n", inv_error_last()->message);
		_exit(10);
	}
	write_all(ack_fd, &seq, sizeof(seq));
	for (;;) {
		inv_result *res = NULL;
		int rc;

		if (inv_journal_last_sequence(&seq, w.org) != 0)
			_exit(11);
		seq++;
		rc = inv_apply_changes(&res, w.org, changes, make_batch(&w, seq, changes), NULL);
		if (rc == INV_EBUSY)
			continue;
		if (rc != 0) {
			fprintf(stderr, "child: apply: %d (%s)\n", rc, inv_error_last()->message);
			_exit(100 - rc);
		}
		if (inv_result_sequence(res) != seq)
			_exit(12);
		inv_result_free(res);
		write_all(ack_fd, &seq, sizeof(seq));
	}
}

/* Read acknowledgements until `deadline_us` (-1: EOF), or until the writer
 * says it is ready when `until_ready`; returns the last sequence. */
static int64_t read_acks(int fd, int64_t last, int64_t deadline_us, int until_ready)
{
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline_us - now_us(), seq;
		ssize_t n;

		if (deadline_us >= 0 && left <= 0)
			return last;
		if (poll(&p, 1, deadline_us < 0 ? -1 : (int)(left / 1000) + 1) <= 0)
			continue;
		n = read(fd, &seq, sizeof(seq));
		if (n == 0)
			return last;
		if (n != (ssize_t)sizeof(seq))
			continue;
		if (seq > 0)
			last = seq;
		else if (until_ready)
			return last;
	}
}

START_TEST(test_client_sigkill_never_loses_an_acknowledged_batch_nor_keeps_a_partial_one)
{
	long kills = env_long("CRASH_KILLS", 50), k;
	int64_t acked = 0, last = 0, t0 = now_us();
	struct replay replay;
	unsigned seed = (unsigned)time(NULL);

	fprintf(stderr, "client kills: %ld, seed %u\n", kills, seed);
	srand(seed);
	world_setup();
	memset(&replay, 0, sizeof(replay));
	for (k = 0; k < kills; k++) {
		int fds[2], status;
		char when[64], app[96];
		pid_t pid;

		snprintf(app, sizeof(app), "kill-%s-%ld", schema, k);
		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			child_writer(fds[1], app);
		}
		close(fds[1]);
		/* One kill in four lands anywhere from the open on; the others
		 * once the writer is writing, however slowly it started. */
		if (k % 4 != 0)
			acked = read_acks(fds[0], acked, -1, 1);
		acked = read_acks(fds[0], acked, now_us() + rand() % 40000, 0);
		kill(pid, SIGKILL);
		acked = read_acks(fds[0], acked, -1, 0);
		close(fds[0]);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		              "writer died on its own (status %d, kill %ld)", status, k);
		/* the server finishes the dead client's transaction (a COMMIT it
		 * had sent may still commit) before the check and the next writer */
		wait_sessions_gone(app);
		snprintf(when, sizeof(when), "after kill %ld", k + 1);
		/* the new entries after each kill; everything again now and then,
		 * so that a kill can be seen to damage nothing older either */
		if (k % 25 == 24)
			last = check_consistent(when);
		else
			last = check_since(when, &replay);
		ck_assert_msg(last >= acked, "%s: last sequence %lld < acknowledged %lld", when,
		              (long long)last, (long long)acked);
		acked = last;
	}
	fprintf(stderr, "client kills: %lld batches committed across %ld kills in %.1f s\n",
	        (long long)(acked - setup_sequence), kills, (double)(now_us() - t0) / 1e6);
	ck_assert_int_gt(acked, setup_sequence);
	drop_schema();
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("postgres-crash");
	TCase *tc = tcase_create("crash");

	/* a kill, the server's clean-up and a check take up to a second or two
	 * on a loaded machine; CRASH_TIMEOUT overrides */
	tcase_set_timeout(tc, (double)env_long("CRASH_TIMEOUT",
	                                       120 + 3 * env_long("CRASH_KILLS", 50)));
	tcase_add_test(tc, test_client_sigkill_never_loses_an_acknowledged_batch_nor_keeps_a_partial_one);
	tcase_add_test(tc, test_connection_terminated_during_commit_reports_the_stored_batch_as_stored);
	tcase_add_test(tc, test_connection_terminated_in_the_middle_of_a_batch_stores_none_of_it);
	tcase_add_test(tc, test_connection_terminated_at_random_moments_loses_no_acknowledged_batch);
	tcase_add_test(tc, test_server_killed_and_restarted_loses_no_acknowledged_batch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (!getenv("ZINV_TEST_PG") || !*getenv("ZINV_TEST_PG")) {
		fprintf(stderr, "check_postgres_crash: ZINV_TEST_PG is not set; run it under "
		        "tests/pg/with-cluster.sh (make check does)\n");
		return EXIT_FAILURE;
	}
	sr = srunner_create(crash_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
