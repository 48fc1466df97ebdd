/*
 * pool.c - libzinv-postgres: connections, errors, schema migrations.
 *
 * The pool is a fixed array of connection slots guarded by one mutex and a
 * condition variable.  A slot is connected when first taken; one whose
 * connection was lost is closed when given back, so the next begin() on it
 * reconnects and the call that met the loss fails on its own.
 *
 * Migrations: a table schema_migrations (version, applied) lists the steps
 * applied.  Opening takes a session advisory lock keyed by the schema name,
 * so processes starting at the same moment migrate one after another: the
 * first applies the steps, each in its own transaction, the others find
 * them applied.  A version above the library's is refused.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "pg_int.h"

/* Advisory lock class of the migration lock: "zinv" as an int4. */
#define PG_LOCK_CLASS "2053729910"

/* ------------------------------------------------------------ schema */

/* Migration steps: steps[i] takes a schema from version i to i + 1.
 * Never edit a released step; append one.  Every key and index starts with
 * org, and nothing refers across organizations, so that each table can be
 * distributed by org. */
static const char *const migration_steps[] = {
	/* 0 -> 1 */
	"CREATE TABLE org_locks ("
	"  org uuid NOT NULL PRIMARY KEY);"
	"CREATE TABLE organizations ("
	"  org uuid NOT NULL PRIMARY KEY,"
	"  last_sequence bigint NOT NULL,"
	"  negative_policy integer NOT NULL);"
	"CREATE TABLE locations ("
	"  org uuid NOT NULL,"
	"  uuid uuid NOT NULL,"
	"  type integer NOT NULL,"
	"  is_default integer NOT NULL,"
	"  PRIMARY KEY (org, uuid));"
	"CREATE TABLE tracking ("
	"  org uuid NOT NULL,"
	"  product uuid NOT NULL,"
	"  tracked integer NOT NULL,"
	"  PRIMARY KEY (org, product));"
	"CREATE TABLE variants ("
	"  org uuid NOT NULL,"
	"  location uuid NOT NULL,"
	"  variant uuid NOT NULL,"
	"  product uuid NOT NULL,"
	"  balance bigint NOT NULL,"
	"  updated bigint NOT NULL,"
	"  PRIMARY KEY (org, location, variant));"
	"CREATE INDEX variants_by_product ON variants (org, product, location);"
	"CREATE TABLE low_stock ("
	"  org uuid NOT NULL,"
	"  location uuid NOT NULL,"
	"  product uuid NOT NULL,"
	"  variant uuid NOT NULL,"
	"  level bigint,"
	"  alert integer NOT NULL,"
	"  PRIMARY KEY (org, location, product, variant));"
	"CREATE TABLE journal_entries ("
	"  org uuid NOT NULL,"
	"  sequence bigint NOT NULL,"
	"  time bigint NOT NULL,"
	"  external_uuid uuid,"
	"  user_uuid uuid,"
	"  client_uuid uuid,"
	"  idempotency_key text,"
	"  record_count bigint NOT NULL,"
	"  records bytea NOT NULL,"
	"  PRIMARY KEY (org, sequence));"
	"CREATE TABLE idempotency_keys ("
	"  org uuid NOT NULL,"
	"  key text NOT NULL,"
	"  fingerprint bytea NOT NULL,"
	"  sequence bigint NOT NULL,"
	"  result bytea NOT NULL,"
	"  PRIMARY KEY (org, key));",
	/* 1 -> 2: the organization's sync state (storage ops version 2) */
	"CREATE TABLE sync_state ("
	"  org uuid NOT NULL PRIMARY KEY,"
	"  data bytea NOT NULL);",
	/* 2 -> 3: an idempotency key is bytes (any byte but NUL), not text in the
	 * database's encoding */
	"ALTER TABLE journal_entries ALTER COLUMN idempotency_key TYPE bytea"
	"  USING pg_catalog.convert_to(idempotency_key, 'UTF8');"
	"ALTER TABLE idempotency_keys ALTER COLUMN key TYPE bytea"
	"  USING pg_catalog.convert_to(key, 'UTF8');",
	/* 3 -> 4: a batch's records (112 bytes a change, stored out of line
	 * from about 20 changes) are compressed with lz4, several times
	 * faster than the default pglz; a server built without lz4 keeps
	 * pglz */
	"DO $$ BEGIN"
	"  EXECUTE 'ALTER TABLE journal_entries ALTER COLUMN records SET COMPRESSION lz4';"
	" EXCEPTION WHEN feature_not_supported THEN NULL;"
	" END $$;",
	/* 4 -> 5: the random id of the transaction that wrote an entry, so
	 * that an in-doubt COMMIT finds its own entry: after a crash the
	 * server hands out the lost transaction's id again, and another
	 * writer may store the same sequence under it (NULL before 5) */
	"ALTER TABLE journal_entries ADD COLUMN writer uuid;",
};

