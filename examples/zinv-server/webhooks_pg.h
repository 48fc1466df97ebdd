/*
 * webhooks_pg.h - zinv-server's webhook tables in PostgreSQL.
 *
 * When the store is PostgreSQL, the subscriptions, their delivery cursors
 * and their delivery leases live in the same database, in the server's own
 * schema `zinv_server` with its own versioned migrations, so that every
 * process of a fleet sees the same subscriptions.  The server links libpq
 * for this directly (libzinv does not).  Every key starts with the
 * organization.
 *
 * A subscription is delivered by one process at a time: the one holding
 * its lease row (owner, expiry), taken with FOR UPDATE SKIP LOCKED and
 * renewed while delivering.  A cursor moves only while its writer holds
 * the lease (the same statement checks and renews it), so a process that
 * lost its lease cannot move a cursor behind the new owner's back.
 *
 * One connection, used under a mutex by every thread; reconnected after a
 * failure.  Calls return -1 on a database error (printed).
 */
#ifndef ZINV_SERVER_WEBHOOKS_PG_H
#define ZINV_SERVER_WEBHOOKS_PG_H

#include <stdint.h>

struct whpg;

/* One subscription row; the strings live until the callback returns. */
struct whrow {
	int64_t id;
	const char *uuid, *org, *destination, *event_names, *contact_email;
	const char *signing_key, *status;
	int64_t updated, cursor_seq, cursor_idx, next_attempt_ms, attempts;
	int test_pending;
};

typedef int (*whrow_fn)(const struct whrow *row, void *arg);

/* Connect, create or migrate the tables (under an advisory lock, so that
 * processes starting together migrate once).  `owner` names this process
 * in lease rows; `lease_ms` is how long a lease lasts unrenewed. */
int whpg_open(struct whpg **out, const char *conninfo, const char *owner, int64_t lease_ms);

/* Release this process's leases and disconnect.  NULL is a no-op. */
void whpg_close(struct whpg *pg);

/* Rows: id > 0 that one (of `org`); else those of `org` (NULL: every
 * organization), and of `uuid` when not NULL; in id order.  `fn` returning
 * non-zero stops with -1. */
int whpg_load(struct whpg *pg, int64_t id, const char *org, const char *uuid,
              whrow_fn fn, void *arg);

/* A new subscription (and its free lease row); `fn` gets the stored row.
 * 1 when (org, uuid) exists. */
int whpg_insert(struct whpg *pg, const char *org, const char *uuid, const char *destination,
                const char *event_names, const char *email, const char *key,
                int64_t updated, int64_t cursor_seq, whrow_fn fn, void *arg);

/* PUT: NULL fields keep their value; a new destination is tried at once.
 * 1 when there is no such subscription. */
int whpg_update(struct whpg *pg, const char *org, const char *uuid, const char *destination,
                const char *event_names, const char *email, int64_t updated,
                whrow_fn fn, void *arg);

/* 1 when there is no such subscription. */
int whpg_delete(struct whpg *pg, const char *org, const char *uuid);

/* Move the cursor past an acknowledged message (and renew the lease), only
 * while this process holds the lease: 1 when it does not any more. */
int whpg_save_cursor(struct whpg *pg, const char *org, int64_t id, int64_t seq, int64_t idx,
                     int clear_test);

/* A failed attempt; as above, under the lease. */
int whpg_save_failure(struct whpg *pg, const char *org, int64_t id, int64_t attempts,
                      int64_t next_attempt_ms);

/* Take the lease when it is free, expired or already ours: 1 taken, 0
 * held by another process (or being taken: SKIP LOCKED), 2 the
 * subscription is gone. */
int whpg_lease_take(struct whpg *pg, const char *org, int64_t id);

/* Extend every lease of this process; the number renewed. */
int whpg_lease_renew(struct whpg *pg);

/* Give one lease up (or all of them when id is 0). */
int whpg_lease_release(struct whpg *pg, const char *org, int64_t id);

#endif /* ZINV_SERVER_WEBHOOKS_PG_H */
