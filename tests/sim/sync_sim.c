/*
 * sync_sim.c - the sync object (zinv/sync.h) against a second store as
 * upstream, driven through inv_rest_handle() over a link with faults:
 * drops (not delivered), timeouts (applied, answer lost), duplicates
 * (delivered twice), 500, 429, garbled answers, and 4xx rejections the
 * upstream makes itself (DENY overdrafts, untracked products).  The till
 * sells, stocks and discards at random between sync steps, and the sync
 * object is reopened now and then (durable state).  Checked throughout: the
 * push is in sequence order and the cursor never runs ahead of what the
 * upstream acknowledged.  Checked at the end, after a fault-free round:
 * till and upstream balances equal the model exactly, every accepted till
 * entry is in the upstream journal exactly once by its external UUID, and
 * every rejection answered is in the rejected list with its status.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zinv.h>
#include <zinv/sync.h>

#include "prng.h"
#include "sync_sim.h"

#define NV 3          /* variants of product P */
#define MAXSEQ 4096

struct side {
	inv_store *store;
	inv_org *org;
	const inv_location *store_loc, *sold, *bin, *supplier;
	const inv_variant *v[NV];
};

struct run {
	uint64_t seed;
	sim_prng rng;
	struct side up, till;
	inv_sync *sync;
	int64_t up_model[NV];          /* upstream's expected balances */
	int64_t delta[MAXSEQ][NV];     /* per till sequence: STORE delta */
	inv_uuid ext[MAXSEQ];
	int is_till_move[MAXSEQ];
	int acked[MAXSEQ];             /* 2xx or 4xx answer delivered */
	int rejected_status[MAXSEQ];
	int64_t last_pushed_seq;
	int faults;
	sim_sync_stats *st;
};

static int fail(struct run *r, const char *what)
{
	fprintf(stderr, "zinv-sim --sync: seed %" PRIu64 ": %s (%s)\n", r->seed, what,
	        inv_error_last()->message ? inv_error_last()->message : "");
	fprintf(stderr, "  replay: build/sim/zinv-sim --sync --seed %" PRIu64 "\n", r->seed);
	return 1;
}

static int side_open(struct side *s, inv_negative_policy policy)
{
	inv_store_options opts;
	inv_uuid org, p, v;

	memset(s, 0, sizeof(*s));
	memset(&org, 0x11, sizeof(org));
	if (inv_store_options_init(&opts, INV_STORE_OPTIONS_VERSION))
		return -1;
	opts.negative_policy = policy;
	if (inv_store_open_memory(&s->store, &opts) || inv_org_open(&s->org, s->store, &org))
		return -1;
	inv_location_by_type(&s->store_loc, s->org, INV_LOCATION_STORE);
	inv_location_by_type(&s->sold, s->org, INV_LOCATION_SOLD);
	inv_location_by_type(&s->bin, s->org, INV_LOCATION_BIN);
	inv_location_by_type(&s->supplier, s->org, INV_LOCATION_SUPPLIER);
	memset(&p, 0x22, sizeof(p));
	for (int i = 0; i < NV; i++) {
		memset(&v, 0x30 + i, sizeof(v));
		if (inv_variant_get(&s->v[i], s->org, &p, &v))
			return -1;
	}
	return 0;
}

static void side_close(struct side *s)
{
	inv_org_close(s->org);
	inv_store_close(s->store);
}

static int64_t balance(struct side *s, int i)
{
	int64_t b = 0;

	if (inv_balance_get(&b, s->org, s->v[i], NULL))
		return INT64_MIN;
	return b;
}

static int64_t key_sequence(inv_sync *s)
{
	for (size_t i = 0; i < inv_sync_request_header_count(s); i++)
		if (!strcmp(inv_sync_request_header_name(s, i), "Idempotency-Key")) {
			const char *colon = strrchr(inv_sync_request_header_value(s, i), ':');
			return colon ? strtoll(colon + 1, NULL, 10) : -1;
		}
	return 0;
}

static inv_rest_response *deliver(struct run *r, inv_sync *s, const char *key_hdr)
{
	inv_rest_request req = INV_REST_REQUEST_INIT;
	inv_rest_response *res = NULL;

	req.authenticated = 1;
	req.method = inv_sync_request_method(s);
	req.path = inv_sync_request_path(s);
	req.idempotency_key = key_hdr;
	req.body = inv_sync_request_body(s, &req.body_len);
	memset(&req.organization, 0x11, sizeof(req.organization));
	req.scopes = INV_REST_SCOPE_READ | INV_REST_SCOPE_WRITE;
	if (inv_rest_handle(&res, r->up.store, &req))
		return NULL;
	return res;
}

