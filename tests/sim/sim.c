/*
 * sim.c - seeded workload generator, executor and comparator.
 *
 * Every step draws one public call with random (valid or invalid)
 * arguments, runs it on libzinv and on the model, and compares the return
 * code, inv_error_last()->index, the outputs and the events the call
 * produced.  Every few steps (and after every injected fault) the full
 * state read back through the public API is compared with the model.
 * Everything random comes from the seed: the workload, the clock, the UUID
 * generator and the faults, so `zinv-sim --seed S --steps N` replays a run
 * bit for bit.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault_backend.h"
#include "model.h"
#include "prng.h"
#include "sim.h"
#include "wrap.h"

#define T_STORE INV_LOCATION_STORE
#define T_SOLD INV_LOCATION_SOLD
#define T_BIN INV_LOCATION_BIN
#define T_SUPPLIER INV_LOCATION_SUPPLIER

#define CHECK_EVERY 16
#define CRASH_EXIT 77

typedef struct got_event {
	m_event ev;
	inv_uuid org_uuid;
	size_t n_entry_records;
	inv_journal_record *entry_records;
} got_event;

/* One store and its handles. */
typedef struct side {
	inv_store *store;
	sim_wrap *wrap;
	void *fault;                  /* tests/fault_backend.h instance */
	uint64_t sub_id;
	uint64_t mask_sub_id;         /* a second subscriber, for some types */
	inv_org *org[M_MAX_ORGS];
	const inv_location *loc[M_MAX_ORGS][4];
	const inv_variant *vh[M_MAX_ORGS][M_MAX_PRODUCTS][M_MAX_VARIANTS];
} side;

typedef struct sim {
	const sim_config *cfg;
	sim_stats *stats;
	sim_prng gen;                 /* the workload */
	sim_prng faults;              /* fault decisions, apart from the workload */
	sim_prng probes;              /* calls made from event callbacks */
	uint64_t uuid_seed, uuid_count;
	int64_t now;
	m_world world;
	m_model model;

	const sim_backend *backend;
	/* One store, or two on the same database (durable backends): calls
	 * alternate between them like two processes; L is this call's. */
	side sides[2];
	int n_sides;
	side *L;
	uint32_t mask;                /* of every side's second subscriber */
	size_t mask_got;              /* events it received during the call */
	int n_open;                   /* organizations 0 .. n_open-1 are open */

	size_t n_got, cap_got;
	got_event *got;

	/* the last keyed call, for idempotent retries */
	int have_keyed;
	int keyed_kind;               /* M_APPLY, M_SALE, M_REFUND, M_SET */
	int keyed_org;
	size_t keyed_n;
	m_change *keyed;              /* apply: changes; sale: var and qty */
	m_opts keyed_opts;
	m_vref keyed_var;             /* set-balance arguments */
	m_lref keyed_loc, keyed_reason;
	int64_t keyed_target, keyed_expected;
	int keyed_has_expected;

	long step;
	int failed;
	unsigned fired;
	int fault_code;
	int ack_fd;                   /* crash child: acknowledged steps go here */
	uint64_t crash_op;            /* crash child: _exit at this backend op */
	unsigned trim_rate;           /* 0..4: how often the journal is trimmed */
	int small_qty;                /* this run's changes are mostly 1..4 */
	FILE *out;                    /* where divergences are reported */
	char desc[512];
	char names[8][64];
	int name_i;
} sim;

/* ------------------------------------------------------------ reporting */

static const char *code_name(int code)
{
	switch (code) {
	case 0: return "OK";
	case INV_EINVAL: return "EINVAL";
	case INV_ENOMEM: return "ENOMEM";
	case INV_ENOTFOUND: return "ENOTFOUND";
	case INV_ENOTTRACKED: return "ENOTTRACKED";
	case INV_EMISMATCH: return "EMISMATCH";
	case INV_EINSUFFICIENT: return "EINSUFFICIENT";
	case INV_ECONFLICT: return "ECONFLICT";
	case INV_ERANGE: return "ERANGE";
	case INV_EBACKEND: return "EBACKEND";
	case INV_EBUSY: return "EBUSY";
	case INV_EVERSION: return "EVERSION";
	case INV_EFORMAT: return "EFORMAT";
	case INV_EREADONLY: return "EREADONLY";
	case INV_ETOOBIG: return "ETOOBIG";
	default: return "E?";
	}
}

static const char *type_name(int t)
{
	switch (t) {
	case T_STORE: return "STORE";
	case T_SOLD: return "SOLD";
	case T_BIN: return "BIN";
	case T_SUPPLIER: return "SUPPLIER";
	default: return "?";
	}
}

/* A readable name for a UUID of this run: P3, V7, STORE@0, or the text. */
static const char *uname(sim *s, const inv_uuid *u)
{
	char *buf = s->names[s->name_i++ % 8];
	const m_world *w = &s->world;
	static const inv_uuid nil;

	if (!u)
		return "(null)";
	if (memcmp(u, &nil, sizeof(nil)) == 0)
		return "nil";
	for (int i = 0; i < w->n_products; i++)
		if (memcmp(u, &w->product[i], 16) == 0)
			return snprintf(buf, 64, "P%d", i), buf;
	for (int i = 0; i < w->n_variants; i++)
		if (memcmp(u, &w->variant[i], 16) == 0)
			return snprintf(buf, 64, "V%d", i), buf;
	for (int o = 0; o < w->n_orgs; o++) {
		for (int t = 0; t < 4; t++)
			if (memcmp(u, &s->model.org[o].loc[t], 16) == 0)
				return snprintf(buf, 64, "%s@%d", type_name(t + 1), o), buf;
		if (memcmp(u, &w->org[o], 16) == 0)
			return snprintf(buf, 64, "ORG%d", o), buf;
	}
	inv_uuid_format(u, buf);
	return buf;
}

/* A key for messages: the first 20 bytes, others than printable ASCII as
 * \xNN, so that a report stays text. */
static const char *printable_key(sim *s, const char *key)
{
	char *buf = s->names[s->name_i++ % 8];
	size_t n = 0;

	for (size_t i = 0; key[i] && i < 20 && n + 5 < 64; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[n++] = (char)c;
		else
			n += (size_t)snprintf(buf + n, 64 - n, "\\x%02x", c);
	}
	buf[n] = '\0';
	return buf;
}

static void divergence(sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;
	s->failed = 1;
	fprintf(s->out, "\nzinv-sim: DIVERGENCE seed=%" PRIu64 " step=%ld backend=%s%s\n",
	        s->cfg->seed, s->step, s->backend->name,
	        s->cfg->faults_per_million ? " (faults)" : s->cfg->crash ? " (crash)" : "");
	fprintf(s->out, "  call: %s\n  ", s->desc);
	va_start(ap, fmt);
	vfprintf(s->out, fmt, ap);
	va_end(ap);
	fprintf(s->out, "\n");
}

static void print_replay(sim *s)
{
	if (!s->failed)
		return;
	/* A crash run's crash point depends on STEPS: replay all of them. */
	fprintf(s->out, "  replay: make sim SEED=%" PRIu64 " STEPS=%ld BACKEND=%s%s%s\n",
	        s->cfg->seed, s->cfg->crash ? s->cfg->steps : s->step, s->cfg->backend->name,
	        s->cfg->faults_per_million ? " FAULTS=1" : "",
	        s->cfg->crash == 2 ? " KILL=1 (timing-dependent)" : s->cfg->crash ? " CRASH=1" : "");
}

static void desc(sim *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->desc, sizeof(s->desc), fmt, ap);
	va_end(ap);
	if (s->cfg->verbose)
		fprintf(s->out, "%6ld %s\n", s->step, s->desc);
}

static int expect_i64(sim *s, const char *what, int64_t exp, int64_t got)
{
	if (exp == got)
		return 1;
	divergence(s, "%s: expected %" PRId64 ", got %" PRId64, what, exp, got);
	return 0;
}

static int expect_uuid(sim *s, const char *what, const inv_uuid *exp, const inv_uuid *got)
{
	if ((!exp && !got) || (exp && got && memcmp(exp, got, 16) == 0))
		return 1;
	divergence(s, "%s: expected %s, got %s", what, uname(s, exp), uname(s, got));
	return 0;
}

/* ------------------------------------------------------------ injected world */

static int64_t sim_clock(void *payload)
{
	return ((sim *)payload)->now;
}

static void sim_uuid(inv_uuid *out, void *payload)
{
	sim *s = payload;
	uint64_t x = s->uuid_seed + s->uuid_count++ * UINT64_C(0x632be59bd9b4e019);
	uint64_t a = sim_splitmix64(&x), b = sim_splitmix64(&x);

	memcpy(out->bytes, &a, 8);
	memcpy(out->bytes + 8, &b, 8);
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x10);
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80);
}

static void random_uuid(sim_prng *r, inv_uuid *out)
{
	uint64_t a = sim_next(r), b = sim_next(r);

	memcpy(out->bytes, &a, 8);
	memcpy(out->bytes + 8, &b, 8);
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x40);
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80);
}

static void make_world(sim *s)
{
	m_world *w = &s->world;

	memset(w, 0, sizeof(*w));
	w->n_orgs = 2 + (int)sim_below(&s->gen, 3);
	w->n_products = 2 + (int)sim_below(&s->gen, M_MAX_PRODUCTS - 1);
	w->n_variants = w->n_products + (int)sim_below(&s->gen, (uint64_t)(M_MAX_VARIANTS - w->n_products + 1));
	for (int i = 0; i < w->n_orgs; i++)
		random_uuid(&s->gen, &w->org[i]);
	for (int i = 0; i < w->n_products; i++)
		random_uuid(&s->gen, &w->product[i]);
	for (int i = 0; i < w->n_variants; i++) {
		random_uuid(&s->gen, &w->variant[i]);
		/* every product has a variant; the rest spread at random */
		w->home[i] = i < w->n_products ? i : (int)sim_below(&s->gen, (uint64_t)w->n_products);
	}
}

/* ------------------------------------------------------------ events */

static void entry_from_lib(m_entry *e, const inv_journal_entry *je, int with_records)
{
	const inv_uuid *u;
	const char *key;

	memset(e, 0, sizeof(*e));
	e->sequence = inv_journal_entry_sequence(je);
	e->time = inv_journal_entry_time(je);
	if ((u = inv_journal_entry_external_uuid(je)))
		e->has_ext = 1, e->ext = *u;
	if ((u = inv_journal_entry_user_uuid(je)))
		e->has_user = 1, e->user = *u;
	if ((u = inv_journal_entry_client_uuid(je)))
		e->has_client = 1, e->client = *u;
	if ((key = inv_journal_entry_idempotency_key(je)))
		e->has_key = 1, snprintf(e->key, sizeof(e->key), "%s", key);
	if (with_records) {
		size_t n = inv_journal_entry_record_count(je);

		e->n_records = n;
		e->records = calloc(n ? n : 1, sizeof(inv_journal_record));
		if (n)
			memcpy(e->records, inv_journal_entry_records(je), n * sizeof(inv_journal_record));
	}
}

/*
 * Now and then a callback uses the store, as events.h allows: a read of
 * the organization sees the batch committed, and a write to it fails with
 * INV_EBUSY (and changes nothing, which the next full check confirms).
 */
static void probe_from_callback(sim *s, const inv_event *event)
{
	const inv_journal_entry *je = inv_event_entry(event);
	const inv_uuid *org_uuid = inv_event_org_uuid(event);
	int o = -1, rc;
	int64_t last = -1;

	for (int i = 0; i < s->n_open; i++)
		if (org_uuid && memcmp(org_uuid, &s->world.org[i], 16) == 0)
			o = i;
	if (o < 0 || !s->L->org[o] || !je)
		return;
	if (s->L->fault)
		inv_fault_backend_fail_at(s->L->fault, 0, 0);   /* the batch is done */
	rc = inv_journal_last_sequence(&last, s->L->org[o]);
	if (rc || last != inv_journal_entry_sequence(je)) {
		divergence(s, "in an event callback: inv_journal_last_sequence returned %s, %" PRId64
		           "; expected OK, %" PRId64, code_name(rc), last,
		           inv_journal_entry_sequence(je));
		return;
	}
	rc = inv_tracking_start(s->L->org[o], &s->world.product[0]);
	if (rc != INV_EBUSY) {
		divergence(s, "in an event callback: a write to the same organization returned %s, "
		           "expected EBUSY", code_name(rc));
		return;
	}
	/* Writes to other organizations are allowed: starting a product that
	 * is tracked there already succeeds and changes nothing. */
	for (int f = 0; f < s->n_open; f++) {
		if (f == o || !s->L->org[f])
			continue;
		for (int p = 0; p < s->world.n_products; p++) {
			if (!s->model.org[f].tracked[p])
				continue;
			rc = inv_tracking_start(s->L->org[f], &s->world.product[p]);
			if (rc)
				divergence(s, "in an event callback of org %d: inv_tracking_start on org %d "
				           "returned %s, expected OK", o, f, code_name(rc));
			return;
		}
	}
}

