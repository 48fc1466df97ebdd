/*
 * events.c - subscribers and the events of a journal entry.
 *
 * Live delivery and inv_journal_entry_events() share inv__events_build():
 * the engine hands it the journal entry it just committed, so a consumer
 * replaying the journal sees exactly what subscribers saw.
 */
#include <stdlib.h>

#include "core_int.h"

struct inv_event {
	inv_event_type type;
	const inv_uuid *org;
	const inv_journal_entry *entry;
	const inv_journal_record *items;
	size_t count;
};

inv_event_type inv_event_get_type(const inv_event *event)
{
	return event ? event->type : (inv_event_type)0;
}

const inv_uuid *inv_event_org_uuid(const inv_event *event)
{
	return event ? event->org : NULL;
}

const inv_journal_entry *inv_event_entry(const inv_event *event)
{
	return event ? event->entry : NULL;
}

size_t inv_event_item_count(const inv_event *event)
{
	return event ? event->count : 0;
}

const inv_journal_record *inv_event_items(const inv_event *event)
{
	return event ? event->items : NULL;
}

/* ------------------------------------------------------------ building */

struct move_ref {
	const inv_journal_record *rec;
	size_t index;
};

static int by_location_variant_index(const void *pa, const void *pb)
{
	const struct move_ref *a = pa, *b = pb;
	int c = memcmp(a->rec->location.bytes, b->rec->location.bytes, 16);

	if (!c)
		c = memcmp(a->rec->variant.bytes, b->rec->variant.bytes, 16);
	if (!c)
		c = (a->index > b->index) - (a->index < b->index);
	return c;
}

static int by_index(const void *pa, const void *pb)
{
	const struct move_ref *a = pa, *b = pb;

	return (a->index > b->index) - (a->index < b->index);
}

/* The balance-changed items: per (STORE location, variant) the balance
 * before its first move and after its last, in order of first touch,
 * leaving out variants the batch brought back to where they were. */
static int balance_items(const inv_journal_entry *entry, inv_journal_record **out, size_t *count)
{
	const inv_journal_entry_record *e = &entry->rec;
	struct move_ref *refs, *groups;
	inv_journal_record *items = NULL;
	size_t i, j, n = 0, g = 0;

	*out = NULL;
	*count = 0;
	for (i = 0; i < e->record_count; i++)
		n += e->records[i].kind == INV_RECORD_MOVE && !inv__uuid_is_nil(&e->records[i].location);
	if (!n)
		return 0;
	refs = malloc(2 * n * sizeof(*refs));
	if (!refs)
		return INV_ENOMEM;
	groups = refs + n;
	for (i = 0, j = 0; i < e->record_count; i++)
		if (e->records[i].kind == INV_RECORD_MOVE && !inv__uuid_is_nil(&e->records[i].location))
			refs[j++] = (struct move_ref){ &e->records[i], i };
	qsort(refs, n, sizeof(*refs), by_location_variant_index);

	/* groups[] keeps each group's last move, indexed by its first touch. */
	for (i = 0; i < n; i = j) {
		const inv_journal_record *first = refs[i].rec;

		for (j = i + 1; j < n && inv__uuid_eq(&refs[j].rec->location, &first->location) &&
		                inv__uuid_eq(&refs[j].rec->variant, &first->variant); j++)
			;
		if (first->before != refs[j - 1].rec->after)
			groups[g++] = (struct move_ref){ refs[j - 1].rec, refs[i].index };
	}
	if (g) {
		items = calloc(g, sizeof(*items));
		if (!items) {
			free(refs);
			return INV_ENOMEM;
		}
	}
	qsort(groups, g, sizeof(*groups), by_index);
	for (i = 0; i < g; i++) {
		const inv_journal_record *last = groups[i].rec;

		items[i].kind = INV_RECORD_MOVE;
		items[i].location = last->location;
		items[i].product = last->product;
		items[i].variant = last->variant;
		items[i].before = e->records[groups[i].index].before;
		items[i].after = last->after;
	}
	free(refs);
	*out = items;
	*count = g;
	return 0;
}

