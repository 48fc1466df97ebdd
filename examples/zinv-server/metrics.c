/*
 * metrics.c - request, duration and commit counters for GET /metrics.
 *
 * One mutex guards everything: the work under it is a few additions per
 * request, far below what the request itself costs.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define MAX_SERIES 256       /* (method, route, status) triples kept */

/* Request-duration buckets, seconds (upper bounds; +Inf is implied). */
static const double buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* Literal path segments of the routes the server serves. */
static const char *const words[] = {
	"organizations", "locations", "inventory", "products", "variants", "v2", "v3", "bulk",
	"custom-low-stock", "delete", "inventories", "stock", "movements", "status",
	"subscriptions", "uuid", "healthz", "readyz", "metrics"
};

struct series {
	char method[8];
	char route[96];
	int status;
	uint64_t count;
};

struct metrics {
	pthread_mutex_t lock;
	struct series series[MAX_SERIES];
	size_t nseries;
	uint64_t dropped;            /* requests whose series did not fit */
	uint64_t bucket[BUCKETS];    /* not cumulative; summed on output */
	uint64_t duration_count;
	double duration_sum;
	uint64_t backend_errors;
	uint64_t batches, changes;
	inv_uuid last_org;           /* the batch whose events are being counted */
	int64_t last_seq;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void metrics_route(char *out, size_t size, const char *path)
{
	size_t used = 0, n, i, k = 0;
	const char *p = path, *q;
	inv_uuid u;

	out[0] = '\0';
	while (*p) {
		const char *seg = NULL;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		for (q = p; *q && *q != '/'; q++)
			;
		n = (size_t)(q - p);
		if (k == 1 && !strcmp(out, "/organizations"))
			seg = "{org}";
		else if (inv_uuid_parse(&u, p, n) == 0)
			seg = "{uuid}";
		for (i = 0; !seg && i < sizeof(words) / sizeof(words[0]); i++)
			if (strlen(words[i]) == n && !memcmp(words[i], p, n))
				seg = words[i];
		if (!seg || used + 1 + strlen(seg) >= size) {
			snprintf(out, size, "other");
			return;
		}
		used += (size_t)snprintf(out + used, size - used, "/%s", seg);
		k++;
		p = q;
	}
	if (!used)
		snprintf(out, size, "/");
}

void metrics_request(struct metrics *m, const char *method, const char *route, int status,
                     int64_t micros)
{
	double secs = (double)micros / 1e6;
	size_t i;

	/* Only token characters reach a label: anything else is OTHER. */
	for (i = 0; method[i] >= 'A' && method[i] <= 'Z'; i++)
		;
	if (method[i] || i == 0 || i > 7)
		method = "OTHER";
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nseries; i++) {
		struct series *s = &m->series[i];

		if (s->status == status && !strcmp(s->route, route) && !strcmp(s->method, method))
			break;
	}
	if (i == m->nseries && i < MAX_SERIES) {
		struct series *s = &m->series[m->nseries++];

		snprintf(s->method, sizeof(s->method), "%s", method);
		snprintf(s->route, sizeof(s->route), "%s", route);
		s->status = status;
	}
	if (i < m->nseries)
		m->series[i].count++;
	else
		m->dropped++;
	for (i = 0; i < BUCKETS && secs > buckets[i]; i++)
		;
	if (i < BUCKETS)
		m->bucket[i]++;
	m->duration_count++;
	m->duration_sum += secs;
	if (status == 500 || status == 503)
		m->backend_errors++;
	pthread_mutex_unlock(&m->lock);
}

void metrics_event(struct metrics *m, const inv_event *event)
{
	const inv_journal_entry *e = inv_event_entry(event);
	const inv_uuid *org = inv_event_org_uuid(event);
	int64_t seq = e ? inv_journal_entry_sequence(e) : 0;

	if (!e || !org)
		return;
	/* A batch's events arrive together: count the batch at its first. */
	pthread_mutex_lock(&m->lock);
	if (seq != m->last_seq || inv_uuid_compare(org, &m->last_org) != 0) {
		m->last_seq = seq;
		m->last_org = *org;
		m->batches++;
		m->changes += inv_journal_entry_record_count(e);
	}
	pthread_mutex_unlock(&m->lock);
}

void metrics_write(struct metrics *m, FILE *out)
{
	uint64_t cumulative = 0;
	size_t i;

	pthread_mutex_lock(&m->lock);
	fputs("# HELP zinv_http_requests_total HTTP requests answered, by route template "
	      "and status.\n# TYPE zinv_http_requests_total counter\n", out);
	for (i = 0; i < m->nseries; i++)
		fprintf(out, "zinv_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} "
		        "%" PRIu64 "\n", m->series[i].method, m->series[i].route,
		        m->series[i].status, m->series[i].count);
	fprintf(out, "# HELP zinv_http_requests_unlabelled_total Requests beyond the %d "
	        "series kept.\n# TYPE zinv_http_requests_unlabelled_total counter\n"
	        "zinv_http_requests_unlabelled_total %" PRIu64 "\n", MAX_SERIES, m->dropped);
	fputs("# HELP zinv_http_request_duration_seconds Time from the first header to the "
	      "answer.\n# TYPE zinv_http_request_duration_seconds histogram\n", out);
	for (i = 0; i < BUCKETS; i++) {
		cumulative += m->bucket[i];
		fprintf(out, "zinv_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
		        buckets[i], cumulative);
	}
	fprintf(out, "zinv_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	        "zinv_http_request_duration_seconds_sum %.6f\n"
	        "zinv_http_request_duration_seconds_count %" PRIu64 "\n",
	        m->duration_count, m->duration_sum, m->duration_count);
	fprintf(out, "# HELP zinv_batches_applied_total Batches committed by this process.\n"
	        "# TYPE zinv_batches_applied_total counter\n"
	        "zinv_batches_applied_total %" PRIu64 "\n"
	        "# HELP zinv_changes_applied_total Journal records of those batches.\n"
	        "# TYPE zinv_changes_applied_total counter\n"
	        "zinv_changes_applied_total %" PRIu64 "\n"
	        "# HELP zinv_backend_errors_total Requests answered 500 or 503 (store failed "
	        "or busy).\n# TYPE zinv_backend_errors_total counter\n"
	        "zinv_backend_errors_total %" PRIu64 "\n",
	        m->batches, m->changes, m->backend_errors);
	pthread_mutex_unlock(&m->lock);
}
