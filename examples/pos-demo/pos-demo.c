/*
 * pos-demo.c - a day in a small coffee shop, told through libzinv.
 *
 * The shop starts tracking two products with an initial delivery, restocks,
 * sells at the till (one line of an untracked gift card is skipped), bins a
 * broken mug, watches a low-stock level being crossed and corrects a count
 * with compare-and-set.  It then prints the balances, the events it was sent
 * and the journal.
 *
 *     pos-demo [--db PATH | --memory]
 *
 * The default store is the embedded SQLite store in ./zinv-demo.db, which
 * the demo deletes and recreates so that every run tells the same story
 * (when built without libzinv-sqlite, the memory store).  The clock and the
 * UUID generator are injected, so the output is the same on every run and
 * every machine: the point of inv_store_options.clock in tests as well.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zinv.h>
#ifdef ZINV_DEMO_SQLITE
#include <zinv/sqlite.h>
#endif

/* ------------------------------------------------ names for the UUIDs */

/* A real POS keeps names in its product catalogue; libzinv only knows
 * UUIDs.  This little table stands in for the catalogue. */
struct name {
	inv_uuid uuid;
	char text[40];
};

#define NAMES_MAX 32

struct names {
	struct name items[NAMES_MAX];
	size_t count;
};

static void name_add(struct names *n, const inv_uuid *uuid, const char *text)
{
	if (n->count < NAMES_MAX) {
		n->items[n->count].uuid = *uuid;
		snprintf(n->items[n->count].text, sizeof(n->items[0].text), "%s", text);
		n->count++;
	}
}

/* The name of a UUID, or its first 8 hex digits when the table lacks it. */
static const char *name_of(const struct names *n, const inv_uuid *uuid, char buf[37])
{
	size_t i;

	for (i = 0; i < n->count; i++)
		if (inv_uuid_compare(&n->items[i].uuid, uuid) == 0)
			return n->items[i].text;
	inv_uuid_format(uuid, buf);
	buf[8] = '\0';
	return buf;
}

static inv_uuid uuid_of(const char *text)
{
	inv_uuid u;

	if (inv_uuid_parse(&u, text, strlen(text)) != 0) {
		fprintf(stderr, "pos-demo: bad UUID literal %s\n", text);
		exit(1);
	}
	return u;
}

/* -------------------------------------- deterministic clock and UUIDs */

/* 2026-12-01T00:00:00Z; each step of the story sets the time of day. */
#define DEMO_DAY INT64_C(1796083200000)

struct demo_clock {
	int64_t now;
};

static int64_t demo_clock_now(void *payload)
{
	return ((struct demo_clock *)payload)->now;
}

static void set_time(struct demo_clock *clock, int hour, int minute)
{
	clock->now = DEMO_DAY + ((int64_t)hour * 60 + minute) * 60000;
}

/* Counter UUIDs (the locations are the only UUIDs the store makes). */
static void demo_uuid(inv_uuid *out, void *payload)
{
	uint32_t *counter = payload;

	memset(out->bytes, 0, sizeof(out->bytes));
	(*counter)++;
	out->bytes[6] = 0x40;  /* version 4 layout, for tools that check */
	out->bytes[8] = 0x80;
	out->bytes[12] = 0x10; /* 00000000-0000-4000-8000-1000000000NN */
	out->bytes[15] = (uint8_t)*counter;
}

static void format_time(int64_t ms, char out[20])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(out, 20, "%H:%M", &tm);
}

/* ------------------------------------------------------ event capture */

/* The subscriber copies what it needs: an inv_event lives only for the
 * duration of the callback. */
struct event_row {
	int type;
	int64_t sequence;
	inv_journal_record item;
};

struct event_log {
	struct event_row *rows;
	size_t count, cap;
	int failed;
};

static void on_event(const inv_event *event, void *payload)
{
	struct event_log *log = payload;
	const inv_journal_record *items = inv_event_items(event);
	size_t i, n = inv_event_item_count(event);

	for (i = 0; i < n; i++) {
		if (log->count == log->cap) {
			size_t cap = log->cap ? log->cap * 2 : 16;
			struct event_row *rows = realloc(log->rows, cap * sizeof(*rows));

			if (!rows) {
				log->failed = 1; /* a callback cannot fail the batch */
				return;
			}
			log->rows = rows;
			log->cap = cap;
		}
		log->rows[log->count].type = inv_event_get_type(event);
		log->rows[log->count].sequence =
			inv_journal_entry_sequence(inv_event_entry(event));
		log->rows[log->count].item = items[i];
		log->count++;
	}
}