static void on_event(const inv_event *event, void *payload)
{
	sim *s = payload;
	got_event *g;
	const inv_journal_entry *je = inv_event_entry(event);

	if (s->n_got == 0 && sim_chance(&s->probes, 10))
		probe_from_callback(s, event);

	if (s->n_got == s->cap_got) {
		s->cap_got = s->cap_got ? 2 * s->cap_got : 16;
		s->got = realloc(s->got, s->cap_got * sizeof(*g));
		if (!s->got)
			abort();
	}
	g = &s->got[s->n_got++];
	memset(g, 0, sizeof(*g));
	g->ev.type = inv_event_get_type(event);
	g->org_uuid = *inv_event_org_uuid(event);
	if (je) {
		m_entry full;

		entry_from_lib(&full, je, 1);
		g->ev.entry = full;
		g->ev.entry.records = NULL;
		g->ev.entry.n_records = 0;
		g->n_entry_records = full.n_records;
		g->entry_records = full.records;
	}
	g->ev.n_items = inv_event_item_count(event);
	g->ev.items = calloc(g->ev.n_items ? g->ev.n_items : 1, sizeof(inv_journal_record));
	if (g->ev.n_items)
		memcpy(g->ev.items, inv_event_items(event), g->ev.n_items * sizeof(inv_journal_record));
}

static void on_masked_event(const inv_event *event, void *payload)
{
	sim *s = payload;

	(void)event;
	s->mask_got++;
}

static void clear_got(sim *s)
{
	s->mask_got = 0;
	for (size_t i = 0; i < s->n_got; i++) {
		free(s->got[i].ev.items);
		free(s->got[i].entry_records);
	}
	s->n_got = 0;
}

static int same_record(const inv_journal_record *a, const inv_journal_record *b)
{
	return a->kind == b->kind && a->low == b->low &&
	       memcmp(&a->product, &b->product, 16) == 0 &&
	       memcmp(&a->variant, &b->variant, 16) == 0 &&
	       memcmp(&a->from, &b->from, 16) == 0 && memcmp(&a->to, &b->to, 16) == 0 &&
	       memcmp(&a->location, &b->location, 16) == 0 &&
	       a->quantity == b->quantity && a->before == b->before && a->after == b->after;
}

static void print_record(sim *s, const char *tag, size_t i, const inv_journal_record *r)
{
	fprintf(s->out, "    %s[%zu] kind=%d low=%d product=%s variant=%s from=%s to=%s loc=%s "
	        "qty=%" PRId64 " before=%" PRId64 " after=%" PRId64 "\n",
	        tag, i, r->kind, r->low, uname(s, &r->product), uname(s, &r->variant),
	        uname(s, &r->from), uname(s, &r->to), uname(s, &r->location),
	        r->quantity, r->before, r->after);
}

static int compare_records(sim *s, const char *what, const inv_journal_record *exp, size_t n_exp,
                           const inv_journal_record *got, size_t n_got)
{
	size_t i;

	if (n_exp == n_got) {
		for (i = 0; i < n_exp; i++)
			if (!same_record(&exp[i], &got[i]))
				break;
		if (i == n_exp)
			return 1;
	}
	divergence(s, "%s: records differ (expected %zu, got %zu)", what, n_exp, n_got);
	for (i = 0; i < n_exp && i < 40; i++)
		print_record(s, "expected", i, &exp[i]);
	for (i = 0; i < n_got && i < 40; i++)
		print_record(s, "got     ", i, &got[i]);
	return 0;
}

static int compare_entry_header(sim *s, const char *what, const m_entry *exp, const m_entry *got)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "%s sequence", what);
	if (!expect_i64(s, buf, exp->sequence, got->sequence))
		return 0;
	snprintf(buf, sizeof(buf), "%s (seq %" PRId64 ") time", what, exp->sequence);
	if (!expect_i64(s, buf, exp->time, got->time))
		return 0;
	snprintf(buf, sizeof(buf), "%s (seq %" PRId64 ") external uuid", what, exp->sequence);
	if (!expect_uuid(s, buf, exp->has_ext ? &exp->ext : NULL, got->has_ext ? &got->ext : NULL))
		return 0;
	snprintf(buf, sizeof(buf), "%s (seq %" PRId64 ") user uuid", what, exp->sequence);
	if (!expect_uuid(s, buf, exp->has_user ? &exp->user : NULL, got->has_user ? &got->user : NULL))
		return 0;
	snprintf(buf, sizeof(buf), "%s (seq %" PRId64 ") client uuid", what, exp->sequence);
	if (!expect_uuid(s, buf, exp->has_client ? &exp->client : NULL,
	                 got->has_client ? &got->client : NULL))
		return 0;
	if (exp->has_key != got->has_key || (exp->has_key && strcmp(exp->key, got->key) != 0)) {
		divergence(s, "%s (seq %" PRId64 ") idempotency key: expected %s, got %s", what,
		           exp->sequence, exp->has_key ? exp->key : "(none)",
		           got->has_key ? got->key : "(none)");
		return 0;
	}
	return 1;
}

static int compare_entry(sim *s, const char *what, const m_entry *exp, const m_entry *got)
{
	char buf[160];

	if (!compare_entry_header(s, what, exp, got))
		return 0;
	snprintf(buf, sizeof(buf), "%s (seq %" PRId64 ")", what, exp->sequence);
	return compare_records(s, buf, exp->records, exp->n_records, got->records, got->n_records);
}

static const m_entry *model_entry(const m_model *m, int o, int64_t seq)
{
	for (size_t i = 0; i < m->org[o].n_journal; i++)
		if (m->org[o].journal[i].sequence == seq)
			return &m->org[o].journal[i];
	return NULL;
}

/* The events libzinv delivered during the call against the model's. */
static int compare_events(sim *s)
{
	m_model *m = &s->model;
	size_t n = m->n_events < s->n_got ? m->n_events : s->n_got;

	s->stats->events += s->n_got;
	for (size_t i = 0; i < s->n_got; i++)
		if (s->got[i].ev.type >= 1 && s->got[i].ev.type <= 4)
			s->stats->events_by_type[s->got[i].ev.type]++;
	for (size_t i = 0; i < n; i++) {
		const m_event *exp = &m->events[i];
		const got_event *got = &s->got[i];
		char what[96];

		snprintf(what, sizeof(what), "event %zu type", i);
		if (!expect_i64(s, what, exp->type, got->ev.type))
			break;
		snprintf(what, sizeof(what), "event %zu organization", i);
		if (!expect_uuid(s, what, &s->world.org[exp->org], &got->org_uuid))
			break;
		snprintf(what, sizeof(what), "event %zu entry", i);
		if (!compare_entry_header(s, what, &exp->entry, &got->ev.entry))
			break;
		snprintf(what, sizeof(what), "event %zu items", i);
		if (!compare_records(s, what, exp->items, exp->n_items, got->ev.items, got->ev.n_items))
			break;
		const m_entry *me = model_entry(m, exp->org, exp->entry.sequence);
		snprintf(what, sizeof(what), "event %zu entry records", i);
		if (me && !compare_records(s, what, me->records, me->n_records,
		                           got->entry_records, got->n_entry_records))
			break;
	}
	size_t masked = 0;
	for (size_t i = 0; i < m->n_events; i++)
		if (!s->mask || (s->mask & INV_EVENT_MASK(m->events[i].type)))
			masked++;
	if (!s->failed && s->L->mask_sub_id && masked != s->mask_got)
		divergence(s, "the subscriber with mask 0x%x got %zu events, expected %zu",
		           s->mask, s->mask_got, masked);
	if (!s->failed && m->n_events != s->n_got) {
		divergence(s, "events: expected %zu, got %zu", m->n_events, s->n_got);
		for (size_t i = 0; i < m->n_events; i++)
			fprintf(s->out, "    expected[%zu] type=%d seq=%" PRId64 " items=%zu\n", i,
			        m->events[i].type, m->events[i].entry.sequence, m->events[i].n_items);
		for (size_t i = 0; i < s->n_got; i++)
			fprintf(s->out, "    got     [%zu] type=%d seq=%" PRId64 " items=%zu\n", i,
			        s->got[i].ev.type, s->got[i].ev.entry.sequence, s->got[i].ev.n_items);
	}
	m_clear_events(m);
	clear_got(s);
	return !s->failed;
}

/* ------------------------------------------------------------ calls */

/*
 * Before each call, with probability faults_per_million / 10^6, arm the
 * fault backend to fail one of the next few backend operations; the call
 * may use fewer, then nothing fires.  The fault PRNG is apart from the
 * workload's, so a run with faults draws the same workload.
 */
static void call_begin(sim *s)
{
	inv_error_clear();
	clear_got(s);
	m_clear_events(&s->model);
	s->fault_code = 0;
	if (s->L->fault && s->cfg->faults_per_million &&
	    sim_below(&s->faults, 1000000) < s->cfg->faults_per_million) {
		uint64_t k = 1 + sim_below(&s->faults, 8);

		s->fault_code = sim_below(&s->faults, 4) == 0 ? INV_EBUSY : INV_EBACKEND;
		inv_fault_backend_fail_at(s->L->fault, k, s->fault_code);
	}
}

static void call_end(sim *s, int rc)
{
	s->fired = 0;
	if (s->L->fault && s->fault_code) {
		s->fired = (unsigned)inv_fault_backend_fired(s->L->fault, NULL);
		inv_fault_backend_fail_at(s->L->fault, 0, 0);
		if (s->fired)
			s->stats->faults++;
	}
	if (rc)
		s->stats->calls_failed++;
	else
		s->stats->calls_ok++;
	if (rc <= 0 && rc > -16)
		s->stats->by_code[-rc]++;
}

static void full_check(sim *s);

/*
 * A call during which the backend failed: it must fail with the backend's
 * code, deliver no event, and leave the store exactly as it was.  Returns 1
 * when the call was handled here (the caller skips the model).
 */
static int faulted(sim *s, int rc)
{
	if (!s->fired)
		return 0;
	s->stats->faulted_calls++;
	if (rc == 0) {
		/* Only "busy" may be absorbed (the core may retry it). */
		if (s->fault_code == INV_EBUSY)
			return 0;
		divergence(s, "backend failed with %s (injected) but the call returned OK",
		           code_name(s->fault_code));
		return 1;
	}
	if (rc != s->fault_code) {
		divergence(s, "backend failed with %s (injected): expected the call to return it, "
		           "got %s (%s)", code_name(s->fault_code), code_name(rc),
		           inv_error_last()->message);
		return 1;
	}
	if (s->n_got) {
		divergence(s, "a failed call delivered %zu event(s)", s->n_got);
		return 1;
	}
	full_check(s);
	return 1;
}