#define PG_SCHEMA_VERSION ((int)(sizeof(migration_steps) / sizeof(migration_steps[0])))

#define VARIANT_COLUMNS "location, variant, product, balance, updated"
#define LOW_STOCK_COLUMNS "location, product, variant, level, alert"

const char *const pg_stmt_sql[ST_COUNT] = {
	/* the transaction id is free here: locking a row assigns one */
	[ST_LOCK_ORG] =
		"SELECT pg_catalog.pg_current_xact_id()::text FROM org_locks"
		" WHERE org = $1::uuid FOR UPDATE",
	[ST_CREATE_ORG] =
		"INSERT INTO org_locks (org) VALUES ($1::uuid) ON CONFLICT DO NOTHING",
	[ST_ORG_GET] =
		"SELECT last_sequence, negative_policy FROM organizations WHERE org = $1::uuid",
	[ST_ORG_PUT] =
		"INSERT INTO organizations (org, last_sequence, negative_policy)"
		" VALUES ($1::uuid, $2::bigint, $3::integer)"
		" ON CONFLICT (org) DO UPDATE SET last_sequence = excluded.last_sequence,"
		" negative_policy = excluded.negative_policy",
	[ST_LOCATION_SCAN] =
		"SELECT uuid, type, is_default FROM locations WHERE org = $1::uuid",
	[ST_LOCATION_PUT] =
		"INSERT INTO locations (org, uuid, type, is_default)"
		" VALUES ($1::uuid, $2::uuid, $3::integer, $4::integer)"
		" ON CONFLICT (org, uuid) DO UPDATE SET type = excluded.type,"
		" is_default = excluded.is_default",
	[ST_TRACKING_GET] =
		"SELECT tracked FROM tracking WHERE org = $1::uuid AND product = $2::uuid",
	[ST_TRACKING_PUT] =
		"INSERT INTO tracking (org, product, tracked) VALUES ($1::uuid, $2::uuid, $3::integer)"
		" ON CONFLICT (org, product) DO UPDATE SET tracked = excluded.tracked",
	[ST_TRACKING_SCAN] =
		"SELECT product, tracked FROM tracking WHERE org = $1::uuid",
	[ST_VARIANT_GET] =
		"SELECT " VARIANT_COLUMNS " FROM variants"
		" WHERE org = $1::uuid AND location = $2::uuid AND variant = $3::uuid",
	[ST_VARIANT_PUT] =
		"INSERT INTO variants (org, " VARIANT_COLUMNS ")"
		" VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::bigint, $6::bigint)"
		" ON CONFLICT (org, location, variant) DO UPDATE SET product = excluded.product,"
		" balance = excluded.balance, updated = excluded.updated",
	[ST_VARIANT_SCAN_ALL] =
		"SELECT " VARIANT_COLUMNS " FROM variants WHERE org = $1::uuid",
	[ST_VARIANT_SCAN_LOCATION] =
		"SELECT " VARIANT_COLUMNS " FROM variants WHERE org = $1::uuid AND location = $2::uuid",
	[ST_VARIANT_SCAN_PRODUCT] =
		"SELECT " VARIANT_COLUMNS " FROM variants WHERE org = $1::uuid AND product = $2::uuid",
	[ST_VARIANT_SCAN_BOTH] =
		"SELECT " VARIANT_COLUMNS " FROM variants"
		" WHERE org = $1::uuid AND location = $2::uuid AND product = $3::uuid",
	/* arrays through unnest: one statement however large the batch */
	[ST_VARIANT_GET_MANY] =
		"SELECT k.i, v.product, v.balance, v.updated"
		" FROM ROWS FROM (pg_catalog.unnest($2::uuid[]), pg_catalog.unnest($3::uuid[]))"
		"   WITH ORDINALITY AS k(l, v, i)"
		" JOIN variants v ON v.org = $1::uuid AND v.location = k.l AND v.variant = k.v",
	/* a key put twice in one batch keeps its last record, as separate
	 * puts would (an upsert may not touch one row twice) */
	[ST_VARIANT_PUT_MANY] =
		"INSERT INTO variants (org, " VARIANT_COLUMNS ")"
		" SELECT DISTINCT ON (l, v) $1::uuid, l, v, p, b, t"
		" FROM ROWS FROM (pg_catalog.unnest($2::uuid[]), pg_catalog.unnest($3::uuid[]),"
		"   pg_catalog.unnest($4::uuid[]), pg_catalog.unnest($5::bigint[]),"
		"   pg_catalog.unnest($6::bigint[])) WITH ORDINALITY AS u(l, v, p, b, t, i)"
		" ORDER BY l, v, i DESC"
		" ON CONFLICT (org, location, variant) DO UPDATE SET product = excluded.product,"
		" balance = excluded.balance, updated = excluded.updated",
	[ST_LOW_STOCK_GET] =
		"SELECT " LOW_STOCK_COLUMNS " FROM low_stock WHERE org = $1::uuid"
		" AND location = $2::uuid AND product = $3::uuid AND variant = $4::uuid",
	[ST_LOW_STOCK_PUT] =
		"INSERT INTO low_stock (org, " LOW_STOCK_COLUMNS ")"
		" VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::bigint, $6::integer)"
		" ON CONFLICT (org, location, product, variant) DO UPDATE SET"
		" level = excluded.level, alert = excluded.alert",
	[ST_LOW_STOCK_DELETE] =
		"DELETE FROM low_stock WHERE org = $1::uuid AND location = $2::uuid"
		" AND product = $3::uuid AND variant = $4::uuid",
	[ST_LOW_STOCK_SCAN_LOCATION] =
		"SELECT " LOW_STOCK_COLUMNS " FROM low_stock WHERE org = $1::uuid AND location = $2::uuid",
	[ST_LOW_STOCK_SCAN_PRODUCT] =
		"SELECT " LOW_STOCK_COLUMNS " FROM low_stock"
		" WHERE org = $1::uuid AND location = $2::uuid AND product = $3::uuid",
	[ST_LOW_STOCK_ANY] =
		"SELECT EXISTS (SELECT FROM low_stock WHERE org = $1::uuid)",
	/* A sequence that does not increase is an error, not a row count, so
	 * that it aborts the COMMIT queued behind it: the cast of a text that
	 * is no boolean raises 22P02 naming the last sequence (its operand is
	 * a subquery's, so the planner cannot fold it into an error when it
	 * plans).  The last sequence is one step down the primary key. */
	[ST_ENTRY_INSERT] =
		"INSERT INTO journal_entries (org, sequence, time, external_uuid, user_uuid,"
		" client_uuid, idempotency_key, record_count, records, writer)"
		" SELECT $1::uuid, $2::bigint, $3::bigint, $4::uuid, $5::uuid, $6::uuid, $7::bytea,"
		" $8::bigint, $9::bytea, $10::uuid"
		" FROM (SELECT (SELECT sequence FROM journal_entries WHERE org = $1::uuid"
		"  ORDER BY sequence DESC LIMIT 1) AS last) j"
		" WHERE CASE WHEN j.last IS NULL OR j.last < $2::bigint THEN true"
		"  ELSE ('journal sequence not increasing: the last is ' || j.last)::boolean END",
	[ST_ENTRY_READ] =
		"SELECT sequence, time, external_uuid, user_uuid, client_uuid, idempotency_key,"
		" record_count, records FROM journal_entries"
		" WHERE org = $1::uuid AND sequence > $2::bigint ORDER BY sequence LIMIT $3::bigint",
	[ST_ENTRY_TRIM] =
		"DELETE FROM journal_entries WHERE org = $1::uuid AND sequence <= $2::bigint",
	[ST_IDEMPOTENCY_GET] =
		"SELECT fingerprint, sequence, result FROM idempotency_keys"
		" WHERE org = $1::uuid AND key = $2::bytea",
	[ST_IDEMPOTENCY_PUT] =
		"INSERT INTO idempotency_keys (org, key, fingerprint, sequence, result)"
		" VALUES ($1::uuid, $2::bytea, $3::bytea, $4::bigint, $5::bytea)"
		" ON CONFLICT (org, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
		" sequence = excluded.sequence, result = excluded.result",
	[ST_SYNC_STATE_GET] =
		"SELECT data FROM sync_state WHERE org = $1::uuid",
	[ST_SYNC_STATE_PUT] =
		"INSERT INTO sync_state (org, data) VALUES ($1::uuid, $2::bytea)"
		" ON CONFLICT (org) DO UPDATE SET data = excluded.data",
};

