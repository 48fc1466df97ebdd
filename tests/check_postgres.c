/*
 * check_postgres.c - libzinv-postgres on a real server: the conformance
 * suite and the fault wrapper, the schema rules (read from the catalog),
 * migrations, refusals that change nothing, concurrency between processes,
 * busy errors, lost connections and in-doubt commits.
 *
 * Runs under tests/pg/with-cluster.sh, which starts a throwaway cluster and
 * exports ZINV_TEST_PG; without it the program fails.  Every test uses a
 * PostgreSQL schema of its own (fresh_schema()), so tests are independent.
 */
#include <errno.h>
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

#include "conformance.h"
#include "fault_backend.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

static const char *conninfo(void)
{
	const char *s = getenv("ZINV_TEST_PG");

	ck_assert_msg(s && *s, "ZINV_TEST_PG is not set: run under tests/pg/with-cluster.sh");
	return s;
}

/* A schema name no other test (or process) uses. */
static void fresh_schema(char *out, size_t cap)
{
	static unsigned counter;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, cap, "t_%ld_%ld_%u", (long)getpid(), (long)(ts.tv_nsec / 1000),
	         counter++);
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *sql_connect(const char *info)
{
	PGconn *conn = PQconnectdb(info);

	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
	PQsetNoticeProcessor(conn, quiet, NULL);
	return conn;
}

/* Plain SQL as another client would run it, asserting success. */
static void sql_exec(const char *sql)
{
	PGconn *conn = sql_connect(conninfo());
	PGresult *res = PQexec(conn, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK ||
	              PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
	              PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(conn);
}

/* The first column of the first row as a long long (-1: no row). */
static long long sql_int(const char *sql)
{
	PGconn *conn = sql_connect(conninfo());
	PGresult *res = PQexec(conn, sql);
	long long v = -1;

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
	              PQresultErrorMessage(res));
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		v = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	return v;
}

/* The first column of the first row as text, into out ("" when none). */
static void sql_text(const char *sql, char *out, size_t cap)
{
	PGconn *conn = sql_connect(conninfo());
	PGresult *res = PQexec(conn, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
	              PQresultErrorMessage(res));
	out[0] = '\0';
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
}

static void drop_schema(const char *schema)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
	sql_exec(sql);
}

static inv_postgres_options options_for(const char *schema)
{
	inv_postgres_options o = INV_POSTGRES_OPTIONS_INIT;

	o.schema = schema;
	return o;
}

struct backend {
	const inv_backend_ops *ops;
	void *inst;
};

static struct backend backend_open_opts(const char *schema, const inv_postgres_options *o)
{
	struct backend b = { NULL, NULL };
	int rc = inv_postgres_backend_open(&b.ops, &b.inst, conninfo(), o);

	ck_assert_msg(rc == 0, "open schema %s: expected 0, got %d (%s)", schema, rc,
	              inv_error_last()->message);
	return b;
}

static struct backend backend_open(const char *schema)
{
	inv_postgres_options o = options_for(schema);

	return backend_open_opts(schema, &o);
}

static void backend_close(struct backend *b)
{
	b->ops->close(b->inst);
	b->inst = NULL;
}

/* A fresh schema, migrated by one open. */
static void migrated_schema(char *out, size_t cap)
{
	struct backend b;

	fresh_schema(out, cap);
	b = backend_open(out);
	backend_close(&b);
}

static inv_uuid uuid_n(unsigned n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = 0x42;
	u.bytes[6] = 0x40;
	u.bytes[8] = 0x80;
	u.bytes[12] = (uint8_t)(n >> 24);
	u.bytes[13] = (uint8_t)(n >> 16);
	u.bytes[14] = (uint8_t)(n >> 8);
	u.bytes[15] = (uint8_t)n;
	return u;
}

static void *begin_org(struct backend *b, unsigned org, int write)
{
	inv_uuid o = uuid_n(org);
	void *txn = NULL;
	int rc = b->ops->begin(b->inst, &o, write, &txn);

	ck_assert_msg(rc == 0, "begin: expected 0, got %d (%s)", rc, inv_error_last()->message);
	return txn;
}

static void commit(struct backend *b, void *txn)
{
	int rc = b->ops->commit(txn);

	ck_assert_msg(rc == 0, "commit: expected 0, got %d (%s)", rc, inv_error_last()->message);
}

static void put_org(struct backend *b, unsigned n, int64_t last_sequence)
{
	inv_org_record rec = { uuid_n(n), last_sequence, INV_NEGATIVE_ALLOW, 0 };
	void *txn = begin_org(b, n, 1);

	ck_assert_int_eq(b->ops->org_put(txn, &rec), 0);
	commit(b, txn);
}

/* Everything stored in `schema` (its owner, tables, and every row), as one
 * string, to prove that a refused open changed nothing. */