/* ---------------------------------------------------------- the shop */

struct shop {
	inv_store *store;
	inv_org *org;
	struct names names;
	struct demo_clock clock;
	const inv_location *store_loc, *sold, *bin, *supplier;
	inv_uuid coffee, mug, gift_card;
	const inv_variant *dark, *light, *white, *card;
};

static int fail(const char *what, int rc)
{
	const inv_error *e = inv_error_last();

	fprintf(stderr, "pos-demo: %s: %s (%s", what, inv_strerror(rc), e->message);
	if (e->field)
		fprintf(stderr, ", field %s", e->field);
	if (e->index >= 0)
		fprintf(stderr, ", index %" PRId64, e->index);
	fprintf(stderr, ")\n");
	return rc;
}

/* "Coffee beans 1kg / Dark roast" */
static const char *variant_label(const struct shop *s, const inv_uuid *product,
                                 const inv_uuid *variant, char out[96])
{
	char b1[37], b2[37];

	snprintf(out, 96, "%s / %s", name_of(&s->names, product, b1),
	         name_of(&s->names, variant, b2));
	return out;
}

/* One line per step: what happened and the STORE balances it left. */
static void print_step(const struct shop *s, const char *what, const inv_result *r)
{
	const inv_balance *b = inv_result_balances(r);
	size_t i, n = inv_result_count(r);
	char when[20], label[96];

	format_time(s->clock.now, when);
	printf("%s  %-34s seq %" PRId64 "\n", when, what, inv_result_sequence(r));
	for (i = 0; i < n; i++)
		printf("       %-34s now %" PRId64 "\n",
		       variant_label(s, &b[i].product, &b[i].variant, label), b[i].balance);
}

static int open_store(struct shop *s, const char *db, uint32_t *uuid_counter)
{
	inv_store_options opts = INV_STORE_OPTIONS_INIT;
	int rc;

	opts.clock = demo_clock_now;
	opts.clock_payload = &s->clock;
	opts.uuid_generate = demo_uuid;
	opts.uuid_payload = uuid_counter;
#ifdef ZINV_DEMO_SQLITE
	if (db) {
		char side[4096];

		/* Start from nothing so that the story is the same every run. */
		remove(db);
		snprintf(side, sizeof(side), "%s-wal", db);
		remove(side);
		snprintf(side, sizeof(side), "%s-shm", db);
		remove(side);
		snprintf(side, sizeof(side), "%s-journal", db);
		remove(side);
		printf("store: SQLite, %s\n", db);
		if ((rc = inv_store_open_sqlite(&s->store, db, NULL, &opts)) != 0)
			return fail("open SQLite store", rc);
		return 0;
	}
#else
	(void)db;
#endif
	printf("store: memory\n");
	if ((rc = inv_store_open_memory(&s->store, &opts)) != 0)
		return fail("open memory store", rc);
	return 0;
}

static int setup_catalogue(struct shop *s)
{
	inv_uuid org = uuid_of("0c0ffee0-0000-4000-8000-000000000001");
	inv_uuid dark = uuid_of("c0ffee00-0000-4000-8000-0000000000d1");
	inv_uuid light = uuid_of("c0ffee00-0000-4000-8000-0000000000e1");
	inv_uuid white = uuid_of("e6000000-0000-4000-8000-000000000001");
	inv_uuid card = uuid_of("9f000000-0000-4000-8000-000000000001");
	size_t i;
	int rc;

	s->coffee = uuid_of("c0ffee00-0000-4000-8000-000000000000");
	s->mug = uuid_of("e6000000-0000-4000-8000-000000000000");
	s->gift_card = uuid_of("9f000000-0000-4000-8000-000000000000");
	name_add(&s->names, &s->coffee, "Coffee beans 1kg");
	name_add(&s->names, &dark, "Dark roast");
	name_add(&s->names, &light, "Light roast");
	name_add(&s->names, &s->mug, "Mug");
	name_add(&s->names, &white, "White");
	name_add(&s->names, &s->gift_card, "Gift card");
	name_add(&s->names, &card, "25 EUR");

	if ((rc = inv_org_open(&s->org, s->store, &org)) != 0)
		return fail("open organization", rc);
	/* The four system locations exist from the first open; name them. */
	for (i = 0; i < inv_org_location_count(s->org); i++) {
		const inv_location *loc = inv_org_location_at(s->org, i);

		name_add(&s->names, inv_location_uuid(loc), inv_location_name(loc));
	}
	if ((rc = inv_location_by_type(&s->store_loc, s->org, INV_LOCATION_STORE)) ||
	    (rc = inv_location_by_type(&s->sold, s->org, INV_LOCATION_SOLD)) ||
	    (rc = inv_location_by_type(&s->bin, s->org, INV_LOCATION_BIN)) ||
	    (rc = inv_location_by_type(&s->supplier, s->org, INV_LOCATION_SUPPLIER)))
		return fail("find locations", rc);

	/* Resolve each (product, variant) once; batches then carry handles. */
	if ((rc = inv_variant_get(&s->dark, s->org, &s->coffee, &dark)) ||
	    (rc = inv_variant_get(&s->light, s->org, &s->coffee, &light)) ||
	    (rc = inv_variant_get(&s->white, s->org, &s->mug, &white)) ||
	    (rc = inv_variant_get(&s->card, s->org, &s->gift_card, &card)))
		return fail("resolve variants", rc);
	return 0;
}

