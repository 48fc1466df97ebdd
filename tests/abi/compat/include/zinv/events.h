/*
 * zinv/events.h - notifications after commit.
 *
 * Subscribers registered on a store are called after a batch commits, on the
 * committing thread, in commit order per organization, never for a batch that
 * failed or was a dry run.  One batch yields, in this order: a tracking event
 * per tracking change, one balance-changed event when a STORE balance
 * changed, and a low-stock event per crossing.  The same events can be
 * rebuilt from a journal entry with inv_journal_entry_events(), so a consumer
 * that missed some (a crash, a restart) replays them from the journal.
 *
 * A callback must not close the store; it may read, and it may write to
 * other organizations, but a write from inside a callback never waits: it
 * fails with INV_EBUSY when the organization is busy, as the callback's own
 * organization always is.  (Two callbacks writing to each other's
 * organizations would otherwise wait for each other forever.)
 */
#ifndef ZINV_EVENTS_H
#define ZINV_EVENTS_H

#include "journal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Event types.  Values are frozen. */
typedef enum inv_event_type {
	INV_EVENT_BALANCE_CHANGED = 1,
	INV_EVENT_TRACKING_STARTED = 2,
	INV_EVENT_TRACKING_STOPPED = 3,
	INV_EVENT_LOW_STOCK = 4
} inv_event_type;

/* Bit for one type in a subscription mask; a mask of 0 means every type. */
#define INV_EVENT_MASK(type) (UINT32_C(1) << (type))

typedef struct inv_event inv_event;

typedef void (*inv_event_fn)(const inv_event *event, void *payload);

INV_EXTERN inv_event_type inv_event_get_type(const inv_event *event);
INV_EXTERN const inv_uuid *inv_event_org_uuid(const inv_event *event);
/* The journal entry of the batch (sequence, time, external UUID, user, client). */
INV_EXTERN const inv_journal_entry *inv_event_entry(const inv_event *event);

/*
 * The event's items, as journal records.
 * BALANCE_CHANGED: one MOVE record per variant whose STORE balance the batch
 * changed, in order of first touch: location, product, variant, before (the
 * balance before the batch), after (after the batch); from, to, quantity 0.
 * TRACKING_*: one record with the product.  LOW_STOCK: one LOW_STOCK record.
 */
INV_EXTERN size_t inv_event_item_count(const inv_event *event);
INV_EXTERN const inv_journal_record *inv_event_items(const inv_event *event);

/* Register `fn` for the types in `mask` (0: all).  *out receives an id for
 * inv_unsubscribe(); ids are never reused within a store. */
INV_EXTERN int inv_subscribe(uint64_t *out, inv_store *store, uint32_t mask,
                             inv_event_fn fn, void *payload);

/* INV_ENOTFOUND when `id` is not subscribed. */
INV_EXTERN int inv_unsubscribe(inv_store *store, uint64_t id);

/* Call `fn` with each event of a stored journal entry of organization
 * `org_uuid`, exactly as subscribers saw them at commit. */
INV_EXTERN int inv_journal_entry_events(const inv_journal_entry *entry,
                                        const inv_uuid *org_uuid,
                                        inv_event_fn fn, void *payload);

#ifdef __cplusplus
}
#endif

#endif /* ZINV_EVENTS_H */
