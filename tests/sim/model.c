/*
 * model.c - the reference model: DESIGN.md's rules as plain loops.
 *
 * Nothing here is clever on purpose: a divergence between libzinv and this
 * file is either a bug in libzinv or a misreading of DESIGN.md, and both are
 * easiest to settle when the model reads like the text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define T_STORE INV_LOCATION_STORE
#define T_SOLD INV_LOCATION_SOLD
#define T_BIN INV_LOCATION_BIN
#define T_SUPPLIER INV_LOCATION_SUPPLIER

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fprintf(stderr, "zinv-sim: out of memory\n");
		exit(2);
	}
	return p;
}

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p) {
		fprintf(stderr, "zinv-sim: out of memory\n");
		exit(2);
	}
	return p;
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *p = xcalloc(n, size);

	if (n)
		memcpy(p, src, n * size);
	return p;
}

static int uuid_cmp(const inv_uuid *a, const inv_uuid *b)
{
	return memcmp(a->bytes, b->bytes, 16);
}

static const inv_uuid nil_uuid;

/* Keys reaching the journal are 1..255 bytes: validated before. */
static void copy_key(char dst[M_KEY_MAX + 1], const char *src)
{
	size_t len = strlen(src);

	if (len > M_KEY_MAX)
		len = M_KEY_MAX;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* ------------------------------------------------------------ lifetime */

void m_init(m_model *m, const m_world *w, int default_policy)
{
	memset(m, 0, sizeof(*m));
	m->world = w;
	m->default_policy = default_policy;
	for (int o = 0; o < M_MAX_ORGS; o++) {
		m->org[o].policy = default_policy;
		for (int v = 0; v < M_MAX_VARIANTS; v++)
			m->org[o].owner[v] = m->org[o].handle_owner[0][v] =
				m->org[o].handle_owner[1][v] = -1;
	}
}

void m_org_closed(m_model *m, int o)
{
	for (int v = 0; v < M_MAX_VARIANTS; v++)
		m->org[o].handle_owner[m->side][v] = -1;
}

static void entry_free(m_entry *e)
{
	free(e->records);
	e->records = NULL;
}

void m_result_free(m_result *r)
{
	free(r->balances);
	free(r->skipped);
	memset(r, 0, sizeof(*r));
}

static void result_copy(m_result *dst, const m_result *src)
{
	*dst = *src;
	dst->balances = dup_array(src->balances, src->n_balances, sizeof(inv_balance));
	dst->skipped = dup_array(src->skipped, src->n_skipped, sizeof(size_t));
}

void m_clear_events(m_model *m)
{
	for (size_t i = 0; i < m->n_events; i++)
		free(m->events[i].items);
	m->n_events = 0;
}

void m_free(m_model *m)
{
	for (int o = 0; o < M_MAX_ORGS; o++) {
		m_org *org = &m->org[o];

		for (size_t i = 0; i < org->n_journal; i++)
			entry_free(&org->journal[i]);
		free(org->journal);
		for (size_t i = 0; i < org->n_idem; i++) {
			free(org->idem[i].changes);
			m_result_free(&org->idem[i].result);
		}
		free(org->idem);
	}
	m_clear_events(m);
	free(m->events);
	memset(m, 0, sizeof(*m));
}

void m_copy(m_model *dst, const m_model *src)
{
	*dst = *src;
	dst->n_events = dst->cap_events = 0;
	dst->events = NULL;
	for (int o = 0; o < M_MAX_ORGS; o++) {
		const m_org *s = &src->org[o];
		m_org *d = &dst->org[o];

		d->cap_journal = s->n_journal;
		d->journal = dup_array(s->journal, s->n_journal, sizeof(m_entry));
		for (size_t i = 0; i < s->n_journal; i++)
			d->journal[i].records = dup_array(s->journal[i].records,
			                                  s->journal[i].n_records,
			                                  sizeof(inv_journal_record));
		d->cap_idem = s->n_idem;
		d->idem = dup_array(s->idem, s->n_idem, sizeof(m_idem));
		for (size_t i = 0; i < s->n_idem; i++) {
			d->idem[i].changes = dup_array(s->idem[i].changes, s->idem[i].n_changes,
			                               sizeof(m_change));
			result_copy(&d->idem[i].result, &s->idem[i].result);
		}
	}
}

void m_org_opened(m_model *m, int o, const inv_uuid loc[4])
{
	m_org *org = &m->org[o];

	if (org->created)
		return;
	org->created = 1;
	memcpy(org->loc, loc, sizeof(org->loc));
}

/* ------------------------------------------------------------ helpers */

static const inv_uuid *loc_uuid(const m_model *m, int o, int type)
{
	return &m->org[o].loc[type - 1];
}

/* A handle argument is foreign when it belongs to another organization. */
static int lref_foreign(m_lref l, int o)
{
	return l.org >= 0 && l.org != o;
}

static int is_low(const m_low_stock *ls, int64_t balance)
{
	return ls->exists && ls->has_level && balance < ls->level;
}

static void push_event(m_model *m, const m_event *ev)
{
	if (m->n_events == m->cap_events) {
		m->cap_events = m->cap_events ? 2 * m->cap_events : 16;
		m->events = xrealloc(m->events, m->cap_events * sizeof(m_event));
	}
	m->events[m->n_events++] = *ev;
}

static m_entry *journal_push(m_org *org)
{
	if (org->n_journal == org->cap_journal) {
		org->cap_journal = org->cap_journal ? 2 * org->cap_journal : 16;
		org->journal = xrealloc(org->journal, org->cap_journal * sizeof(m_entry));
	}
	m_entry *e = &org->journal[org->n_journal++];
	memset(e, 0, sizeof(*e));
	return e;
}

static void entry_header(m_entry *e, const m_model *m, int64_t seq, const m_opts *opts)
{
	e->sequence = seq;
	e->time = m->now;
	if (opts) {
		e->has_ext = opts->has_ext;
		e->ext = opts->ext;
		e->has_user = opts->has_user;
		e->user = opts->user;
		e->has_client = opts->has_client;
		e->client = opts->client;
		e->has_key = opts->has_key;
		if (opts->has_key)
			copy_key(e->key, opts->key);
	}
}

/* Events are rebuilt from the entry, exactly as DESIGN.md orders them: a
 * tracking event per tracking record, one balance-changed event for the
 * STORE balances that changed, a low-stock event per crossing. */
void m_events_of_entry(m_model *m, int o, const m_entry *e)
{
	m_event ev;
	size_t n_moves = 0;

	for (size_t i = 0; i < e->n_records; i++) {
		const inv_journal_record *r = &e->records[i];

		if (r->kind == INV_RECORD_TRACKING_STARTED || r->kind == INV_RECORD_TRACKING_STOPPED) {
			memset(&ev, 0, sizeof(ev));
			ev.type = r->kind == INV_RECORD_TRACKING_STARTED ?
			          INV_EVENT_TRACKING_STARTED : INV_EVENT_TRACKING_STOPPED;
			ev.org = o;
			ev.entry = *e;
			ev.entry.records = NULL;
			ev.entry.n_records = 0;
			ev.n_items = 1;
			ev.items = xcalloc(1, sizeof(inv_journal_record));
			ev.items[0].kind = r->kind;
			ev.items[0].product = r->product;
			push_event(m, &ev);
		}
	}

	/* Balance changed: per variant in order of first touch, the STORE
	 * balance before the batch and after it, listed when they differ. */
	inv_journal_record *items = xcalloc(e->n_records, sizeof(inv_journal_record));
	for (size_t i = 0; i < e->n_records; i++) {
		const inv_journal_record *r = &e->records[i];
		size_t k;

		if (r->kind != INV_RECORD_MOVE || uuid_cmp(&r->location, &nil_uuid) == 0)
			continue;
		for (k = 0; k < n_moves; k++)
			if (uuid_cmp(&items[k].variant, &r->variant) == 0 &&
			    uuid_cmp(&items[k].location, &r->location) == 0)
				break;
		if (k == n_moves) {
			memset(&items[k], 0, sizeof(items[k]));
			items[k].kind = INV_RECORD_MOVE;
			items[k].location = r->location;
			items[k].product = r->product;
			items[k].variant = r->variant;
			items[k].before = r->before;
			n_moves++;
		}
		items[k].after = r->after;
	}
	size_t n_changed = 0;
	for (size_t k = 0; k < n_moves; k++)
		if (items[k].before != items[k].after)
			items[n_changed++] = items[k];
	if (n_changed) {
		memset(&ev, 0, sizeof(ev));
		ev.type = INV_EVENT_BALANCE_CHANGED;
		ev.org = o;
		ev.entry = *e;
		ev.entry.records = NULL;
		ev.entry.n_records = 0;
		ev.n_items = n_changed;
		ev.items = items;
		push_event(m, &ev);
	} else {
		free(items);
	}

	for (size_t i = 0; i < e->n_records; i++) {
		const inv_journal_record *r = &e->records[i];

		if (r->kind != INV_RECORD_LOW_STOCK)
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.type = INV_EVENT_LOW_STOCK;
		ev.org = o;
		ev.entry = *e;
		ev.entry.records = NULL;
		ev.entry.n_records = 0;
		ev.n_items = 1;
		ev.items = dup_array(r, 1, sizeof(*r));
		push_event(m, &ev);
	}
}

/* ------------------------------------------------------------ variants */

/* "A variant belongs to exactly one product, the first it is seen with":
 * seen by an earlier inv_variant_get() on this store's open organization
 * (its handle map answers first, without reading), else in a committed
 * batch (the default STORE record).  With two stores on one database the
 * map can lag behind a commit of the other store; the batch using such a
 * handle then fails with INV_EMISMATCH. */
int m_variant_get(m_model *m, int o, int p, int v)
{
	m_org *org = &m->org[o];
	int mapped = org->handle_owner[m->side][v];

	if (mapped >= 0)
		return mapped == p ? 0 : INV_EMISMATCH;
	if (org->owner[v] >= 0 && org->owner[v] != p)
		return INV_EMISMATCH;
	org->handle_owner[m->side][v] = p;
	return 0;
}

/* ------------------------------------------------------------ batches */

/*
 * The one batch engine behind apply, sale, refund and set-balance.
 * `skip_untracked` is the sale rule; `skipped` receives the skipped indexes.
 * Order of checks, as DESIGN.md and apply.h describe them:
 *   1. arguments (handles, quantities, from != to), change by change;
 *   2. the idempotency key (replay or conflict);
 *   3. tracking changes, in order;
 *   4. each change against the running state: ownership, tracking,
 *      range, negative policy;
 *   5. commit: journal entry, balances, low-stock crossings, events.
 */
typedef struct batch {
	const m_change *changes;
	size_t n;
	const m_opts *opts;
	int skip_untracked;
	int allow_empty;               /* sales: every line skipped stores nothing */
	int kind;                      /* M_APPLY ... */
	const m_set_args *set;         /* M_SET */
	int key_checked;               /* M_SET looks its key up before planning */
} batch;

/* What makes two batches "the same" for an idempotency key: the changes,
 * the tracking changes, the external UUID and the reported location. */
static int same_opts_batch(const m_opts *a, const m_opts *b)
{
	if (a->n_tracking != b->n_tracking || a->has_ext != b->has_ext ||
	    (a->has_ext && memcmp(&a->ext, &b->ext, 16) != 0))
		return 0;
	if ((a->ret.org < 0 ? T_STORE : a->ret.type) != (b->ret.org < 0 ? T_STORE : b->ret.type))
		return 0;
	for (int i = 0; i < a->n_tracking; i++)
		if (a->tracking[i].p != b->tracking[i].p ||
		    a->tracking[i].action != b->tracking[i].action)
			return 0;
	return 1;
}

static int same_changes(const m_model *m, const m_change *a, const m_change *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].var.p != b[i].var.p || a[i].var.v != b[i].var.v ||
		    a[i].from.type != b[i].from.type || a[i].to.type != b[i].to.type ||
		    a[i].qty != b[i].qty)
			return 0;
	}
	(void)m;
	return 1;
}