static int expect_code(sim *s, int exp, int64_t exp_index, int got, int64_t got_index,
                       const char *got_msg)
{
	if (exp != got) {
		divergence(s, "return code: expected %s (index %" PRId64 "), got %s (index %" PRId64
		           ", message \"%s\")", code_name(exp), exp_index, code_name(got), got_index,
		           got_msg ? got_msg : "");
		return 0;
	}
	if (exp != 0 && exp_index != got_index) {
		divergence(s, "%s: expected index %" PRId64 ", got %" PRId64 " (message \"%s\")",
		           code_name(exp), exp_index, got_index, got_msg ? got_msg : "");
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ handles */

static const inv_location *lh(sim *s, m_lref l)
{
	return l.org < 0 ? NULL : s->L->loc[l.org][l.type - 1];
}

/* The handle of (o, p, v), resolving it when new; 0 or the code. */
static int resolve(sim *s, int o, int p, int v, const inv_variant **out)
{
	const inv_variant *h = NULL;
	int rc, mrc;

	if (s->L->vh[o][p][v]) {
		*out = s->L->vh[o][p][v];
		return 0;
	}
	inv_error_clear();
	rc = inv_variant_get(&h, s->L->org[o], &s->world.product[p], &s->world.variant[v]);
	mrc = m_variant_get(&s->model, o, p, v);
	if (rc != mrc) {
		char saved[512];

		memcpy(saved, s->desc, sizeof(saved));
		snprintf(s->desc, sizeof(s->desc), "%.400s [resolving inv_variant_get(org %d, P%d, V%d)]",
		         saved, o, p, v);
		expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message);
		return rc ? rc : INV_EBACKEND;
	}
	if (rc)
		return rc;
	if (!h || memcmp(inv_variant_product_uuid(h), &s->world.product[p], 16) != 0 ||
	    memcmp(inv_variant_uuid(h), &s->world.variant[v], 16) != 0) {
		divergence(s, "inv_variant_get(org %d, P%d, V%d) returned a handle naming "
		           "another pair", o, p, v);
		return INV_EBACKEND;
	}
	s->L->vh[o][p][v] = h;
	*out = h;
	return 0;
}

/* A variant of org o to use in a call: mostly its home product, now and
 * then another one (a mismatch when the variant is already owned). */
static m_vref pick_var(sim *s, int o)
{
	const m_world *w = &s->world;
	m_vref r = { o, 0, 0 };
	const inv_variant *h;

	r.v = (int)sim_below(&s->gen, (uint64_t)w->n_variants);
	r.p = w->home[r.v];
	if (sim_chance(&s->gen, 4))
		r.p = (int)sim_below(&s->gen, (uint64_t)w->n_products);
	if (resolve(s, o, r.p, r.v, &h) == 0 || s->failed)
		return r;
	/* Mismatch: use the owner's pair, which always resolves. */
	r.p = s->model.org[o].handle_owner[s->model.side][r.v] >= 0
	      ? s->model.org[o].handle_owner[s->model.side][r.v] : s->model.org[o].owner[r.v];
	resolve(s, o, r.p, r.v, &h);
	return r;
}

/* Mostly a variant of a tracked product, so that long batches can
 * succeed; untracked ones still come through now and then. */
static m_vref pick_tracked_var(sim *s, int o)
{
	m_vref r = pick_var(s, o);

	for (int tries = 0; tries < 8 && !s->failed && !s->model.org[o].tracked[r.p]; tries++)
		r = pick_var(s, o);
	return r;
}

static const inv_variant *vhandle(sim *s, m_vref r)
{
	const inv_variant *h = NULL;

	if (r.org < 0)
		return NULL;
	resolve(s, r.org, r.p, r.v, &h);
	return h;
}

static int other_org(sim *s, int o)
{
	return (o + 1 + (int)sim_below(&s->gen, (uint64_t)(s->n_open - 1))) % s->n_open;
}

static int pick_org(sim *s)
{
	/* Most traffic on one organization, so state builds up there. */
	if (sim_chance(&s->gen, 75))
		return 0;
	return (int)sim_below(&s->gen, (uint64_t)s->n_open);
}

static m_lref pick_loc(sim *s, int o)
{
	m_lref l = { o, 1 + (int)sim_below(&s->gen, 4) };

	return l;
}

/* ------------------------------------------------------------ full state */

static int compare_balances(sim *s, const char *what, const inv_balance *exp, size_t n_exp,
                            const inv_balance *got, size_t n_got, int full)
{
	size_t i;

	if (n_exp == n_got) {
		for (i = 0; i < n_exp; i++) {
			const inv_balance *a = &exp[i], *b = &got[i];

			if (memcmp(&a->product, &b->product, 16) || memcmp(&a->variant, &b->variant, 16) ||
			    a->balance != b->balance)
				break;
			if (full && (a->updated != b->updated ||
			             a->has_low_stock_level != b->has_low_stock_level ||
			             a->low_stock_alert != b->low_stock_alert ||
			             (a->has_low_stock_level && a->low_stock_level != b->low_stock_level)))
				break;
		}
		if (i == n_exp)
			return 1;
	}
	divergence(s, "%s: balances differ (expected %zu, got %zu)", what, n_exp, n_got);
	for (i = 0; i < n_exp && i < 40; i++)
		fprintf(s->out, "    expected[%zu] %s/%s balance=%" PRId64 " updated=%" PRId64
		        " level=%d:%" PRId64 " alert=%d\n", i, uname(s, &exp[i].product),
		        uname(s, &exp[i].variant), exp[i].balance, exp[i].updated,
		        exp[i].has_low_stock_level, exp[i].low_stock_level, exp[i].low_stock_alert);
	for (i = 0; i < n_got && i < 40; i++)
		fprintf(s->out, "    got     [%zu] %s/%s balance=%" PRId64 " updated=%" PRId64
		        " level=%d:%" PRId64 " alert=%d\n", i, uname(s, &got[i].product),
		        uname(s, &got[i].variant), got[i].balance, got[i].updated,
		        got[i].has_low_stock_level, got[i].low_stock_level, got[i].low_stock_alert);
	return 0;
}

static int compare_low_stock(sim *s, const char *what, const inv_low_stock *exp, size_t n_exp,
                             const inv_low_stock *got, size_t n_got)
{
	size_t i;

	if (n_exp == n_got) {
		for (i = 0; i < n_exp; i++) {
			const inv_low_stock *a = &exp[i], *b = &got[i];

			if (memcmp(&a->product, &b->product, 16) || memcmp(&a->variant, &b->variant, 16) ||
			    a->has_level != b->has_level || a->alert != b->alert ||
			    (a->has_level && a->level != b->level))
				break;
		}
		if (i == n_exp)
			return 1;
	}
	divergence(s, "%s: low-stock entries differ (expected %zu, got %zu)", what, n_exp, n_got);
	for (i = 0; i < n_exp; i++)
		fprintf(s->out, "    expected[%zu] %s/%s level=%d:%" PRId64 " alert=%d\n", i,
		        uname(s, &exp[i].product), uname(s, &exp[i].variant), exp[i].has_level,
		        exp[i].level, exp[i].alert);
	for (i = 0; i < n_got; i++)
		fprintf(s->out, "    got     [%zu] %s/%s level=%d:%" PRId64 " alert=%d\n", i,
		        uname(s, &got[i].product), uname(s, &got[i].variant), got[i].has_level,
		        got[i].level, got[i].alert);
	return 0;
}

/* Events inv_journal_entry_events() rebuilds from a stored entry. */
typedef struct rebuilt {
	size_t n;
	got_event ev[64];
} rebuilt;

static void on_rebuilt(const inv_event *event, void *payload)
{
	rebuilt *r = payload;

	if (r->n == 64)
		return;
	got_event *g = &r->ev[r->n++];
	memset(g, 0, sizeof(*g));
	g->ev.type = inv_event_get_type(event);
	g->org_uuid = *inv_event_org_uuid(event);
	g->ev.n_items = inv_event_item_count(event);
	g->ev.items = calloc(g->ev.n_items ? g->ev.n_items : 1, sizeof(inv_journal_record));
	if (g->ev.n_items)
		memcpy(g->ev.items, inv_event_items(event), g->ev.n_items * sizeof(inv_journal_record));
}

static void check_rebuilt_events(sim *s, int o, const inv_journal_entry *je, const m_entry *me)
{
	rebuilt r;
	m_model *m = &s->model;
	int rc;

	r.n = 0;
	rc = inv_journal_entry_events(je, &s->world.org[o], on_rebuilt, &r);
	if (rc) {
		divergence(s, "inv_journal_entry_events(seq %" PRId64 ") failed: %s", me->sequence,
		           code_name(rc));
	} else {
		/* The model's events of an entry are a function of the entry. */
		m_model tmp;

		memset(&tmp, 0, sizeof(tmp));
		tmp.world = m->world;
		m_events_of_entry(&tmp, o, me);
		if (tmp.n_events != r.n) {
			divergence(s, "inv_journal_entry_events(seq %" PRId64 "): expected %zu events, "
			           "got %zu", me->sequence, tmp.n_events, r.n);
		} else {
			for (size_t i = 0; i < r.n && !s->failed; i++) {
				char what[96];

				snprintf(what, sizeof(what), "rebuilt event %zu of seq %" PRId64 " type", i,
				         me->sequence);
				if (!expect_i64(s, what, tmp.events[i].type, r.ev[i].ev.type))
					break;
				snprintf(what, sizeof(what), "rebuilt event %zu of seq %" PRId64, i,
				         me->sequence);
				compare_records(s, what, tmp.events[i].items, tmp.events[i].n_items,
				                r.ev[i].ev.items, r.ev[i].ev.n_items);
			}
		}
		m_clear_events(&tmp);
		free(tmp.events);
	}
	for (size_t i = 0; i < r.n; i++)
		free(r.ev[i].ev.items);
}

static void use_side(sim *s, int i)
{
	s->L = &s->sides[i];
	s->model.side = i;
}

static void full_check_org(sim *s, int o)
{
	m_model *m = &s->model;
	inv_org *org = s->L->org[o];
	int rc;
	char what[128];

	inv_negative_policy pol;
	rc = inv_org_get_negative_policy(&pol, org);
	snprintf(what, sizeof(what), "org %d negative policy", o);
	if (!expect_i64(s, "inv_org_get_negative_policy rc", 0, rc) ||
	    !expect_i64(s, what, m->org[o].policy, pol))
		return;

	inv_uuid *tl = NULL, *mtl = NULL;
	size_t tn = 0, mtn = 0;
	rc = inv_tracking_list(&tl, &tn, org);
	m_tracking_list(m, o, &mtl, &mtn);
	if (expect_i64(s, "inv_tracking_list rc", 0, rc)) {
		snprintf(what, sizeof(what), "org %d tracked product count", o);
		if (expect_i64(s, what, (int64_t)mtn, (int64_t)tn))
			for (size_t i = 0; i < tn; i++) {
				snprintf(what, sizeof(what), "org %d tracked product %zu", o, i);
				if (!expect_uuid(s, what, &mtl[i], &tl[i]))
					break;
			}
	}
	inv_free(tl);
	free(mtl);
	if (s->failed)
		return;

	/* Every variant's balance, tracked or not. */
	for (int v = 0; v < s->world.n_variants && !s->failed; v++) {
		int p = m->org[o].handle_owner[m->side][v] >= 0 ? m->org[o].handle_owner[m->side][v] :
		        m->org[o].owner[v] >= 0 ? m->org[o].owner[v] : s->world.home[v];
		const inv_variant *h;
		int64_t got = 0;

		if (resolve(s, o, p, v, &h)) {
			if (!s->failed)
				divergence(s, "full check: cannot resolve P%d/V%d in org %d", p, v, o);
			return;
		}
		rc = inv_balance_get(&got, org, h, NULL);
		snprintf(what, sizeof(what), "org %d inv_balance_get(V%d)", o, v);
		if (expect_i64(s, what, 0, rc))
			expect_i64(s, what, m->org[o].balance[v], got);
	}
	if (s->failed)
		return;

	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	m_balance_query mq;
	inv_balance *bl = NULL, *mbl = NULL;
	size_t bn = 0, mbn = 0;
	int more = 0, mmore = 0;
	memset(&mq, 0, sizeof(mq));
	q.include_zero = mq.include_zero = 1;
	q.with_low_stock = mq.with_low_stock = 1;
	mq.loc.org = -1;
	mq.n_products = -1;
	rc = inv_balances_read(&bl, &bn, &more, org, &q);
	m_balances_read(m, o, &mq, &mbl, &mbn, &mmore);
	snprintf(what, sizeof(what), "org %d inv_balances_read(all, zero, low stock)", o);
	if (expect_i64(s, what, 0, rc))
		compare_balances(s, what, mbl, mbn, bl, bn, 1);
	inv_free(bl);
	free(mbl);
	if (s->failed)
		return;

	inv_low_stock *ll = NULL, *mll = NULL;
	size_t ln = 0, mln = 0;
	m_lref store = { o, T_STORE };
	rc = inv_low_stock_list(&ll, &ln, org, s->L->loc[o][0], NULL);
	m_low_stock_list(m, o, store, -1, &mll, &mln);
	snprintf(what, sizeof(what), "org %d inv_low_stock_list", o);
	if (expect_i64(s, what, 0, rc))
		compare_low_stock(s, what, mll, mln, ll, ln);
	inv_free(ll);
	free(mll);
	if (s->failed)
		return;

	int64_t last = -1;
	rc = inv_journal_last_sequence(&last, org);
	snprintf(what, sizeof(what), "org %d inv_journal_last_sequence", o);
	if (!expect_i64(s, what, 0, rc) || !expect_i64(s, what, m->org[o].last_sequence, last))
		return;

	inv_journal *j = NULL;
	rc = inv_journal_read(&j, org, NULL);
	snprintf(what, sizeof(what), "org %d inv_journal_read(all)", o);
	if (!expect_i64(s, what, 0, rc))
		return;
	snprintf(what, sizeof(what), "org %d journal entry count", o);
	if (expect_i64(s, what, (int64_t)m->org[o].n_journal, (int64_t)inv_journal_count(j))) {
		for (size_t i = 0; i < m->org[o].n_journal && !s->failed; i++) {
			m_entry got;
			const inv_journal_entry *je = inv_journal_at(j, i);

			entry_from_lib(&got, je, 1);
			snprintf(what, sizeof(what), "org %d journal entry %zu", o, i);
			if (compare_entry(s, what, &m->org[o].journal[i], &got))
				check_rebuilt_events(s, o, je, &m->org[o].journal[i]);
			free(got.records);
		}
	}
	inv_journal_free(j);
}

static void full_check(sim *s)
{
	side *cur = s->L;

	if (s->failed)
		return;
	for (int i = 0; i < s->n_sides && !s->failed; i++) {
		use_side(s, i);
		for (int o = 0; o < s->n_open && !s->failed; o++)
			full_check_org(s, o);
	}
	use_side(s, (int)(cur - s->sides));
}

/* ------------------------------------------------------------ store */

static void check_locations(sim *s, int o)
{
	inv_org *org = s->L->org[o];
	inv_uuid locs[4];
	char what[96];

	if (!expect_i64(s, "inv_org_location_count", 4, (int64_t)inv_org_location_count(org)))
		return;
	for (int t = 0; t < 4; t++) {
		const inv_location *l = inv_org_location_at(org, (size_t)t), *l2 = NULL;

		snprintf(what, sizeof(what), "org %d location %d type", o, t);
		if (!l) {
			divergence(s, "inv_org_location_at(%d) returned NULL", t);
			return;
		}
		if (!expect_i64(s, what, t + 1, inv_location_get_type(l)))
			return;
		snprintf(what, sizeof(what), "org %d location %d default", o, t);
		if (!expect_i64(s, what, t == 0, inv_location_is_default(l)))
			return;
		if (strcmp(inv_location_name(l), type_name(t + 1)) != 0) {
			divergence(s, "location name: expected %s, got %s", type_name(t + 1),
			           inv_location_name(l));
			return;
		}
		if (inv_location_by_type(&l2, org, (inv_location_type)(t + 1)) || l2 != l) {
			divergence(s, "inv_location_by_type(%s) is not inv_org_location_at(%d)",
			           type_name(t + 1), t);
			return;
		}
		l2 = NULL;
		if (inv_location_by_uuid(&l2, org, inv_location_uuid(l)) || l2 != l) {
			divergence(s, "inv_location_by_uuid(%s) is not inv_org_location_at(%d)",
			           type_name(t + 1), t);
			return;
		}
		s->L->loc[o][t] = l;
		locs[t] = *inv_location_uuid(l);
		if (s->model.org[o].created) {
			snprintf(what, sizeof(what), "org %d %s location uuid (persisted)", o,
			         type_name(t + 1));
			if (!expect_uuid(s, what, &s->model.org[o].loc[t], &locs[t]))
				return;
		}
	}
	for (int a = 0; a < 4; a++)
		for (int b = a + 1; b < 4; b++)
			if (memcmp(&locs[a], &locs[b], 16) == 0) {
				divergence(s, "org %d: two locations share a UUID", o);
				return;
			}
	m_org_opened(&s->model, o, locs);
}

static int open_org(sim *s, int o)
{
	int rc;

	memset(s->L->vh[o], 0, sizeof(s->L->vh[o]));
	memset(s->L->loc[o], 0, sizeof(s->L->loc[o]));
	m_org_closed(&s->model, o);
	for (int tries = 0; tries < 100; tries++) {
		inv_error_clear();
		rc = inv_org_open(&s->L->org[o], s->L->store, &s->world.org[o]);
		if (rc == 0)
			break;
		divergence(s, "inv_org_open(org %d) failed: %s (%s)", o, code_name(rc),
		           inv_error_last()->message);
		return rc;
	}
	check_locations(s, o);
	return s->failed ? INV_EBACKEND : 0;
}

static void close_side(sim *s, side *d)
{
	if (d->wrap)
		s->stats->backend_ops += sim_wrap_ops(d->wrap);
	for (int o = 0; o < M_MAX_ORGS; o++) {
		inv_org_close(d->org[o]);
		d->org[o] = NULL;
	}
	inv_store_close(d->store);
	memset(d, 0, sizeof(*d));
}

static void close_store(sim *s)
{
	for (int i = 0; i < 2; i++)
		close_side(s, &s->sides[i]);
	s->L = &s->sides[0];
	s->model.side = 0;
}

/* Open side L's store on the backend (fresh or reopened), orgs included. */
static int open_side(sim *s, const sim_backend *b, int fresh)
{
	const inv_backend_ops *ops, *fops, *wops;
	void *inst, *finst, *winst;
	inv_store_options opts = INV_STORE_OPTIONS_INIT;
	int rc;

	s->backend = b;
	rc = b->open(&ops, &inst, fresh, b->ctx);
	if (rc) {
		divergence(s, "backend %s: open failed: %s (%s)", b->name, code_name(rc),
		           inv_error_last()->message);
		return rc;
	}
	/* backend <- fault injector <- crash wrapper <- core */
	rc = inv_fault_backend_wrap(&fops, &finst, ops, inst);
	if (rc) {
		ops->close(inst);
		return rc;
	}
	s->L->fault = finst;
	rc = sim_wrap_new(&s->L->wrap, &wops, &winst, fops, finst);
	if (rc) {
		fops->close(finst);
		s->L->fault = NULL;
		return rc;
	}
	opts.clock = sim_clock;
	opts.clock_payload = s;
	opts.uuid_generate = sim_uuid;
	opts.uuid_payload = s;
	opts.negative_policy = s->model.default_policy;
	rc = inv_store_open(&s->L->store, wops, winst, &opts);
	if (rc) {
		divergence(s, "inv_store_open failed: %s (%s)", code_name(rc),
		           inv_error_last()->message);
		wops->close(winst);
		s->L->wrap = NULL;
		s->L->fault = NULL;
		return rc;
	}
	if (s->crash_op)
		sim_wrap_crash_at(s->L->wrap, s->crash_op, CRASH_EXIT);
	rc = inv_subscribe(&s->L->sub_id, s->L->store, 0, on_event, s);
	if (rc == 0)
		rc = inv_subscribe(&s->L->mask_sub_id, s->L->store, s->mask, on_masked_event, s);
	if (rc) {
		divergence(s, "inv_subscribe failed: %s", code_name(rc));
		return rc;
	}
	for (int o = 0; o < s->n_open; o++) {
		rc = open_org(s, o);
		if (rc)
			return rc;
	}
	return 0;
}

/* Open the store, and with two sides a second store on the same database,
 * as another process would. */
static int open_store(sim *s, const sim_backend *b, int fresh)
{
	int rc;

	s->n_sides = b->durable && !s->cfg->crash && s->cfg->two_stores ? 2 : 1;
	use_side(s, 0);
	rc = open_side(s, b, fresh);
	if (rc == 0 && s->n_sides == 2) {
		use_side(s, 1);
		rc = open_side(s, b, 0);
		use_side(s, 0);
	}
	return rc;
}

/* ------------------------------------------------------------ operations */

static int64_t pick_qty(sim *s)
{
	unsigned r = (unsigned)sim_below(&s->gen, 1000);

	/* Half the runs keep balances small, near the low-stock levels and
	 * zero (DENY); the others roam up to the limits. */
	if (s->small_qty && r < 990)
		return sim_range(&s->gen, 1, 4);

	if (r < 700)
		return sim_range(&s->gen, 1, 10);
	if (r < 900)
		return sim_range(&s->gen, 1, 1000);
	if (r < 990)
		return sim_range(&s->gen, 1, 1000000);
	return INV_QUANTITY_MAX - sim_range(&s->gen, 0, 3);
}

static int64_t bad_qty(sim *s)
{
	switch (sim_below(&s->gen, 5)) {
	case 0: return 0;
	case 1: return -sim_range(&s->gen, 1, 5);
	case 2: return INV_QUANTITY_MAX + 1;
	case 3: return INT64_MAX;
	default: return INT64_MIN;
	}
}

/* A typical move; from != to. */
static void pick_move(sim *s, int o, m_change *c)
{
	static const int moves[][2] = {
		{ T_SUPPLIER, T_STORE }, { T_SUPPLIER, T_STORE }, { T_STORE, T_SOLD },
		{ T_STORE, T_SOLD }, { T_STORE, T_SOLD }, { T_SOLD, T_STORE },
		{ T_STORE, T_BIN }, { T_BIN, T_STORE }, { T_STORE, T_SUPPLIER },
		{ T_SOLD, T_BIN }, { T_SUPPLIER, T_BIN }, { T_BIN, T_SUPPLIER },
	};
	int k = (int)sim_below(&s->gen, sizeof(moves) / sizeof(moves[0]));

	c->from.org = c->to.org = o;
	c->from.type = moves[k][0];
	c->to.type = moves[k][1];
}

/* Make change i invalid in one of the ways a caller gets wrong. */
static void spoil_change(sim *s, int o, m_change *c)
{
	switch (sim_below(&s->gen, 7)) {
	case 0: c->qty = bad_qty(s); break;
	case 1: c->to = c->from; break;
	case 2: c->from.org = other_org(s, o); break;
	case 3: c->to.org = other_org(s, o); break;
	case 4: c->var.org = -1; break;
	case 5: c->from.org = -1; break;
	default:
		c->var = pick_var(s, other_org(s, o));
		break;
	}
}

static void pick_opts(sim *s, int o, m_opts *op, int allow_key)
{
	memset(op, 0, sizeof(*op));
	op->ret.org = -1;
	if (sim_chance(&s->gen, 30)) {
		/* a few recurring values: externalUuid must never deduplicate */
		uint64_t x = s->cfg->seed * 31 + sim_below(&s->gen, 3);
		sim_prng r;

		sim_prng_seed(&r, x);
		op->has_ext = 1;
		random_uuid(&r, &op->ext);
	}
	if (sim_chance(&s->gen, 15))
		op->has_user = 1, random_uuid(&s->gen, &op->user);
	if (sim_chance(&s->gen, 15))
		op->has_client = 1, random_uuid(&s->gen, &op->client);
	if (sim_chance(&s->gen, 8))
		op->dry_run = 1;
	if (allow_key && (!op->dry_run || sim_chance(&s->gen, 30)) && sim_chance(&s->gen, 25)) {
		op->has_key = 1;
		if (sim_chance(&s->gen, 3))
			op->key[0] = '\0';                       /* empty: invalid */
		else if (sim_chance(&s->gen, 2)) {
			memset(op->key, 'k', M_KEY_MAX + 1);     /* 256 bytes: invalid */
			op->key[M_KEY_MAX + 1] = '\0';
		} else if (sim_chance(&s->gen, 3)) {
			memset(op->key, 'x', M_KEY_MAX);         /* 255 bytes: the longest */
			op->key[M_KEY_MAX] = '\0';
			op->key[0] = (char)('a' + sim_below(&s->gen, 3));
		} else if (sim_chance(&s->gen, 5)) {
			/* any bytes but NUL: keys are bytes, not text */
			size_t len = (size_t)sim_range(&s->gen, 1, 12);

			for (size_t i = 0; i < len; i++)
				op->key[i] = (char)sim_range(&s->gen, 1, 255);
			op->key[len] = '\0';
		} else if (sim_chance(&s->gen, 50))
			snprintf(op->key, sizeof(op->key), "key-%d", (int)sim_below(&s->gen, 6));
		else
			snprintf(op->key, sizeof(op->key), "order-%ld-%" PRIu64, s->step,
			         sim_next(&s->gen) % 1000);
	}
	unsigned r = (unsigned)sim_below(&s->gen, 100);
	if (r < 8)
		op->ret = (m_lref){ o, T_STORE };
	else if (r < 16)
		op->ret = (m_lref){ o, 2 + (int)sim_below(&s->gen, 3) };
	else if (r < 17)
		op->ret = (m_lref){ other_org(s, o), T_STORE };
}

static void to_lib_opts(sim *s, const m_opts *op, inv_apply_options *ao, inv_tracking_change *tc)
{
	inv_apply_options init = INV_APPLY_OPTIONS_INIT;

	*ao = init;
	ao->dry_run = op->dry_run;
	ao->external_uuid = op->has_ext ? &op->ext : NULL;
	ao->user_uuid = op->has_user ? &op->user : NULL;
	ao->client_uuid = op->has_client ? &op->client : NULL;
	ao->idempotency_key = op->has_key ? op->key : NULL;
	ao->return_location = lh(s, op->ret);
	for (int i = 0; i < op->n_tracking; i++) {
		memset(&tc[i], 0, sizeof(tc[i]));
		tc[i].product = s->world.product[op->tracking[i].p];
		tc[i].action = op->tracking[i].action;
	}
	ao->tracking = op->n_tracking ? tc : NULL;
	ao->tracking_count = (size_t)op->n_tracking;
}

static void compare_result(sim *s, inv_result *r, const m_result *mr, int o)
{
	char what[64];

	if (!r) {
		divergence(s, "success without a result");
		return;
	}
	s->stats->replays += mr->replayed != 0;
	if (!expect_i64(s, "inv_result_sequence", mr->sequence, inv_result_sequence(r)) ||
	    !expect_i64(s, "inv_result_replayed", mr->replayed, inv_result_replayed(r)))
		return;
	const inv_location *l = inv_result_location(r);
	if (!l) {
		divergence(s, "inv_result_location is NULL");
		return;
	}
	if (!expect_i64(s, "inv_result_location type", mr->loc_type, inv_location_get_type(l)) ||
	    !expect_uuid(s, "inv_result_location", &s->model.org[o].loc[mr->loc_type - 1],
	                 inv_location_uuid(l)))
		return;
	snprintf(what, sizeof(what), "inv_result_balances");
	if (!compare_balances(s, what, mr->balances, mr->n_balances, inv_result_balances(r),
	                      inv_result_count(r), 1))
		return;
	size_t n = inv_result_skipped_count(r);
	const size_t *sk = inv_result_skipped(r);
	if (!expect_i64(s, "inv_result_skipped_count", (int64_t)mr->n_skipped, (int64_t)n))
		return;
	for (size_t i = 0; i < n; i++)
		if (!expect_i64(s, "inv_result_skipped", (int64_t)mr->skipped[i], (int64_t)sk[i]))
			return;
}

static void describe_batch(sim *s, const char *fn, int o, const m_change *c, size_t n,
                           const m_opts *op)
{
	char buf[256];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && i < 4; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s[%s%d/P%d/V%d %s@%d->%s@%d x%" PRId64 "]",
		                        i ? " " : "", c[i].var.org < 0 ? "NULL " : "", c[i].var.org,
		                        c[i].var.p, c[i].var.v,
		                        c[i].from.org < 0 ? "NULL" : type_name(c[i].from.type), c[i].from.org,
		                        c[i].to.org < 0 ? "NULL" : type_name(c[i].to.type), c[i].to.org,
		                        c[i].qty);
	desc(s, "%s(org %d, %zu changes %s%s, dry=%d key=%s%s ext=%d ret=%s@%d tracking=%d)",
	     fn, o, n, buf, n > 4 ? " ..." : "", op->dry_run, op->has_key ? "\"" : "-",
	     op->has_key ? printable_key(s, op->key) : "", op->has_ext,
	     op->ret.org < 0 ? "NULL" : type_name(op->ret.type), op->ret.org, op->n_tracking);
}

