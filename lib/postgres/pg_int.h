/*
 * pg_int.h - libzinv-postgres internals shared by its source files.
 *
 * postgres.c holds the vtable's operations; pool.c the connections (pool,
 * errors, prepared statements, schema migrations and the in-doubt commit
 * check).  A transaction handle is the pooled connection it runs on.
 */
#ifndef ZINV_PG_INT_H
#define ZINV_PG_INT_H

#include <pthread.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <zinv/postgres.h>

/* Every statement the operations run, prepared on a connection when it is
 * first used there. */
enum pg_stmt_id {
	ST_LOCK_ORG,
	ST_CREATE_ORG,
	ST_ORG_GET,
	ST_ORG_PUT,
	ST_LOCATION_SCAN,
	ST_LOCATION_PUT,
	ST_TRACKING_GET,
	ST_TRACKING_PUT,
	ST_TRACKING_SCAN,
	ST_VARIANT_GET,
	ST_VARIANT_PUT,
	ST_VARIANT_SCAN_ALL,
	ST_VARIANT_SCAN_LOCATION,
	ST_VARIANT_SCAN_PRODUCT,
	ST_VARIANT_SCAN_BOTH,
	ST_VARIANT_GET_MANY,
	ST_VARIANT_PUT_MANY,
	ST_LOW_STOCK_GET,
	ST_LOW_STOCK_PUT,
	ST_LOW_STOCK_DELETE,
	ST_LOW_STOCK_SCAN_LOCATION,
	ST_LOW_STOCK_SCAN_PRODUCT,
	ST_LOW_STOCK_ANY,
	ST_ENTRY_INSERT,
	ST_ENTRY_READ,
	ST_ENTRY_TRIM,
	ST_IDEMPOTENCY_GET,
	ST_IDEMPOTENCY_PUT,
	ST_SYNC_STATE_GET,
	ST_SYNC_STATE_PUT,
	ST_COUNT
};

struct pg_instance;

/* One pooled connection, and the transaction it runs when `in_txn`. */
typedef struct pg_conn {
	struct pg_instance *in;
	PGconn *conn;               /* NULL: not connected (or discarded) */
	uint64_t prepared;          /* bit i: statement i is prepared here */
	int busy;                   /* handed out by begin() */
	int in_txn;
	int write;
	int failed;                 /* a statement failed: commit must not */
	int broken;                 /* the connection was lost */
	int piped;                  /* in pipeline mode (write transactions) */
	int queued;                 /* commands sent whose results are unread */
	int org_state;              /* organization row read with the lock: 0 not
	                             * read, 1 found (org_last, org_policy), 2 none */
	int64_t org_last;
	int32_t org_policy;
	int low_stock_none;         /* read with the lock, and nothing put since: the
	                             * organization has no low-stock entry */
	inv_uuid org;
	char xid[32];               /* the write transaction's id (xid8) */
	inv_uuid writer;            /* random, per write transaction: stored with its
	                             * journal entry, it names the entry as this
	                             * transaction's when COMMIT is in doubt */
	int has_seq;                /* a journal entry was appended: its sequence */
	int64_t seq;
	unsigned char *buf;         /* parameter buffer, reused */
	size_t cap;
} pg_conn;

typedef struct pg_instance {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pg_conn *conns;
	int pool_size;
	int timeout_ms;
	char *conninfo;
	char *schema;
	char *app_name;
} pg_instance;

extern const char *const pg_stmt_sql[ST_COUNT];

/* Record an error detail prefixed "postgres: "; returns `code`. */
int pg_error(int code, const char *message);

/* Record the failure of `res` (NULL: no result) on `c` doing `what`:
 * SQLSTATE 40001/40P01/55P03/57014 are INV_EBUSY, a lost connection is
 * INV_EBACKEND with libpq's message.  Marks the transaction failed.
 * Clears `res`. */
int pg_fail(pg_conn *c, PGresult *res, const char *what);

/* Run prepared statement `id` (preparing it first on this connection;
 * in pipeline mode, after a sync of what is queued); text or binary
 * parameters as given, binary results.  Returns the result
 * when its status is `want`, else NULL after pg_fail() set *err. */
PGresult *pg_run(pg_conn *c, enum pg_stmt_id id, int n, const char *const *values,
                 const int *lengths, const int *formats, ExecStatusType want, int *err);

/* Pipelines.  A write transaction runs in pipeline mode: its writes are
 * sent without waiting (pg_send), and their results are read at the next
 * sync, which a read or the commit makes.  A statement that fails aborts
 * every later one up to the sync, the COMMIT included.
 *
 * pg_pipe_enter prepares every statement first (once per connection).
 * pg_send_sql sends SQL without parameters.  pg_pipe_sync sends a sync and
 * reads every queued result; the last `nout` results go to out[] (the
 * caller clears them).  On error it returns the first failure, and *lost
 * (when not NULL) says whether no statement failed before the connection
 * did, so that the fate of what was sent is unknown. */
int pg_prepare_all(pg_conn *c);
int pg_pipe_enter(pg_conn *c);
void pg_pipe_leave(pg_conn *c);
int pg_send(pg_conn *c, enum pg_stmt_id id, int n, const char *const *values,
            const int *lengths, const int *formats);
int pg_send_sql(pg_conn *c, const char *sql);
int pg_pipe_sync(pg_conn *c, PGresult **out, int nout, const char *what, int *lost);

/* Pool: take a connected connection (waiting up to the timeout when all
 * are busy), give it back (closing it when broken). */
int pg_pool_take(pg_instance *in, pg_conn **out);
void pg_pool_give(pg_conn *c);

/* A connection to the instance's database with its session settings;
 * errors are recorded. */
int pg_connect(pg_instance *in, PGconn **out);

/* Create or migrate the schema, or refuse it; on `conn`. */
int pg_migrate(pg_instance *in, PGconn *conn);

/* After the connection dropped with COMMIT sent: 0 when the transaction
 * committed, an error saying which otherwise. */
int pg_resolve_in_doubt(pg_conn *c, const char *lost);
/* A fresh random id for a write transaction (pg_conn.writer). */
void pg_writer_id(inv_uuid *out);

/* Grow c->buf to at least `n` bytes. */
int pg_reserve(pg_conn *c, size_t n);

#endif /* ZINV_PG_INT_H */