static int check_options(int o, const m_opts *opts, int64_t *index)
{
	if (!opts)
		return 0;
	if (opts->has_key) {
		size_t len = strlen(opts->key);

		if (len == 0 || len > M_KEY_MAX)
			return INV_EINVAL;
	}
	if (lref_foreign(opts->ret, o))
		return INV_EINVAL;
	for (int i = 0; i < opts->n_tracking; i++) {
		int32_t a = opts->tracking[i].action;

		if (a != INV_TRACKING_START && a != INV_TRACKING_STOP) {
			*index = i;
			return INV_EINVAL;
		}
	}
	return 0;
}

static int check_changes(int o, const m_change *changes, size_t n, int64_t *index)
{
	for (size_t i = 0; i < n; i++) {
		const m_change *c = &changes[i];

		if (c->var.org < 0 || c->var.org != o || c->from.org < 0 || c->to.org < 0 ||
		    lref_foreign(c->from, o) || lref_foreign(c->to, o) ||
		    c->from.type == c->to.type || c->qty < 1 || c->qty > INV_QUANTITY_MAX) {
			*index = (int64_t)i;
			return INV_EINVAL;
		}
	}
	return 0;
}

/* Arguments, in the order apply.h's callers see them checked: options,
 * then each change, then "at least one change or tracking change". */
