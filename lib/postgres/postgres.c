/*
 * postgres.c - libzinv-postgres: the storage vtable on a PostgreSQL database.
 *
 * Schema (version 5, in its own PostgreSQL schema, "zinv" by default; see
 * pool.c for the DDL and inv_postgres(3) for the tables).  UUIDs are `uuid`
 * columns, quantities, balances and times (ms since the epoch) `bigint`.
 * Every primary key and index starts with `org` and no key or query spans
 * organizations, so that each table can be distributed by org.
 *
 * A journal entry's records are one bytea in the layout of libzinv-sqlite's
 * (a 4-byte header, then 112-byte records, little-endian): the journal is
 * read back whole entries at a time, and one row per batch keeps a batch of
 * 1,000 changes one INSERT.
 *
 * Every statement is prepared on a connection the first time it runs
 * there; parameters and results travel in binary.  A write transaction is
 * BEGIN (READ COMMITTED) then SELECT ... FOR UPDATE of the organization's
 * row in org_locks, created on first use with INSERT ... ON CONFLICT DO
 * NOTHING: writers of one organization queue on that row, in any number of
 * processes, and every statement after the lock sees the latest commits.
 * The same statement returns the transaction's id, which decides an
 * in-doubt COMMIT (pool.c).  A read transaction is REPEATABLE READ, READ
 * ONLY: one snapshot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"

/* ------------------------------------------------------------ binary I/O */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t get_be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)get_be32(p) << 32 | get_be32(p + 4));
}

/* Parameters of one statement, binary, in fixed storage. */
struct params {
	int n;
	const char *v[10];
	int len[10];
	int fmt[10];
	unsigned char num[10][8];
};

static void p_uuid(struct params *p, const inv_uuid *u)
{
	p->v[p->n] = (const char *)u->bytes;
	p->len[p->n] = 16;
	p->fmt[p->n++] = 1;
}

static int is_nil(const inv_uuid *u)
{
	static const inv_uuid nil;

	return memcmp(u->bytes, nil.bytes, sizeof(nil.bytes)) == 0;
}

/* A UUID that may be absent: NULL in the database. */
static void p_uuid_opt(struct params *p, const inv_uuid *u)
{
	if (u && !is_nil(u)) {
		p_uuid(p, u);
		return;
	}
	p->v[p->n] = NULL;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 1;
}

static void p_i64(struct params *p, int64_t x)
{
	put_be64(p->num[p->n], (uint64_t)x);
	p->v[p->n] = (const char *)p->num[p->n];
	p->len[p->n] = 8;
	p->fmt[p->n++] = 1;
}

static void p_i32(struct params *p, int32_t x)
{
	put_be32(p->num[p->n], (uint32_t)x);
	p->v[p->n] = (const char *)p->num[p->n];
	p->len[p->n] = 4;
	p->fmt[p->n++] = 1;
}

static void p_bytes(struct params *p, const void *data, size_t len)
{
	p->v[p->n] = len ? data : "";
	p->len[p->n] = (int)len;
	p->fmt[p->n++] = 1;
}

static void p_null(struct params *p)
{
	p->v[p->n] = NULL;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 1;
}

static PGresult *run(pg_conn *c, enum pg_stmt_id id, const struct params *p,
                     ExecStatusType want, int *err)
{
	return pg_run(c, id, p->n, p->v, p->len, p->fmt, want, err);
}

/* Run a statement that returns no rows; in a write transaction, send it
 * and leave its result to the next sync. */
static int run_cmd(pg_conn *c, enum pg_stmt_id id, const struct params *p)
{
	int err;
	PGresult *res;

	if (c->piped)
		return pg_send(c, id, p->n, p->v, p->len, p->fmt);
	res = run(c, id, p, PGRES_COMMAND_OK, &err);

	PQclear(res);
	return err;
}

static int col_uuid(const PGresult *res, int row, int col, inv_uuid *out)
{
	if (PQgetisnull(res, row, col)) {
		memset(out->bytes, 0, sizeof(out->bytes));
		return 0;
	}
	if (PQgetlength(res, row, col) != 16)
		return pg_error(INV_EFORMAT, "corrupt row: a uuid value is not 16 bytes");
	memcpy(out->bytes, PQgetvalue(res, row, col), 16);
	return 0;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
	return get_be64((const unsigned char *)PQgetvalue(res, row, col));
}

static int32_t col_i32(const PGresult *res, int row, int col)
{
	return (int32_t)get_be32((const unsigned char *)PQgetvalue(res, row, col));
}

/* ------------------------------------------------------------ transactions */

static int txn_check(pg_conn *c)
{
	if (!c || !c->in_txn)
		return pg_error(INV_EINVAL, "no transaction is open");
	if (c->failed)
		return pg_error(INV_EBACKEND, "an earlier statement of the transaction failed; "
		                "roll it back");
	return 0;
}

static int txn_check_write(pg_conn *c)
{
	int err = txn_check(c);

	if (err)
		return err;
	if (!c->write)
		return pg_error(INV_EINVAL, "write in a read transaction");
	return 0;
}

