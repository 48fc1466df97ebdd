/*
 * zinv/sync.h - offline-first till sync with an upstream Zettle Inventory
 * service (since 1.1).
 *
 * A sync object keeps one organization of a till's store in step with the
 * same organization upstream (zinv-server, or the hosted service).  It does
 * no I/O: inv_sync_next() hands out the next HTTP request (method, path,
 * headers, body), the caller sends it, adds its own Authorization header,
 * and gives the answer to inv_sync_answer().  A round pushes every local
 * journal entry not yet acknowledged, in sequence order, one request each
 * (Idempotency-Key "<till>:<sequence>", so a replay applies nothing twice),
 * then pulls the upstream balances, tracking and low-stock levels and sets
 * the local ones to upstream + the local deltas not yet pushed, in a journal
 * entry whose client UUID is INV_SYNC_PULL_CLIENT; such entries are never
 * pushed.  The cursor, the till UUID, the upstream location map and the
 * rejected entries are stored in the store (backend ops version 2), so a
 * program killed at any moment resumes where it was.  See inv_sync(3).
 *
 * One sync object per organization and store at a time, used by one thread
 * at a time; other threads (or processes) may sell meanwhile.
 */
#ifndef ZINV_SYNC_H
#define ZINV_SYNC_H

#include "org.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The client UUID that marks journal entries written by a pull. */
#define INV_SYNC_PULL_CLIENT "5a9a4c1e-77f0-5d8e-9b1c-0c5e2d7f3a61"

typedef struct inv_sync inv_sync;

/* What inv_sync_next() asks of the caller. */
typedef enum inv_sync_step {
	INV_SYNC_IDLE = 0,     /* the round is over; the next call starts another */
	INV_SYNC_REQUEST = 1,  /* send the request, then call inv_sync_answer() */
	INV_SYNC_WAIT = 2      /* wait inv_sync_delay() ms, then call again */
} inv_sync_step;

/*
 * Open the sync object of `org`, which must stay open until
 * inv_sync_close().  `till` names the till in idempotency keys and derived
 * external UUIDs; NULL uses the one stored, or makes one and stores it.
 * INV_ECONFLICT when `till` differs from the stored till; INV_EVERSION when
 * the store's backend keeps no sync state (ops version 1); INV_EFORMAT when
 * the stored state is corrupt or newer.
 */
INV_EXTERN int inv_sync_open(inv_sync **out, inv_org *org, const inv_uuid *till);
/* NULL is a no-op. */
INV_EXTERN void inv_sync_close(inv_sync *sync);

/*
 * The next step: an inv_sync_step (>= 0), or a negative code when the
 * store failed (the round starts again on the next call).
 */
INV_EXTERN int inv_sync_next(inv_sync *sync);

/* The request of the last INV_SYNC_REQUEST, owned by the object until the
 * next inv_sync_next() or inv_sync_answer(): method ("GET", "PUT", "POST"),
 * path ("/organizations/self/inventory"), body (NUL-terminated; "" for a
 * GET) and the headers to send besides Authorization. */
INV_EXTERN const char *inv_sync_request_method(const inv_sync *sync);
INV_EXTERN const char *inv_sync_request_path(const inv_sync *sync);
INV_EXTERN const char *inv_sync_request_body(const inv_sync *sync, size_t *len);
INV_EXTERN size_t inv_sync_request_header_count(const inv_sync *sync);
INV_EXTERN const char *inv_sync_request_header_name(const inv_sync *sync, size_t i);
INV_EXTERN const char *inv_sync_request_header_value(const inv_sync *sync, size_t i);

/*
 * The answer to the request: HTTP `status` (0 when none came: network error,
 * timeout, dropped connection), `header_count` name/value pairs in
 * `headers` (headers[2i] the name, headers[2i+1] the value; only
 * Retry-After is read), and the body.  0, 429, 5xx, 401, 403, 408 keep the
 * request for a retry after a backoff (the next step is INV_SYNC_WAIT);
 * another 4xx to a push parks the entry in the rejected list with the body
 * and goes on.  INV_EINVAL when no request is outstanding; a negative code
 * when the store failed or a pull could not be applied (the answer is
 * taken; a failed pull ends the round, and a pushed entry is resent at
 * worst, which the idempotency key makes harmless).
 */
INV_EXTERN int inv_sync_answer(inv_sync *sync, int status, const char *const *headers,
                               size_t header_count, const char *body, size_t body_len);

/* After INV_SYNC_WAIT: milliseconds to wait (exponential backoff from 1 s
 * to 60 s, or the upstream's Retry-After). */
INV_EXTERN int64_t inv_sync_delay(const inv_sync *sync);

/* The till's UUID (owned by the object). */
INV_EXTERN const inv_uuid *inv_sync_till(const inv_sync *sync);
/* The last sequence acknowledged (or rejected) upstream: every local entry
 * up to it is done. */
INV_EXTERN int64_t inv_sync_pushed_sequence(const inv_sync *sync);
/* The number of local entries still to push. */
INV_EXTERN int inv_sync_pending(int64_t *out, inv_sync *sync);
/* What the current (or last) round did: entries pushed, local changes
 * pulled, entries rejected.  Any pointer may be NULL. */
INV_EXTERN void inv_sync_round(const inv_sync *sync, int64_t *pushed, int64_t *pulled,
                               int64_t *rejected);

/* Rejected entries, oldest first: the entry's sequence, the upstream status
 * and its body (owned by the object; valid until inv_sync_close()).
 * INV_ENOTFOUND when `i` is out of range. */
INV_EXTERN size_t inv_sync_rejected_count(const inv_sync *sync);
INV_EXTERN int inv_sync_rejected_at(const inv_sync *sync, size_t i, int64_t *sequence,
                                    int *status, const char **body, size_t *body_len);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_SYNC_H */