/* ------------------------------------------------------------ errors */

int pg_error(int code, const char *message)
{
	char msg[600];

	/* A message longer than the buffer is cut; the code still tells the caller what happened. */
	if (snprintf(msg, sizeof(msg), "postgres: %s", message) < 0)
		msg[0] = '\0';
	return inv_backend_error(code, msg);
}

/* libpq's messages end in a newline and may span lines: one line. */
static void one_line(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; src && *src && n + 1 < cap; src++)
		dst[n++] = *src == '\n' || *src == '\r' ? ' ' : *src;
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

static int busy_state(const char *state)
{
	return state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	                 strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0);
}

int pg_fail(pg_conn *c, PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char detail[400], msg[560];
	int code;

	if (c->conn && PQstatus(c->conn) == CONNECTION_BAD) {
		c->broken = 1;
		one_line(detail, sizeof(detail), PQerrorMessage(c->conn));
		snprintf(msg, sizeof(msg), "%s: connection lost: %s", what, detail);
		code = INV_EBACKEND;
	} else {
		one_line(detail, sizeof(detail), res ? PQresultErrorMessage(res)
		                                     : PQerrorMessage(c->conn));
		code = busy_state(state) ? INV_EBUSY : INV_EBACKEND;
		if (state && strncmp(state, "53", 2) == 0 && strcmp(state, "53000") != 0)
			code = strcmp(state, "53200") == 0 ? INV_ENOMEM : INV_EBACKEND;
		snprintf(msg, sizeof(msg), "%s: %s%s%s%s", what, detail, state ? " (SQLSTATE " : "",
		         state ? state : "", state ? ")" : "");
		if (code == INV_EBUSY)
			strncat(msg, "; retry", sizeof(msg) - strlen(msg) - 1);
	}
	c->failed = 1;
	PQclear(res);
	return pg_error(code, msg);
}

