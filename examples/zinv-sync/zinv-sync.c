/*
 * zinv-sync - keep a till's SQLite store in sync with an upstream Zettle
 * Inventory service, driving inv_sync(3) with libcurl.
 *
 *   zinv-sync --db PATH --org UUID --upstream URL --token TOKEN
 *             [--till UUID] [--once] [--interval SECONDS]
 *
 * --once: push everything pending, pull, print one summary line and exit 0
 * when nothing is pending, 3 when the upstream cannot be reached (the
 * pending count printed), 2 on a local error.  Otherwise: a round every
 * --interval seconds (default 30) and on SIGUSR1; SIGTERM ends it cleanly
 * between requests.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <zinv.h>
#include <zinv/sqlite.h>

static volatile sig_atomic_t stop, wake;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		wake = 1;
	else
		stop = 1;
}

struct buf {
	char *data;
	size_t len;
	char retry_after[32];
};

static size_t on_body(char *p, size_t size, size_t n, void *payload)
{
	struct buf *b = payload;
	char *d = realloc(b->data, b->len + size * n + 1);

	if (!d)
		return 0;
	memcpy(d + b->len, p, size * n);
	b->len += size * n;
	d[b->len] = '\0';
	b->data = d;
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *payload)
{
	struct buf *b = payload;
	size_t len = size * n;

	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		size_t i = 12, o = 0;

		while (i < len && p[i] == ' ')
			i++;
		while (i < len && p[i] >= '0' && p[i] <= '9' && o + 1 < sizeof(b->retry_after))
			b->retry_after[o++] = p[i++];
		b->retry_after[o] = '\0';
	}
	return len;
}

/* Send the sync object's request; returns the HTTP status, 0 when none. */
static int perform(CURL *curl, inv_sync *sync, const char *upstream, const char *auth,
                   struct buf *res)
{
	struct curl_slist *h = NULL;
	char url[2048], line[512];
	size_t i, len;
	const char *body = inv_sync_request_body(sync, &len);
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", upstream, inv_sync_request_path(sync));
	h = curl_slist_append(h, auth);
	for (i = 0; i < inv_sync_request_header_count(sync); i++) {
		snprintf(line, sizeof(line), "%s: %s", inv_sync_request_header_name(sync, i),
		         inv_sync_request_header_value(sync, i));
		h = curl_slist_append(h, line);
	}
	free(res->data);
	memset(res, 0, sizeof(*res));
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, inv_sync_request_method(sync));
	if (strcmp(inv_sync_request_method(sync), "GET") != 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, res);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, res);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	return (int)status;
}