static int check_arguments(const m_model *m, int o, const batch *b, int64_t *index)
{
	int rc;

	(void)m;
	rc = check_options(o, b->opts, index);
	if (rc)
		return rc;
	if (b->allow_empty && b->n == 0)
		return INV_EINVAL;          /* a sale needs a line */
	rc = check_changes(o, b->changes, b->n, index);
	if (rc)
		return rc;
	if (b->n == 0 && (!b->opts || b->opts->n_tracking == 0))
		return INV_EINVAL;
	return 0;
}

/* Running per-batch state: a scratch copy of the organization's columns. */
typedef struct scratch {
	int tracked[M_MAX_PRODUCTS];
	int owner[M_MAX_VARIANTS];
	int64_t balance[M_MAX_VARIANTS];
	int touched[M_MAX_VARIANTS];   /* order of first touch of STORE, 1-based */
	int n_touched;
	int order[M_MAX_VARIANTS];     /* variant by touch order: results, events */
	int claimed[M_MAX_VARIANTS];   /* a change moved it (not skipped) */
	int named[M_MAX_VARIANTS];     /* order of first naming in the batch, 1-based */
	int n_named;
	int slot[M_MAX_VARIANTS];      /* variant by naming order: low-stock crossings */
} scratch;

static void result_balances(const m_model *m, int o, const scratch *s, const batch *b,
                            int loc_type, int64_t time, m_result *out)
{
	const m_world *w = m->world;

	out->loc_type = loc_type;
	out->n_balances = 0;
	out->balances = xcalloc((size_t)s->n_touched, sizeof(inv_balance));
	if (loc_type != T_STORE)
		return;
	for (int k = 0; k < s->n_touched; k++) {
		int v = s->order[k];
		inv_balance *bal = &out->balances[out->n_balances++];
		const m_low_stock *ls = &m->org[o].low[s->owner[v]][v];

		/* Results carry no low-stock fields; `updated` is the batch's
		 * time when the balance changed, else the stored one. */
		bal->product = w->product[s->owner[v]];
		bal->variant = w->variant[v];
		bal->balance = s->balance[v];
		bal->updated = s->balance[v] != m->org[o].balance[v] ? time : m->org[o].updated[v];
		(void)ls;
	}
	(void)b;
}