static char *schema_image(const char *schema)
{
	PGconn *conn = sql_connect(conninfo());
	const char *p[1] = { schema };
	PGresult *res, *rows;
	size_t cap = 256, len = 0;
	char *img = malloc(cap), sql[256];
	int i, n;

	ck_assert_ptr_nonnull(img);
	res = PQexecParams(conn, "SELECT 'owner ' || pg_catalog.pg_get_userbyid(nspowner)"
	                   " FROM pg_catalog.pg_namespace WHERE nspname = $1 UNION ALL"
	                   " SELECT * FROM (SELECT c.relname::text FROM pg_catalog.pg_class c"
	                   "  JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
	                   "  WHERE s.nspname = $1 AND c.relkind = 'r' ORDER BY 1) t",
	                   1, NULL, p, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	n = PQntuples(res);
	img[0] = '\0';
	for (i = 0; i < n; i++) {
		const char *name = PQgetvalue(res, i, 0);
		const char *data = "";

		rows = NULL;
		if (i > 0) {
			snprintf(sql, sizeof(sql), "SELECT coalesce(string_agg(t::text, ';'"
			         " ORDER BY t::text), '') FROM \"%s\".\"%s\" t", schema, name);
			rows = PQexec(conn, sql);
			ck_assert_msg(PQresultStatus(rows) == PGRES_TUPLES_OK, "%s: %s", sql,
			              PQresultErrorMessage(rows));
			data = PQgetvalue(rows, 0, 0);
		}
		while (len + strlen(name) + strlen(data) + 4 > cap) {
			cap *= 2;
			img = realloc(img, cap);
			ck_assert_ptr_nonnull(img);
		}
		len += (size_t)sprintf(img + len, "%s=%s\n", name, data);
		PQclear(rows);
	}
	PQclear(res);
	PQfinish(conn);
	return img;
}

static void assert_schema_unchanged(const char *schema, char *before)
{
	char *after = schema_image(schema);

	ck_assert_msg(strcmp(before, after) == 0, "schema %s changed:\n--- before\n%s"
	              "--- after\n%s", schema, before, after);
	free(before);
	free(after);
}

/* Open `schema` on `info`, expecting `code` and a message containing `what`. */
static void assert_open_refused(const char *info, const char *schema, int code,
                                const char *what)
{
	inv_postgres_options o = options_for(schema);
	const inv_backend_ops *ops = NULL;
	void *inst = NULL;
	int rc = inv_postgres_backend_open(&ops, &inst, info, &o);

	ck_assert_msg(rc == code, "open: expected %d, got %d (%s)", code, rc,
	              inv_error_last()->message);
	ck_assert_ptr_null(inst);
	ck_assert_msg(strstr(inv_error_last()->message, what), "message \"%s\" does not say "
	              "\"%s\"", inv_error_last()->message, what);
}

/* ------------------------------------------------------------ schema rules */

/* The scale-out rule: each table can be distributed by org because every
 * primary key and every index starts with org, and no foreign key ties rows
 * together.  schema_migrations is the one table that is not an
 * organization's (a local table on a distributed cluster). */
START_TEST(test_every_key_and_index_starts_with_org_and_there_are_no_foreign_keys)
{
	char schema[64], sql[1200];

	migrated_schema(schema, sizeof(schema));
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_catalog.pg_index i"
	         " JOIN pg_catalog.pg_class t ON t.oid = i.indrelid"
	         " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
	         " WHERE n.nspname = '%s' AND t.relname <> 'schema_migrations'", schema);
	ck_assert_int_ge(sql_int(sql), 10);
	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(x.relname, ', ') FROM pg_catalog.pg_index i"
	         " JOIN pg_catalog.pg_class t ON t.oid = i.indrelid"
	         " JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid"
	         " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
	         " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid"
	         "  AND a.attnum = i.indkey[0]"
	         " WHERE n.nspname = '%s' AND t.relname <> 'schema_migrations'"
	         " AND a.attname IS DISTINCT FROM 'org'", schema);
	{
		char bad[512];

		sql_text(sql, bad, sizeof(bad));
		ck_assert_msg(bad[0] == '\0', "indexes not starting with org: %s", bad);
	}
	/* every table but schema_migrations has a primary key starting with org */
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_catalog.pg_class t"
	         " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
	         " WHERE n.nspname = '%s' AND t.relkind = 'r' AND t.relname <> 'schema_migrations'"
	         " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
	         "  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid"
	         "   AND a.attnum = i.indkey[0]"
	         "  WHERE i.indrelid = t.oid AND i.indisprimary AND a.attname = 'org')", schema);
	ck_assert_int_eq(sql_int(sql), 0);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_catalog.pg_constraint c"
	         " JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace"
	         " WHERE n.nspname = '%s' AND c.contype = 'f'", schema);
	ck_assert_int_eq(sql_int(sql), 0);
	drop_schema(schema);
}
END_TEST

START_TEST(test_schema_migrations_lists_every_version_once)
{
	char schema[64], sql[256];
	struct backend b;

	migrated_schema(schema, sizeof(schema));
	b = backend_open(schema);
	backend_close(&b);
	snprintf(sql, sizeof(sql), "SELECT string_agg(version::text, ',' ORDER BY version)"
	         " FROM \"%s\".schema_migrations", schema);
	{
		char versions[64];

		sql_text(sql, versions, sizeof(versions));
		ck_assert_str_eq(versions, "1,2,3,4,5");
	}
	drop_schema(schema);
}
END_TEST

/* Journal records are compressed with lz4 where the server has it (Debian's
 * does), since pglz costs more than the rest of a large batch's insert. */
START_TEST(test_journal_records_are_compressed_with_lz4)
{
	char schema[64], sql[512], method[8];

	migrated_schema(schema, sizeof(schema));
	snprintf(sql, sizeof(sql),
	         "SELECT a.attcompression::text FROM pg_catalog.pg_attribute a"
	         " WHERE a.attrelid = '\"%s\".journal_entries'::regclass"
	         " AND a.attname = 'records'", schema);
	sql_text(sql, method, sizeof(method));
	ck_assert_str_eq(method, "l");
	drop_schema(schema);
}
END_TEST