/* One request over the link; `faulty` 0 for the final clean rounds. */
static int exchange(struct run *r, int faulty)
{
	inv_sync *s = r->sync;
	const char *key = NULL;
	int64_t seq = key_sequence(s);
	uint32_t f = faulty ? (uint32_t)sim_below(&r->rng, 100) : 99;
	inv_rest_response *res;
	const char *body;
	size_t len;
	int status, rc;

	for (size_t i = 0; i < inv_sync_request_header_count(s); i++)
		if (!strcmp(inv_sync_request_header_name(s, i), "Idempotency-Key"))
			key = inv_sync_request_header_value(s, i);
	if (seq > 0) {
		if (seq < r->last_pushed_seq)
			return fail(r, "push out of sequence order");
		r->last_pushed_seq = seq;
	}
	r->st->requests++;
	if (f < 8) {                                    /* dropped */
		r->st->drops++;
		return inv_sync_answer(s, 0, NULL, 0, NULL, 0) ? fail(r, "answer(0)") : 0;
	}
	if (f < 13) {                                   /* 500 */
		r->st->errors++;
		return inv_sync_answer(s, 500, NULL, 0, "{}", 2) ? fail(r, "answer(500)") : 0;
	}
	if (f < 17) {                                   /* 429 */
		static const char *const h[] = { "Retry-After", "2" };
		r->st->errors++;
		return inv_sync_answer(s, 429, h, 1, "{}", 2) ? fail(r, "answer(429)") : 0;
	}
	res = deliver(r, s, key);
	if (!res)
		return fail(r, "inv_rest_handle");
	if (f < 23) {                                   /* duplicate delivery */
		inv_rest_response_free(res);
		r->st->duplicates++;
		res = deliver(r, s, key);
		if (!res)
			return fail(r, "inv_rest_handle");
	}
	if (f < 30) {                                   /* applied, answer lost */
		r->st->lost_answers++;
		inv_rest_response_free(res);
		return inv_sync_answer(s, 0, NULL, 0, NULL, 0) ? fail(r, "answer(0)") : 0;
	}
	if (f < 32 && seq == 0) {                      /* a read answer garbled */
		inv_rest_response_free(res);
		/* A malformed answer is INV_EFORMAT, kept and retried. */
		rc = inv_sync_answer(s, 200, NULL, 0, "{\"x\":", 5);
		return rc && rc != INV_EFORMAT ? fail(r, "answer(garbled)") : 0;
	}
	status = inv_rest_response_status(res);
	body = inv_rest_response_body(res, &len);
	if (seq > 0 && seq < MAXSEQ && status < 500 && status != 429 && status != 408 &&
	    status != 401 && status != 403 && status != 425) {
		r->acked[seq] = 1;
		if (status >= 400) {
			r->rejected_status[seq] = status;
			r->st->rejections++;
		}
	}
	rc = inv_sync_answer(s, status, NULL, 0, body, len);
	inv_rest_response_free(res);
	return rc ? fail(r, "inv_sync_answer") : 0;
}

/* The cursor never runs ahead of what upstream acknowledged: every till
 * move at or below it was answered (pull entries are never pushed). */
static int check_cursor(struct run *r)
{
	int64_t c = inv_sync_pushed_sequence(r->sync);

	for (int64_t q = 1; q <= c && q < MAXSEQ; q++)
		if (r->is_till_move[q] && !r->acked[q])
			return fail(r, "cursor ahead of the acknowledgements");
	return 0;
}

static int sync_steps(struct run *r, int faulty, int max)
{
	for (int n = 0; n < max; n++) {
		int step = inv_sync_next(r->sync);

		if (step < 0)
			return fail(r, "inv_sync_next");
		if (step == INV_SYNC_IDLE)
			return 0;
		if (step == INV_SYNC_REQUEST && exchange(r, faulty))
			return 1;
		if (check_cursor(r))
			return 1;
	}
	return faulty ? 0 : fail(r, "a fault-free round does not end");
}

/* A till move (sale, stock-in, discard) with its own external UUID. */
static int till_move(struct run *r)
{
	inv_apply_options o = INV_APPLY_OPTIONS_INIT;
	int i = (int)(uint32_t)sim_below(&r->rng, NV);
	int64_t qty = 1 + (int64_t)(uint32_t)sim_below(&r->rng, 6), seq = 0;
	uint32_t kind = (uint32_t)sim_below(&r->rng, 10);
	inv_change c = { r->till.v[i], r->till.store_loc, r->till.sold, qty };
	inv_uuid ext;

	if (kind < 2) {
		c.from = r->till.supplier;
		c.to = r->till.store_loc;
	} else if (kind < 3) {
		c.to = r->till.bin;
	}
	memset(&ext, 0, sizeof(ext));
	ext.bytes[0] = 0xe0;
	ext.bytes[6] = 0x40;
	ext.bytes[8] = 0x80;
	for (int b = 0; b < 7; b++)
		ext.bytes[15 - b] = (uint8_t)(sim_next(&r->rng) >> (8 * b));
	o.external_uuid = &ext;
	if (inv_apply_changes(NULL, r->till.org, &c, 1, &o))
		return fail(r, "till move");
	inv_journal_last_sequence(&seq, r->till.org);
	if (seq <= 0 || seq >= MAXSEQ)
		return fail(r, "till sequence out of range");
	r->is_till_move[seq] = 1;
	r->ext[seq] = ext;
	r->delta[seq][i] = kind < 2 ? qty : -qty;
	r->st->till_moves++;
	return 0;
}