static void idem_remember(m_org *org, const batch *b, const m_result *res)
{
	if (org->n_idem == org->cap_idem) {
		org->cap_idem = org->cap_idem ? 2 * org->cap_idem : 8;
		org->idem = xrealloc(org->idem, org->cap_idem * sizeof(m_idem));
	}
	m_idem *id = &org->idem[org->n_idem++];
	memset(id, 0, sizeof(*id));
	copy_key(id->key, b->opts->key);
	id->kind = b->kind;
	if (b->set)
		id->set = *b->set;
	id->n_changes = b->n;
	id->changes = dup_array(b->changes, b->n, sizeof(m_change));
	id->opts = *b->opts;
	result_copy(&id->result, res);
}

/* The idempotency key of batch b: 0 when new, 1 with *out the first
 * result, or INV_ECONFLICT when it named another batch. */
static int idem_lookup(m_model *m, int o, const batch *b, m_result *out)
{
	m_org *org = &m->org[o];
	const m_opts *opts = b->opts;

	for (size_t i = 0; i < org->n_idem; i++) {
		m_idem *id = &org->idem[i];

		if (strcmp(id->key, opts->key) != 0)
			continue;
		int same = id->kind == b->kind && same_opts_batch(&id->opts, opts);

		if (same && b->kind == M_SET)
			same = memcmp(&id->set, b->set, sizeof(id->set)) == 0;
		else if (same)
			same = id->n_changes == b->n && same_changes(m, id->changes, b->changes, b->n);
		if (same) {
			result_copy(out, &id->result);
			out->replayed = 1;
			return 1;
		}
		return INV_ECONFLICT;
	}
	return 0;
}