/* 09:00 - the first delivery: start tracking and book the stock in, in one
 * batch, like the service's v2 bulk call. */
static int initial_delivery(struct shop *s)
{
	inv_tracking_change tracking[2] = {
		{ s->coffee, INV_TRACKING_START, 0 },
		{ s->mug, INV_TRACKING_START, 0 },
	};
	inv_change changes[3] = {
		{ s->dark, s->supplier, s->store_loc, 20 },
		{ s->light, s->supplier, s->store_loc, 12 },
		{ s->white, s->supplier, s->store_loc, 5 },
	};
	inv_uuid delivery = uuid_of("de11e000-0000-4000-8000-000000000001");
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_result *r;
	int rc;

	name_add(&s->names, &delivery, "delivery note 1");
	opts.external_uuid = &delivery;
	opts.tracking = tracking;
	opts.tracking_count = 2;
	set_time(&s->clock, 9, 0);
	if ((rc = inv_apply_changes(&r, s->org, changes, 3, &opts)) != 0)
		return fail("initial delivery", rc);
	print_step(s, "start tracking + initial delivery", r);
	inv_result_free(r);
	return 0;
}

/* 09:05 - the owner wants to know when fewer than 3 mugs are left. */
static int set_low_stock(struct shop *s)
{
	int64_t level = 3;
	char when[20];
	int rc;

	set_time(&s->clock, 9, 5);
	rc = inv_low_stock_set(s->org, s->store_loc, &s->mug,
	                       inv_variant_uuid(s->white), &level, 1);
	if (rc)
		return fail("set low-stock level", rc);
	format_time(s->clock.now, when);
	printf("%s  %-34s (no journal entry)\n", when, "low-stock level Mug / White < 3");
	return 0;
}

/* 10:30 - more light roast arrives. */
static int restock(struct shop *s)
{
	inv_change change = { s->light, s->supplier, s->store_loc, 6 };
	inv_uuid delivery = uuid_of("de11e000-0000-4000-8000-000000000002");
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	inv_result *r;
	int rc;

	name_add(&s->names, &delivery, "delivery note 2");
	opts.external_uuid = &delivery;
	set_time(&s->clock, 10, 30);
	if ((rc = inv_apply_changes(&r, s->org, &change, 1, &opts)) != 0)
		return fail("restock", rc);
	print_step(s, "restock", r);
	inv_result_free(r);
	return 0;
}

/* 11:45 - a customer buys coffee, two mugs and a gift card.  Gift cards are
 * not tracked: the till still records the sale, libzinv skips that line. */
static int sell(struct shop *s)
{
	inv_sale_line lines[3] = {
		{ s->dark, 2 },
		{ s->white, 2 },
		{ s->card, 1 },
	};
	inv_uuid receipt = uuid_of("2ece1970-0000-4000-8000-000000000042");
	inv_apply_options opts = INV_APPLY_OPTIONS_INIT;
	const size_t *skipped;
	inv_result *r;
	char label[96];
	size_t i;
	int rc;

	name_add(&s->names, &receipt, "receipt 42");
	opts.external_uuid = &receipt;
	set_time(&s->clock, 11, 45);
	if ((rc = inv_record_sale(&r, s->org, lines, 3, &opts)) != 0)
		return fail("sale", rc);
	print_step(s, "sale at the till (receipt 42)", r);
	skipped = inv_result_skipped(r);
	for (i = 0; i < inv_result_skipped_count(r); i++)
		printf("       skipped line %zu: %s (not tracked)\n", skipped[i],
		       variant_label(s, inv_variant_product_uuid(lines[skipped[i]].variant),
		                     inv_variant_uuid(lines[skipped[i]].variant), label));
	inv_result_free(r);
	return 0;
}

