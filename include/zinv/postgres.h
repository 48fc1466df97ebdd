/*
 * zinv/postgres.h - the server-grade store: libzinv-postgres.
 *
 * A storage backend keeping stores in one PostgreSQL database, shared by
 * any number of processes on any number of machines.  Link with
 * `pkg-config --libs zinv-postgres`; libzinv itself stays free of libpq.
 * A write transaction locks its organization's row (SELECT ... FOR UPDATE),
 * so writers of one organization queue and writers of different
 * organizations run in parallel; reads are REPEATABLE READ, READ ONLY
 * snapshots.  Serialization failures, deadlocks and lock or statement
 * timeouts fail the call with INV_EBUSY, which the caller may retry.  One
 * instance serves many threads through a pool of connections.  An instance
 * belongs to the process that opened it: after fork(), open a new one in the
 * child.  See inv_postgres(3) for the schema and the scale-out path.
 */
#ifndef ZINV_POSTGRES_H
#define ZINV_POSTGRES_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Options of the PostgreSQL backend; a versioned struct.  Initialize with
 * INV_POSTGRES_OPTIONS_INIT or inv_postgres_options_init(), then set members.
 */
typedef struct inv_postgres_options {
	uint32_t version;             /* INV_POSTGRES_OPTIONS_VERSION */
	int32_t pool_size;            /* connections kept open, 1..1024 (default 4) */
	int32_t statement_timeout_ms; /* a statement (a lock wait included) that runs
	                                 longer fails with INV_EBUSY; 0: none
	                                 (default 30000) */
	const char *schema;           /* PostgreSQL schema of the tables; NULL: "zinv" */
	const char *application_name; /* NULL: "libzinv"; an application_name in the
	                                 connection string wins */
	/* members above are valid for version 1 */
} inv_postgres_options;

#define INV_POSTGRES_OPTIONS_VERSION 1
#define INV_POSTGRES_OPTIONS_INIT \
	{ INV_POSTGRES_OPTIONS_VERSION, 4, 30000, NULL, NULL }

/* Fill *opts with defaults for `version`; INV_EVERSION if unknown. */
INV_EXTERN int inv_postgres_options_init(inv_postgres_options *opts, uint32_t version);

/*
 * Connect to the database named by `conninfo` (a libpq connection string
 * "host=... dbname=..." or URI "postgresql://user@host/db"; "" uses the PG*
 * environment variables alone) as a backend instance for inv_store_open();
 * `opts` may be NULL.  The schema is created or migrated when needed
 * (concurrent first opens migrate once).  The instance belongs to the
 * caller until inv_store_open() succeeds; release an unused one with
 * (*ops)->close(*instance).
 * Codes: INV_EBACKEND when the server cannot be reached or refuses the
 * login (the message is libpq's), or when the schema is owned by another
 * role; INV_EFORMAT when the schema was made by a newer libzinv-postgres
 * (nothing is changed); INV_EBUSY when a lock was not had in time.
 */
INV_EXTERN int inv_postgres_backend_open(const inv_backend_ops **ops, void **instance,
                                         const char *conninfo,
                                         const inv_postgres_options *opts);

/*
 * Open a store on the database named by `conninfo`:
 * inv_postgres_backend_open() followed by inv_store_open().  Either options
 * pointer may be NULL.  Close the store with inv_store_close().
 */
INV_EXTERN int inv_store_open_postgres(inv_store **out, const char *conninfo,
                                       const inv_postgres_options *pg_opts,
                                       const inv_store_options *store_opts);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_POSTGRES_H */