static int run_batch(m_model *m, int o, const batch *b, int64_t *index, m_result *out)
{
	const m_world *w = m->world;
	m_org *org = &m->org[o];
	const m_opts *opts = b->opts;
	int dry = opts && opts->dry_run;
	int rc;

	memset(out, 0, sizeof(*out));
	*index = -1;
	rc = check_arguments(m, o, b, index);
	if (rc)
		return rc;

	if (opts && opts->has_key && !b->key_checked) {
		rc = idem_lookup(m, o, b, out);
		if (rc)
			return rc == 1 ? 0 : rc;
	}

	scratch s;
	memset(&s, 0, sizeof(s));
	memcpy(s.tracked, org->tracked, sizeof(s.tracked));
	memcpy(s.owner, org->owner, sizeof(s.owner));
	memcpy(s.balance, org->balance, sizeof(s.balance));
	for (size_t i = 0; i < b->n; i++) {
		int v = b->changes[i].var.v;

		if (!s.named[v]) {
			s.named[v] = ++s.n_named;
			s.slot[s.n_named - 1] = v;
		}
	}

	size_t cap = (size_t)(opts ? opts->n_tracking : 0) + b->n + M_MAX_VARIANTS;
	inv_journal_record *rec = xcalloc(cap, sizeof(*rec));
	size_t n_rec = 0;
	size_t *skipped = xcalloc(b->n, sizeof(size_t));
	size_t n_skipped = 0;

	for (int i = 0; opts && i < opts->n_tracking; i++) {
		int p = opts->tracking[i].p;

		if (opts->tracking[i].action == INV_TRACKING_START) {
			if (s.tracked[p])
				continue;
			s.tracked[p] = 1;
			rec[n_rec].kind = INV_RECORD_TRACKING_STARTED;
		} else {
			if (!s.tracked[p]) {
				*index = i;
				rc = INV_ENOTTRACKED;
				goto fail;
			}
			s.tracked[p] = 0;
			rec[n_rec].kind = INV_RECORD_TRACKING_STOPPED;
		}
		rec[n_rec].product = w->product[p];
		n_rec++;
	}

	for (size_t i = 0; i < b->n; i++) {
		const m_change *c = &b->changes[i];
		int p = c->var.p, v = c->var.v;

		if (s.owner[v] >= 0 && s.owner[v] != p) {
			*index = (int64_t)i;
			rc = INV_EMISMATCH;
			goto fail;
		}
		if (!s.tracked[p]) {
			if (b->skip_untracked) {
				skipped[n_skipped++] = i;
				continue;
			}
			*index = (int64_t)i;
			rc = INV_ENOTTRACKED;
			goto fail;
		}
		s.owner[v] = p;
		s.claimed[v] = 1;

		inv_journal_record *r = &rec[n_rec];
		r->kind = INV_RECORD_MOVE;
		r->product = w->product[p];
		r->variant = w->variant[v];
		r->from = *loc_uuid(m, o, c->from.type);
		r->to = *loc_uuid(m, o, c->to.type);
		r->quantity = c->qty;
		if (c->from.type == T_STORE || c->to.type == T_STORE) {
			int64_t before = s.balance[v];
			int64_t after = c->to.type == T_STORE ? before + c->qty : before - c->qty;

			if (org->policy == INV_NEGATIVE_DENY && c->from.type == T_STORE && after < 0) {
				*index = (int64_t)i;
				rc = INV_EINSUFFICIENT;
				goto fail;
			}
			if (after > INV_QUANTITY_MAX || after < -INV_QUANTITY_MAX) {
				*index = (int64_t)i;
				rc = INV_ERANGE;
				goto fail;
			}
			r->location = *loc_uuid(m, o, T_STORE);
			r->before = before;
			r->after = after;
			s.balance[v] = after;
			if (!s.touched[v]) {
				s.touched[v] = ++s.n_touched;
				s.order[s.n_touched - 1] = v;
			}
		}
		n_rec++;
	}

	int loc_type = opts && opts->ret.org >= 0 ? opts->ret.type : T_STORE;
	int stores_nothing = n_rec == 0;

	/* Low-stock crossings: per variant (in order of first naming) whose
	 * balance the batch changed, low before the batch versus after it. */
	for (int k = 0; k < s.n_named; k++) {
		int v = s.slot[k];
		int p = s.owner[v];

		if (p < 0 || s.balance[v] == org->balance[v])
			continue;
		const m_low_stock *ls = &org->low[p][v];
		int was = is_low(ls, org->balance[v]);
		int now = is_low(ls, s.balance[v]);

		if (was == now)
			continue;
		inv_journal_record *r = &rec[n_rec++];
		r->kind = INV_RECORD_LOW_STOCK;
		r->low = now;
		r->location = *loc_uuid(m, o, T_STORE);
		r->product = w->product[p];
		r->variant = w->variant[v];
		r->quantity = ls->level;
		r->before = org->balance[v];
		r->after = s.balance[v];
	}

	result_balances(m, o, &s, b, loc_type, m->now, out);
	out->skipped = skipped;
	out->n_skipped = n_skipped;
	skipped = NULL;

	if (dry || stores_nothing) {
		free(rec);
		return 0;
	}

	/* Commit. */
	int64_t seq = ++org->last_sequence;
	m_entry *e = journal_push(org);
	entry_header(e, m, seq, opts);
	e->n_records = n_rec;
	e->records = dup_array(rec, n_rec, sizeof(*rec));
	free(rec);

	memcpy(org->tracked, s.tracked, sizeof(s.tracked));
	/* A moved variant gets its default STORE record (which pins its
	 * owner); `updated` is the time of the last change of its balance. */
	for (int v = 0; v < M_MAX_VARIANTS; v++) {
		if (!s.claimed[v])
			continue;
		org->owner[v] = s.owner[v];
		org->has_record[v] = 1;
		if (s.balance[v] != org->balance[v]) {
			org->balance[v] = s.balance[v];
			org->updated[v] = m->now;
		}
	}
	out->sequence = seq;
	if (opts && opts->has_key)
		idem_remember(org, b, out);
	m_events_of_entry(m, o, e);
	return 0;

fail:
	free(rec);
	free(skipped);
	return rc;
}