START_TEST(test_newer_schema_is_refused_and_untouched)
{
	char schema[64], sql[256];
	struct backend b;
	char *before;

	fresh_schema(schema, sizeof(schema));
	b = backend_open(schema);
	put_org(&b, 1, 7);
	backend_close(&b);
	snprintf(sql, sizeof(sql), "INSERT INTO \"%s\".schema_migrations (version) VALUES (99)",
	         schema);
	sql_exec(sql);
	before = schema_image(schema);
	assert_open_refused(conninfo(), schema, INV_EFORMAT, "newer");
	assert_schema_unchanged(schema, before);
	drop_schema(schema);
}
END_TEST

START_TEST(test_foreign_schema_without_migrations_is_refused_and_untouched)
{
	char schema[64], sql[512];
	char *before;

	fresh_schema(schema, sizeof(schema));
	snprintf(sql, sizeof(sql), "CREATE SCHEMA \"%s\"; CREATE TABLE \"%s\".accounts (id int);"
	         " INSERT INTO \"%s\".accounts VALUES (1)", schema, schema, schema);
	sql_exec(sql);
	before = schema_image(schema);
	assert_open_refused(conninfo(), schema, INV_EFORMAT, "not a libzinv schema");
	assert_schema_unchanged(schema, before);
	drop_schema(schema);
}
END_TEST

START_TEST(test_schema_owned_by_another_role_is_refused_and_untouched)
{
	char schema[64], sql[256];
	char *before;

	fresh_schema(schema, sizeof(schema));
	sql_exec("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname ="
	         " 'zinv_other') THEN CREATE ROLE zinv_other NOLOGIN; END IF; END $$");
	snprintf(sql, sizeof(sql), "CREATE SCHEMA \"%s\" AUTHORIZATION zinv_other", schema);
	sql_exec(sql);
	before = schema_image(schema);
	assert_open_refused(conninfo(), schema, INV_EBACKEND, "owned by role \"zinv_other\"");
	assert_schema_unchanged(schema, before);
	drop_schema(schema);
}
END_TEST

/* The password role over TCP: "host=127.0.0.1 port=... user=... password=...". */
static void password_conninfo(char *out, size_t cap, const char *password)
{
	const char *user = getenv("ZINV_TEST_PG_PW_USER"), *port = getenv("PGPORT");

	ck_assert_msg(user && port, "ZINV_TEST_PG_PW_USER and PGPORT must be set");
	snprintf(out, cap, "host=127.0.0.1 port=%s dbname=zinv_test user=%s password=%s", port,
	         user, password);
}

START_TEST(test_wrong_password_is_refused_and_nothing_is_created)
{
	char schema[64], info[256], sql[256];
	struct backend b;
	const char *pass = getenv("ZINV_TEST_PG_PW_PASS");

	ck_assert_ptr_nonnull(pass);
	fresh_schema(schema, sizeof(schema));
	password_conninfo(info, sizeof(info), "not-the-password");
	assert_open_refused(info, schema, INV_EBACKEND, "password authentication failed");
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'",
	         schema);
	ck_assert_int_eq(sql_int(sql), 0);
	/* the right password over the same route works */
	password_conninfo(info, sizeof(info), pass);
	{
		inv_postgres_options o = options_for(schema);
		int rc = inv_postgres_backend_open(&b.ops, &b.inst, info, &o);

		ck_assert_msg(rc == 0, "open with the password: %d (%s)", rc,
		              inv_error_last()->message);
	}
	backend_close(&b);
	ck_assert_int_eq(sql_int(sql), 1);
	drop_schema(schema);
}
END_TEST

START_TEST(test_unknown_database_is_refused_and_not_created)
{
	char schema[64], info[512];

	fresh_schema(schema, sizeof(schema));
	snprintf(info, sizeof(info), "%s dbname=zinv_no_such_database", conninfo());
	assert_open_refused(info, schema, INV_EBACKEND, "does not exist");
	ck_assert_int_eq(sql_int("SELECT count(*) FROM pg_database"
	                         " WHERE datname = 'zinv_no_such_database'"), 0);
}
END_TEST

/* ------------------------------------------------------------ processes */

/* Fork `n` children that wait on a pipe, release them at once, and return
 * how many exited with status 0.  fn runs in the child; its value is the
 * child's exit status. */
static int run_children(int n, int (*fn)(int i, void *arg), void *arg)
{
	int gate[2], i, ok = 0;
	pid_t pids[16];

	ck_assert_int_le(n, 16);
	ck_assert_int_eq(pipe(gate), 0);
	for (i = 0; i < n; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			char c;

			close(gate[1]);
			if (read(gate[0], &c, 1) < 0)
				_exit(90);
			_exit(fn(i, arg));
		}
	}
	close(gate[0]);
	close(gate[1]);         /* EOF releases every child at once */
	for (i = 0; i < n; i++) {
		int st = 0;

		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
		else
			fprintf(stderr, "child %d: status 0x%x\n", i, st);
	}
	return ok;
}

static int child_open(int i, void *arg)
{
	inv_postgres_options o = options_for(arg);
	const inv_backend_ops *ops;
	void *inst;
	int rc = inv_postgres_backend_open(&ops, &inst, conninfo(), &o);

	(void)i;
	if (rc) {
		fprintf(stderr, "open: %d (%s)\n", rc, inv_error_last()->message);
		return 1;
	}
	ops->close(inst);
	return 0;
}