/* 14:10 - a mug is dropped: STORE -> BIN.  That takes the mugs below 3. */
static int discard(struct shop *s)
{
	inv_change change = { s->white, s->store_loc, s->bin, 1 };
	inv_result *r;
	int rc;

	set_time(&s->clock, 14, 10);
	if ((rc = inv_apply_changes(&r, s->org, &change, 1, NULL)) != 0)
		return fail("discard", rc);
	print_step(s, "broken mug to the bin", r);
	inv_result_free(r);
	return 0;
}

/*
 * 18:00 - closing count: 15 bags of dark roast are on the shelf.  The count
 * sheet was printed at noon (20); compare-and-set refuses to apply a count
 * taken against a stale balance, so the clerk re-reads and sets it again.
 */
static int stock_count(struct shop *s)
{
	int64_t stale = 20, current;
	char when[20];
	inv_result *r = NULL;
	int rc;

	set_time(&s->clock, 18, 0);
	format_time(s->clock.now, when);
	rc = inv_set_balance(&r, s->org, s->dark, NULL, 15, &stale, s->bin, NULL);
	if (rc != INV_ECONFLICT) {
		inv_result_free(r);
		return fail("stale count: expected a conflict", rc ? rc : INV_EINVAL);
	}
	printf("%s  %-34s refused: %s\n", when, "count Dark roast = 15 (expects 20)",
	       inv_strerror(rc));
	if ((rc = inv_balance_get(&current, s->org, s->dark, NULL)) != 0)
		return fail("read balance", rc);
	rc = inv_set_balance(&r, s->org, s->dark, NULL, 15, &current, s->bin, NULL);
	if (rc)
		return fail("stock count", rc);
	print_step(s, current == 18 ? "count Dark roast = 15 (expects 18)"
	                            : "count Dark roast = 15", r);
	inv_result_free(r);
	return 0;
}

/* ------------------------------------------------------------ reports */

static int print_balances(struct shop *s)
{
	inv_balance_query q = INV_BALANCE_QUERY_INIT;
	inv_balance *b;
	size_t i, n;
	char p[37], v[37], when[20], level[24];
	int rc;

	q.include_zero = 1;
	q.with_low_stock = 1;
	if ((rc = inv_balances_read(&b, &n, NULL, s->org, &q)) != 0)
		return fail("read balances", rc);
	printf("\nBalances in STORE\n");
	printf("  %-18s %-12s %8s  %-9s %-6s %s\n", "product", "variant", "balance",
	       "low below", "alert", "updated");
	for (i = 0; i < n; i++) {
		int low = b[i].has_low_stock_level && b[i].balance < b[i].low_stock_level;

		if (b[i].has_low_stock_level)
			snprintf(level, sizeof(level), "%" PRId64, b[i].low_stock_level);
		else
			snprintf(level, sizeof(level), "-");
		format_time(b[i].updated, when);
		printf("  %-18s %-12s %8" PRId64 "  %-9s %-6s %s%s\n",
		       name_of(&s->names, &b[i].product, p), name_of(&s->names, &b[i].variant, v),
		       b[i].balance, level, b[i].low_stock_alert ? "on" : "off", when,
		       low ? "  LOW" : "");
	}
	inv_free(b);
	return 0;
}

static const char *event_type_name(int type)
{
	switch (type) {
	case INV_EVENT_BALANCE_CHANGED: return "BalanceChanged";
	case INV_EVENT_TRACKING_STARTED: return "TrackingStarted";
	case INV_EVENT_TRACKING_STOPPED: return "TrackingStopped";
	case INV_EVENT_LOW_STOCK: return "LowStock";
	default: return "?";
	}
}