/* Remember a keyed call for idempotent retries. */
static void remember_keyed(sim *s, int kind, int o, const m_change *mc, size_t n,
                           const m_opts *op)
{
	free(s->keyed);
	s->keyed = calloc(n ? n : 1, sizeof(m_change));
	if (n)
		memcpy(s->keyed, mc, n * sizeof(m_change));
	s->keyed_n = n;
	s->keyed_opts = *op;
	s->keyed_org = o;
	s->keyed_kind = kind;
	s->have_keyed = 1;
}

static void run_apply(sim *s, int o, const m_change *mc, size_t n, const m_opts *op)
{
	inv_change *c = calloc(n ? n : 1, sizeof(*c));
	inv_apply_options ao;
	inv_tracking_change tc[8];
	inv_result *r = NULL;
	m_result mr;
	int64_t mi;
	int rc, mrc;

	for (size_t i = 0; i < n; i++) {
		c[i].variant = vhandle(s, mc[i].var);
		if (mc[i].var.org >= 0 && !c[i].variant)
			goto out;               /* a retry whose pair no longer resolves */
		c[i].from = lh(s, mc[i].from);
		c[i].to = lh(s, mc[i].to);
		c[i].quantity = mc[i].qty;
	}
	to_lib_opts(s, op, &ao, tc);
	describe_batch(s, "inv_apply_changes", o, mc, n, op);
	if (s->failed)
		goto out;
	s->stats->changes += n;
	call_begin(s);
	rc = inv_apply_changes(&r, s->L->org[o], c, n, &ao);
	int64_t idx = inv_error_last()->index;
	const char *msg = inv_error_last()->message;
	call_end(s, rc);
	if (faulted(s, rc))
		goto out;
	mrc = m_apply(&s->model, o, mc, n, op, &mi, &mr);
	if (expect_code(s, mrc, mi, rc, idx, msg) && rc == 0)
		compare_result(s, r, &mr, o);
	if (!s->failed)
		compare_events(s);
	m_result_free(&mr);
	if (op->has_key && !s->failed)
		remember_keyed(s, M_APPLY, o, mc, n, op);
out:
	inv_result_free(r);
	free(c);
}