/* ------------------------------------------------------------ statements */

static void stmt_name(char *name, size_t cap, enum pg_stmt_id id)
{
	snprintf(name, cap, "zinv%d", (int)id);
}

static int prepare(pg_conn *c, enum pg_stmt_id id)
{
	char name[16];
	PGresult *res;

	if (c->prepared & (UINT64_C(1) << id))
		return 0;
	stmt_name(name, sizeof(name), id);
	res = PQprepare(c->conn, name, pg_stmt_sql[id], 0, NULL);
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(c, res, "prepare");
	PQclear(res);
	c->prepared |= UINT64_C(1) << id;
	return 0;
}

int pg_prepare_all(pg_conn *c)
{
	int id, err;

	for (id = 0; id < ST_COUNT; id++)
		if ((err = prepare(c, (enum pg_stmt_id)id)))
			return err;
	return 0;
}

PGresult *pg_run(pg_conn *c, enum pg_stmt_id id, int n, const char *const *values,
                 const int *lengths, const int *formats, ExecStatusType want, int *err)
{
	char name[16];
	PGresult *res;

	if (c->piped) {
		if ((*err = pg_send(c, id, n, values, lengths, formats)) ||
		    (*err = pg_pipe_sync(c, &res, 1, "query", NULL)))
			return NULL;
	} else {
		if ((*err = prepare(c, id)))
			return NULL;
		stmt_name(name, sizeof(name), id);
		res = PQexecPrepared(c->conn, name, n, values, lengths, formats, 1);
	}
	if (!res || PQresultStatus(res) != want) {
		*err = pg_fail(c, res, "query");
		return NULL;
	}
	*err = 0;
	return res;
}

/* ------------------------------------------------------------ pipelines */

int pg_pipe_enter(pg_conn *c)
{
	int err = pg_prepare_all(c);

	if (err)
		return err;
	if (!PQenterPipelineMode(c->conn))
		return pg_fail(c, NULL, "enter pipeline mode");
	c->piped = 1;
	c->queued = 0;
	return 0;
}

int pg_send(pg_conn *c, enum pg_stmt_id id, int n, const char *const *values,
            const int *lengths, const int *formats)
{
	char name[16];

	stmt_name(name, sizeof(name), id);
	if (!PQsendQueryPrepared(c->conn, name, n, values, lengths, formats, 1))
		return pg_fail(c, NULL, "send");
	c->queued++;
	return 0;
}

int pg_send_sql(pg_conn *c, const char *sql)
{
	if (!PQsendQueryParams(c->conn, sql, 0, NULL, NULL, NULL, NULL, 1))
		return pg_fail(c, NULL, "send");
	c->queued++;
	return 0;
}

/* A command's result in a pipeline, its terminating NULL read too; NULL
 * when the connection is gone. */
static PGresult *pipe_result(pg_conn *c)
{
	PGresult *res = PQgetResult(c->conn), *more;

	if (!res || PQresultStatus(res) == PGRES_PIPELINE_SYNC)
		return res;
	while ((more = PQgetResult(c->conn)) != NULL)
		PQclear(more);
	return res;
}

/* Leave pipeline mode, reading and dropping what is queued without
 * recording errors (the caller's error stays the last one).  A connection
 * whose results no longer match its commands is marked broken, so that it
 * is discarded when given back. */