static int exec_simple(pg_conn *c, const char *sql, const char *what)
{
	PGresult *res = PQexec(c->conn, sql);

	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(c, res, what);
	PQclear(res);
	return 0;
}

/* In a write transaction's pipeline (after BEGIN): create the lock row
 * when asked, lock it, and read the organization's row, which the lock
 * makes current: a statement after the lock sees what its last holder
 * committed.  1 locked (row cached), 0 no lock row yet, < 0 error. */
static int lock_org(pg_conn *c, const inv_uuid *org, int create)
{
	struct params p = { 0 };
	PGresult *res[3];
	int i, err, len;

	p_uuid(&p, org);
	if ((create && (err = pg_send(c, ST_CREATE_ORG, p.n, p.v, p.len, p.fmt))) ||
	    (err = pg_send(c, ST_LOCK_ORG, p.n, p.v, p.len, p.fmt)) ||
	    (err = pg_send(c, ST_ORG_GET, p.n, p.v, p.len, p.fmt)) ||
	    (err = pg_send(c, ST_LOW_STOCK_ANY, p.n, p.v, p.len, p.fmt)) ||
	    (err = pg_pipe_sync(c, res, 3, "lock the organization", NULL)))
		return err;
	/* a sync that succeeds hands over every result, each a success */
	if (PQresultStatus(res[0]) != PGRES_TUPLES_OK ||
	    PQresultStatus(res[1]) != PGRES_TUPLES_OK ||
	    PQresultStatus(res[2]) != PGRES_TUPLES_OK || PQntuples(res[2]) != 1) {
		err = pg_error(INV_EBACKEND, "lock the organization: unexpected results");
	} else if (PQntuples(res[0]) == 0) {
		err = 0;
	} else {
		len = PQgetlength(res[0], 0, 0);
		if (len <= 0 || len >= (int)sizeof(c->xid))
			len = 0;
		memcpy(c->xid, PQgetvalue(res[0], 0, 0), (size_t)len);
		c->xid[len] = '\0';
		c->org_state = 2;
		if (PQntuples(res[1]) > 0) {
			c->org_state = 1;
			c->org_last = col_i64(res[1], 0, 0);
			c->org_policy = col_i32(res[1], 0, 1);
		}
		/* binary bool: one byte */
		c->low_stock_none = PQgetlength(res[2], 0, 0) == 1 &&
		                    PQgetvalue(res[2], 0, 0)[0] == 0;
		err = 1;
	}
	for (i = 0; i < 3; i++)
		PQclear(res[i]);
	return err;
}

/* `org` is the one the write transaction locked. */
static int own_org(const pg_conn *c, const inv_uuid *org)
{
	return memcmp(org->bytes, c->org.bytes, sizeof(org->bytes)) == 0;
}

/* Leave pipeline mode and roll back what the connection has open. */
static void abandon(pg_conn *c)
{
	pg_pipe_leave(c);
	if (!c->broken && PQstatus(c->conn) == CONNECTION_OK)
		PQclear(PQexec(c->conn, "ROLLBACK"));
}

/* A write transaction costs one round trip to begin (BEGIN, the lock, the
 * organization's row and whether it has low-stock entries), one per read,
 * and one to commit (every write and COMMIT).  What is read with the lock
 * stays true for the transaction, since every writer of the organization
 * holds that lock; a low-stock read of an organization without entries
 * (most have none) then costs no round trip. */
static int pg_begin(void *instance, const inv_uuid *org, int write, void **txn)
{
	pg_instance *in = instance;
	pg_conn *c;
	int err;

	if (!in || !org || !txn)
		return pg_error(INV_EINVAL, "begin: NULL argument");
	if ((err = pg_pool_take(in, &c)))
		return err;
	c->failed = 0;
	c->write = write ? 1 : 0;
	c->org = *org;
	c->xid[0] = '\0';
	c->has_seq = 0;
	if (write)
		pg_writer_id(&c->writer);
	c->org_state = 0;
	c->low_stock_none = 0;
	if (!write) {
		err = exec_simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		                  "begin read");
	} else if (!(err = pg_pipe_enter(c)) && !(err = pg_send_sql(c, "BEGIN"))) {
		err = lock_org(c, org, 0);
		if (err == 0) {
			err = lock_org(c, org, 1);
			if (err == 0)
				err = pg_error(INV_EBACKEND, "the organization's lock row vanished");
		}
		err = err > 0 ? 0 : err;
	}
	if (err) {
		abandon(c);
		pg_pool_give(c);
		return err;
	}
	c->in_txn = 1;
	*txn = c;
	return 0;
}

static void txn_end(pg_conn *c)
{
	pg_pipe_leave(c);
	c->in_txn = 0;
	c->failed = 0;
	pg_pool_give(c);
}

static void pg_rollback(void *txn)
{
	pg_conn *c = txn;

	if (!c || !c->in_txn)
		return;
	abandon(c);
	txn_end(c);
}