static int back_office_move(struct run *r)
{
	int i = (int)(uint32_t)sim_below(&r->rng, NV);
	int64_t qty = 1 + (int64_t)(uint32_t)sim_below(&r->rng, 8);
	inv_change c = { r->up.v[i], r->up.supplier, r->up.store_loc, qty };

	if (inv_apply_changes(NULL, r->up.org, &c, 1, NULL))
		return fail(r, "back office move");
	r->up_model[i] += qty;
	return 0;
}

static int final_checks(struct run *r)
{
	int64_t pend = -1;
	inv_journal *j = NULL;
	int64_t last = 0;
	size_t n;

	/* Clean link: a round pushes everything, the next pulls. */
	if (sync_steps(r, 0, 100000) || sync_steps(r, 0, 100000))
		return 1;
	if (inv_sync_pending(&pend, r->sync) || pend != 0)
		return fail(r, "entries still pending after a clean round");
	inv_journal_last_sequence(&last, r->till.org);
	for (int64_t q = 1; q <= last && q < MAXSEQ; q++) {
		if (!r->is_till_move[q])
			continue;
		if (!r->acked[q])
			return fail(r, "a till move was never acknowledged");
		if (!r->rejected_status[q])
			for (int i = 0; i < NV; i++)
				r->up_model[i] += r->delta[q][i];
	}
	for (int i = 0; i < NV; i++) {
		if (balance(&r->up, i) != r->up_model[i])
			return fail(r, "upstream balance differs from the model");
		if (balance(&r->till, i) != r->up_model[i])
			return fail(r, "till balance differs from upstream");
	}
	/* Every rejection answered is in the rejected list, with its status. */
	n = inv_sync_rejected_count(r->sync);
	size_t want = 0;
	for (int64_t q = 1; q <= last && q < MAXSEQ; q++)
		want += r->rejected_status[q] != 0;
	if (n != want)
		return fail(r, "rejected list length differs from the rejections answered");
	for (size_t k = 0; k < n; k++) {
		int64_t seq;
		int status;
		const char *body;
		size_t blen;

		if (inv_sync_rejected_at(r->sync, k, &seq, &status, &body, &blen) ||
		    seq <= 0 || seq >= MAXSEQ || r->rejected_status[seq] != status || !blen)
			return fail(r, "rejected entry not recorded as answered");
	}
	/* Every accepted till move is in the upstream journal once. */
	if (inv_journal_read(&j, r->up.org, NULL))
		return fail(r, "upstream journal");
	for (int64_t q = 1; q <= last && q < MAXSEQ; q++) {
		int seen = 0;

		if (!r->is_till_move[q])
			continue;
		for (size_t k = 0; k < inv_journal_count(j); k++) {
			const inv_uuid *e = inv_journal_entry_external_uuid(inv_journal_at(j, k));
			seen += e && !inv_uuid_compare(e, &r->ext[q]);
		}
		if (seen != (r->rejected_status[q] ? 0 : 1)) {
			inv_journal_free(j);
			return fail(r, "a till move is not in the upstream journal exactly once");
		}
	}
	inv_journal_free(j);
	return 0;
}

int sim_sync_run(uint64_t seed, long steps, sim_sync_stats *st)
{
	struct run *r = calloc(1, sizeof(*r));
	inv_uuid p, till;
	int rc = 1;

	if (!r)
		return 1;
	r->seed = seed;
	r->st = st;
	sim_prng_seed(&r->rng, seed);
	memset(&p, 0x22, sizeof(p));
	memset(&till, 0x77, sizeof(till));
	if (side_open(&r->up, INV_NEGATIVE_DENY) || side_open(&r->till, INV_NEGATIVE_ALLOW)) {
		fail(r, "cannot open the stores");
		goto out;
	}
	if (inv_tracking_start(r->up.org, &p)) {
		fail(r, "upstream tracking");
		goto out;
	}
	if (inv_sync_open(&r->sync, r->till.org, &till)) {
		fail(r, "inv_sync_open");
		goto out;
	}
	/* The till pulls tracking first, as a till does before it sells. */
	if (sync_steps(r, 0, 100000))
		goto out;
	for (long k = 0; k < steps; k++) {
		uint32_t a = (uint32_t)sim_below(&r->rng, 100);

		if (a < 45 ? till_move(r)
		    : a < 55 ? back_office_move(r)
		    : sync_steps(r, 1, 1 + (int)(uint32_t)sim_below(&r->rng, 8)))
			goto out;
		if (a >= 98) {               /* the process restarts */
			inv_sync_close(r->sync);
			r->sync = NULL;
			r->st->reopens++;
			if (inv_sync_open(&r->sync, r->till.org, &till)) {
				fail(r, "inv_sync_open after a restart");
				goto out;
			}
		}
	}
	rc = final_checks(r);
out:
	inv_sync_close(r->sync);
	if (r->till.store)
		side_close(&r->till);
	if (r->up.store)
		side_close(&r->up);
	free(r);
	st->seeds++;
	return rc;
}
