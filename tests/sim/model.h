/*
 * model.h - a reference model of DESIGN.md's semantics for the simulator.
 *
 * Written as plainly as possible (fixed arrays, loops, no indexes or
 * caches) so that a reader can check it against DESIGN.md line by line.
 * Everything is named by small integers: organization o, product p,
 * variant v, location type t (INV_LOCATION_*).  The UUIDs behind them live
 * in the world (m_world); location UUIDs are whatever the library created,
 * recorded by m_org_opened().
 */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <zinv.h>

#define M_MAX_ORGS 4
#define M_MAX_PRODUCTS 8
#define M_MAX_VARIANTS 40
#define M_KEY_MAX 255

/* The fixed universe of UUIDs one run draws from. */
typedef struct m_world {
	int n_orgs, n_products, n_variants;
	inv_uuid org[M_MAX_ORGS];
	inv_uuid product[M_MAX_PRODUCTS];
	inv_uuid variant[M_MAX_VARIANTS];
	int home[M_MAX_VARIANTS];      /* the product a variant is normally sold as */
} m_world;

/* A variant handle as the caller names it: (organization whose handle it
 * is, product, variant); org -1 means a NULL handle. */
typedef struct m_vref {
	int org, p, v;
} m_vref;

/* A location handle: (organization, type); org -1 means NULL. */
typedef struct m_lref {
	int org, type;
} m_lref;

typedef struct m_change {
	m_vref var;
	m_lref from, to;
	int64_t qty;
} m_change;

typedef struct m_tracking {
	int p;
	int32_t action;                /* INV_TRACKING_START / STOP, or junk */
} m_tracking;

typedef struct m_opts {
	int dry_run;
	int has_ext, has_user, has_client;
	inv_uuid ext, user, client;
	int has_key;
	char key[M_KEY_MAX + 2];       /* may be empty or too long on purpose */
	m_lref ret;                    /* org -1: NULL */
	int n_tracking;
	m_tracking tracking[8];
} m_opts;

/* One journal entry, as the model expects inv_journal_read to give it. */
typedef struct m_entry {
	int64_t sequence, time;
	int has_ext, has_user, has_client, has_key;
	inv_uuid ext, user, client;
	char key[M_KEY_MAX + 1];
	size_t n_records;
	inv_journal_record *records;
} m_entry;

typedef struct m_event {
	int type;                      /* inv_event_type */
	int org;
	m_entry entry;                 /* records empty: only the header */
	size_t n_items;
	inv_journal_record *items;
} m_event;

/* What a batch call (apply, sale, refund, set-balance) returns. */
typedef struct m_result {
	int64_t sequence;
	int replayed;
	int loc_type;                  /* type of inv_result_location() */
	size_t n_balances;
	inv_balance *balances;
	size_t n_skipped;
	size_t *skipped;
} m_result;

/* The arguments of inv_set_balance(), as its fingerprint sees them
 * (NULL location and reason already replaced by their defaults). */
typedef struct m_set_args {
	int p, v, loc_type, reason_type;
	int64_t balance;
	int has_expected;
	int64_t expected;
} m_set_args;

enum { M_APPLY, M_SALE, M_REFUND, M_SET };

/* A remembered idempotency key. */
typedef struct m_idem {
	char key[M_KEY_MAX + 1];
	int kind;                      /* M_APPLY ... */
	m_set_args set;
	/* the batch as a fingerprint: changes and tracking by value */
	size_t n_changes;
	m_change *changes;
	m_opts opts;
	m_result result;
} m_idem;

typedef struct m_low_stock {
	int exists, has_level, alert;
	int64_t level;
} m_low_stock;