/* Commit ends the transaction whether it succeeds or not. */
static int pg_commit(void *txn)
{
	pg_conn *c = txn;
	PGresult *res = NULL;
	char lost[400];
	int err = 0;

	if (!c || !c->in_txn)
		return pg_error(INV_EINVAL, "commit: no transaction is open");
	if (c->failed) {
		err = pg_error(INV_EBACKEND, "commit after a failed statement; the transaction "
		               "was rolled back");
		pg_rollback(c);
		return err;
	}
	if (c->piped) {
		int unknown = 0;

		if (!(err = pg_send_sql(c, "COMMIT")))
			err = pg_pipe_sync(c, &res, 1, "commit", &unknown);
		if (!err && strcmp(PQcmdStatus(res), "COMMIT") != 0)
			err = pg_error(INV_EBACKEND, "the server rolled the transaction back");
		PQclear(res);
		if (err && unknown) {
			snprintf(lost, sizeof(lost), "%s", PQerrorMessage(c->conn));
			lost[strcspn(lost, "\n")] = '\0';
			err = pg_resolve_in_doubt(c, lost);
		} else if (err) {
			abandon(c);
		}
		txn_end(c);
		return err;
	}
	res = PQexec(c->conn, "COMMIT");
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus(res), "COMMIT") == 0) {
		PQclear(res);
	} else if (PQstatus(c->conn) == CONNECTION_BAD) {
		c->broken = 1;
		snprintf(lost, sizeof(lost), "%s", PQerrorMessage(c->conn));
		lost[strcspn(lost, "\n")] = '\0';
		PQclear(res);
		err = c->write ? pg_resolve_in_doubt(c, lost)
		               : pg_error(INV_EBACKEND, "connection lost ending a read");
	} else if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		err = pg_error(INV_EBACKEND, "the server rolled the transaction back");
	} else {
		err = pg_fail(c, res, "commit");
		if (!c->broken)
			PQclear(PQexec(c->conn, "ROLLBACK"));
	}
	txn_end(c);
	return err;
}

/* ------------------------------------------------------------ organizations */

static int pg_org_get(void *txn, const inv_uuid *org, inv_org_record *out)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int err = txn_check(c);

	if (err)
		return err;
	if (c->org_state && own_org(c, org)) {
		if (c->org_state == 2)
			return INV_ENOTFOUND;
		out->org = *org;
		out->last_sequence = c->org_last;
		out->negative_policy = c->org_policy;
		out->reserved = 0;
		return 0;
	}
	p_uuid(&p, org);
	if (!(res = run(c, ST_ORG_GET, &p, PGRES_TUPLES_OK, &err)))
		return err;
	if (PQntuples(res) == 0) {
		err = INV_ENOTFOUND;
	} else {
		out->org = *org;
		out->last_sequence = col_i64(res, 0, 0);
		out->negative_policy = col_i32(res, 0, 1);
		out->reserved = 0;
	}
	PQclear(res);
	return err;
}

static int pg_org_put(void *txn, const inv_org_record *rec)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	p_uuid(&p, &rec->org);
	p_i64(&p, rec->last_sequence);
	p_i32(&p, rec->negative_policy);
	if ((err = run_cmd(c, ST_ORG_PUT, &p)))
		return err;
	if (own_org(c, &rec->org)) {
		c->org_state = 1;
		c->org_last = rec->last_sequence;
		c->org_policy = rec->negative_policy;
	}
	return 0;
}

/* ------------------------------------------------------------ locations */

static int pg_location_scan(void *txn, const inv_uuid *org,
                            inv_location_record_fn fn, void *payload)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int i, n, err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	if (!(res = run(c, ST_LOCATION_SCAN, &p, PGRES_TUPLES_OK, &err)))
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && !err; i++) {
		inv_location_record rec;

		if ((err = col_uuid(res, i, 0, &rec.uuid)))
			break;
		rec.type = col_i32(res, i, 1);
		rec.is_default = col_i32(res, i, 2);
		err = fn(&rec, payload);
	}
	PQclear(res);
	return err;
}

static int pg_location_put(void *txn, const inv_uuid *org, const inv_location_record *rec)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_uuid(&p, &rec->uuid);
	p_i32(&p, rec->type);
	p_i32(&p, rec->is_default);
	return run_cmd(c, ST_LOCATION_PUT, &p);
}

/* ------------------------------------------------------------ tracking */

static int pg_tracking_get(void *txn, const inv_uuid *org, const inv_uuid *product,
                           int32_t *tracked)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_uuid(&p, product);
	if (!(res = run(c, ST_TRACKING_GET, &p, PGRES_TUPLES_OK, &err)))
		return err;
	if (PQntuples(res) == 0)
		err = INV_ENOTFOUND;
	else
		*tracked = col_i32(res, 0, 0);
	PQclear(res);
	return err;
}

static int pg_tracking_put(void *txn, const inv_uuid *org, const inv_uuid *product,
                           int32_t tracked)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_uuid(&p, product);
	p_i32(&p, tracked);
	return run_cmd(c, ST_TRACKING_PUT, &p);
}