START_TEST(test_processes_opening_an_empty_database_at_once_migrate_once)
{
	char schema[64], sql[256], versions[64];

	fresh_schema(schema, sizeof(schema));
	ck_assert_int_eq(run_children(4, child_open, schema), 4);
	snprintf(sql, sizeof(sql), "SELECT string_agg(version::text, ',' ORDER BY version)"
	         " FROM \"%s\".schema_migrations", schema);
	sql_text(sql, versions, sizeof(versions));
	ck_assert_str_eq(versions, "1,2,3,4,5");
	drop_schema(schema);
}
END_TEST

enum { WRITERS = 4, BATCHES_EACH = 25 };

static const inv_uuid P_ONE = { { 0x42, 1, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1 } };
static const inv_uuid V_ONE = { { 0x42, 2, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1 } };
static const inv_uuid V_TWO = { { 0x42, 2, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 2 } };

/* Each writer: its own store, BATCHES_EACH batches of V_ONE +1 and
 * V_TWO +2, retrying INV_EBUSY. */
static int child_write(int i, void *arg)
{
	inv_postgres_options o = options_for(arg);
	inv_uuid org = uuid_n(1);
	const inv_variant *v1, *v2;
	const inv_location *from, *to;
	inv_store *store;
	inv_org *g;
	int b, rc;

	(void)i;
	if ((rc = inv_store_open_postgres(&store, conninfo(), &o, NULL)) ||
	    (rc = inv_org_open(&g, store, &org)) ||
	    (rc = inv_variant_get(&v1, g, &P_ONE, &V_ONE)) ||
	    (rc = inv_variant_get(&v2, g, &P_ONE, &V_TWO)) ||
	    (rc = inv_location_by_type(&from, g, INV_LOCATION_SUPPLIER)) ||
	    (rc = inv_location_by_type(&to, g, INV_LOCATION_STORE))) {
		fprintf(stderr, "writer setup: %d (%s)\n", rc, inv_error_last()->message);
		return 1;
	}
	for (b = 0; b < BATCHES_EACH; b++) {
		inv_change ch[2] = { { v1, from, to, 1 }, { v2, from, to, 2 } };

		while ((rc = inv_apply_changes(NULL, g, ch, 2, NULL)) == INV_EBUSY)
			;
		if (rc) {
			fprintf(stderr, "writer batch: %d (%s)\n", rc, inv_error_last()->message);
			return 1;
		}
	}
	inv_org_close(g);
	inv_store_close(store);
	return 0;
}

START_TEST(test_four_processes_writing_one_org_end_with_exact_balances_and_gapless_journal)
{
	char schema[64];
	inv_postgres_options o;
	inv_uuid org = uuid_n(1);
	const inv_variant *v1, *v2;
	inv_journal *j;
	inv_store *store;
	inv_org *g;
	int64_t bal, last;
	size_t i, n;

	fresh_schema(schema, sizeof(schema));
	o = options_for(schema);
	/* the organization and tracking exist before the writers start */
	ck_assert_int_eq(inv_store_open_postgres(&store, conninfo(), &o, NULL), 0);
	ck_assert_int_eq(inv_org_open(&g, store, &org), 0);
	ck_assert_int_eq(inv_tracking_start(g, &P_ONE), 0);
	inv_org_close(g);
	inv_store_close(store);

	ck_assert_int_eq(run_children(WRITERS, child_write, schema), WRITERS);

	ck_assert_int_eq(inv_store_open_postgres(&store, conninfo(), &o, NULL), 0);
	ck_assert_int_eq(inv_org_open(&g, store, &org), 0);
	ck_assert_int_eq(inv_variant_get(&v1, g, &P_ONE, &V_ONE), 0);
	ck_assert_int_eq(inv_variant_get(&v2, g, &P_ONE, &V_TWO), 0);
	ck_assert_int_eq(inv_balance_get(&bal, g, v1, NULL), 0);
	ck_assert_int_eq(bal, WRITERS * BATCHES_EACH);
	ck_assert_int_eq(inv_balance_get(&bal, g, v2, NULL), 0);
	ck_assert_int_eq(bal, 2 * WRITERS * BATCHES_EACH);
	ck_assert_int_eq(inv_journal_read(&j, g, NULL), 0);
	n = inv_journal_count(j);
	ck_assert_uint_ge(n, WRITERS * BATCHES_EACH);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(inv_journal_entry_sequence(inv_journal_at(j, i)), (int64_t)i + 1);
	ck_assert_int_eq(inv_journal_last_sequence(&last, g), 0);
	ck_assert_int_eq(last, (int64_t)n);
	inv_journal_free(j);
	inv_org_close(g);
	inv_store_close(store);
	drop_schema(schema);
}
END_TEST

/* An idempotency key is bytes, not text in the database's encoding: a key that is
 * not UTF-8 is stored, replays, and reads back byte for byte. */