static size_t pick_batch_size(sim *s)
{
	unsigned r = (unsigned)sim_below(&s->gen, 100);

	if (r < 55)
		return (size_t)sim_range(&s->gen, 1, 3);
	if (r < 85)
		return (size_t)sim_range(&s->gen, 4, 20);
	if (r < 96)
		return (size_t)sim_range(&s->gen, 21, 200);
	return (size_t)sim_range(&s->gen, 201, 1000);
}

static void op_retry(sim *s);

static void op_apply(sim *s)
{
	int o = pick_org(s);
	m_opts op;

	/* Idempotent retries of the last keyed call. */
	if (s->have_keyed && sim_chance(&s->gen, 15)) {
		op_retry(s);
		return;
	}

	size_t n = pick_batch_size(s);
	int tracked_only = sim_chance(&s->gen, 85);
	m_change *mc = calloc(n, sizeof(*mc));
	for (size_t i = 0; i < n && !s->failed; i++) {
		mc[i].var = tracked_only ? pick_tracked_var(s, o) : pick_var(s, o);
		pick_move(s, o, &mc[i]);
		mc[i].qty = pick_qty(s);
	}
	if (sim_chance(&s->gen, 12) && !s->failed)
		spoil_change(s, o, &mc[sim_below(&s->gen, n)]);
	pick_opts(s, o, &op, 1);
	/* v2 bulk: tracking changes applied before the moves */
	if (sim_chance(&s->gen, 15)) {
		op.n_tracking = 1 + (int)sim_below(&s->gen, 3);
		for (int i = 0; i < op.n_tracking; i++) {
			op.tracking[i].p = (int)sim_below(&s->gen, (uint64_t)s->world.n_products);
			op.tracking[i].action = sim_chance(&s->gen, 65) ? INV_TRACKING_START : INV_TRACKING_STOP;
			if (sim_chance(&s->gen, 2))
				op.tracking[i].action = 9;
		}
		if (sim_chance(&s->gen, 20))
			n = 0;                   /* tracking only */
	}
	if (n == 0 && op.n_tracking == 0 && sim_chance(&s->gen, 50))
		n = 1;
	if (!s->failed)
		run_apply(s, o, mc, n, &op);
	free(mc);
}

static void run_sale(sim *s, int o, int refund, const m_vref *vars, const int64_t *qty,
                     size_t n, const m_opts *op)
{
	inv_sale_line lines[8];
	inv_apply_options ao;
	inv_tracking_change tc[8];
	inv_result *r = NULL;
	m_result mr;
	int64_t mi;
	int rc, mrc;

	for (size_t i = 0; i < n; i++) {
		lines[i].variant = vhandle(s, vars[i]);
		lines[i].quantity = qty[i];
		if (vars[i].org >= 0 && !lines[i].variant)
			return;                 /* a retry whose pair no longer resolves */
	}
	to_lib_opts(s, op, &ao, tc);
	desc(s, "%s(org %d, %zu lines, first V%d x%" PRId64 ", dry=%d key=%s%s ret=%s)",
	     refund ? "inv_record_refund" : "inv_record_sale", o, n, n ? vars[0].v : -1,
	     n ? qty[0] : 0, op->dry_run, op->has_key ? "\"" : "-",
	     op->has_key ? printable_key(s, op->key) : "",
	     op->ret.org < 0 ? "NULL" : type_name(op->ret.type));
	s->stats->changes += n;
	call_begin(s);
	rc = refund ? inv_record_refund(&r, s->L->org[o], lines, n, &ao)
	            : inv_record_sale(&r, s->L->org[o], lines, n, &ao);
	int64_t idx = inv_error_last()->index;
	const char *msg = inv_error_last()->message;
	call_end(s, rc);
	if (!faulted(s, rc)) {
		mrc = m_sale(&s->model, o, refund, vars, qty, n, op, &mi, &mr);
		if (expect_code(s, mrc, mi, rc, idx, msg) && rc == 0)
			compare_result(s, r, &mr, o);
		if (!s->failed)
			compare_events(s);
		m_result_free(&mr);
	}
	inv_result_free(r);
	if (op->has_key && !s->failed) {
		m_change mc[8];

		memset(mc, 0, sizeof(mc));
		for (size_t i = 0; i < n; i++) {
			mc[i].var = vars[i];
			mc[i].qty = qty[i];
		}
		remember_keyed(s, refund ? M_REFUND : M_SALE, o, mc, n, op);
	}
}

static void op_sale(sim *s, int refund)
{
	int o = pick_org(s);
	size_t n = (size_t)sim_range(&s->gen, 1, 8);
	m_vref vars[8];
	int64_t qty[8];
	m_opts op;

	if (sim_chance(&s->gen, 1))
		n = 0;
	int tracked_only = sim_chance(&s->gen, 60);
	for (size_t i = 0; i < n && !s->failed; i++) {
		vars[i] = tracked_only ? pick_tracked_var(s, o) : pick_var(s, o);
		qty[i] = sim_chance(&s->gen, 97) ? sim_range(&s->gen, 1, 5) : bad_qty(s);
		if (sim_chance(&s->gen, 1))
			vars[i].org = -1;
	}
	if (s->failed)
		return;
	pick_opts(s, o, &op, 1);
	run_sale(s, o, refund, vars, qty, n, &op);
}

static void run_set_balance(sim *s, int o, m_vref var, m_lref loc, int64_t target,
                            const int64_t *expected, m_lref reason, const m_opts *op)
{
	inv_apply_options ao;
	inv_tracking_change tc[8];
	inv_result *r = NULL;
	m_result mr;
	int64_t mi;
	int rc, mrc;
	const inv_variant *h = vhandle(s, var);

	if (s->failed || (var.org >= 0 && !h))
		return;
	to_lib_opts(s, op, &ao, tc);
	desc(s, "inv_set_balance(org %d, %d/P%d/V%d, loc=%s@%d, %" PRId64 ", expected=%s%" PRId64
	     ", reason=%s@%d, dry=%d key=%s%s) current=%" PRId64, o, var.org, var.p, var.v,
	     loc.org < 0 ? "NULL" : type_name(loc.type), loc.org, target,
	     expected ? "" : "none/", expected ? *expected : 0,
	     reason.org < 0 ? "NULL" : type_name(reason.type), reason.org, op->dry_run,
	     op->has_key ? "\"" : "-", op->has_key ? printable_key(s, op->key) : "",
	     s->model.org[o].balance[var.v]);
	call_begin(s);
	rc = inv_set_balance(&r, s->L->org[o], h, lh(s, loc), target, expected, lh(s, reason), &ao);
	int64_t idx = inv_error_last()->index;
	const char *msg = inv_error_last()->message;
	call_end(s, rc);
	if (!faulted(s, rc)) {
		mrc = m_set_balance(&s->model, o, var, loc, target, expected, reason, op, &mi, &mr);
		if (expect_code(s, mrc, mi, rc, idx, msg) && rc == 0)
			compare_result(s, r, &mr, o);
		if (!s->failed)
			compare_events(s);
		m_result_free(&mr);
	}
	inv_result_free(r);
	if (op->has_key && !s->failed) {
		remember_keyed(s, M_SET, o, NULL, 0, op);
		s->keyed_var = var;
		s->keyed_loc = loc;
		s->keyed_reason = reason;
		s->keyed_target = target;
		s->keyed_has_expected = expected != NULL;
		s->keyed_expected = expected ? *expected : 0;
	}
}

static void op_set_balance(sim *s)
{
	int o = pick_org(s);
	m_vref var = sim_chance(&s->gen, 85) ? pick_tracked_var(s, o) : pick_var(s, o);
	m_lref loc = { -1, 0 }, reason = { -1, 0 };
	int64_t cur, target, expected;
	int has_expected = 0;
	m_opts op;

	if (s->failed)
		return;
	cur = s->model.org[o].balance[var.v];
	unsigned k = (unsigned)sim_below(&s->gen, 100);
	if (k < 60)
		target = cur + sim_range(&s->gen, -10, 10);
	else if (k < 75)
		target = sim_range(&s->gen, 0, 50);
	else if (k < 85)
		target = 0;
	else if (k < 92)
		target = -sim_range(&s->gen, 1, 10);
	else if (k < 97)
		target = INV_QUANTITY_MAX - sim_range(&s->gen, 0, 2);
	else
		target = sim_chance(&s->gen, 50) ? INV_QUANTITY_MAX + 1 : -INV_QUANTITY_MAX - 1;
	k = (unsigned)sim_below(&s->gen, 100);
	if (k < 45)
		has_expected = 1, expected = cur;
	else if (k < 60)
		has_expected = 1, expected = cur + sim_range(&s->gen, 1, 3);
	else
		expected = 0;
	k = (unsigned)sim_below(&s->gen, 100);
	if (k < 20)
		loc = (m_lref){ o, T_STORE };
	else if (k < 24)
		loc = pick_loc(s, o);
	else if (k < 26)
		loc = (m_lref){ other_org(s, o), T_STORE };
	k = (unsigned)sim_below(&s->gen, 100);
	if (k < 50)
		reason = (m_lref){ o, 2 + (int)sim_below(&s->gen, 3) };
	else if (k < 53)
		reason = (m_lref){ o, T_STORE };
	else if (k < 55)
		reason = (m_lref){ other_org(s, o), T_BIN };
	if (sim_chance(&s->gen, 2))
		var = pick_var(s, other_org(s, o));
	pick_opts(s, o, &op, 1);
	op.ret.org = -1;
	run_set_balance(s, o, var, loc, target, has_expected ? &expected : NULL, reason, &op);
}