static void print_events(const struct shop *s, const struct event_log *log)
{
	char label[96], p[37];
	size_t i;

	printf("\nEvents received (inv_subscribe)\n");
	printf("  %-16s %3s  %-30s %s\n", "type", "seq", "product / variant", "change");
	for (i = 0; i < log->count; i++) {
		const struct event_row *e = &log->rows[i];
		const inv_journal_record *it = &e->item;

		switch (e->type) {
		case INV_EVENT_TRACKING_STARTED:
		case INV_EVENT_TRACKING_STOPPED:
			printf("  %-16s %3" PRId64 "  %s\n", event_type_name(e->type),
			       e->sequence, name_of(&s->names, &it->product, p));
			break;
		case INV_EVENT_LOW_STOCK:
			printf("  %-16s %3" PRId64 "  %-30s %s: balance %" PRId64
			       " < level %" PRId64 "\n",
			       event_type_name(e->type), e->sequence,
			       variant_label(s, &it->product, &it->variant, label),
			       it->low ? "became low" : "no longer low", it->after, it->quantity);
			break;
		default:
			printf("  %-16s %3" PRId64 "  %-30s %4" PRId64 " -> %" PRId64 "\n",
			       event_type_name(e->type), e->sequence,
			       variant_label(s, &it->product, &it->variant, label),
			       it->before, it->after);
		}
	}
	if (log->failed)
		printf("  (some events were lost: out of memory)\n");
}

static void print_record(const struct shop *s, const inv_journal_record *r)
{
	char label[96], a[37], b[37];

	switch (r->kind) {
	case INV_RECORD_TRACKING_STARTED:
		printf("tracking started  %s\n", name_of(&s->names, &r->product, a));
		break;
	case INV_RECORD_TRACKING_STOPPED:
		printf("tracking stopped  %s\n", name_of(&s->names, &r->product, a));
		break;
	case INV_RECORD_LOW_STOCK:
		printf("low stock %-7s %s (%" PRId64 " < %" PRId64 ")\n",
		       r->low ? "entered" : "left",
		       variant_label(s, &r->product, &r->variant, label), r->after, r->quantity);
		break;
	default:
		printf("move %-8s -> %-8s %3" PRId64 "  %-30s %3" PRId64 " -> %" PRId64 "\n",
		       name_of(&s->names, &r->from, a), name_of(&s->names, &r->to, b),
		       r->quantity, variant_label(s, &r->product, &r->variant, label),
		       r->before, r->after);
	}
}

static int print_journal(struct shop *s)
{
	inv_journal *j;
	size_t i, k;
	char when[20], ext[37];
	int rc;

	if ((rc = inv_journal_read(&j, s->org, NULL)) != 0)
		return fail("read journal", rc);
	printf("\nJournal\n");
	printf("  %3s  %-5s  %-36s  %s\n", "seq", "time", "external UUID", "records");
	for (i = 0; i < inv_journal_count(j); i++) {
		const inv_journal_entry *e = inv_journal_at(j, i);
		const inv_journal_record *recs = inv_journal_entry_records(e);
		const inv_uuid *x = inv_journal_entry_external_uuid(e);

		format_time(inv_journal_entry_time(e), when);
		if (x)
			inv_uuid_format(x, ext);
		else
			snprintf(ext, sizeof(ext), "-");
		for (k = 0; k < inv_journal_entry_record_count(e); k++) {
			if (k == 0)
				printf("  %3" PRId64 "  %-5s  %-36s  ",
				       inv_journal_entry_sequence(e), when, ext);
			else
				printf("  %3s  %-5s  %-36s  ", "", "", "");
			print_record(s, &recs[k]);
		}
	}
	inv_journal_free(j);
	return 0;
}

/* ---------------------------------------------------------------- main */

static int usage(void)
{
	fprintf(stderr, "usage: pos-demo [--db PATH | --memory]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct shop shop;
	struct event_log log = { NULL, 0, 0, 0 };
	const char *db = "zinv-demo.db";
	uint32_t uuid_counter = 0;
	uint64_t sub;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--memory") == 0)
			db = NULL;
		else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db = argv[++i];
		else
			return usage();
	}

	memset(&shop, 0, sizeof(shop));
	set_time(&shop.clock, 8, 0);
	printf("libzinv %s - pos-demo\n", inv_version());
	if ((rc = open_store(&shop, db, &uuid_counter)) != 0)
		return 1;
	rc = inv_subscribe(&sub, shop.store, 0, on_event, &log);
	if (rc) {
		fail("subscribe", rc);
		goto out;
	}
	printf("\n");
	if ((rc = setup_catalogue(&shop)) || (rc = initial_delivery(&shop)) ||
	    (rc = set_low_stock(&shop)) || (rc = restock(&shop)) || (rc = sell(&shop)) ||
	    (rc = discard(&shop)) || (rc = stock_count(&shop)) ||
	    (rc = print_balances(&shop)))
		goto out;
	print_events(&shop, &log);
	rc = print_journal(&shop);
out:
	inv_org_close(shop.org);
	inv_store_close(shop.store);
	free(log.rows);
	return rc ? 1 : 0;
}