typedef struct m_org {
	int created;                   /* its locations exist */
	inv_uuid loc[4];               /* by type - 1 */
	int policy;
	int64_t last_sequence;
	int tracked[M_MAX_PRODUCTS];
	int owner[M_MAX_VARIANTS];     /* product, -1 before the first commit */
	/* the product a variant was first resolved with by inv_variant_get()
	 * while the organization is open: the handle map claims it too */
	int handle_owner[2][M_MAX_VARIANTS];  /* per store (side) */
	int has_record[M_MAX_VARIANTS]; /* a default STORE record exists */
	int64_t balance[M_MAX_VARIANTS];
	int64_t updated[M_MAX_VARIANTS];
	m_low_stock low[M_MAX_PRODUCTS][M_MAX_VARIANTS];
	size_t n_journal, cap_journal;
	m_entry *journal;
	size_t n_idem, cap_idem;
	m_idem *idem;
} m_org;

typedef struct m_model {
	const m_world *world;
	int default_policy;
	int64_t now;                   /* the injected clock */
	int side;                      /* which store's handles the calls use */
	m_org org[M_MAX_ORGS];
	/* events of the last call, in order */
	size_t n_events, cap_events;
	m_event *events;
} m_model;

void m_init(m_model *m, const m_world *w, int default_policy);
void m_free(m_model *m);
/* A deep copy (crash recovery compares the file against a snapshot). */
void m_copy(m_model *dst, const m_model *src);
void m_clear_events(m_model *m);

/* The library opened organization o and reported these location UUIDs. */
void m_org_opened(m_model *m, int o, const inv_uuid loc[4]);

/* Every handle of organization o was closed: its handle map is gone. */
void m_org_closed(m_model *m, int o);

/* Each call returns the code libzinv must return; *index the expected
 * inv_error_last()->index on failure. */
int m_variant_get(m_model *m, int o, int p, int v);

int m_apply(m_model *m, int o, const m_change *changes, size_t n,
            const m_opts *opts, int64_t *index, m_result *out);
/* kind: 0 sale (STORE -> SOLD), 1 refund (SOLD -> STORE) */
int m_sale(m_model *m, int o, int refund, const m_vref *vars, const int64_t *qty,
           size_t n, const m_opts *opts, int64_t *index, m_result *out);
int m_set_balance(m_model *m, int o, m_vref var, m_lref loc, int64_t balance,
                  const int64_t *expected, m_lref reason, const m_opts *opts,
                  int64_t *index, m_result *out);
void m_result_free(m_result *r);

int m_tracking_start(m_model *m, int o, int p);
int m_tracking_stop(m_model *m, int o, int p);

int m_policy_set(m_model *m, int o, int policy);

int m_low_stock_set(m_model *m, int o, m_lref loc, int p, int v,
                    const int64_t *level, int alert);
int m_low_stock_get(const m_model *m, int o, m_lref loc, int p, int v,
                    inv_low_stock *out);
int m_low_stock_delete(m_model *m, int o, m_lref loc, int p, int v);
/* *out malloc'ed; product -1: all */
int m_low_stock_list(const m_model *m, int o, m_lref loc, int p,
                     inv_low_stock **out, size_t *count);

int m_balance_get(const m_model *m, int o, m_vref var, m_lref loc, int64_t *out);

typedef struct m_balance_query {
	int include_zero, with_low_stock;
	m_lref loc;
	int n_products;                /* -1: NULL products */
	int products[M_MAX_PRODUCTS];
	int has_after;
	inv_uuid after_product, after_variant;
	size_t limit;
} m_balance_query;

int m_balances_read(const m_model *m, int o, const m_balance_query *q,
                    inv_balance **out, size_t *count, int *more);

int m_tracking_list(const m_model *m, int o, inv_uuid **out, size_t *count);

typedef struct m_journal_query {
	int64_t after;
	size_t limit;
	int product;                   /* -1: any */
	int64_t time_from, time_to;
} m_journal_query;

/* Pointers into the model's journal; valid until the next change. */
int m_journal_read(const m_model *m, int o, const m_journal_query *q,
                   const m_entry ***out, size_t *count);
int m_journal_trim(m_model *m, int o, int64_t up_to);

/* Append to m->events the events DESIGN.md derives from entry e of org o:
 * a tracking event per tracking record, one balance-changed event for the
 * STORE balances that changed, a low-stock event per crossing. */
void m_events_of_entry(m_model *m, int o, const m_entry *e);

#endif /* SIM_MODEL_H */