static int pg_tracking_scan(void *txn, const inv_uuid *org,
                            inv_tracking_record_fn fn, void *payload)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int i, n, err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	if (!(res = run(c, ST_TRACKING_SCAN, &p, PGRES_TUPLES_OK, &err)))
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && !err; i++) {
		inv_uuid product;

		if ((err = col_uuid(res, i, 0, &product)))
			break;
		err = fn(&product, col_i32(res, i, 1), payload);
	}
	PQclear(res);
	return err;
}

/* ------------------------------------------------------------ variants */

/* Columns in VARIANT_COLUMNS order (location, variant, product, balance,
 * updated), from column `col`. */
static int variant_row(const PGresult *res, int row, inv_variant_record *out)
{
	int err;

	if ((err = col_uuid(res, row, 0, &out->location)) ||
	    (err = col_uuid(res, row, 1, &out->variant)) ||
	    (err = col_uuid(res, row, 2, &out->product)))
		return err;
	out->balance = col_i64(res, row, 3);
	out->updated = col_i64(res, row, 4);
	return 0;
}

static int pg_variant_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                          const inv_uuid *variant, inv_variant_record *out)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_uuid(&p, location);
	p_uuid(&p, variant);
	if (!(res = run(c, ST_VARIANT_GET, &p, PGRES_TUPLES_OK, &err)))
		return err;
	err = PQntuples(res) == 0 ? INV_ENOTFOUND : variant_row(res, 0, out);
	PQclear(res);
	return err;
}

static int pg_variant_put(void *txn, const inv_uuid *org, const inv_variant_record *rec)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_uuid(&p, &rec->location);
	p_uuid(&p, &rec->variant);
	p_uuid(&p, &rec->product);
	p_i64(&p, rec->balance);
	p_i64(&p, rec->updated);
	return run_cmd(c, ST_VARIANT_PUT, &p);
}

static int pg_variant_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                           const inv_uuid *product, inv_variant_record_fn fn, void *payload)
{
	pg_conn *c = txn;
	enum pg_stmt_id id = location ? (product ? ST_VARIANT_SCAN_BOTH : ST_VARIANT_SCAN_LOCATION)
	                              : (product ? ST_VARIANT_SCAN_PRODUCT : ST_VARIANT_SCAN_ALL);
	struct params p = { 0 };
	PGresult *res;
	int i, n, err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	if (location)
		p_uuid(&p, location);
	if (product)
		p_uuid(&p, product);
	if (!(res = run(c, id, &p, PGRES_TUPLES_OK, &err)))
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && !err; i++) {
		inv_variant_record rec;

		if (!(err = variant_row(res, i, &rec)))
			err = fn(&rec, payload);
	}
	PQclear(res);
	return err;
}

/*
 * Binary one-dimensional arrays (the array_send format): a 20-byte header,
 * then a 4-byte length and the value of each element.
 */
enum { OID_INT8 = 20, OID_UUID = 2950, ARRAY_HEADER = 20 };

static size_t array_size(size_t count, size_t elem)
{
	return ARRAY_HEADER + count * (4 + elem);
}

static unsigned char *array_start(unsigned char *p, size_t count, uint32_t oid)
{
	put_be32(p, 1);                 /* dimensions */
	put_be32(p + 4, 0);             /* no NULLs */
	put_be32(p + 8, oid);
	put_be32(p + 12, (uint32_t)count);
	put_be32(p + 16, 1);            /* lower bound */
	return p + ARRAY_HEADER;
}

static unsigned char *array_uuid(unsigned char *p, const inv_uuid *u)
{
	put_be32(p, 16);
	memcpy(p + 4, u->bytes, 16);
	return p + 20;
}

static unsigned char *array_i64(unsigned char *p, int64_t v)
{
	put_be32(p, 8);
	put_be64(p + 4, (uint64_t)v);
	return p + 12;
}

/* libpq takes parameter lengths as int */
#define BATCH_MAX ((size_t)(INT32_MAX / 32))

static int pg_variant_get_many(void *txn, const inv_uuid *org, size_t count,
                               const inv_variant_key *keys, inv_variant_record *out,
                               int32_t *found)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	unsigned char *loc, *var, *w;
	PGresult *res;
	size_t i, asz = array_size(count, 16);
	int row, n, err = txn_check(c);

	if (err)
		return err;
	if (count == 0)
		return 0;
	if (count > BATCH_MAX)
		return pg_error(INV_ETOOBIG, "too many keys in one batch");
	if ((err = pg_reserve(c, 2 * asz)))
		return err;
	loc = c->buf;
	var = c->buf + asz;
	w = array_start(loc, count, OID_UUID);
	for (i = 0; i < count; i++)
		w = array_uuid(w, &keys[i].location);
	w = array_start(var, count, OID_UUID);
	for (i = 0; i < count; i++)
		w = array_uuid(w, &keys[i].variant);
	p_uuid(&p, org);
	p_bytes(&p, loc, asz);
	p_bytes(&p, var, asz);
	if (!(res = run(c, ST_VARIANT_GET_MANY, &p, PGRES_TUPLES_OK, &err)))
		return err;
	for (i = 0; i < count; i++)
		found[i] = 0;
	n = PQntuples(res);
	for (row = 0; row < n; row++) {
		int64_t k = col_i64(res, row, 0) - 1;

		if (k < 0 || (size_t)k >= count) {
			err = pg_error(INV_EBACKEND, "variant lookup returned a key out of range");
			break;
		}
		if ((err = col_uuid(res, row, 1, &out[k].product)))
			break;
		out[k].location = keys[k].location;
		out[k].variant = keys[k].variant;
		out[k].balance = col_i64(res, row, 2);
		out[k].updated = col_i64(res, row, 3);
		found[k] = 1;
	}
	PQclear(res);
	return err;
}