START_TEST(test_idempotency_key_is_any_bytes_not_text)
{
	static const char key[] = "\x84\x45\xf5\xff-key";
	char schema[64];
	inv_postgres_options o;
	inv_uuid org = uuid_n(1);
	inv_apply_options ao = INV_APPLY_OPTIONS_INIT;
	const inv_variant *v;
	const inv_location *from, *to;
	inv_result *r;
	inv_journal *j;
	inv_store *store;
	inv_org *g;
	int64_t bal;

	fresh_schema(schema, sizeof(schema));
	o = options_for(schema);
	ck_assert_int_eq(inv_store_open_postgres(&store, conninfo(), &o, NULL), 0);
	ck_assert_int_eq(inv_org_open(&g, store, &org), 0);
	ck_assert_int_eq(inv_tracking_start(g, &P_ONE), 0);
	ck_assert_int_eq(inv_variant_get(&v, g, &P_ONE, &V_ONE), 0);
	ck_assert_int_eq(inv_location_by_type(&from, g, INV_LOCATION_SUPPLIER), 0);
	ck_assert_int_eq(inv_location_by_type(&to, g, INV_LOCATION_STORE), 0);
	ao.idempotency_key = key;
	for (int round = 0; round < 2; round++) {
		inv_change ch = { v, from, to, 5 };

		ck_assert_int_eq(inv_apply_changes(&r, g, &ch, 1, &ao), 0);
		ck_assert_int_eq(inv_result_replayed(r), round == 1);
		inv_result_free(r);
	}
	ck_assert_int_eq(inv_balance_get(&bal, g, v, NULL), 0);
	ck_assert_int_eq(bal, 5);
	ck_assert_int_eq(inv_journal_read(&j, g, NULL), 0);
	ck_assert_uint_eq(inv_journal_count(j), 2); /* tracking started, then the batch once */
	ck_assert_str_eq(inv_journal_entry_idempotency_key(inv_journal_at(j, 1)), key);
	inv_journal_free(j);
	inv_org_close(g);
	inv_store_close(store);
	drop_schema(schema);
}
END_TEST

/* A write transaction learns with its lock whether the organization has
 * low-stock entries; a level that another store set since must still be
 * seen by the next batch. */
/* An in-doubt COMMIT is decided by the journal entry that carries its own
 * transaction's random writer id, never by the transaction id alone: after
 * a crash the server hands a lost transaction's id out again. */
START_TEST(test_each_journal_entry_names_the_transaction_that_wrote_it)
{
	char schema[64], sql[512], counts[64];
	inv_postgres_options o;
	inv_uuid org = uuid_n(1);
	const inv_location *supplier, *store_loc;
	const inv_variant *v;
	inv_store *a;
	inv_org *g;
	int i;

	fresh_schema(schema, sizeof(schema));
	o = options_for(schema);
	ck_assert_int_eq(inv_store_open_postgres(&a, conninfo(), &o, NULL), 0);
	ck_assert_int_eq(inv_org_open(&g, a, &org), 0);
	ck_assert_int_eq(inv_tracking_start(g, &P_ONE), 0);
	ck_assert_int_eq(inv_variant_get(&v, g, &P_ONE, &V_ONE), 0);
	ck_assert_int_eq(inv_location_by_type(&supplier, g, INV_LOCATION_SUPPLIER), 0);
	ck_assert_int_eq(inv_location_by_type(&store_loc, g, INV_LOCATION_STORE), 0);
	for (i = 0; i < 3; i++) {
		inv_change in = { v, supplier, store_loc, 1 };
		ck_assert_int_eq(inv_apply_changes(NULL, g, &in, 1, NULL), 0);
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) || ' ' || count(DISTINCT writer) || ' ' ||"
	         " count(*) FILTER (WHERE writer IS NULL) FROM \"%s\".journal_entries", schema);
	sql_text(sql, counts, sizeof(counts));
	ck_assert_str_eq(counts, "4 4 0");
	inv_org_close(g);
	inv_store_close(a);
	drop_schema(schema);
}
END_TEST

START_TEST(test_level_set_by_another_process_alerts_the_next_batch)
{
	char schema[64];
	inv_postgres_options o;
	inv_store *a, *b;

	fresh_schema(schema, sizeof(schema));
	o = options_for(schema);
	ck_assert_int_eq(inv_store_open_postgres(&a, conninfo(), &o, NULL), 0);
	ck_assert_int_eq(inv_store_open_postgres(&b, conninfo(), &o, NULL), 0);
	tu_assert_level_set_elsewhere_alerts_the_next_batch(a, b);
	inv_store_close(b);
	inv_store_close(a);
	drop_schema(schema);
}
END_TEST

/* ------------------------------------------------------------ locks, busy */

START_TEST(test_writers_of_two_orgs_do_not_block_each_other)
{
	char schema[64];
	inv_postgres_options o;
	struct backend a, b;
	inv_org_record rec2 = { uuid_n(2), 5, INV_NEGATIVE_ALLOW, 0 };
	void *ta, *tb;

	fresh_schema(schema, sizeof(schema));
	o = options_for(schema);
	o.statement_timeout_ms = 2000;      /* a wait would fail, not hang */
	a = backend_open_opts(schema, &o);
	b = backend_open_opts(schema, &o);
	put_org(&a, 1, 1);
	put_org(&b, 2, 1);
	ta = begin_org(&a, 1, 1);           /* org 1's lock held open */
	tb = begin_org(&b, 2, 1);
	ck_assert_int_eq(b.ops->org_put(tb, &rec2), 0);
	commit(&b, tb);
	a.ops->rollback(ta);
	tb = begin_org(&b, 2, 0);
	{
		inv_org_record out;
		inv_uuid o2 = uuid_n(2);

		ck_assert_int_eq(b.ops->org_get(tb, &o2, &out), 0);
		ck_assert_int_eq(out.last_sequence, 5);
	}
	b.ops->rollback(tb);
	backend_close(&a);
	backend_close(&b);
	drop_schema(schema);
}
END_TEST