void pg_pipe_leave(pg_conn *c)
{
	PGresult *res;
	int i;

	if (!c->piped)
		return;
	if (c->queued && !c->broken) {
		if (!PQpipelineSync(c->conn))
			c->broken = 1;
		for (i = 0; i < c->queued && !c->broken; i++) {
			res = pipe_result(c);
			if (!res || PQresultStatus(res) == PGRES_PIPELINE_SYNC)
				c->broken = 1;
			PQclear(res);
		}
		if (!c->broken) {
			res = PQgetResult(c->conn);
			if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC)
				c->broken = 1;
			PQclear(res);
		}
	}
	if (!c->broken && !PQexitPipelineMode(c->conn))
		c->broken = 1;
	c->piped = 0;
	c->queued = 0;
}

int pg_pipe_sync(pg_conn *c, PGresult **out, int nout, const char *what, int *lost)
{
	int i, n = c->queued, err = 0, failed = 0;
	PGresult *res;

	for (i = 0; i < nout; i++)
		out[i] = NULL;
	if (lost)
		*lost = 0;
	c->queued = 0;
	if (!PQpipelineSync(c->conn)) {
		c->broken = 1;
		err = pg_fail(c, NULL, what);
		goto gone;
	}
	for (i = 0; i < n; i++) {
		ExecStatusType st;

		if (!(res = pipe_result(c))) {
			c->broken = 1;
			err = err ? err : pg_fail(c, NULL, what);
			goto gone;
		}
		st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			/* fewer results than commands: the stream is out of step */
			c->broken = 1;
			err = err ? err : pg_fail(c, res, what);
			goto gone;
		}
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			if (i >= n - nout && !err)
				out[i - (n - nout)] = res;
			else
				PQclear(res);
		} else if (err || st == PGRES_PIPELINE_ABORTED) {
			/* after the failure that aborted the rest */
			PQclear(res);
			if (!err)
				err = pg_fail(c, NULL, what);
		} else {
			/* an ERROR fails the statement; a FATAL ends the session,
			 * which leaves what was sent in doubt like a lost connection */
			const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

			failed = sev && strcmp(sev, "ERROR") == 0;
			err = pg_fail(c, res, what);
		}
	}
	res = PQgetResult(c->conn);
	if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		c->broken = 1;
		if (!err)
			err = pg_fail(c, res, what);
		else
			PQclear(res);
		goto gone;
	}
	PQclear(res);
	if (!err)
		return 0;
	goto clear;
gone:
	/* a connection lost before any statement failed leaves the outcome of
	 * what was sent unknown */
	if (lost)
		*lost = !failed;
clear:
	for (i = 0; i < nout; i++) {
		PQclear(out[i]);
		out[i] = NULL;
	}
	return err;
}

int pg_reserve(pg_conn *c, size_t n)
{
	unsigned char *buf;

	if (n <= c->cap)
		return 0;
	if (n < 2 * c->cap)
		n = 2 * c->cap;
	buf = realloc(c->buf, n);
	if (!buf)
		return pg_error(INV_ENOMEM, "out of memory");
	c->buf = buf;
	c->cap = n;
	return 0;
}

/* ------------------------------------------------------------ connections */

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Run SQL that returns no rows, or fail with `what`. */
static int exec_plain(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	int err = 0;

	if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK &&
	             PQresultStatus(res) != PGRES_TUPLES_OK)) {
		pg_conn tmp = { .conn = conn };

		err = pg_fail(&tmp, res, what);
		res = NULL;
	}
	PQclear(res);
	return err;
}

/* search_path = the schema, then pg_catalog.  Setting it also makes the
 * server look the schema up again at the next statement. */
static int set_search_path(pg_instance *in, PGconn *conn)
{
	char *ident, sql[320];

	ident = PQescapeIdentifier(conn, in->schema, strlen(in->schema));
	if (!ident)
		return pg_error(INV_ENOMEM, "out of memory");
	snprintf(sql, sizeof(sql), "SET search_path = %s, pg_catalog", ident);
	PQfreemem(ident);
	return exec_plain(conn, sql, "set the search path");
}

int pg_connect(pg_instance *in, PGconn **out)
{
	/* dbname expands the conninfo into its keywords, which win over the
	 * earlier ones: an application_name in the conninfo wins */
	const char *keys[] = { "application_name", "dbname", NULL };
	const char *vals[] = { in->app_name, in->conninfo, NULL };
	PGconn *conn;
	char sql[256], detail[400], msg[480];
	int err;

	if (!in->app_name) {
		keys[0] = "fallback_application_name";
		vals[0] = "libzinv";
	}
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn)
		return pg_error(INV_ENOMEM, "out of memory connecting");
	if (PQstatus(conn) != CONNECTION_OK) {
		one_line(detail, sizeof(detail), PQerrorMessage(conn));
		snprintf(msg, sizeof(msg), "cannot connect: %s", detail);
		PQfinish(conn);
		return pg_error(INV_EBACKEND, msg);
	}
	PQsetNoticeProcessor(conn, quiet, NULL);
	/* lock_timeout too, so that a writer queued behind another's org lock
	 * is INV_EBUSY as 55P03 within the same bound */
	snprintf(sql, sizeof(sql),
	         "SET statement_timeout = %d; SET lock_timeout = %d;"
	         " SET idle_in_transaction_session_timeout = 0",
	         in->timeout_ms, in->timeout_ms);
	if ((err = set_search_path(in, conn)) ||
	    (err = exec_plain(conn, sql, "set the session up"))) {
		PQfinish(conn);
		return err;
	}
	*out = conn;
	return 0;
}