static int pg_variant_put_many(void *txn, const inv_uuid *org, size_t count,
                               const inv_variant_record *recs)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	unsigned char *a[5], *w[5];
	size_t i, usz = array_size(count, 16), isz = array_size(count, 8);
	int k, err = txn_check_write(c);

	if (err)
		return err;
	if (count == 0)
		return 0;
	if (count > BATCH_MAX)
		return pg_error(INV_ETOOBIG, "too many records in one batch");
	if ((err = pg_reserve(c, 3 * usz + 2 * isz)))
		return err;
	a[0] = c->buf;
	a[1] = a[0] + usz;
	a[2] = a[1] + usz;
	a[3] = a[2] + usz;
	a[4] = a[3] + isz;
	for (k = 0; k < 5; k++)
		w[k] = array_start(a[k], count, k < 3 ? OID_UUID : OID_INT8);
	for (i = 0; i < count; i++) {
		w[0] = array_uuid(w[0], &recs[i].location);
		w[1] = array_uuid(w[1], &recs[i].variant);
		w[2] = array_uuid(w[2], &recs[i].product);
		w[3] = array_i64(w[3], recs[i].balance);
		w[4] = array_i64(w[4], recs[i].updated);
	}
	p_uuid(&p, org);
	for (k = 0; k < 5; k++)
		p_bytes(&p, a[k], k < 3 ? usz : isz);
	return run_cmd(c, ST_VARIANT_PUT_MANY, &p);
}

/* ------------------------------------------------------------ low stock */

/* Columns in LOW_STOCK_COLUMNS order. */
static int low_stock_row(const PGresult *res, int row, inv_low_stock_record *out)
{
	int err;

	if ((err = col_uuid(res, row, 0, &out->location)) ||
	    (err = col_uuid(res, row, 1, &out->product)) ||
	    (err = col_uuid(res, row, 2, &out->variant)))
		return err;
	out->has_level = !PQgetisnull(res, row, 3);
	out->level = out->has_level ? col_i64(res, row, 3) : 0;
	out->alert = col_i32(res, row, 4);
	return 0;
}

static void p_low_stock_key(struct params *p, const inv_uuid *org, const inv_uuid *location,
                            const inv_uuid *product, const inv_uuid *variant)
{
	p_uuid(p, org);
	p_uuid(p, location);
	p_uuid(p, product);
	p_uuid(p, variant);
}

/* Known, in this write transaction, to have no low-stock entry. */
static int no_low_stock(const pg_conn *c, const inv_uuid *org)
{
	return c->low_stock_none && own_org(c, org);
}

static int pg_low_stock_get(void *txn, const inv_uuid *org, const inv_uuid *location,
                            const inv_uuid *product, const inv_uuid *variant,
                            inv_low_stock_record *out)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int err = txn_check(c);

	if (err)
		return err;
	if (no_low_stock(c, org))
		return INV_ENOTFOUND;
	p_low_stock_key(&p, org, location, product, variant);
	if (!(res = run(c, ST_LOW_STOCK_GET, &p, PGRES_TUPLES_OK, &err)))
		return err;
	err = PQntuples(res) == 0 ? INV_ENOTFOUND : low_stock_row(res, 0, out);
	PQclear(res);
	return err;
}

static int pg_low_stock_put(void *txn, const inv_uuid *org, const inv_low_stock_record *rec)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	c->low_stock_none = 0;
	p_low_stock_key(&p, org, &rec->location, &rec->product, &rec->variant);
	if (rec->has_level)
		p_i64(&p, rec->level);
	else
		p_null(&p);
	p_i32(&p, rec->alert);
	return run_cmd(c, ST_LOW_STOCK_PUT, &p);
}

static int pg_low_stock_delete(void *txn, const inv_uuid *org, const inv_uuid *location,
                               const inv_uuid *product, const inv_uuid *variant)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	p_low_stock_key(&p, org, location, product, variant);
	return run_cmd(c, ST_LOW_STOCK_DELETE, &p);
}