/* Repeat the last keyed call: the same call (a replay) or, now and then,
 * the same key with something else changed (a conflict). */
static void op_retry(sim *s)
{
	int same = sim_chance(&s->gen, 70);
	m_opts op = s->keyed_opts;
	size_t n = s->keyed_n;
	m_change *mc = calloc(n ? n : 1, sizeof(*mc));

	if (n)
		memcpy(mc, s->keyed, n * sizeof(*mc));
	if (!same && n) {
		size_t i = (size_t)sim_below(&s->gen, n);

		mc[i].qty = mc[i].qty < INV_QUANTITY_MAX ? mc[i].qty + 1 : 1;
	}
	switch (s->keyed_kind) {
	case M_APPLY:
		run_apply(s, s->keyed_org, mc, n, &op);
		break;
	case M_SALE:
	case M_REFUND: {
		m_vref vars[8];
		int64_t qty[8];

		for (size_t i = 0; i < n; i++) {
			vars[i] = mc[i].var;
			qty[i] = mc[i].qty;
		}
		run_sale(s, s->keyed_org, s->keyed_kind == M_REFUND, vars, qty, n, &op);
		break;
	}
	default: {
		int64_t target = s->keyed_target + (same ? 0 : 1);
		int64_t expected = s->keyed_expected;

		run_set_balance(s, s->keyed_org, s->keyed_var, s->keyed_loc, target,
		                s->keyed_has_expected ? &expected : NULL, s->keyed_reason, &op);
		break;
	}
	}
	free(mc);
}

static void op_tracking(sim *s)
{
	int o = pick_org(s);
	int p = (int)sim_below(&s->gen, (uint64_t)s->world.n_products);
	unsigned k = (unsigned)sim_below(&s->gen, 100);
	int rc, mrc;

	if (k < 55) {
		desc(s, "inv_tracking_start(org %d, P%d)", o, p);
		call_begin(s);
		rc = inv_tracking_start(s->L->org[o], &s->world.product[p]);
		call_end(s, rc);
		if (faulted(s, rc))
			return;
		mrc = m_tracking_start(&s->model, o, p);
	} else if (k < 85) {
		desc(s, "inv_tracking_stop(org %d, P%d)", o, p);
		call_begin(s);
		rc = inv_tracking_stop(s->L->org[o], &s->world.product[p]);
		call_end(s, rc);
		if (faulted(s, rc))
			return;
		mrc = m_tracking_stop(&s->model, o, p);
	} else {
		int got = -1;

		desc(s, "inv_tracking_get(org %d, P%d)", o, p);
		call_begin(s);
		rc = inv_tracking_get(&got, s->L->org[o], &s->world.product[p]);
		call_end(s, rc);
		if (faulted(s, rc))
			return;
		if (expect_code(s, 0, -1, rc, inv_error_last()->index, inv_error_last()->message))
			expect_i64(s, "tracked", s->model.org[o].tracked[p], got);
		compare_events(s);
		return;
	}
	if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message))
		compare_events(s);
}

static void op_policy(sim *s)
{
	int o = pick_org(s);
	int pol = sim_chance(&s->gen, 50) ? INV_NEGATIVE_ALLOW : INV_NEGATIVE_DENY;
	int rc, mrc;

	if (sim_chance(&s->gen, 5))
		pol = 2 + (int)sim_below(&s->gen, 5);
	desc(s, "inv_org_set_negative_policy(org %d, %d)", o, pol);
	call_begin(s);
	rc = inv_org_set_negative_policy(s->L->org[o], (inv_negative_policy)pol);
	call_end(s, rc);
	if (faulted(s, rc))
		return;
	mrc = m_policy_set(&s->model, o, pol);
	if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message))
		compare_events(s);
}

static void op_low_stock(sim *s)
{
	int o = pick_org(s);
	m_vref var;
	m_lref loc = { o, T_STORE };
	unsigned k = (unsigned)sim_below(&s->gen, 100);
	int rc, mrc;

	var.org = o;
	var.v = (int)sim_below(&s->gen, (uint64_t)s->world.n_variants);
	var.p = sim_chance(&s->gen, 90) ? s->world.home[var.v]
	                                : (int)sim_below(&s->gen, (uint64_t)s->world.n_products);
	unsigned l = (unsigned)sim_below(&s->gen, 100);
	if (l < 4)
		loc = pick_loc(s, o);
	else if (l < 6)
		loc = (m_lref){ other_org(s, o), T_STORE };
	const inv_uuid *pu = &s->world.product[var.p], *vu = &s->world.variant[var.v];

	if (k < 50) {
		int64_t level = 0;
		int has = sim_chance(&s->gen, 80);
		int alert = sim_chance(&s->gen, 50);

		if (has) {
			/* near the balance, so that batches cross it */
			int64_t bal = s->model.org[o].balance[var.v];

			level = sim_range(&s->gen, 0, 15);
			if (sim_chance(&s->gen, 50) && bal > -5 && bal < INV_QUANTITY_MAX - 5)
				level = bal + sim_range(&s->gen, -3, 3) < 0 ? 0 : bal + sim_range(&s->gen, -3, 3);
			if (sim_chance(&s->gen, 3))
				level = sim_chance(&s->gen, 50) ? -1 : INV_QUANTITY_MAX + 1;
			else if (sim_chance(&s->gen, 2))
				level = INV_QUANTITY_MAX;
		}
		desc(s, "inv_low_stock_set(org %d, %s@%d, P%d, V%d, level=%s%" PRId64 ", alert=%d)",
		     o, type_name(loc.type), loc.org, var.p, var.v, has ? "" : "NULL/", level, alert);
		call_begin(s);
		rc = inv_low_stock_set(s->L->org[o], lh(s, loc), pu, vu, has ? &level : NULL, alert);
		call_end(s, rc);
		if (faulted(s, rc))
			return;
		mrc = m_low_stock_set(&s->model, o, loc, var.p, var.v, has ? &level : NULL, alert);
		if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message))
			compare_events(s);
	} else if (k < 70) {
		inv_low_stock got, exp;

		desc(s, "inv_low_stock_get(org %d, %s@%d, P%d, V%d)", o, type_name(loc.type), loc.org,
		     var.p, var.v);
		memset(&got, 0, sizeof(got));
		call_begin(s);
		rc = inv_low_stock_get(&got, s->L->org[o], lh(s, loc), pu, vu);
		call_end(s, rc);
		if (faulted(s, rc))
			return;
		mrc = m_low_stock_get(&s->model, o, loc, var.p, var.v, &exp);
		if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message) &&
		    rc == 0)
			compare_low_stock(s, "inv_low_stock_get", &exp, 1, &got, 1);
	} else if (k < 85) {
		desc(s, "inv_low_stock_delete(org %d, %s@%d, P%d, V%d)", o, type_name(loc.type),
		     loc.org, var.p, var.v);
		call_begin(s);
		rc = inv_low_stock_delete(s->L->org[o], lh(s, loc), pu, vu);
		call_end(s, rc);
		if (faulted(s, rc))
			return;
		mrc = m_low_stock_delete(&s->model, o, loc, var.p, var.v);
		if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message))
			compare_events(s);
	} else {
		inv_low_stock *got = NULL, *exp = NULL;
		size_t n = 0, mn = 0;
		int by_product = sim_chance(&s->gen, 50);

		desc(s, "inv_low_stock_list(org %d, %s@%d, %s%d)", o, type_name(loc.type), loc.org,
		     by_product ? "P" : "all/", var.p);
		call_begin(s);
		rc = inv_low_stock_list(&got, &n, s->L->org[o], lh(s, loc), by_product ? pu : NULL);
		call_end(s, rc);
		if (!faulted(s, rc)) {
			mrc = m_low_stock_list(&s->model, o, loc, by_product ? var.p : -1, &exp, &mn);
			if (expect_code(s, mrc, -1, rc, inv_error_last()->index,
			                inv_error_last()->message) && rc == 0)
				compare_low_stock(s, "inv_low_stock_list", exp, mn, got, n);
		}
		inv_free(got);
		free(exp);
	}
}

static void op_balance_get(sim *s)
{
	int o = pick_org(s);
	m_vref var = pick_var(s, o);
	m_lref loc = { -1, 0 };
	int64_t got = -7, exp;
	int rc, mrc;

	if (s->failed)
		return;
	if (sim_chance(&s->gen, 40))
		loc = pick_loc(s, o);
	if (sim_chance(&s->gen, 2))
		loc = (m_lref){ other_org(s, o), T_STORE };
	desc(s, "inv_balance_get(org %d, P%d/V%d, %s@%d)", o, var.p, var.v,
	     loc.org < 0 ? "NULL" : type_name(loc.type), loc.org);
	call_begin(s);
	rc = inv_balance_get(&got, s->L->org[o], vhandle(s, var), lh(s, loc));
	call_end(s, rc);
	if (faulted(s, rc))
		return;
	mrc = m_balance_get(&s->model, o, var, loc, &exp);
	if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message) &&
	    rc == 0)
		expect_i64(s, "balance", exp, got);
}

static void op_balances_read(sim *s)
{
	int o = pick_org(s);
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	m_balance_query mq;
	inv_uuid products[M_MAX_PRODUCTS];

	memset(&mq, 0, sizeof(mq));
	mq.loc.org = -1;
	mq.n_products = -1;
	q.include_zero = mq.include_zero = sim_chance(&s->gen, 40);
	q.with_low_stock = mq.with_low_stock = sim_chance(&s->gen, 50);
	unsigned k = (unsigned)sim_below(&s->gen, 100);
	if (k < 15)
		mq.loc = (m_lref){ o, T_STORE };
	else if (k < 22)
		mq.loc = pick_loc(s, o);
	else if (k < 24)
		mq.loc = (m_lref){ other_org(s, o), T_STORE };
	q.location = lh(s, mq.loc);
	if (sim_chance(&s->gen, 30)) {
		mq.n_products = (int)sim_below(&s->gen, 4);
		for (int i = 0; i < mq.n_products; i++) {
			mq.products[i] = (int)sim_below(&s->gen, (uint64_t)s->world.n_products);
			products[i] = s->world.product[mq.products[i]];
		}
		q.products = products;
		q.product_count = (size_t)mq.n_products;
	}
	q.limit = mq.limit = sim_chance(&s->gen, 50) ? (size_t)sim_range(&s->gen, 1, 4) : 0;
	if (sim_chance(&s->gen, 10)) {
		/* a cursor that need not be in the list */
		q.has_after = mq.has_after = 1;
		q.after_product = mq.after_product =
			s->world.product[sim_below(&s->gen, (uint64_t)s->world.n_products)];
		q.after_variant = mq.after_variant =
			s->world.variant[sim_below(&s->gen, (uint64_t)s->world.n_variants)];
	}
	desc(s, "inv_balances_read(org %d, zero=%d low=%d loc=%s@%d products=%d limit=%zu) pages",
	     o, q.include_zero, q.with_low_stock,
	     mq.loc.org < 0 ? "NULL" : type_name(mq.loc.type), mq.loc.org, mq.n_products, q.limit);

	/* Page through with the cursor; every page must match the model's. */
	for (int page = 0; page < 100 && !s->failed; page++) {
		inv_balance *got = NULL, *exp = NULL;
		size_t n = 0, mn = 0;
		int more = -1, mmore = 0, rc, mrc;
		char what[64];

		call_begin(s);
		rc = inv_balances_read(&got, &n, &more, s->L->org[o], &q);
		call_end(s, rc);
		if (faulted(s, rc)) {
			inv_free(got);
			return;
		}
		mrc = m_balances_read(&s->model, o, &mq, &exp, &mn, &mmore);
		snprintf(what, sizeof(what), "page %d", page);
		if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message) &&
		    rc == 0 && compare_balances(s, what, exp, mn, got, n, 1))
			expect_i64(s, "more", mmore, more);
		int go_on = rc == 0 && mmore && mn > 0;
		if (go_on) {
			q.has_after = mq.has_after = 1;
			q.after_product = mq.after_product = exp[mn - 1].product;
			q.after_variant = mq.after_variant = exp[mn - 1].variant;
		}
		inv_free(got);
		free(exp);
		if (!go_on)
			break;
	}
}