/* Sleep `ms`, cut short by a signal. */
static void nap(int64_t ms)
{
	struct timespec ts;

	wake = 0;
	while (ms > 0 && !stop && !wake) {
		int64_t step = ms > 100 ? 100 : ms;

		ts.tv_sec = 0;
		ts.tv_nsec = (long)step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

enum { ROUND_DONE, ROUND_UNREACHABLE, ROUND_ERROR, ROUND_STOPPED };

/* One round.  In --once mode a failed request ends it (unreachable). */
static int run_round(inv_sync *sync, CURL *curl, const char *upstream, const char *auth,
                     int once, int64_t totals[3])
{
	struct buf res = { 0 };
	int step, last_status = 200, rc = ROUND_DONE, tries = 0, failed = 0;
	int64_t pushed, pulled, rejected;

	while ((step = inv_sync_next(sync)) != INV_SYNC_IDLE) {
		if (step < 0) {
			fprintf(stderr, "zinv-sync: %s: %s\n", inv_strerror(step),
			        inv_error_last()->message);
			rc = ROUND_ERROR;
			break;
		}
		if (step == INV_SYNC_WAIT) {
			if (once && (last_status == 0 || ++tries > 5)) {
				rc = ROUND_UNREACHABLE;
				break;
			}
			nap(inv_sync_delay(sync));
			if (stop) {
				rc = ROUND_STOPPED;
				break;
			}
			continue;
		}
		last_status = perform(curl, sync, upstream, auth, &res);
		{
			const char *h[2] = { "Retry-After", res.retry_after };
			int arc = inv_sync_answer(sync, last_status, h, res.retry_after[0] ? 1 : 0,
			                          res.data ? res.data : "", res.len);

			if (arc) {
				fprintf(stderr, "zinv-sync: %s: %s\n", inv_strerror(arc),
				        inv_error_last()->message);
				failed = 1;
			}
		}
		if (stop) {
			rc = ROUND_STOPPED;
			break;
		}
	}
	free(res.data);
	if (failed && rc == ROUND_DONE)
		rc = ROUND_ERROR;
	inv_sync_round(sync, &pushed, &pulled, &rejected);
	totals[0] += pushed;
	totals[1] += pulled;
	totals[2] += rejected;
	return rc;
}

static void usage(FILE *f)
{
	fputs("usage: zinv-sync --db PATH --org UUID --upstream URL --token TOKEN\n"
	      "                 [--till UUID] [--once] [--interval SECONDS]\n", f);
}

int main(int argc, char **argv)
{
	const char *db = NULL, *org_text = NULL, *upstream = NULL, *token = NULL, *till_text = NULL;
	int once = 0, interval = 30, i, rc, status = 0;
	inv_uuid org_id, till;
	inv_store *store = NULL;
	inv_org *org = NULL;
	inv_sync *sync = NULL;
	CURL *curl = NULL;
	char auth[1024];
	struct sigaction sa;
	int64_t totals[3] = { 0, 0, 0 }, pending = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			once = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "--db"))
			db = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--org"))
			org_text = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--upstream"))
			upstream = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--token"))
			token = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--till"))
			till_text = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--interval"))
			interval = atoi(argv[++i]);
		else {
			usage(stderr);
			return 2;
		}
	}
	if (!db || !org_text || !upstream || !token || interval < 1 ||
	    inv_uuid_parse(&org_id, org_text, strlen(org_text)) != 0 ||
	    (till_text && inv_uuid_parse(&till, till_text, strlen(till_text)) != 0)) {
		usage(stderr);
		return 2;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	if ((rc = inv_store_open_sqlite(&store, db, NULL, NULL)) != 0 ||
	    (rc = inv_org_open(&org, store, &org_id)) != 0 ||
	    (rc = inv_sync_open(&sync, org, till_text ? &till : NULL)) != 0) {
		fprintf(stderr, "zinv-sync: %s: %s: %s\n", db, inv_strerror(rc),
		        inv_error_last()->message);
		status = 2;
		goto out;
	}
	if (!(curl = curl_easy_init())) {
		fprintf(stderr, "zinv-sync: cannot start libcurl\n");
		status = 2;
		goto out;
	}
	for (;;) {
		int r = run_round(sync, curl, upstream, auth, once, totals);

		if (inv_sync_pending(&pending, sync) != 0)
			pending = -1;
		if (once) {
			printf("pushed %lld pulled %lld rejected %lld pending %lld\n",
			       (long long)totals[0], (long long)totals[1], (long long)totals[2],
			       (long long)pending);
			status = r == ROUND_UNREACHABLE ? 3 : r == ROUND_ERROR ? 2 :
			         pending != 0 ? 1 : 0;
			break;
		}
		if (r == ROUND_DONE && (totals[0] || totals[1] || totals[2])) {
			printf("pushed %lld pulled %lld rejected %lld pending %lld\n",
			       (long long)totals[0], (long long)totals[1], (long long)totals[2],
			       (long long)pending);
			fflush(stdout);
			totals[0] = totals[1] = totals[2] = 0;
		}
		if (stop)
			break;
		nap((int64_t)interval * 1000);
		if (stop)
			break;
	}
out:
	if (curl)
		curl_easy_cleanup(curl);
	inv_sync_close(sync);
	inv_org_close(org);
	inv_store_close(store);
	curl_global_cleanup();
	return status;
}