static int pg_low_stock_scan(void *txn, const inv_uuid *org, const inv_uuid *location,
                             const inv_uuid *product, inv_low_stock_record_fn fn,
                             void *payload)
{
	pg_conn *c = txn;
	enum pg_stmt_id id = product ? ST_LOW_STOCK_SCAN_PRODUCT : ST_LOW_STOCK_SCAN_LOCATION;
	struct params p = { 0 };
	PGresult *res;
	int i, n, err = txn_check(c);

	if (err)
		return err;
	if (no_low_stock(c, org))
		return 0;
	p_uuid(&p, org);
	p_uuid(&p, location);
	if (product)
		p_uuid(&p, product);
	if (!(res = run(c, id, &p, PGRES_TUPLES_OK, &err)))
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && !err; i++) {
		inv_low_stock_record rec;

		if (!(err = low_stock_row(res, i, &rec)))
			err = fn(&rec, payload);
	}
	PQclear(res);
	return err;
}

/* ------------------------------------------------------------ journal */

/* The packed records' layout: the one libzinv-sqlite stores. */
enum {
	PACK_LAYOUT = 1,
	PACK_HEADER = 4,
	PACK_RECORD = 112,
	PACK_MAX_RECORDS = (INT32_MAX - PACK_HEADER) / PACK_RECORD
};

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const unsigned char *p)
{
	return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static uint64_t get_le64(const unsigned char *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void pack_record(unsigned char *p, const inv_journal_record *r)
{
	put_le32(p, (uint32_t)r->kind);
	put_le32(p + 4, (uint32_t)r->low);
	memcpy(p + 8, r->product.bytes, 16);
	memcpy(p + 24, r->variant.bytes, 16);
	memcpy(p + 40, r->from.bytes, 16);
	memcpy(p + 56, r->to.bytes, 16);
	memcpy(p + 72, r->location.bytes, 16);
	put_le64(p + 88, (uint64_t)r->quantity);
	put_le64(p + 96, (uint64_t)r->before);
	put_le64(p + 104, (uint64_t)r->after);
}

static void unpack_record(const unsigned char *p, inv_journal_record *r)
{
	r->kind = (int32_t)get_le32(p);
	r->low = (int32_t)get_le32(p + 4);
	memcpy(r->product.bytes, p + 8, 16);
	memcpy(r->variant.bytes, p + 24, 16);
	memcpy(r->from.bytes, p + 40, 16);
	memcpy(r->to.bytes, p + 56, 16);
	memcpy(r->location.bytes, p + 72, 16);
	r->quantity = (int64_t)get_le64(p + 88);
	r->before = (int64_t)get_le64(p + 96);
	r->after = (int64_t)get_le64(p + 104);
}

static int pg_journal_append(void *txn, const inv_uuid *org,
                             const inv_journal_entry_record *rec)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	size_t i, len;
	int err = txn_check_write(c);

	if (err)
		return err;
	if (rec->record_count > PACK_MAX_RECORDS)
		return pg_error(INV_ETOOBIG, "too many records in one journal entry");
	len = PACK_HEADER + rec->record_count * PACK_RECORD;
	if ((err = pg_reserve(c, len)))
		return err;
	put_le16(c->buf, PACK_LAYOUT);
	put_le16(c->buf + 2, PACK_RECORD);
	for (i = 0; i < rec->record_count; i++)
		pack_record(c->buf + PACK_HEADER + i * PACK_RECORD, &rec->records[i]);
	p_uuid(&p, org);
	p_i64(&p, rec->sequence);
	p_i64(&p, rec->time);
	p_uuid_opt(&p, rec->has_external_uuid ? &rec->external_uuid : NULL);
	p_uuid_opt(&p, rec->has_user_uuid ? &rec->user_uuid : NULL);
	p_uuid_opt(&p, rec->has_client_uuid ? &rec->client_uuid : NULL);
	if (rec->idempotency_key)
		p_bytes(&p, rec->idempotency_key, strlen(rec->idempotency_key));
	else
		p_null(&p);
	p_i64(&p, (int64_t)rec->record_count);
	p_bytes(&p, c->buf, len);
	p_uuid(&p, &c->writer);
	if (!(err = run_cmd(c, ST_ENTRY_INSERT, &p))) {
		c->has_seq = 1;
		c->seq = rec->sequence;
	}
	return err;
}

static int journal_entry_row(const PGresult *res, int row, inv_journal_entry_record *e,
                             inv_journal_record **buf, size_t *cap)
{
	const unsigned char *blob;
	size_t len, i;
	int64_t count;
	int err;

	memset(e, 0, sizeof(*e));
	e->sequence = col_i64(res, row, 0);
	e->time = col_i64(res, row, 1);
	e->has_external_uuid = !PQgetisnull(res, row, 2);
	e->has_user_uuid = !PQgetisnull(res, row, 3);
	e->has_client_uuid = !PQgetisnull(res, row, 4);
	if ((err = col_uuid(res, row, 2, &e->external_uuid)) ||
	    (err = col_uuid(res, row, 3, &e->user_uuid)) ||
	    (err = col_uuid(res, row, 4, &e->client_uuid)))
		return err;
	e->idempotency_key = PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5);
	count = col_i64(res, row, 6);
	blob = (const unsigned char *)PQgetvalue(res, row, 7);
	len = (size_t)PQgetlength(res, row, 7);
	if (count < 0 || count > PACK_MAX_RECORDS || len < PACK_HEADER ||
	    get_le16(blob) != PACK_LAYOUT || get_le16(blob + 2) != PACK_RECORD ||
	    len != PACK_HEADER + (size_t)count * PACK_RECORD)
		return pg_error(INV_EFORMAT, "corrupt journal: an entry's records do not "
		                "match its record count");
	e->record_count = (size_t)count;
	if (e->record_count > *cap) {
		inv_journal_record *nbuf = realloc(*buf, e->record_count * sizeof(*nbuf));

		if (!nbuf)
			return pg_error(INV_ENOMEM, "out of memory reading the journal");
		*buf = nbuf;
		*cap = e->record_count;
	}
	for (i = 0; i < e->record_count; i++)
		unpack_record(blob + PACK_HEADER + i * PACK_RECORD, &(*buf)[i]);
	e->records = *buf;
	return 0;
}