int m_apply(m_model *m, int o, const m_change *changes, size_t n,
            const m_opts *opts, int64_t *index, m_result *out)
{
	batch b = { changes, n, opts, 0, 0, M_APPLY, NULL, 0 };

	return run_batch(m, o, &b, index, out);
}

int m_sale(m_model *m, int o, int refund, const m_vref *vars, const int64_t *qty,
           size_t n, const m_opts *opts, int64_t *index, m_result *out)
{
	m_change *changes = xcalloc(n, sizeof(m_change));
	int rc;

	for (size_t i = 0; i < n; i++) {
		changes[i].var = vars[i];
		changes[i].from.org = o;
		changes[i].to.org = o;
		changes[i].from.type = refund ? T_SOLD : T_STORE;
		changes[i].to.type = refund ? T_STORE : T_SOLD;
		changes[i].qty = qty[i];
	}
	batch b = { changes, n, opts, 1, 1, refund ? M_REFUND : M_SALE, NULL, 0 };
	rc = run_batch(m, o, &b, index, out);
	free(changes);
	return rc;
}

int m_set_balance(m_model *m, int o, m_vref var, m_lref loc, int64_t balance,
                  const int64_t *expected, m_lref reason, const m_opts *opts,
                  int64_t *index, m_result *out)
{
	m_org *org = &m->org[o];

	memset(out, 0, sizeof(*out));
	*index = -1;
	if (var.org != o || lref_foreign(loc, o) || lref_foreign(reason, o))
		return INV_EINVAL;
	if (loc.org >= 0 && loc.type != T_STORE)
		return INV_EINVAL;
	if (reason.org >= 0 && reason.type == T_STORE)
		return INV_EINVAL;
	if (balance > INV_QUANTITY_MAX || balance < -INV_QUANTITY_MAX)
		return INV_EINVAL;
	if (opts && opts->has_key) {
		size_t len = strlen(opts->key);

		if (len == 0 || len > M_KEY_MAX)
			return INV_EINVAL;
	}
	m_set_args set;
	memset(&set, 0, sizeof(set));
	set.p = var.p;
	set.v = var.v;
	set.loc_type = T_STORE;
	set.reason_type = reason.org >= 0 ? reason.type : T_SUPPLIER;
	set.balance = balance;
	set.has_expected = expected != NULL;
	set.expected = expected ? *expected : 0;

	m_opts o2;
	if (opts)
		o2 = *opts;
	else
		memset(&o2, 0, sizeof(o2));
	o2.ret.org = -1;
	o2.n_tracking = 0;
	batch b = { NULL, 0, &o2, 0, 0, M_SET, &set, 1 };
	if (o2.has_key) {
		int rc = idem_lookup(m, o, &b, out);

		if (rc)
			return rc == 1 ? 0 : rc;
	}

	if (org->owner[var.v] >= 0 && org->owner[var.v] != var.p)
		return INV_EMISMATCH;
	if (!org->tracked[var.p])
		return INV_ENOTTRACKED;

	int64_t current = org->balance[var.v];
	if (expected && *expected != current)
		return INV_ECONFLICT;

	m_change c;
	memset(&c, 0, sizeof(c));
	c.var = var;
	c.from.org = c.to.org = o;
	if (balance > current) {
		c.from.type = T_SUPPLIER;
		c.to.type = T_STORE;
		c.qty = balance - current;
	} else if (balance < current) {
		c.from.type = T_STORE;
		c.to.type = reason.org >= 0 ? reason.type : T_SUPPLIER;
		c.qty = current - balance;
	} else {
		/* Nothing moves: sequence 0, no balance reported. */
		out->loc_type = T_STORE;
		return 0;
	}
	if (c.qty > INV_QUANTITY_MAX)
		return INV_ERANGE;

	b.changes = &c;
	b.n = 1;
	int rc = run_batch(m, o, &b, index, out);
	*index = -1;
	return rc;
}

/* ------------------------------------------------------------ tracking */