static void op_journal_read(sim *s)
{
	int o = pick_org(s);
	inv_journal_query q = INV_JOURNAL_QUERY_INIT;
	m_journal_query mq;
	inv_journal *j = NULL;
	const m_entry **exp = NULL;
	size_t mn = 0;
	int64_t last = s->model.org[o].last_sequence;
	int rc, mrc;

	memset(&mq, 0, sizeof(mq));
	mq.product = -1;
	q.after_sequence = mq.after = sim_chance(&s->gen, 50) ? 0 : sim_range(&s->gen, 0, last + 1);
	if (sim_chance(&s->gen, 2))
		q.after_sequence = mq.after = -sim_range(&s->gen, 1, 3);
	q.limit = mq.limit = sim_chance(&s->gen, 50) ? 0 : (size_t)sim_range(&s->gen, 1, 5);
	if (sim_chance(&s->gen, 25)) {
		mq.product = (int)sim_below(&s->gen, (uint64_t)s->world.n_products);
		q.has_product = 1;
		q.product = s->world.product[mq.product];
	}
	if (sim_chance(&s->gen, 20)) {
		q.time_from = mq.time_from = s->now - sim_range(&s->gen, 0, 200);
		if (sim_chance(&s->gen, 50))
			q.time_to = mq.time_to = q.time_from + sim_range(&s->gen, 1, 100);
	}
	desc(s, "inv_journal_read(org %d, after=%" PRId64 " limit=%zu product=%d time=[%" PRId64
	     ",%" PRId64 "))", o, q.after_sequence, q.limit, mq.product, q.time_from, q.time_to);
	call_begin(s);
	rc = inv_journal_read(&j, s->L->org[o], &q);
	call_end(s, rc);
	if (!faulted(s, rc)) {
		mrc = m_journal_read(&s->model, o, &mq, &exp, &mn);
		if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message) &&
		    rc == 0 && expect_i64(s, "entry count", (int64_t)mn, (int64_t)inv_journal_count(j))) {
			for (size_t i = 0; i < mn && !s->failed; i++) {
				m_entry got;

				entry_from_lib(&got, inv_journal_at(j, i), 1);
				compare_entry(s, "journal entry", exp[i], &got);
				free(got.records);
			}
		}
		free(exp);
	}
	inv_journal_free(j);
}

static void op_journal_trim(sim *s)
{
	int o = pick_org(s);
	int64_t last = s->model.org[o].last_sequence;
	int64_t up_to = sim_range(&s->gen, 0, last);
	int rc, mrc;

	if (sim_chance(&s->gen, 3))
		up_to = -1;
	else if (sim_chance(&s->gen, 5))
		up_to = last + sim_range(&s->gen, 1, 5);
	desc(s, "inv_journal_trim(org %d, %" PRId64 ") last=%" PRId64, o, up_to, last);
	call_begin(s);
	rc = inv_journal_trim(s->L->org[o], up_to);
	call_end(s, rc);
	if (faulted(s, rc))
		return;
	mrc = m_journal_trim(&s->model, o, up_to);
	if (expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message))
		compare_events(s);
}

static void op_variant_get(sim *s)
{
	int o = pick_org(s);
	int v = (int)sim_below(&s->gen, (uint64_t)s->world.n_variants);
	int p = sim_chance(&s->gen, 70) ? s->world.home[v]
	                                : (int)sim_below(&s->gen, (uint64_t)s->world.n_products);
	const inv_variant *h = NULL;
	int rc, mrc;

	desc(s, "inv_variant_get(org %d, P%d, V%d)", o, p, v);
	call_begin(s);
	rc = inv_variant_get(&h, s->L->org[o], &s->world.product[p], &s->world.variant[v]);
	call_end(s, rc);
	if (faulted(s, rc))
		return;
	mrc = m_variant_get(&s->model, o, p, v);
	if (!expect_code(s, mrc, -1, rc, inv_error_last()->index, inv_error_last()->message) || rc)
		return;
	if (s->L->vh[o][p][v] && s->L->vh[o][p][v] != h)
		divergence(s, "the same pair returned another handle");
	else
		s->L->vh[o][p][v] = h;
}

/* Close an organization and open it again, the open under faults: a
 * failed open leaves nothing behind and the next one works. */
static void op_reopen_org(sim *s)
{
	int o = pick_org(s);
	inv_org *org = NULL;
	int rc;

	desc(s, "inv_org_close + inv_org_open(org %d)", o);
	inv_org_close(s->L->org[o]);
	s->L->org[o] = NULL;
	s->stats->reopens++;
	call_begin(s);
	rc = inv_org_open(&org, s->L->store, &s->world.org[o]);
	call_end(s, rc);
	inv_org_close(org);
	if (rc && !s->fired) {
		expect_code(s, 0, -1, rc, inv_error_last()->index, inv_error_last()->message);
		return;
	}
	if (rc && rc != s->fault_code) {
		faulted(s, rc);
		return;
	}
	if (open_org(s, o) == 0)
		full_check(s);
}

/* Durable backends close and reopen the store.  Others keep it (closing
 * would lose it) and close and reopen every organization instead, which
 * forgets the same handles, so that a workload draws the same steps on
 * every backend (crash runs rely on that). */
static void op_reopen_store(sim *s)
{
	s->stats->reopens++;
	if (!s->backend->durable) {
		desc(s, "inv_org_close + inv_org_open(every org) on %s", s->backend->name);
		for (int o = 0; o < s->n_open; o++) {
			inv_org_close(s->L->org[o]);
			s->L->org[o] = NULL;
		}
		for (int o = 0; o < s->n_open && !s->failed; o++)
			open_org(s, o);
		full_check(s);
		return;
	}
	desc(s, "inv_store_close + inv_store_open(%s, reopen)", s->backend->name);
	close_store(s);
	if (open_store(s, s->backend, 0) == 0)
		full_check(s);
}

/* The first use of an organization: its locations are created and
 * persisted.  Under faults the creation fails whole and is retried later. */
static void op_open_new_org(sim *s)
{
	int o = s->n_open;
	inv_org *org = NULL;
	int rc;

	desc(s, "inv_org_open(org %d) for the first time", o);
	call_begin(s);
	rc = inv_org_open(&org, s->L->store, &s->world.org[o]);
	call_end(s, rc);
	if (s->fired && rc) {
		inv_org_close(org);
		faulted(s, rc);
		return;
	}
	if (!expect_code(s, 0, -1, rc, inv_error_last()->index, inv_error_last()->message))
		return;
	s->L->org[o] = org;
	memset(s->L->vh[o], 0, sizeof(s->L->vh[o]));
	m_org_closed(&s->model, o);
	check_locations(s, o);
	for (int i = 0; i < s->n_sides && !s->failed; i++) {
		side *cur = s->L;

		if (&s->sides[i] == cur)
			continue;
		use_side(s, i);
		open_org(s, o);
		use_side(s, (int)(cur - s->sides));
	}
	s->n_open++;
	full_check(s);
}

/* Drop the masked subscriber and subscribe again with another mask: ids
 * are never reused and a dropped id is unknown. */
static void op_resubscribe(sim *s)
{
	uint64_t old = s->L->mask_sub_id, id = 0;
	int rc;

	s->mask = (uint32_t)sim_below(&s->gen, 32) & ~UINT32_C(1);
	desc(s, "inv_unsubscribe(%" PRIu64 ") + inv_subscribe(mask 0x%x)", old, s->mask);
	rc = inv_unsubscribe(s->L->store, old);
	if (!expect_code(s, 0, -1, rc, inv_error_last()->index, inv_error_last()->message))
		return;
	rc = inv_unsubscribe(s->L->store, old);
	if (!expect_code(s, INV_ENOTFOUND, -1, rc, inv_error_last()->index,
	                 inv_error_last()->message))
		return;
	rc = inv_subscribe(&id, s->L->store, s->mask, on_masked_event, s);
	if (!expect_code(s, 0, -1, rc, inv_error_last()->index, inv_error_last()->message))
		return;
	if (id == old || id == s->L->sub_id)
		divergence(s, "inv_subscribe reused id %" PRIu64, id);
	s->L->mask_sub_id = id;
	/* the other store's second subscriber follows the new mask */
	for (int i = 0; i < s->n_sides; i++) {
		side *d = &s->sides[i];

		if (d == s->L)
			continue;
		inv_unsubscribe(d->store, d->mask_sub_id);
		inv_subscribe(&d->mask_sub_id, d->store, s->mask, on_masked_event, s);
	}
}

/* Calls a careless caller makes: NULL pointers, unknown versions, counts
 * without arrays.  Each fails with its code and changes nothing. */
static void op_bad_call(sim *s)
{
	int o = pick_org(s);
	inv_org *org = s->L->org[o];
	const inv_uuid *p = &s->world.product[0], *v = &s->world.variant[0];
	unsigned k = (unsigned)sim_below(&s->gen, 10);
	int rc = 0, exp = INV_EINVAL;

	call_begin(s);
	switch (k) {
	case 0: {
		inv_apply_options ao = INV_APPLY_OPTIONS_INIT;
		inv_change c = { NULL, NULL, NULL, 1 };

		ao.version = 99;
		desc(s, "inv_apply_changes(org %d) with options version 99", o);
		rc = inv_apply_changes(NULL, org, &c, 1, &ao);
		exp = INV_EVERSION;
		break;
	}
	case 1:
		desc(s, "inv_apply_changes(org %d, changes NULL, count 3)", o);
		rc = inv_apply_changes(NULL, org, NULL, 3, NULL);
		break;
	case 2: {
		inv_apply_options ao = INV_APPLY_OPTIONS_INIT;

		ao.tracking_count = 2;
		desc(s, "inv_apply_changes(org %d, tracking NULL, tracking_count 2)", o);
		rc = inv_apply_changes(NULL, org, NULL, 0, &ao);
		break;
	}
	case 3:
		desc(s, "inv_record_sale(org %d, lines NULL, count 2)", o);
		rc = inv_record_sale(NULL, org, NULL, 2, NULL);
		break;
	case 4:
		desc(s, "inv_low_stock_set(org %d, STORE, product NULL)", o);
		rc = inv_low_stock_set(org, s->L->loc[o][0], NULL, v, NULL, 1);
		break;
	case 5:
		desc(s, "inv_low_stock_get(org %d, location NULL)", o);
		{
			inv_low_stock ls;

			rc = inv_low_stock_get(&ls, org, NULL, p, v);
		}
		break;
	case 6: {
		inv_balance_query q = INV_BALANCE_QUERY_INIT;
		inv_balance *b = NULL;
		size_t n = 0;

		q.product_count = 2;
		desc(s, "inv_balances_read(org %d, products NULL, product_count 2)", o);
		rc = inv_balances_read(&b, &n, NULL, org, &q);
		inv_free(b);
		break;
	}
	case 7: {
		inv_journal_query q = INV_JOURNAL_QUERY_INIT;
		inv_journal *j = NULL;

		q.version = 7;
		desc(s, "inv_journal_read(org %d) with query version 7", o);
		rc = inv_journal_read(&j, org, &q);
		inv_journal_free(j);
		exp = INV_EVERSION;
		break;
	}
	case 8:
		desc(s, "inv_tracking_start(org %d, product NULL)", o);
		rc = inv_tracking_start(org, NULL);
		break;
	default: {
		int64_t out;

		desc(s, "inv_balance_get(org %d, variant NULL)", o);
		rc = inv_balance_get(&out, org, NULL, NULL);
		break;
	}
	}
	call_end(s, rc);
	if (faulted(s, rc))
		return;
	if (expect_code(s, exp, -1, rc, inv_error_last()->index, inv_error_last()->message))
		compare_events(s);
}

static void op_location_lookup(sim *s)
{
	int o = pick_org(s), f = other_org(s, o);
	int t = (int)sim_below(&s->gen, 4);
	const inv_location *l = NULL;
	int rc;

	desc(s, "inv_location_by_uuid(org %d, %s@%d)", o, type_name(t + 1), f);
	rc = inv_location_by_uuid(&l, s->L->org[o], &s->model.org[f].loc[t]);
	expect_code(s, INV_ENOTFOUND, -1, rc,
	            inv_error_last()->index, inv_error_last()->message);
}

static void one_step(sim *s)
{
	unsigned k = (unsigned)sim_below(&s->gen, 1000);

	snprintf(s->desc, sizeof(s->desc), "(drawing the arguments of step %ld)", s->step);
	if (s->n_sides == 2)
		use_side(s, (int)sim_below(&s->gen, 2));
	/* The clock: mostly a few ms a step, sometimes the same ms, now and
	 * then a long pause. */
	unsigned c = (unsigned)sim_below(&s->gen, 100);
	s->now += c < 20 ? 0 : c < 95 ? sim_range(&s->gen, 1, 5) : sim_range(&s->gen, 100, 100000);
	s->model.now = s->now;

	if (k < 330)
		op_apply(s);
	else if (k < 440)
		op_sale(s, 0);
	else if (k < 480)
		op_sale(s, 1);
	else if (k < 560)
		op_set_balance(s);
	else if (k < 650)
		op_tracking(s);
	else if (k < 760)
		op_low_stock(s);
	else if (k < 780)
		op_policy(s);
	else if (k < 810)
		op_balance_get(s);
	else if (k < 860)
		op_balances_read(s);
	else if (k < 900)
		op_journal_read(s);
	else if (k < 930 && sim_below(&s->gen, 4) < s->trim_rate)
		op_journal_trim(s);
	else if (k < 930)
		op_journal_read(s);
	else if (k < 936 && s->n_open < s->world.n_orgs)
		op_open_new_org(s);
	else if (k < 965)
		op_variant_get(s);
	else if (k < 968)
		op_location_lookup(s);
	else if (k < 972)
		op_bad_call(s);
	else if (k < 975)
		op_resubscribe(s);
	else if (k < 990)
		op_reopen_org(s);
	else
		op_reopen_store(s);
}