START_TEST(test_writer_queued_behind_the_org_lock_past_the_timeout_is_ebusy)
{
	char schema[64];
	inv_postgres_options o;
	struct backend a, b;
	inv_uuid org = uuid_n(1);
	void *ta, *tb = NULL;
	int rc;

	fresh_schema(schema, sizeof(schema));
	o = options_for(schema);
	o.statement_timeout_ms = 300;
	a = backend_open_opts(schema, &o);
	b = backend_open_opts(schema, &o);
	put_org(&a, 1, 1);
	ta = begin_org(&a, 1, 1);
	rc = b.ops->begin(b.inst, &org, 1, &tb);
	ck_assert_msg(rc == INV_EBUSY, "begin behind a held lock: %d (%s)", rc,
	              inv_error_last()->message);
	ck_assert_ptr_null(tb);
	ck_assert_ptr_nonnull(strstr(inv_error_last()->message, "retry"));
	a.ops->rollback(ta);
	tb = begin_org(&b, 1, 1);           /* free again: the same call succeeds */
	b.ops->rollback(tb);
	backend_close(&a);
	backend_close(&b);
	drop_schema(schema);
}
END_TEST

/* Journal appends are pipelined, so a sequence that does not increase is
 * an error of the statement (not a row count checked afterwards) and the
 * COMMIT queued behind it stores nothing. */
static int append_and_commit(struct backend *b, int64_t sequence)
{
	inv_uuid org = uuid_n(1);
	inv_journal_entry_record e;
	void *txn = begin_org(b, 1, 1);

	memset(&e, 0, sizeof(e));
	e.sequence = sequence;
	ck_assert_int_eq(b->ops->journal_append(txn, &org, &e), 0);
	return b->ops->commit(txn);
}

START_TEST(test_journal_sequence_that_does_not_increase_fails_the_commit)
{
	char schema[64], sql[256], seqs[64];
	struct backend b;

	fresh_schema(schema, sizeof(schema));
	b = backend_open(schema);
	ck_assert_int_eq(append_and_commit(&b, 5), 0);
	ck_assert_int_eq(append_and_commit(&b, 5), INV_EBACKEND);
	ck_assert_int_eq(append_and_commit(&b, 4), INV_EBACKEND);
	ck_assert_ptr_nonnull(strstr(inv_error_last()->message, "not increasing"));
	ck_assert_int_eq(append_and_commit(&b, 6), 0);
	snprintf(sql, sizeof(sql), "SELECT string_agg(sequence::text, ',' ORDER BY sequence)"
	         " FROM \"%s\".journal_entries", schema);
	sql_text(sql, seqs, sizeof(seqs));
	ck_assert_str_eq(seqs, "5,6");
	backend_close(&b);
	drop_schema(schema);
}
END_TEST

/* A trigger that raises `sqlstate` on every write of the tracking table,
 * as the server does on a serialization failure or a deadlock. */
static void raise_on_tracking(const char *schema, const char *sqlstate)
{
	char sql[600];

	snprintf(sql, sizeof(sql),
	         "CREATE FUNCTION \"%s\".fail() RETURNS trigger LANGUAGE plpgsql AS"
	         " $$BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '%s'; END$$;"
	         " CREATE TRIGGER fail BEFORE INSERT OR UPDATE ON \"%s\".tracking"
	         " FOR EACH ROW EXECUTE FUNCTION \"%s\".fail()", schema, sqlstate, schema, schema);
	sql_exec(sql);
}

static void assert_tracking_put_fails_with(const char *sqlstate, int code)
{
	char schema[64];
	struct backend b;
	inv_uuid org = uuid_n(1), product = uuid_n(9);
	int32_t tracked;
	void *txn;
	int rc;

	fresh_schema(schema, sizeof(schema));
	b = backend_open(schema);
	raise_on_tracking(schema, sqlstate);
	txn = begin_org(&b, 1, 1);
	/* writes are pipelined: the failure comes back from the next read */
	ck_assert_int_eq(b.ops->tracking_put(txn, &org, &product, 1), 0);
	rc = b.ops->tracking_get(txn, &org, &product, &tracked);
	ck_assert_msg(rc == code, "%s: expected %d, got %d (%s)", sqlstate, code, rc,
	              inv_error_last()->message);
	ck_assert_ptr_nonnull(strstr(inv_error_last()->message, sqlstate));
	/* the transaction is done for: commit refuses, nothing is stored */
	ck_assert_int_eq(b.ops->commit(txn), INV_EBACKEND);
	txn = begin_org(&b, 1, 0);
	ck_assert_int_eq(b.ops->tracking_get(txn, &org, &product, &tracked), INV_ENOTFOUND);
	b.ops->rollback(txn);
	backend_close(&b);
	drop_schema(schema);
}

START_TEST(test_serialization_failure_is_ebusy)
{
	assert_tracking_put_fails_with("40001", INV_EBUSY);
}
END_TEST

START_TEST(test_deadlock_is_ebusy)
{
	assert_tracking_put_fails_with("40P01", INV_EBUSY);
}
END_TEST

START_TEST(test_other_server_errors_are_ebackend)
{
	assert_tracking_put_fails_with("23514", INV_EBACKEND);
}
END_TEST

/* ------------------------------------------------------------ lost connections */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Terminate every session of application `app`; how many there were. */
static long long terminate_app(const char *app)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(pg_terminate_backend(pid)) FROM"
	         " pg_stat_activity WHERE application_name = '%s'", app);
	return sql_int(sql);
}

/* Wait until a session of `app` waits on `event`; 1 when it does. */
static int wait_for_event(const char *app, const char *event)
{
	char sql[256];
	int i;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity"
	         " WHERE application_name = '%s' AND wait_event = '%s'", app, event);
	for (i = 0; i < 200; i++) {
		if (sql_int(sql) > 0)
			return 1;
		sleep_ms(25);
	}
	return 0;
}