static int tracking_entry(m_model *m, int o, int p, int kind)
{
	m_org *org = &m->org[o];
	m_entry *e = journal_push(org);

	entry_header(e, m, ++org->last_sequence, NULL);
	e->n_records = 1;
	e->records = xcalloc(1, sizeof(inv_journal_record));
	e->records[0].kind = kind;
	e->records[0].product = m->world->product[p];
	m_events_of_entry(m, o, e);
	return 0;
}

int m_tracking_start(m_model *m, int o, int p)
{
	m_org *org = &m->org[o];

	if (org->tracked[p])
		return 0;
	org->tracked[p] = 1;
	return tracking_entry(m, o, p, INV_RECORD_TRACKING_STARTED);
}

int m_tracking_stop(m_model *m, int o, int p)
{
	m_org *org = &m->org[o];

	if (!org->tracked[p])
		return INV_ENOTTRACKED;
	org->tracked[p] = 0;
	return tracking_entry(m, o, p, INV_RECORD_TRACKING_STOPPED);
}

int m_tracking_list(const m_model *m, int o, inv_uuid **out, size_t *count)
{
	const m_world *w = m->world;
	inv_uuid *list = xcalloc((size_t)w->n_products, sizeof(inv_uuid));
	size_t n = 0;

	for (int p = 0; p < w->n_products; p++)
		if (m->org[o].tracked[p])
			list[n++] = w->product[p];
	/* insertion sort by bytes */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && uuid_cmp(&list[j - 1], &list[j]) > 0; j--) {
			inv_uuid t = list[j];
			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	*out = list;
	*count = n;
	return 0;
}

/* ------------------------------------------------------------ policy */

int m_policy_set(m_model *m, int o, int policy)
{
	if (policy != INV_NEGATIVE_ALLOW && policy != INV_NEGATIVE_DENY)
		return INV_EINVAL;
	m->org[o].policy = policy;
	return 0;
}

/* ------------------------------------------------------------ low stock */

static int low_stock_location(int o, m_lref loc)
{
	if (loc.org < 0 || loc.org != o || loc.type != T_STORE)
		return INV_EINVAL;
	return 0;
}

int m_low_stock_set(m_model *m, int o, m_lref loc, int p, int v,
                    const int64_t *level, int alert)
{
	int rc = low_stock_location(o, loc);

	if (rc)
		return rc;
	if (level && (*level < 0 || *level > INV_QUANTITY_MAX))
		return INV_EINVAL;
	m_low_stock *ls = &m->org[o].low[p][v];
	if (!level && !alert) {
		memset(ls, 0, sizeof(*ls));
		return 0;
	}
	ls->exists = 1;
	ls->has_level = level != NULL;
	ls->level = level ? *level : 0;
	ls->alert = alert != 0;
	return 0;
}

int m_low_stock_get(const m_model *m, int o, m_lref loc, int p, int v, inv_low_stock *out)
{
	int rc = low_stock_location(o, loc);

	if (rc)
		return rc;
	const m_low_stock *ls = &m->org[o].low[p][v];
	memset(out, 0, sizeof(*out));
	out->product = m->world->product[p];
	out->variant = m->world->variant[v];
	if (ls->exists) {
		out->has_level = ls->has_level;
		out->level = ls->has_level ? ls->level : 0;
		out->alert = ls->alert;
	}
	return 0;
}

int m_low_stock_delete(m_model *m, int o, m_lref loc, int p, int v)
{
	int rc = low_stock_location(o, loc);

	if (rc)
		return rc;
	memset(&m->org[o].low[p][v], 0, sizeof(m_low_stock));
	return 0;
}

static int low_stock_cmp(const void *a, const void *b)
{
	const inv_low_stock *x = a, *y = b;
	int c = uuid_cmp(&x->product, &y->product);

	return c ? c : uuid_cmp(&x->variant, &y->variant);
}

int m_low_stock_list(const m_model *m, int o, m_lref loc, int p,
                     inv_low_stock **out, size_t *count)
{
	const m_world *w = m->world;
	int rc = low_stock_location(o, loc);

	*out = NULL;
	*count = 0;
	if (rc)
		return rc;
	inv_low_stock *list = xcalloc((size_t)(w->n_products * w->n_variants), sizeof(*list));
	size_t n = 0;
	for (int pp = 0; pp < w->n_products; pp++) {
		if (p >= 0 && pp != p)
			continue;
		for (int v = 0; v < w->n_variants; v++) {
			const m_low_stock *ls = &m->org[o].low[pp][v];

			if (!ls->exists)
				continue;
			list[n].product = w->product[pp];
			list[n].variant = w->variant[v];
			list[n].has_level = ls->has_level;
			list[n].level = ls->has_level ? ls->level : 0;
			list[n].alert = ls->alert;
			n++;
		}
	}
	qsort(list, n, sizeof(*list), low_stock_cmp);
	*out = list;
	*count = n;
	return 0;
}