static int pg_journal_read(void *txn, const inv_uuid *org, int64_t after, size_t limit,
                           inv_journal_entry_record_fn fn, void *payload)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	inv_journal_record *records = NULL;
	size_t cap = 0;
	PGresult *res;
	int i, n, err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_i64(&p, after);
	if (limit == 0 || limit > INT64_MAX)
		p_null(&p);         /* LIMIT NULL: no limit */
	else
		p_i64(&p, (int64_t)limit);
	if (!(res = run(c, ST_ENTRY_READ, &p, PGRES_TUPLES_OK, &err)))
		return err;
	n = PQntuples(res);
	for (i = 0; i < n && !err; i++) {
		inv_journal_entry_record e;

		if (!(err = journal_entry_row(res, i, &e, &records, &cap)))
			err = fn(&e, payload);
	}
	PQclear(res);
	free(records);
	return err;
}

static int pg_journal_trim(void *txn, const inv_uuid *org, int64_t up_to)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_i64(&p, up_to);
	return run_cmd(c, ST_ENTRY_TRIM, &p);
}

/* ------------------------------------------------------------ idempotency */

static int pg_idempotency_get(void *txn, const inv_uuid *org, const char *key,
                              inv_idempotency_record_fn fn, void *payload)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	p_bytes(&p, key, strlen(key));
	if (!(res = run(c, ST_IDEMPOTENCY_GET, &p, PGRES_TUPLES_OK, &err)))
		return err;
	if (PQntuples(res) == 0) {
		err = INV_ENOTFOUND;
	} else if (PQgetlength(res, 0, 0) != 32) {
		err = pg_error(INV_EFORMAT, "corrupt idempotency key: bad fingerprint");
	} else {
		inv_idempotency_record rec;

		rec.key = key;
		memcpy(rec.fingerprint, PQgetvalue(res, 0, 0), sizeof(rec.fingerprint));
		rec.sequence = col_i64(res, 0, 1);
		rec.result = PQgetvalue(res, 0, 2);
		rec.result_len = (size_t)PQgetlength(res, 0, 2);
		err = fn(&rec, payload);
	}
	PQclear(res);
	return err;
}

static int pg_idempotency_put(void *txn, const inv_uuid *org,
                              const inv_idempotency_record *rec)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	if (rec->result_len > INT32_MAX)
		return pg_error(INV_ETOOBIG, "idempotency result too large");
	p_uuid(&p, org);
	p_bytes(&p, rec->key, strlen(rec->key));
	p_bytes(&p, rec->fingerprint, sizeof(rec->fingerprint));
	p_i64(&p, rec->sequence);
	p_bytes(&p, rec->result, rec->result_len);
	return run_cmd(c, ST_IDEMPOTENCY_PUT, &p);
}

/* ------------------------------------------------------------ sync state */

static int pg_sync_state_get(void *txn, const inv_uuid *org, inv_sync_state_fn fn,
                             void *payload)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	PGresult *res;
	int err = txn_check(c);

	if (err)
		return err;
	p_uuid(&p, org);
	if (!(res = run(c, ST_SYNC_STATE_GET, &p, PGRES_TUPLES_OK, &err)))
		return err;
	if (PQntuples(res) == 0)
		err = INV_ENOTFOUND;
	else
		err = fn(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), payload);
	PQclear(res);
	return err;
}

static int pg_sync_state_put(void *txn, const inv_uuid *org, const void *data, size_t len)
{
	pg_conn *c = txn;
	struct params p = { 0 };
	int err = txn_check_write(c);

	if (err)
		return err;
	if (len > INV_SYNC_STATE_MAX)
		return pg_error(INV_ETOOBIG, "sync state too large");
	if (!data && len)
		return pg_error(INV_EINVAL, "sync state data is NULL");
	p_uuid(&p, org);
	p_bytes(&p, data, len);
	return run_cmd(c, ST_SYNC_STATE_PUT, &p);
}

/* ------------------------------------------------------------ instance */