START_TEST(test_terminated_pooled_connection_fails_one_call_and_is_replaced)
{
	char schema[64], app[72];
	inv_postgres_options o;
	struct backend b;
	inv_uuid org = uuid_n(1);
	inv_org_record rec = { org, 3, INV_NEGATIVE_ALLOW, 0 }, out;
	void *txn = NULL;
	int rc;

	fresh_schema(schema, sizeof(schema));
	snprintf(app, sizeof(app), "a%s", schema);
	o = options_for(schema);
	o.application_name = app;
	o.pool_size = 1;
	b = backend_open_opts(schema, &o);
	put_org(&b, 1, 1);
	/* idle in the pool: the next call finds it gone */
	ck_assert_int_eq(terminate_app(app), 1);
	sleep_ms(50);
	rc = b.ops->begin(b.inst, &org, 1, &txn);
	ck_assert_msg(rc == INV_EBACKEND, "begin on a dead connection: %d (%s)", rc,
	              inv_error_last()->message);
	ck_assert_ptr_nonnull(strstr(inv_error_last()->message, "connection"));
	/* the next call reconnects */
	txn = begin_org(&b, 1, 1);
	ck_assert_int_eq(b.ops->org_put(txn, &rec), 0);
	/* in the middle of a transaction: that transaction fails, nothing kept */
	ck_assert_int_eq(terminate_app(app), 1);
	sleep_ms(50);
	rec.last_sequence = 4;
	ck_assert_int_eq(b.ops->org_put(txn, &rec), 0);        /* pipelined */
	rc = b.ops->commit(txn);
	ck_assert_msg(rc == INV_EBACKEND, "commit on a dead connection: %d (%s)", rc,
	              inv_error_last()->message);
	ck_assert_ptr_nonnull(strstr(inv_error_last()->message, "nothing was stored"));
	txn = begin_org(&b, 1, 0);
	ck_assert_int_eq(b.ops->org_get(txn, &org, &out), 0);
	ck_assert_int_eq(out.last_sequence, 1);
	b.ops->rollback(txn);
	backend_close(&b);
	drop_schema(schema);
}
END_TEST

/* The in-doubt COMMIT: a session with synchronous_commit = on waits for a
 * standby that never comes (with-cluster.sh) after committing locally. */
struct committer {
	struct backend *b;
	void *txn;
	int rc;
	char message[700];
};

static void *commit_thread(void *arg)
{
	struct committer *c = arg;

	c->rc = c->b->ops->commit(c->txn);
	snprintf(c->message, sizeof(c->message), "%s", c->rc ? inv_error_last()->message : "");
	return NULL;
}

/* Open with synchronous_commit = on, write org 1 with last_sequence 2 and
 * journal entry 2, COMMIT in a thread, wait until the session waits on
 * `event`, terminate it, and return what commit said. */
static void in_doubt_commit(const char *schema, const char *event, struct committer *c,
                            struct backend *b)
{
	char app[72], info[600];
	inv_postgres_options o = options_for(schema);
	inv_uuid org = uuid_n(1);
	inv_org_record rec = { org, 2, INV_NEGATIVE_ALLOW, 0 };
	inv_journal_entry_record e;
	pthread_t th;

	memset(&e, 0, sizeof(e));
	e.sequence = 2;
	e.time = 1;
	snprintf(app, sizeof(app), "d%s", schema);
	snprintf(info, sizeof(info), "%s options='-c synchronous_commit=on'", conninfo());
	o.application_name = app;
	{
		int rc = inv_postgres_backend_open(&b->ops, &b->inst, info, &o);

		ck_assert_msg(rc == 0, "open: %d (%s)", rc, inv_error_last()->message);
	}
	c->b = b;
	c->txn = begin_org(b, 1, 1);
	ck_assert_int_eq(b->ops->org_put(c->txn, &rec), 0);
	ck_assert_int_eq(b->ops->journal_append(c->txn, &org, &e), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, commit_thread, c), 0);
	ck_assert_msg(wait_for_event(app, event), "the COMMIT never waited on %s", event);
	ck_assert_int_eq(terminate_app(app), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	fprintf(stderr, "in-doubt COMMIT (%s): commit returned %d \"%s\"\n", event, c->rc,
	        c->message);
}

static long long stored_sequence(const char *schema)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT (SELECT last_sequence FROM \"%s\".organizations)"
	         " * 10 + (SELECT count(*) FROM \"%s\".journal_entries WHERE sequence = 2)",
	         schema, schema);
	return sql_int(sql);
}

START_TEST(test_in_doubt_commit_that_was_stored_reports_success)
{
	char schema[64];
	struct committer c;
	struct backend b;

	fresh_schema(schema, sizeof(schema));
	b = backend_open(schema);
	backend_close(&b);
	in_doubt_commit(schema, "SyncRep", &c, &b);
	ck_assert_msg(c.rc == 0, "a stored batch reported as failed: %d (%s)", c.rc, c.message);
	ck_assert_int_eq(stored_sequence(schema), 21);
	backend_close(&b);
	drop_schema(schema);
}
END_TEST