/* ------------------------------------------------------------ fatal signals */

/* What the signal handler reports; the one piece of global state, written
 * before each step and read only when the process is dying. */
static volatile sig_atomic_t fatal_armed;
static volatile uint64_t fatal_seed;
static volatile long fatal_step;
static const char *volatile fatal_backend;
static const char *volatile fatal_flags;

static size_t put_u64(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static void on_fatal(int sig)
{
	char buf[256];
	size_t n = 0;
	const char *a = "\nzinv-sim: died of signal ", *b = " at seed=", *c = " step=";
	const char *d = " backend=", *e = "\n  replay: make sim SEED=", *f = " STEPS=";

	if (fatal_armed) {
		memcpy(buf + n, a, strlen(a)), n += strlen(a);
		n += put_u64(buf + n, (uint64_t)sig);
		memcpy(buf + n, b, strlen(b)), n += strlen(b);
		n += put_u64(buf + n, fatal_seed);
		memcpy(buf + n, c, strlen(c)), n += strlen(c);
		n += put_u64(buf + n, (uint64_t)fatal_step);
		memcpy(buf + n, d, strlen(d)), n += strlen(d);
		if (fatal_backend && strlen(fatal_backend) < 32)
			memcpy(buf + n, fatal_backend, strlen(fatal_backend)), n += strlen(fatal_backend);
		memcpy(buf + n, e, strlen(e)), n += strlen(e);
		n += put_u64(buf + n, fatal_seed);
		memcpy(buf + n, f, strlen(f)), n += strlen(f);
		n += put_u64(buf + n, (uint64_t)fatal_step);
		memcpy(buf + n, " BACKEND=", 9), n += 9;
		if (fatal_backend && strlen(fatal_backend) < 32)
			memcpy(buf + n, fatal_backend, strlen(fatal_backend)), n += strlen(fatal_backend);
		if (fatal_flags)
			memcpy(buf + n, fatal_flags, strlen(fatal_flags)), n += strlen(fatal_flags);
		buf[n++] = '\n';
		if (write(2, buf, n) < 0)
			n = 0;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void sim_report_fatal_signals(void)
{
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGFPE, on_fatal);
	signal(SIGILL, on_fatal);
	signal(SIGABRT, on_fatal);
}

/* ------------------------------------------------------------ runs */

static void sim_init(sim *s, const sim_config *cfg, sim_stats *stats)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->stats = stats;
	s->ack_fd = -1;
	s->out = stderr;
	s->L = &s->sides[0];
	sim_prng_seed(&s->gen, cfg->seed);
	sim_prng_seed(&s->faults, cfg->seed ^ UINT64_C(0x5eed5eed5eed5eed));
	sim_prng_seed(&s->probes, cfg->seed ^ UINT64_C(0x9b0be59b0be59b0b));
	s->uuid_seed = cfg->seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
	s->now = INT64_C(1764547200000) + (int64_t)sim_below(&s->gen, 1000000);
	make_world(s);
	/* Some runs never trim, so their journals grow past the core's read
	 * chunk (256 entries); others trim often. */
	s->trim_rate = (unsigned)sim_below(&s->gen, 5);
	s->small_qty = sim_chance(&s->gen, 50);
	/* With three or more organizations the last one is first used in the
	 * middle of the run, where faults can hit its creation. */
	s->n_open = s->world.n_orgs >= 3 ? s->world.n_orgs - 1 : s->world.n_orgs;
	s->mask = (uint32_t)sim_below(&s->gen, 32) & ~UINT32_C(1);
	m_init(&s->model, &s->world,
	       sim_chance(&s->gen, 30) ? INV_NEGATIVE_DENY : INV_NEGATIVE_ALLOW);
	s->model.now = s->now;
	/* some products start tracked so that moves succeed from step one */
}

static void sim_fini(sim *s)
{
	close_store(s);
	clear_got(s);
	free(s->got);
	free(s->keyed);
	m_free(&s->model);
}

/* Run steps [from, to]; report each acknowledged step on ack_fd. */
static void run_steps(sim *s, long from, long to)
{
	for (s->step = from; s->step <= to && !s->failed; s->step++) {
		fatal_seed = s->cfg->seed;
		fatal_step = s->step;
		fatal_backend = s->cfg->backend->name;
		fatal_flags = s->cfg->faults_per_million ? " FAULTS=1" :
		              s->cfg->crash == 1 ? " CRASH=1" : s->cfg->crash == 2 ? " KILL=1" : "";
		fatal_armed = 1;
		one_step(s);
		s->stats->steps++;
		if (s->ack_fd >= 0 && !s->failed) {
			int64_t a = s->step;

			if (write(s->ack_fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
				_exit(3);
		}
		if (!s->failed && s->step % CHECK_EVERY == 0)
			full_check(s);
	}
	if (s->failed)
		s->step--;
}

static void start_tracking_some(sim *s)
{
	for (int o = 0; o < s->n_open && !s->failed; o++)
		for (int p = 0; p < s->world.n_products && !s->failed; p++)
			if (sim_chance(&s->gen, 60)) {
				desc(s, "setup: inv_tracking_start(org %d, P%d)", o, p);
				call_begin(s);
				int rc = inv_tracking_start(s->L->org[o], &s->world.product[p]);
				call_end(s, rc);
				if (faulted(s, rc))
					continue;
				if (expect_code(s, m_tracking_start(&s->model, o, p), -1, rc,
				                inv_error_last()->index, inv_error_last()->message))
					compare_events(s);
			}
}

static int run_plain(const sim_config *cfg, sim_stats *stats)
{
	sim s;
	int failed;

	sim_init(&s, cfg, stats);
	if (open_store(&s, cfg->backend, 1) == 0) {
		s.step = 0;
		start_tracking_some(&s);
		run_steps(&s, 1, cfg->steps);
		if (!s.failed) {
			s.step = cfg->steps;
			desc(&s, "final full-state check");
			full_check(&s);
		}
	}
	failed = s.failed;
	print_replay(&s);
	sim_fini(&s);
	return failed;
}

/* A fresh sim that has run steps 1..n on the replay backend. */
static void replay_to(sim *s, const sim_config *cfg, sim_stats *stats, long n)
{
	sim_init(s, cfg, stats);
	if (open_store(s, cfg->replay_backend, 1) != 0)
		return;
	s->step = 0;
	start_tracking_some(s);
	run_steps(s, 1, n);
	if (!s->failed)
		s->step = n;
}

/*
 * Crash run.  A child process runs the workload on the durable backend and
 * _exit()s in the middle of backend operation k (or at the end), without
 * closing anything.  The parent replays the acknowledged steps on the
 * replay backend to know what must have survived, reopens the child's
 * store, and requires exactly that state; when the crash hit a step in
 * flight, that step's commit may already be on disk, so the state after it
 * is accepted too.  Then the run carries on from the recovered store.
 */
static int run_crash(const sim_config *cfg, sim_stats *stats)
{
	sim_prng r;
	int fds[2];
	pid_t pid;
	long acked = -1;
	int status = 0;

	/* The crash point: a random step, then one of its first backend
	 * operations (or of the next steps' when it has fewer). */
	sim_prng_seed(&r, cfg->seed ^ UINT64_C(0xc4a5c4a5c4a5c4a5));
	long crash_step = 1 + (long)sim_below(&r, (uint64_t)cfg->steps + 1);
	uint64_t crash_op = 1 + sim_below(&r, 24);

	if (pipe(fds) != 0) {
		perror("pipe");
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		sim s;
		sim_stats cstats;

		close(fds[0]);
		memset(&cstats, 0, sizeof(cstats));
		sim_init(&s, cfg, &cstats);
		s.ack_fd = fds[1];
		if (open_store(&s, cfg->backend, 1) != 0)
			_exit(2);
		s.step = 0;
		start_tracking_some(&s);
		if (s.failed)
			_exit(1);
		int64_t zero = 0;
		if (write(s.ack_fd, &zero, sizeof(zero)) != (ssize_t)sizeof(zero))
			_exit(3);
		if (cfg->crash == 2) {
			/* killed from outside: run everything */
			run_steps(&s, 1, cfg->steps);
			_exit(s.failed ? 1 : 0);
		}
		run_steps(&s, 1, crash_step - 1);
		if (!s.failed && s.L->wrap) {
			s.crash_op = crash_op;
			sim_wrap_crash_at(s.L->wrap, crash_op, CRASH_EXIT);
			run_steps(&s, crash_step, cfg->steps);
		}
		/* Abandon the store without closing it. */
		_exit(s.failed ? 1 : 0);
	}
	close(fds[1]);
	if (cfg->crash == 2) {
		/* SIGKILL at a random moment: it can land inside SQLite's commit,
		 * which _exit() between backend operations cannot.  The moment
		 * depends on timing, so such a run is not replayed bit for bit;
		 * its check (acknowledged steps survive) is the same. */
		struct timespec ts;
		uint64_t us = sim_below(&r, (uint64_t)cfg->steps * 150 + 1000);

		int64_t a;

		/* after the setup, which a kill would leave half-made */
		while (read(fds[0], &a, sizeof(a)) < 0 && errno == EINTR)
			;
		acked = 0;
		ts.tv_sec = (time_t)(us / 1000000);
		ts.tv_nsec = (long)(us % 1000000) * 1000;
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
	}
	for (;;) {
		int64_t a;
		ssize_t n = read(fds[0], &a, sizeof(a));

		if (n == (ssize_t)sizeof(a))
			acked = (long)a;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && cfg->crash == 2;
	if (!killed &&
	    (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != CRASH_EXIT))) {
		fprintf(stderr, "zinv-sim: crash child for seed %" PRIu64 " ended abnormally "
		        "(status %d) after step %ld; replay without CRASH=1 to see why\n",
		        cfg->seed, status, acked);
		return 1;
	}
	if (acked < 0) {
		fprintf(stderr, "zinv-sim: crash child for seed %" PRIu64 " died in setup\n",
		        cfg->seed);
		return 1;
	}
	int crashed = killed || (WIFEXITED(status) && WEXITSTATUS(status) == CRASH_EXIT);
	if (crashed)
		stats->crashes++;
	if (cfg->verbose)
		fprintf(stderr, "zinv-sim: seed %" PRIu64 ": child %s after acknowledging step %ld\n",
		        cfg->seed, killed ? "killed" : crashed ? "crashed" : "finished", acked);

	char *first = NULL;
	size_t first_len = 0;
	int failed = 1;
	for (int attempt = 0; attempt <= crashed; attempt++) {
		sim s;
		long upto = acked + attempt;

		replay_to(&s, cfg, stats, upto);
		if (s.failed) {
			print_replay(&s);
			sim_fini(&s);
			break;
		}
		close_store(&s);
		FILE *mem = NULL;
		if (attempt == 0 && crashed) {
			mem = open_memstream(&first, &first_len);
			if (mem)
				s.out = mem;
		}
		if (open_store(&s, cfg->backend, 0) == 0) {
			desc(&s, "recovery after a crash in step %ld: state of %s", acked + 1,
			     attempt ? "every acknowledged step and the one in flight"
			             : "every acknowledged step");
			full_check(&s);
		}
		if (mem) {
			fclose(mem);
			s.out = stderr;
		}
		if (!s.failed) {
			if (attempt)
				stats->crash_unacked_survived++;
			run_steps(&s, upto + 1, cfg->steps);
			if (!s.failed) {
				s.step = cfg->steps;
				desc(&s, "final full-state check after recovery");
				full_check(&s);
			}
			failed = s.failed;
			print_replay(&s);
			sim_fini(&s);
			break;
		}
		if (attempt == 1 && first)
			fprintf(stderr, "zinv-sim: against the acknowledged steps only:%s", first);
		if (attempt == crashed)
			print_replay(&s);
		sim_fini(&s);
	}
	free(first);
	return failed;
}

int sim_run(const sim_config *cfg, sim_stats *stats)
{
	stats->seeds++;
	if (cfg->crash && cfg->backend->durable && cfg->replay_backend)
		return run_crash(cfg, stats);
	return run_plain(cfg, stats);
}