int inv__events_build(const inv_journal_entry *entry, const inv_uuid *org_uuid,
                      inv_event_fn fn, void *payload)
{
	const inv_journal_entry_record *e = &entry->rec;
	inv_journal_record *items;
	inv_event ev = { .org = org_uuid, .entry = entry };
	size_t i, n;
	int rc;

	for (i = 0; i < e->record_count; i++) {
		int32_t kind = e->records[i].kind;

		if (kind != INV_RECORD_TRACKING_STARTED && kind != INV_RECORD_TRACKING_STOPPED)
			continue;
		ev.type = kind == INV_RECORD_TRACKING_STARTED ? INV_EVENT_TRACKING_STARTED
		                                              : INV_EVENT_TRACKING_STOPPED;
		ev.items = &e->records[i];
		ev.count = 1;
		fn(&ev, payload);
	}
	rc = balance_items(entry, &items, &n);
	if (rc)
		return inv__error(rc, -1, NULL, "out of memory");
	if (n) {
		ev.type = INV_EVENT_BALANCE_CHANGED;
		ev.items = items;
		ev.count = n;
		fn(&ev, payload);
		free(items);
	}
	for (i = 0; i < e->record_count; i++) {
		if (e->records[i].kind != INV_RECORD_LOW_STOCK)
			continue;
		ev.type = INV_EVENT_LOW_STOCK;
		ev.items = &e->records[i];
		ev.count = 1;
		fn(&ev, payload);
	}
	return 0;
}

int inv_journal_entry_events(const inv_journal_entry *entry, const inv_uuid *org_uuid,
                             inv_event_fn fn, void *payload)
{
	if (!entry || !org_uuid || !fn)
		return inv__error(INV_EINVAL, -1, !entry ? "entry" : !org_uuid ? "org_uuid" : "fn",
		                  "argument is NULL");
	return inv__events_build(entry, org_uuid, fn, payload);
}

/* ----------------------------------------------------------- subscribers */

int inv_subscribe(uint64_t *out, inv_store *store, uint32_t mask, inv_event_fn fn,
                  void *payload)
{
	if (!out || !store || !fn)
		return inv__error(INV_EINVAL, -1, !out ? "out" : !store ? "store" : "fn",
		                  "argument is NULL");
	pthread_mutex_lock(&store->subs_lock);
	if (inv__grow(&store->subs, &store->sub_cap, store->sub_count + 1, sizeof(*store->subs))) {
		pthread_mutex_unlock(&store->subs_lock);
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	*out = store->next_sub_id++;
	store->subs[store->sub_count++] = (inv__subscriber){ *out, mask, fn, payload };
	atomic_store_explicit(&store->sub_live, store->sub_count, memory_order_release);
	pthread_mutex_unlock(&store->subs_lock);
	return 0;
}

int inv_unsubscribe(inv_store *store, uint64_t id)
{
	size_t i;

	if (!store)
		return inv__error(INV_EINVAL, -1, "store", "store is NULL");
	pthread_mutex_lock(&store->subs_lock);
	for (i = 0; i < store->sub_count; i++) {
		if (store->subs[i].id != id)
			continue;
		memmove(&store->subs[i], &store->subs[i + 1],
		        (store->sub_count - i - 1) * sizeof(*store->subs));
		store->sub_count--;
		atomic_store_explicit(&store->sub_live, store->sub_count, memory_order_release);
		pthread_mutex_unlock(&store->subs_lock);
		return 0;
	}
	pthread_mutex_unlock(&store->subs_lock);
	return inv__error(INV_ENOTFOUND, -1, "id", "no subscription %llu", (unsigned long long)id);
}

int inv__events_wanted(inv_store *store)
{
	/* Read without the lock: a batch of one would pay a mutex for it. */
	return atomic_load_explicit(&store->sub_live, memory_order_acquire) > 0;
}

/* How deep the calling thread is in subscriber callbacks.  A callback runs
 * while its organization's write lock is held, so a write from inside one
 * must never wait for a lock: two callbacks writing to each other's
 * organizations on two threads would wait forever. */
static _Thread_local unsigned callback_depth;

int inv__events_in_callback(void)
{
	return callback_depth != 0;
}

struct fanout {
	const inv__subscriber *subs;
	size_t count;
};

static void deliver(const inv_event *ev, void *payload)
{
	const struct fanout *f = payload;
	size_t i;

	for (i = 0; i < f->count; i++)
		if (f->subs[i].mask == 0 || (f->subs[i].mask & INV_EVENT_MASK(ev->type))) {
			callback_depth++;
			f->subs[i].fn(ev, f->subs[i].payload);
			callback_depth--;
		}
}

void inv__events_dispatch(inv_store *store, const inv_uuid *org_uuid,
                          const inv_journal_entry *entry)
{
	inv__subscriber local[8], *subs = local;
	struct fanout f;

	/* A snapshot, so that callbacks may subscribe and unsubscribe. */
	pthread_mutex_lock(&store->subs_lock);
	f.count = store->sub_count;
	if (f.count > sizeof(local) / sizeof(local[0]))
		subs = malloc(f.count * sizeof(*subs));
	if (subs && f.count)
		memcpy(subs, store->subs, f.count * sizeof(*subs));
	pthread_mutex_unlock(&store->subs_lock);
	if (!subs)
		return; /* out of memory: the journal still holds the events */
	f.subs = subs;
	inv__events_build(entry, org_uuid, deliver, &f);
	if (subs != local)
		free(subs);
}