START_TEST(test_in_doubt_commit_that_was_not_stored_reports_failure)
{
	char schema[64], sql[800];
	struct committer c;
	struct backend b;

	fresh_schema(schema, sizeof(schema));
	b = backend_open(schema);
	backend_close(&b);
	/* COMMIT runs a deferred trigger that sleeps: killed there, the
	 * transaction never commits */
	snprintf(sql, sizeof(sql),
	         "CREATE FUNCTION \"%s\".slow() RETURNS trigger LANGUAGE plpgsql AS"
	         " $$BEGIN PERFORM pg_sleep(20); RETURN NULL; END$$;"
	         " CREATE CONSTRAINT TRIGGER slow AFTER INSERT OR UPDATE ON \"%s\".organizations"
	         " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION \"%s\".slow()",
	         schema, schema, schema);
	sql_exec(sql);
	in_doubt_commit(schema, "PgSleep", &c, &b);
	ck_assert_msg(c.rc == INV_EBACKEND, "a lost batch reported as %d (%s)", c.rc, c.message);
	ck_assert_ptr_nonnull(strstr(c.message, "nothing was stored"));
	ck_assert_int_eq(stored_sequence(schema), -1);
	backend_close(&b);
	drop_schema(schema);
}
END_TEST

/* ------------------------------------------------------------ conformance */

/* A conformance target: a fresh schema per test, dropped afterwards. */
struct target_ctx {
	int wrapped;
	char schema[64];
};

static int target_open(const inv_backend_ops **ops, void **inst, void *ctx)
{
	struct target_ctx *c = ctx;
	inv_postgres_options o;
	const inv_backend_ops *inner_ops;
	void *inner;
	int rc;

	fresh_schema(c->schema, sizeof(c->schema));
	o = options_for(c->schema);
	if (!c->wrapped)
		return inv_postgres_backend_open(ops, inst, conninfo(), &o);
	if ((rc = inv_postgres_backend_open(&inner_ops, &inner, conninfo(), &o)))
		return rc;
	if ((rc = inv_fault_backend_wrap(ops, inst, inner_ops, inner)))
		inner_ops->close(inner);
	return rc;
}

static int target_reopen(const inv_backend_ops **ops, void **inst, void *ctx)
{
	struct target_ctx *c = ctx;
	inv_postgres_options o = options_for(c->schema);

	(*ops)->close(*inst);
	*inst = NULL;
	return inv_postgres_backend_open(ops, inst, conninfo(), &o);
}

static void target_close(const inv_backend_ops *ops, void *inst, void *ctx)
{
	struct target_ctx *c = ctx;

	if (inst)
		ops->close(inst);
	drop_schema(c->schema);
}

static struct target_ctx plain_ctx = { 0, "" };
static struct target_ctx wrapped_ctx = { 1, "" };

/* ------------------------------------------------------------ runner */

static Suite *postgres_suite(void)
{
	Suite *s = suite_create("postgres");
	TCase *tc = tcase_create("server");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_every_key_and_index_starts_with_org_and_there_are_no_foreign_keys);
	tcase_add_test(tc, test_schema_migrations_lists_every_version_once);
	tcase_add_test(tc, test_journal_records_are_compressed_with_lz4);
	tcase_add_test(tc, test_newer_schema_is_refused_and_untouched);
	tcase_add_test(tc, test_foreign_schema_without_migrations_is_refused_and_untouched);
	tcase_add_test(tc, test_schema_owned_by_another_role_is_refused_and_untouched);
	tcase_add_test(tc, test_wrong_password_is_refused_and_nothing_is_created);
	tcase_add_test(tc, test_unknown_database_is_refused_and_not_created);
	tcase_add_test(tc, test_processes_opening_an_empty_database_at_once_migrate_once);
	tcase_add_test(tc, test_four_processes_writing_one_org_end_with_exact_balances_and_gapless_journal);
	tcase_add_test(tc, test_idempotency_key_is_any_bytes_not_text);
	tcase_add_test(tc, test_level_set_by_another_process_alerts_the_next_batch);
	tcase_add_test(tc, test_each_journal_entry_names_the_transaction_that_wrote_it);
	tcase_add_test(tc, test_writers_of_two_orgs_do_not_block_each_other);
	tcase_add_test(tc, test_writer_queued_behind_the_org_lock_past_the_timeout_is_ebusy);
	tcase_add_test(tc, test_journal_sequence_that_does_not_increase_fails_the_commit);
	tcase_add_test(tc, test_serialization_failure_is_ebusy);
	tcase_add_test(tc, test_deadlock_is_ebusy);
	tcase_add_test(tc, test_other_server_errors_are_ebackend);
	tcase_add_test(tc, test_terminated_pooled_connection_fails_one_call_and_is_replaced);
	tcase_add_test(tc, test_in_doubt_commit_that_was_stored_reports_success);
	tcase_add_test(tc, test_in_doubt_commit_that_was_not_stored_reports_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const struct inv_conformance_target plain_target = {
		.open = target_open, .reopen = target_reopen, .close = target_close,
		.ctx = &plain_ctx,
	};
	const struct inv_conformance_target wrapped_target = {
		.open = target_open, .close = target_close, .ctx = &wrapped_ctx,
	};
	SRunner *sr;
	int failed;

	if (!getenv("ZINV_TEST_PG") || !*getenv("ZINV_TEST_PG")) {
		fprintf(stderr, "check_postgres: ZINV_TEST_PG is not set; run it under "
		        "tests/pg/with-cluster.sh (make check-unit does)\n");
		return EXIT_FAILURE;
	}
	sr = srunner_create(postgres_suite());
	srunner_add_suite(sr, inv_conformance_suite("conformance/postgres", &plain_target));
	srunner_add_suite(sr, inv_conformance_suite("conformance/fault(postgres)",
	                                            &wrapped_target));
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
