/*
 * webhooks_pg.c - zinv-server's webhook tables in PostgreSQL; see
 * webhooks_pg.h.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "webhooks_pg.h"

struct whpg {
	PGconn *conn;
	pthread_mutex_t lock;      /* the connection is used by one thread at a time */
	char *owner;
	char lease_ms[24];
};

/* The server's schema, step by step; step n is version n.  Never edit a
 * shipped step: add one. */
static const char *const migrations[] = {
	"CREATE TABLE zinv_server.webhook_subscriptions ("
	" org uuid NOT NULL,"
	/* Never reused: the worker's writes name the row it loaded, so they
	 * miss a subscription deleted and created again under the same uuid. */
	" id bigint GENERATED ALWAYS AS IDENTITY,"
	" uuid uuid NOT NULL,"
	" destination text NOT NULL,"
	" event_names text NOT NULL,"      /* a JSON array; [] means every event */
	" contact_email text NOT NULL,"
	" signing_key text NOT NULL,"
	" status text NOT NULL,"
	" updated bigint NOT NULL,"
	" cursor_sequence bigint NOT NULL,"
	" cursor_index bigint NOT NULL,"
	" test_pending boolean NOT NULL,"  /* the TestMessage is still to go */
	" next_attempt_ms bigint NOT NULL,"
	" attempts bigint NOT NULL,"
	" PRIMARY KEY (org, id),"
	" UNIQUE (org, uuid))",

	"CREATE TABLE zinv_server.webhook_leases ("
	" org uuid NOT NULL,"
	" subscription_id bigint NOT NULL,"
	" owner text,"                     /* NULL: free */
	" expires_at timestamptz NOT NULL DEFAULT '-infinity',"
	" PRIMARY KEY (org, subscription_id),"
	" FOREIGN KEY (org, subscription_id)"
	"  REFERENCES zinv_server.webhook_subscriptions (org, id) ON DELETE CASCADE);"
	"CREATE INDEX webhook_leases_owner ON zinv_server.webhook_leases (owner)",
};

#define MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* pg_advisory_lock key of the server's migrations ("zinv-srv"). */
#define MIGRATION_LOCK "8100555828434499190"

static const char row_columns[] =
	"id, uuid, org, destination, event_names, contact_email, signing_key, status,"
	" updated, cursor_sequence, cursor_index, test_pending, next_attempt_ms, attempts";

/* Run one statement; NULL after printing why.  A broken connection is
 * reset for the next call. */
