/*
 * zinv/sqlite.h - the durable embedded store: libzinv-sqlite.
 *
 * A storage backend keeping a store in one SQLite database file (WAL mode).
 * Link with `pkg-config --libs zinv-sqlite`; libzinv itself stays free of
 * SQLite.  Several processes may open the same file: write batches take the
 * database's write lock (BEGIN IMMEDIATE), so they never interleave, and a
 * lock held longer than the busy timeout fails the call with INV_EBUSY,
 * which the caller may retry.  Within one instance, reads run on
 * connections of their own and never wait for writes; write batches of
 * different threads that arrive while a commit is in progress share the
 * next transaction and its fsync, each batch still all-or-nothing and each
 * caller answered once its batch is durable.  An instance belongs to the process that
 * opened it: after fork(), open a new one in the child.  See inv_sqlite(3)
 * for the schema.
 */
#ifndef ZINV_SQLITE_H
#define ZINV_SQLITE_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How hard a commit waits for the disk (PRAGMA synchronous). */
typedef enum inv_sqlite_sync {
	INV_SQLITE_SYNC_FULL = 0,   /* every commit survives power loss (default) */
	INV_SQLITE_SYNC_NORMAL = 1  /* survives a crash of the process; a power loss
	                               may undo the last commits, never corrupts */
} inv_sqlite_sync;

/*
 * Options of the SQLite backend; a versioned struct.  Initialize with
 * INV_SQLITE_OPTIONS_INIT or inv_sqlite_options_init(), then set members.
 */
typedef struct inv_sqlite_options {
	uint32_t version;           /* INV_SQLITE_OPTIONS_VERSION */
	int32_t sync;               /* inv_sqlite_sync */
	int32_t busy_timeout_ms;    /* wait this long for another process's lock
	                               before INV_EBUSY; 0: fail at once */
	int32_t read_only;          /* open for reading only: writes fail with
	                               INV_EREADONLY and the file is never changed.
	                               Where the WAL index (-shm) cannot be
	                               created, the file is read as immutable:
	                               later commits of other processes are not
	                               seen by this instance */
	/* members above are valid for version 1 */
	int32_t cache_kib;          /* page cache of each connection, KiB; memory
	                               is taken only as pages are read, so a large
	                               limit costs a small store nothing.  0:
	                               SQLite's own default (2 MiB) */
	int32_t mmap_mib;           /* read the file through a memory map of up
	                               to this many MiB; 0: plain reads */
	int32_t group_wait_us;      /* a commit that finds no other thread's batch
	                               waiting to share its fsync waits this long
	                               for one; 0 (default): commits at once */
	int32_t reserved;           /* 0 */
	/* members above are valid for version 2 */
} inv_sqlite_options;

#define INV_SQLITE_OPTIONS_VERSION 2
/* 64 MiB of page cache holds the balances of some 400,000 variants (a
 * file of about 150 B per variant): a shop's whole working set.  See
 * inv_sqlite(3) for the measurements behind the defaults. */
#define INV_SQLITE_OPTIONS_INIT \
	{ INV_SQLITE_OPTIONS_VERSION, INV_SQLITE_SYNC_FULL, 5000, 0, 65536, 0, 0, 0 }

/* Fill *opts with defaults for `version`; INV_EVERSION if unknown. */
INV_EXTERN int inv_sqlite_options_init(inv_sqlite_options *opts, uint32_t version);

/*
 * Open the database at `path` (":memory:" for a private in-memory database)
 * as a backend instance for inv_store_open(); `opts` may be NULL.  A missing
 * or empty file is created with the schema (unless read_only).  The instance
 * belongs to the caller until inv_store_open() succeeds; release an unused
 * one with (*ops)->close(*instance).
 * Codes: INV_EFORMAT when the file is not a libzinv database, is corrupt, or
 * has a newer schema (the file is left untouched); INV_EREADONLY when the
 * file, or the directory that must hold its -wal and -shm files, cannot be
 * written and read_only is not set (a file without any write permission bit
 * counts as read-only even for root); INV_EBUSY when another process holds
 * the database longer than the busy timeout.
 */
INV_EXTERN int inv_sqlite_backend_open(const inv_backend_ops **ops, void **instance,
                                       const char *path, const inv_sqlite_options *opts);

/*
 * Open a store on the database at `path`: inv_sqlite_backend_open() followed
 * by inv_store_open().  Either options pointer may be NULL.  Close the store
 * with inv_store_close().
 */
INV_EXTERN int inv_store_open_sqlite(inv_store **out, const char *path,
                                     const inv_sqlite_options *sqlite_opts,
                                     const inv_store_options *store_opts);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_SQLITE_H */