static void conn_discard(pg_conn *c)
{
	PQfinish(c->conn);
	c->conn = NULL;
	c->prepared = 0;
	c->broken = 0;
}

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int pg_pool_take(pg_instance *in, pg_conn **out)
{
	struct timespec until;
	pg_conn *c = NULL;
	int i, rc = 0, err;

	deadline_after(&until, in->timeout_ms > 0 ? in->timeout_ms : 3600 * 1000);
	pthread_mutex_lock(&in->lock);
	for (;;) {
		/* a connected slot first, so that the pool opens connections
		 * only as concurrency needs them */
		for (i = 0; i < in->pool_size; i++)
			if (!in->conns[i].busy && in->conns[i].conn)
				break;
		if (i == in->pool_size)
			for (i = 0; i < in->pool_size; i++)
				if (!in->conns[i].busy)
					break;
		if (i < in->pool_size) {
			c = &in->conns[i];
			c->busy = 1;
			break;
		}
		if (rc == ETIMEDOUT)
			break;
		rc = pthread_cond_timedwait(&in->cond, &in->lock, &until);
	}
	pthread_mutex_unlock(&in->lock);
	if (!c)
		return pg_error(INV_EBUSY, "every pooled connection is in use; retry "
		                "(a second transaction on one thread needs pool_size > 1)");
	if (c->conn && PQstatus(c->conn) != CONNECTION_OK)
		conn_discard(c);
	if (!c->conn && (err = pg_connect(in, &c->conn))) {
		pg_pool_give(c);
		return err;
	}
	*out = c;
	return 0;
}

void pg_pool_give(pg_conn *c)
{
	pg_instance *in = c->in;

	if (c->broken || (c->conn && PQstatus(c->conn) != CONNECTION_OK))
		conn_discard(c);
	pthread_mutex_lock(&in->lock);
	c->busy = 0;
	pthread_cond_signal(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

/* ------------------------------------------------------------ migrations */

/* One-row query with text parameters; the text of column 0 of row 0 into
 * `out` ("" for NULL, *rows 0 when no row). */
static int query_text(PGconn *conn, const char *sql, int n, const char *const *params,
                      char *out, size_t cap, int *rows, const char *what)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	pg_conn tmp = { .conn = conn };

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		return pg_fail(&tmp, res, what);
	*rows = PQntuples(res);
	out[0] = '\0';
	if (*rows > 0 && !PQgetisnull(res, 0, 0))
		snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Refuse a schema we must not touch; *exists says whether there is one. */
static int schema_check(pg_instance *in, PGconn *conn, int *exists)
{
	const char *p[1] = { in->schema };
	char owner[256], ours[8], msg[400];
	int rows, err;

	err = query_text(conn,
	                 "SELECT pg_catalog.pg_get_userbyid(nspowner) || ' ' ||"
	                 " (nspowner = (SELECT oid FROM pg_catalog.pg_roles"
	                 "   WHERE rolname = current_user))::text"
	                 " FROM pg_catalog.pg_namespace WHERE nspname = $1",
	                 1, p, owner, sizeof(owner), &rows, "read the schema's owner");
	if (err)
		return err;
	*exists = rows > 0;
	if (!*exists)
		return 0;
	{
		char *sp = strrchr(owner, ' ');

		snprintf(ours, sizeof(ours), "%s", sp ? sp + 1 : "");
		if (sp)
			*sp = '\0';
	}
	if (strcmp(ours, "true") != 0) {
		snprintf(msg, sizeof(msg), "schema \"%s\" is owned by role \"%s\", not by the "
		         "connecting role (%s); not using it", in->schema, owner, PQuser(conn));
		return pg_error(INV_EBACKEND, msg);
	}
	return 0;
}

/* The applied version, with the migrations table created if the schema has
 * none and holds nothing else. */
static int schema_version(pg_instance *in, PGconn *conn, int *version)
{
	const char *p[1] = { in->schema };
	char buf[32], msg[300];
	int rows, err;

	err = query_text(conn,
	                 "SELECT (SELECT count(*) FROM pg_catalog.pg_class c"
	                 "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	                 "  WHERE n.nspname = $1 AND c.relname = 'schema_migrations')::text"
	                 " || ' ' || (SELECT count(*) FROM pg_catalog.pg_class c"
	                 "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	                 "  WHERE n.nspname = $1)::text",
	                 1, p, buf, sizeof(buf), &rows, "read the schema");
	if (err)
		return err;
	if (strncmp(buf, "0 ", 2) == 0) {
		if (strcmp(buf, "0 0") != 0) {
			snprintf(msg, sizeof(msg), "schema \"%s\" holds tables but no "
			         "schema_migrations: not a libzinv schema; not using it", in->schema);
			return pg_error(INV_EFORMAT, msg);
		}
		err = exec_plain(conn, "CREATE TABLE schema_migrations ("
		                 "  version integer NOT NULL PRIMARY KEY,"
		                 "  applied timestamptz NOT NULL DEFAULT now())",
		                 "create the migrations table");
		if (err)
			return err;
	}
	err = query_text(conn, "SELECT coalesce(max(version), 0)::text FROM schema_migrations",
	                 0, NULL, buf, sizeof(buf), &rows, "read the schema version");
	if (err)
		return err;
	*version = atoi(buf);
	return 0;
}