static PGresult *run(struct whpg *pg, const char *sql, int n, const char *const *values)
{
	PGresult *res;
	ExecStatusType st;

	pthread_mutex_lock(&pg->lock);
	if (PQstatus(pg->conn) != CONNECTION_OK)
		PQreset(pg->conn);
	/* Without parameters, several statements may go at once (migrations). */
	res = n ? PQexecParams(pg->conn, sql, n, NULL, values, NULL, NULL, 0)
	        : PQexec(pg->conn, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* A unique violation is an answer (the uuid exists), not a failure. */
		if (state && !strcmp(state, "23505")) {
			pthread_mutex_unlock(&pg->lock);
			return res;
		}
		fprintf(stderr, "zinv-server: webhooks database: %s",
		        res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
		PQclear(res);
		res = NULL;
	}
	pthread_mutex_unlock(&pg->lock);
	return res;
}

static int is_unique_violation(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return state && !strcmp(state, "23505");
}

/* Apply the missing migration steps, one transaction, under the lock. */
static int migrate(struct whpg *pg)
{
	PGresult *res;
	char step[16];
	const char *v[1] = { step };
	int have = 0, i, rc = -1;

	if (!(res = run(pg, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", 0, NULL)))
		return -1;
	PQclear(res);
	if (!(res = run(pg, "BEGIN", 0, NULL)))
		goto unlock;
	PQclear(res);
	if (!(res = run(pg, "CREATE SCHEMA IF NOT EXISTS zinv_server;"
	                "CREATE TABLE IF NOT EXISTS zinv_server.migrations ("
	                " version integer PRIMARY KEY,"
	                " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL)))
		goto rollback;
	PQclear(res);
	if (!(res = run(pg, "SELECT coalesce(max(version), 0) FROM zinv_server.migrations",
	                0, NULL)))
		goto rollback;
	have = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (have > MIGRATIONS) {
		fprintf(stderr, "zinv-server: the webhook tables are at version %d, made by a "
		        "newer zinv-server (this one knows %d); nothing changed\n", have, MIGRATIONS);
		goto rollback;
	}
	for (i = have; i < MIGRATIONS; i++) {
		if (!(res = run(pg, migrations[i], 0, NULL)))
			goto rollback;
		PQclear(res);
		snprintf(step, sizeof(step), "%d", i + 1);
		if (!(res = run(pg, "INSERT INTO zinv_server.migrations (version) VALUES ($1)",
		                1, v)))
			goto rollback;
		PQclear(res);
	}
	if (!(res = run(pg, "COMMIT", 0, NULL)))
		goto unlock;
	PQclear(res);
	rc = 0;
	goto unlock;
rollback:
	PQclear(run(pg, "ROLLBACK", 0, NULL));
unlock:
	PQclear(run(pg, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", 0, NULL));
	return rc;
}

int whpg_open(struct whpg **out, const char *conninfo, const char *owner, int64_t lease_ms)
{
	struct whpg *pg = calloc(1, sizeof(*pg));
	PGresult *res;

	*out = NULL;
	if (!pg || !(pg->owner = strdup(owner))) {
		free(pg);
		return -1;
	}
	pthread_mutex_init(&pg->lock, NULL);
	snprintf(pg->lease_ms, sizeof(pg->lease_ms), "%" PRId64, lease_ms);
	pg->conn = PQconnectdb(conninfo);
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		fprintf(stderr, "zinv-server: webhooks database: %s", PQerrorMessage(pg->conn));
		whpg_close(pg);
		return -1;
	}
	/* A wedged statement fails instead of stalling every thread; the
	 * lease clock is the database's, so processes need not agree on time. */
	res = run(pg, "SET statement_timeout = 5000; SET client_min_messages = warning", 0, NULL);
	PQclear(res);
	if (!res || migrate(pg) != 0) {
		whpg_close(pg);
		return -1;
	}
	*out = pg;
	return 0;
}

void whpg_close(struct whpg *pg)
{
	if (!pg)
		return;
	if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
		whpg_lease_release(pg, NULL, 0);
	PQfinish(pg->conn);
	pthread_mutex_destroy(&pg->lock);
	free(pg->owner);
	free(pg);
}

static int rows(PGresult *res, whrow_fn fn, void *arg)
{
	int i, n = PQntuples(res);

	for (i = 0; i < n; i++) {
		struct whrow r;

		r.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		r.uuid = PQgetvalue(res, i, 1);
		r.org = PQgetvalue(res, i, 2);
		r.destination = PQgetvalue(res, i, 3);
		r.event_names = PQgetvalue(res, i, 4);
		r.contact_email = PQgetvalue(res, i, 5);
		r.signing_key = PQgetvalue(res, i, 6);
		r.status = PQgetvalue(res, i, 7);
		r.updated = strtoll(PQgetvalue(res, i, 8), NULL, 10);
		r.cursor_seq = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		r.cursor_idx = strtoll(PQgetvalue(res, i, 10), NULL, 10);
		r.test_pending = PQgetvalue(res, i, 11)[0] == 't';
		r.next_attempt_ms = strtoll(PQgetvalue(res, i, 12), NULL, 10);
		r.attempts = strtoll(PQgetvalue(res, i, 13), NULL, 10);
		if (fn(&r, arg) != 0)
			return -1;
	}
	return 0;
}

int whpg_load(struct whpg *pg, int64_t id, const char *org, const char *uuid,
              whrow_fn fn, void *arg)
{
	char sql[512], idtext[24];
	const char *v[3] = { idtext, org, uuid };
	PGresult *res;
	int rc;

	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	snprintf(sql, sizeof(sql), "SELECT %s FROM zinv_server.webhook_subscriptions"
	         " WHERE ($2::uuid IS NULL OR org = $2::uuid) AND ($1::bigint = 0 OR id = $1::bigint)"
	         " AND ($3::uuid IS NULL OR uuid = $3::uuid) ORDER BY id", row_columns);
	if (!(res = run(pg, sql, 3, v)))
		return -1;
	rc = rows(res, fn, arg);
	PQclear(res);
	return rc;
}

/* An INSERT/UPDATE ... RETURNING the row: 1 when it touched none. */
static int returning(PGresult *res, whrow_fn fn, void *arg)
{
	int rc;

	if (!res)
		return -1;
	if (is_unique_violation(res)) {
		PQclear(res);
		return 1;
	}
	rc = PQntuples(res) == 0 ? 1 : rows(res, fn, arg);
	PQclear(res);
	return rc;
}

int whpg_insert(struct whpg *pg, const char *org, const char *uuid, const char *destination,
                const char *event_names, const char *email, const char *key,
                int64_t updated, int64_t cursor_seq, whrow_fn fn, void *arg)
{
	char sql[1024], when[24], seq[24];
	const char *v[8] = { org, uuid, destination, event_names, email, key, when, seq };

	snprintf(when, sizeof(when), "%" PRId64, updated);
	snprintf(seq, sizeof(seq), "%" PRId64, cursor_seq);
	/* The lease row comes with its subscription, free. */
	snprintf(sql, sizeof(sql),
	         "WITH s AS (INSERT INTO zinv_server.webhook_subscriptions (org, uuid,"
	         " destination, event_names, contact_email, signing_key, status, updated,"
	         " cursor_sequence, cursor_index, test_pending, next_attempt_ms, attempts)"
	         " VALUES ($1, $2, $3, $4, $5, $6, 'ACTIVE', $7, $8, 0, true, 0, 0)"
	         " RETURNING %s),"
	         " l AS (INSERT INTO zinv_server.webhook_leases (org, subscription_id)"
	         " SELECT org, id FROM s)"
	         " SELECT * FROM s", row_columns);
	return returning(run(pg, sql, 8, v), fn, arg);
}

int whpg_update(struct whpg *pg, const char *org, const char *uuid, const char *destination,
                const char *event_names, const char *email, int64_t updated,
                whrow_fn fn, void *arg)
{
	char sql[1024], when[24];
	const char *v[6] = { destination, event_names, email, when, org, uuid };

	snprintf(when, sizeof(when), "%" PRId64, updated);
	snprintf(sql, sizeof(sql),
	         "UPDATE zinv_server.webhook_subscriptions SET"
	         " destination = coalesce($1, destination),"
	         " event_names = coalesce($2, event_names),"
	         " contact_email = coalesce($3, contact_email), updated = $4,"
	         " next_attempt_ms = CASE WHEN $1::text IS NULL THEN next_attempt_ms ELSE 0 END"
	         " WHERE org = $5 AND uuid = $6 RETURNING %s", row_columns);
	return returning(run(pg, sql, 6, v), fn, arg);
}

/* The number of rows a statement changed, or -1. */
static int changed(PGresult *res)
{
	int n;

	if (!res)
		return -1;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n;
}

int whpg_delete(struct whpg *pg, const char *org, const char *uuid)
{
	const char *v[2] = { org, uuid };
	int n = changed(run(pg, "DELETE FROM zinv_server.webhook_subscriptions"
	                    " WHERE org = $1 AND uuid = $2", 2, v));

	return n < 0 ? -1 : n == 0;
}

/* The lease check-and-renew that fences every cursor write. */
#define UNDER_LEASE \
	"WITH l AS (UPDATE zinv_server.webhook_leases" \
	" SET expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'" \
	" WHERE org = $1 AND subscription_id = $2 AND owner = $4 RETURNING 1) "

int whpg_save_cursor(struct whpg *pg, const char *org, int64_t id, int64_t seq, int64_t idx,
                     int clear_test)
{
	char idtext[24], s[24], i[24];
	const char *v[7] = { org, idtext, pg->lease_ms, pg->owner, s, i, clear_test ? "t" : "f" };
	int n;

	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	snprintf(s, sizeof(s), "%" PRId64, seq);
	snprintf(i, sizeof(i), "%" PRId64, idx);
	n = changed(run(pg, UNDER_LEASE
	                "UPDATE zinv_server.webhook_subscriptions SET cursor_sequence = $5,"
	                " cursor_index = $6, status = 'ACTIVE', attempts = 0, next_attempt_ms = 0,"
	                " test_pending = test_pending AND NOT $7::boolean"
	                " WHERE org = $1 AND id = $2 AND EXISTS (SELECT 1 FROM l)", 7, v));
	return n < 0 ? -1 : n == 0;
}

int whpg_save_failure(struct whpg *pg, const char *org, int64_t id, int64_t attempts,
                      int64_t next_attempt_ms)
{
	char idtext[24], a[24], next[24];
	const char *v[6] = { org, idtext, pg->lease_ms, pg->owner, a, next };
	int n;

	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	snprintf(a, sizeof(a), "%" PRId64, attempts);
	snprintf(next, sizeof(next), "%" PRId64, next_attempt_ms);
	n = changed(run(pg, UNDER_LEASE
	                "UPDATE zinv_server.webhook_subscriptions SET status = 'FAILING',"
	                " attempts = $5, next_attempt_ms = $6"
	                " WHERE org = $1 AND id = $2 AND EXISTS (SELECT 1 FROM l)", 6, v));
	return n < 0 ? -1 : n == 0;
}

int whpg_lease_take(struct whpg *pg, const char *org, int64_t id)
{
	char idtext[24];
	const char *v[4] = { org, idtext, pg->lease_ms, pg->owner };
	PGresult *res;
	int rc;

	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	/* A row another process is taking or renewing right now is skipped,
	 * never waited for. */
	res = run(pg, "WITH t AS (UPDATE zinv_server.webhook_leases SET owner = $4,"
	          " expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'"
	          " WHERE (org, subscription_id) IN (SELECT org, subscription_id"
	          "  FROM zinv_server.webhook_leases WHERE org = $1 AND subscription_id = $2"
	          "  AND (owner IS NULL OR owner = $4 OR expires_at < clock_timestamp())"
	          "  FOR UPDATE SKIP LOCKED) RETURNING 1)"
	          " SELECT (SELECT count(*) FROM t), EXISTS (SELECT 1 FROM"
	          " zinv_server.webhook_leases WHERE org = $1 AND subscription_id = $2)", 4, v);
	if (!res)
		return -1;
	rc = strcmp(PQgetvalue(res, 0, 0), "0") ? 1 : PQgetvalue(res, 0, 1)[0] == 't' ? 0 : 2;
	PQclear(res);
	return rc;
}

int whpg_lease_renew(struct whpg *pg)
{
	const char *v[2] = { pg->lease_ms, pg->owner };

	return changed(run(pg, "UPDATE zinv_server.webhook_leases"
	                   " SET expires_at = clock_timestamp() + $1::bigint * interval '1 millisecond'"
	                   " WHERE owner = $2", 2, v));
}

int whpg_lease_release(struct whpg *pg, const char *org, int64_t id)
{
	char idtext[24];
	const char *v[3] = { pg->owner, org, idtext };

	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	return changed(run(pg, "UPDATE zinv_server.webhook_leases"
	                   " SET owner = NULL, expires_at = '-infinity'"
	                   " WHERE owner = $1 AND ($3::bigint = 0 OR"
	                   " (org = $2::uuid AND subscription_id = $3::bigint))", 3, v)) < 0 ? -1 : 0;
}
