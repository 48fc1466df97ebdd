/*
 * webhooks.h - Pusher-compatible webhook subscriptions for zinv-server.
 *
 * The server owns the subscriptions and their delivery cursors (the
 * library's storage is not involved): with an SQLite store they live in a
 * side database `<db>.webhooks`, with the memory store in memory.  A thread
 * per subscription delivers its events from the organization's journal, in
 * order, at least once, signed, so a hanging receiver delays only its own
 * subscription; see README.md.
 */
#ifndef ZINV_SERVER_WEBHOOKS_H
#define ZINV_SERVER_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <zinv.h>
#include <zinv/rest.h>

struct webhooks;

struct webhooks_options {
	/* Delays between attempts, ms; the last repeats forever.  NULL: the
	 * service's schedule (10 x 1 min, 9 x 10 min, then hourly). */
	const int64_t *retry_ms;
	size_t retry_count;
	int64_t poll_ms;       /* journal poll period (other writers); 0: 1000 */
	long timeout_ms;       /* one POST; 0: 10000 */
	int deny_private;      /* refuse loopback, private and link-local destinations */
	int postgres;          /* `db` is a PostgreSQL conninfo: tables and leases there */
	int64_t lease_ms;      /* PostgreSQL: a lease unrenewed this long is free; 0: 3000 */
};

/* Parse "60,60,600" (seconds, decimals allowed) into a malloc'd array. */
int webhooks_parse_retry(int64_t **out, size_t *count, const char *spec);

/* Open the subscriptions next to the store's database `db` (":memory:"
 * keeps them in memory; with opts->postgres they go into that PostgreSQL
 * database, see webhooks_pg.h).  Prints why on failure and returns -1. */
int webhooks_open(struct webhooks **out, inv_store *store, const char *db,
                  const struct webhooks_options *opts);

/* Start the delivery workers' supervisor; -1 when it cannot. */
int webhooks_start(struct webhooks *wh);

/* Stop the workers (an in-flight POST is aborted; its event is sent again
 * on the next start) and free everything.  NULL is a no-op. */
void webhooks_close(struct webhooks *wh);

/* Per subscription: backlog (journal entries after the cursor), age of the
 * oldest undelivered entry, and whether this process delivers it; the
 * Prometheus text format.  NULL writes nothing. */
void webhooks_metrics(struct webhooks *wh, FILE *out);

/* Whether `path` is a subscriptions route, served by webhooks_handle(). */
int webhooks_is_route(const char *path);

/* The answer to one request. */
struct webhooks_answer {
	int status;
	char *body;          /* malloc'd JSON; NULL for 204 */
	size_t len;
	const char *allow;   /* 405: the Allow header; else NULL */
};

/* Answer one /organizations/{org}/subscriptions... request.  Returns -1
 * when out of memory. */
int webhooks_handle(struct webhooks *wh, const inv_rest_request *req,
                    struct webhooks_answer *answer);

#endif /* ZINV_SERVER_WEBHOOKS_H */