static void pg_close(void *instance)
{
	pg_instance *in = instance;
	int i;

	if (!in)
		return;
	for (i = 0; i < in->pool_size; i++) {
		PQfinish(in->conns[i].conn);
		free(in->conns[i].buf);
	}
	free(in->conns);
	free(in->conninfo);
	free(in->schema);
	free(in->app_name);
	pthread_cond_destroy(&in->cond);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

static int pg_control(void *instance, int op, void *arg)
{
	(void)instance;
	(void)op;
	(void)arg;
	return INV_ENOTFOUND;
}

static const inv_backend_ops postgres_ops = {
	.version = INV_BACKEND_VERSION,
	.name = "postgres",
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.org_get = pg_org_get,
	.org_put = pg_org_put,
	.location_scan = pg_location_scan,
	.location_put = pg_location_put,
	.tracking_get = pg_tracking_get,
	.tracking_put = pg_tracking_put,
	.tracking_scan = pg_tracking_scan,
	.variant_get = pg_variant_get,
	.variant_put = pg_variant_put,
	.variant_scan = pg_variant_scan,
	.low_stock_get = pg_low_stock_get,
	.low_stock_put = pg_low_stock_put,
	.low_stock_delete = pg_low_stock_delete,
	.low_stock_scan = pg_low_stock_scan,
	.journal_append = pg_journal_append,
	.journal_read = pg_journal_read,
	.journal_trim = pg_journal_trim,
	.idempotency_get = pg_idempotency_get,
	.idempotency_put = pg_idempotency_put,
	.variant_get_many = pg_variant_get_many,
	.variant_put_many = pg_variant_put_many,
	.control = pg_control,
	.sync_state_get = pg_sync_state_get,
	.sync_state_put = pg_sync_state_put,
};

/* ------------------------------------------------------------ opening */

int inv_postgres_options_init(inv_postgres_options *opts, uint32_t version)
{
	static const inv_postgres_options defaults = INV_POSTGRES_OPTIONS_INIT;

	if (!opts)
		return pg_error(INV_EINVAL, "options: NULL");
	if (version != INV_POSTGRES_OPTIONS_VERSION)
		return pg_error(INV_EVERSION, "unsupported inv_postgres_options version");
	*opts = defaults;
	return 0;
}

static int options_check(const inv_postgres_options *opts)
{
	if (opts->version < 1 || opts->version > INV_POSTGRES_OPTIONS_VERSION)
		return pg_error(INV_EVERSION, "unsupported inv_postgres_options version");
	if (opts->pool_size < 1 || opts->pool_size > 1024)
		return pg_error(INV_EINVAL, "pool_size must be 1..1024");
	if (opts->statement_timeout_ms < 0)
		return pg_error(INV_EINVAL, "statement_timeout_ms must not be negative");
	if (opts->schema && (opts->schema[0] == '\0' || strlen(opts->schema) > 63))
		return pg_error(INV_EINVAL, "schema must be 1..63 bytes");
	return 0;
}

static char *dup_or(const char *s, const char *fallback)
{
	if (!s)
		s = fallback;
	return s ? strdup(s) : NULL;
}

int inv_postgres_backend_open(const inv_backend_ops **ops, void **instance,
                              const char *conninfo, const inv_postgres_options *opts)
{
	static const inv_postgres_options defaults = INV_POSTGRES_OPTIONS_INIT;
	pg_instance *in;
	int i, err;

	if (!ops || !instance || !conninfo)
		return pg_error(INV_EINVAL, "open: NULL argument");
	if (!opts)
		opts = &defaults;
	if ((err = options_check(opts)))
		return err;
	in = calloc(1, sizeof(*in));
	if (!in)
		return pg_error(INV_ENOMEM, "out of memory");
	pthread_mutex_init(&in->lock, NULL);
	pthread_cond_init(&in->cond, NULL);
	in->pool_size = opts->pool_size;
	in->timeout_ms = opts->statement_timeout_ms;
	in->conns = calloc((size_t)in->pool_size, sizeof(*in->conns));
	in->conninfo = strdup(conninfo);
	in->schema = dup_or(opts->schema, "zinv");
	in->app_name = dup_or(opts->application_name, NULL);
	if (!in->conns || !in->conninfo || !in->schema ||
	    (opts->application_name && !in->app_name)) {
		pg_close(in);
		return pg_error(INV_ENOMEM, "out of memory");
	}
	for (i = 0; i < in->pool_size; i++)
		in->conns[i].in = in;
	/* the first connection migrates and stays in the pool */
	err = pg_connect(in, &in->conns[0].conn);
	if (!err)
		err = pg_migrate(in, in->conns[0].conn);
	if (err) {
		pg_close(in);
		return err;
	}
	*ops = &postgres_ops;
	*instance = in;
	return 0;
}

int inv_store_open_postgres(inv_store **out, const char *conninfo,
                            const inv_postgres_options *pg_opts,
                            const inv_store_options *store_opts)
{
	const inv_backend_ops *ops;
	void *instance;
	int err;

	if (!out)
		return pg_error(INV_EINVAL, "open: NULL argument");
	if ((err = inv_postgres_backend_open(&ops, &instance, conninfo, pg_opts)))
		return err;
	if ((err = inv_store_open(out, ops, instance, store_opts)))
		ops->close(instance);
	return err;
}