static int migrate_locked(pg_instance *in, PGconn *conn)
{
	char sql[320], msg[300], *ident;
	int exists, version = 0, err;

	if ((err = schema_check(in, conn, &exists)))
		return err;
	if (!exists) {
		ident = PQescapeIdentifier(conn, in->schema, strlen(in->schema));
		if (!ident)
			return pg_error(INV_ENOMEM, "out of memory");
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", ident);
		PQfreemem(ident);
		if ((err = exec_plain(conn, sql, "create the schema")))
			return err;
	}
	/* The session may have resolved its search path while another process
	 * was creating the schema, and PostgreSQL 15 can keep that resolution
	 * (without the schema) past the invalidation that should end it: seen
	 * as "relation schema_migrations does not exist" in one of four
	 * processes opening at once.  Resolve it again now that the schema
	 * exists and nobody else is migrating. */
	if ((err = set_search_path(in, conn)) ||
	    (err = schema_version(in, conn, &version)))
		return err;
	if (version > PG_SCHEMA_VERSION) {
		snprintf(msg, sizeof(msg), "schema \"%s\" is at version %d, newer than this "
		         "library's %d; not using it", in->schema, version, PG_SCHEMA_VERSION);
		return pg_error(INV_EFORMAT, msg);
	}
	for (; version < PG_SCHEMA_VERSION; version++) {
		snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations (version) VALUES (%d)",
		         version + 1);
		if ((err = exec_plain(conn, "BEGIN", "migrate the schema")) ||
		    (err = exec_plain(conn, migration_steps[version], "migrate the schema")) ||
		    (err = exec_plain(conn, sql, "migrate the schema")) ||
		    (err = exec_plain(conn, "COMMIT", "migrate the schema"))) {
			PQclear(PQexec(conn, "ROLLBACK"));
			return err;
		}
	}
	return 0;
}

int pg_migrate(pg_instance *in, PGconn *conn)
{
	const char *p[1] = { in->schema };
	char buf[8];
	int rows, err;

	err = query_text(conn, "SELECT pg_catalog.pg_advisory_lock(" PG_LOCK_CLASS ","
	                 " pg_catalog.hashtext($1))::text", 1, p, buf, sizeof(buf), &rows,
	                 "take the migration lock");
	if (err)
		return err;
	err = migrate_locked(in, conn);
	PQclear(PQexecParams(conn, "SELECT pg_catalog.pg_advisory_unlock(" PG_LOCK_CLASS ","
	                     " pg_catalog.hashtext($1))", 1, NULL, p, NULL, NULL, 0));
	return err;
}

/* ------------------------------------------------------------ in doubt */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pg_writer_id(inv_uuid *out)
{
	static _Atomic uint64_t counter;
	struct timespec ts;
	uint64_t a, b;

	if (getrandom(out->bytes, sizeof(out->bytes), 0) == (ssize_t)sizeof(out->bytes))
		return;
	/* No entropy to be had: the clock, the process and a counter are
	 * still unique to this transaction among those of this host. */
	clock_gettime(CLOCK_REALTIME, &ts);
	a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	b = (uint64_t)getpid() << 32 ^ ++counter;
	memcpy(out->bytes, &a, 8);
	memcpy(out->bytes + 8, &b, 8);
}

/* The server's word on transaction `xid`: "committed", "aborted", "in
 * progress", or "" when it has forgotten it.  An id the server has not
 * handed out yet ("in the future", after a crash lost the transaction) is
 * "aborted": it never committed, and its session is gone. */