/* ------------------------------------------------------------ reads */

int m_balance_get(const m_model *m, int o, m_vref var, m_lref loc, int64_t *out)
{
	*out = 0;
	if (var.org != o || lref_foreign(loc, o))
		return INV_EINVAL;
	if (loc.org >= 0 && loc.type != T_STORE)
		return 0;
	*out = m->org[o].balance[var.v];
	return 0;
}

static int balance_cmp(const void *a, const void *b)
{
	const inv_balance *x = a, *y = b;
	int c = uuid_cmp(&x->product, &y->product);

	return c ? c : uuid_cmp(&x->variant, &y->variant);
}

int m_balances_read(const m_model *m, int o, const m_balance_query *q,
                    inv_balance **out, size_t *count, int *more)
{
	const m_world *w = m->world;
	const m_org *org = &m->org[o];

	*out = NULL;
	*count = 0;
	*more = 0;
	if (q && lref_foreign(q->loc, o))
		return INV_EINVAL;
	inv_balance *list = xcalloc((size_t)w->n_variants, sizeof(*list));
	size_t n = 0;
	if (!q || q->loc.org < 0 || q->loc.type == T_STORE) {
		for (int v = 0; v < w->n_variants; v++) {
			int p = org->owner[v];

			if (!org->has_record[v] || p < 0 || !org->tracked[p])
				continue;
			if (org->balance[v] == 0 && !(q && q->include_zero))
				continue;
			if (q && q->n_products >= 0) {
				int found = 0;

				for (int i = 0; i < q->n_products; i++)
					if (q->products[i] == p)
						found = 1;
				if (!found)
					continue;
			}
			inv_balance *b = &list[n++];
			b->product = w->product[p];
			b->variant = w->variant[v];
			b->balance = org->balance[v];
			b->updated = org->updated[v];
			if (q && q->with_low_stock && org->low[p][v].exists) {
				b->has_low_stock_level = org->low[p][v].has_level;
				b->low_stock_level = org->low[p][v].has_level ? org->low[p][v].level : 0;
				b->low_stock_alert = org->low[p][v].alert;
			}
		}
	}
	qsort(list, n, sizeof(*list), balance_cmp);
	size_t start = 0;
	if (q && q->has_after) {
		inv_balance key;

		memset(&key, 0, sizeof(key));
		key.product = q->after_product;
		key.variant = q->after_variant;
		while (start < n && balance_cmp(&list[start], &key) <= 0)
			start++;
	}
	size_t len = n - start;
	if (q && q->limit && len > q->limit) {
		len = q->limit;
		*more = 1;
	}
	memmove(list, list + start, len * sizeof(*list));
	*out = list;
	*count = len;
	return 0;
}

/* ------------------------------------------------------------ journal */

static int entry_touches(const m_entry *e, const inv_uuid *product)
{
	for (size_t i = 0; i < e->n_records; i++)
		if (uuid_cmp(&e->records[i].product, product) == 0)
			return 1;
	return 0;
}

int m_journal_read(const m_model *m, int o, const m_journal_query *q,
                   const m_entry ***out, size_t *count)
{
	const m_org *org = &m->org[o];

	*out = NULL;
	*count = 0;
	if (q && q->after < 0)
		return INV_EINVAL;
	const m_entry **list = xcalloc(org->n_journal, sizeof(*list));
	size_t n = 0;

	for (size_t i = 0; i < org->n_journal; i++) {
		const m_entry *e = &org->journal[i];

		if (q) {
			if (e->sequence <= q->after)
				continue;
			if (q->product >= 0 && !entry_touches(e, &m->world->product[q->product]))
				continue;
			if (q->time_from && e->time < q->time_from)
				continue;
			if (q->time_to && e->time >= q->time_to)
				continue;
			if (q->limit && n == q->limit)
				break;
		}
		list[n++] = e;
	}
	*out = list;
	*count = n;
	return 0;
}

int m_journal_trim(m_model *m, int o, int64_t up_to)
{
	m_org *org = &m->org[o];
	size_t keep = 0;

	if (up_to < 0)
		return INV_EINVAL;
	for (size_t i = 0; i < org->n_journal; i++) {
		if (org->journal[i].sequence <= up_to)
			entry_free(&org->journal[i]);
		else
			org->journal[keep++] = org->journal[i];
	}
	org->n_journal = keep;
	return 0;
}