static int xact_status(PGconn *conn, const char *xid, char *out, size_t cap)
{
	const char *p[1] = { xid };
	PGresult *res = PQexecParams(conn, "SELECT pg_catalog.pg_xact_status($1::xid8)", 1, NULL,
	                             p, NULL, NULL, 0);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	pg_conn tmp = { .conn = conn };

	if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
		snprintf(out, cap, "%s", PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
		PQclear(res);
		return 0;
	}
	if (state && strcmp(state, "22023") == 0) {
		snprintf(out, cap, "aborted");
		PQclear(res);
		return 0;
	}
	return pg_fail(&tmp, res, "check the commit");
}

/*
 * What became of c's transaction.  On a fresh connection: lock the
 * organization's row, which waits until the old session has finished
 * whatever it was doing.  A transaction that appended a journal entry
 * committed exactly when an entry with its writer id is stored; when its
 * sequence holds another writer's entry, or the organization's last
 * sequence is below it, it did not.  The server's record of the
 * transaction id decides only when neither entry is there any more (the
 * journal was trimmed since) or there was no entry: a crash can lose a
 * transaction and hand its id to another, so the id alone may be
 * another's word.
 * 1 committed, 0 not committed, < 0 could not tell (error recorded).
 */
static int ask_outcome(pg_conn *c, PGconn *conn)
{
	char org[37], seq[24], writer[37], found[16] = "", status[32];
	const char *p[1] = { org };
	const char *q[3] = { org, seq, writer };
	int rows, err;

	inv_uuid_format(&c->org, org);
	inv_uuid_format(&c->writer, writer);
	snprintf(seq, sizeof(seq), "%lld", (long long)c->seq);
	if ((err = exec_plain(conn, "BEGIN", "check the commit")))
		return err;
	/* no row is no error: the lock row was to be created by this very
	 * transaction, and the checks below find it did not commit */
	err = query_text(conn, "SELECT 1 FROM org_locks WHERE org = $1::uuid FOR UPDATE", 1, p,
	                 status, sizeof(status), &rows, "check the commit");
	if (!err && c->has_seq)
		err = query_text(conn, "SELECT CASE"
		                 " WHEN EXISTS (SELECT FROM journal_entries WHERE org = $1::uuid"
		                 "  AND sequence = $2::bigint AND writer = $3::uuid) THEN 'ours'"
		                 " WHEN EXISTS (SELECT FROM journal_entries WHERE org = $1::uuid"
		                 "  AND sequence = $2::bigint) THEN 'another'"
		                 " WHEN coalesce((SELECT last_sequence FROM organizations"
		                 "  WHERE org = $1::uuid), 0) < $2::bigint THEN 'none'"
		                 " ELSE 'trimmed' END", 3, q, found, sizeof(found), &rows,
		                 "check the commit");
	if (!err && (!c->has_seq || strcmp(found, "trimmed") == 0))
		err = xact_status(conn, c->xid, status, sizeof(status));
	PQclear(PQexec(conn, "ROLLBACK"));
	if (err)
		return err;
	if (strcmp(found, "ours") == 0)
		return 1;
	if (strcmp(found, "another") == 0 || strcmp(found, "none") == 0)
		return 0;
	if (strcmp(status, "committed") == 0)
		return 1;
	if (strcmp(status, "aborted") == 0)
		return 0;
	return pg_error(INV_EBACKEND, "the transaction's status is unknown to the server");
}

int pg_resolve_in_doubt(pg_conn *c, const char *lost)
{
	long until = now_ms() + (c->in->timeout_ms > 0 ? c->in->timeout_ms : 30000);
	char msg[600];
	int outcome = -1;

	if (!c->xid[0]) {
		snprintf(msg, sizeof(msg), "the connection was lost during COMMIT (%s); whether "
		         "the transaction committed is unknown", lost);
		return pg_error(INV_EBACKEND, msg);
	}
	for (;;) {
		PGconn *conn = NULL;

		if (pg_connect(c->in, &conn) == 0) {
			outcome = ask_outcome(c, conn);
			PQfinish(conn);
			if (outcome >= 0)
				break;
		}
		if (now_ms() >= until)
			break;
		sleep_ms(100);
	}
	if (outcome == 1) {
		inv_error_clear();
		return 0;
	}
	if (outcome == 0)
		snprintf(msg, sizeof(msg), "the connection was lost during COMMIT (%s); the "
		         "transaction did not commit: nothing was stored", lost);
	else
		snprintf(msg, sizeof(msg), "the connection was lost during COMMIT (%s) and the "
		         "server could not be asked again: whether the transaction committed is "
		         "unknown (%s)", lost, inv_error_last()->message);
	return pg_error(INV_EBACKEND, msg);
}
