/*
 * metrics.h - the counters behind zinv-server's GET /metrics.
 *
 * Written by hand in the Prometheus text exposition format (version
 * 0.0.4): Debian ships no C client library for it (prometheus-client-c is
 * not packaged), and the format is a few lines of printf.
 */
#ifndef ZINV_SERVER_METRICS_H
#define ZINV_SERVER_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include <zinv.h>

struct metrics;

/* NULL when out of memory. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* The route template of a request path: UUIDs become {uuid}, the
 * organization {org}; a path that is no route of ours becomes "other", so
 * the label set stays bounded whatever clients send. */
void metrics_route(char *out, size_t size, const char *path);

/* One answered request. */
void metrics_request(struct metrics *m, const char *method, const char *route, int status,
                     int64_t micros);

/* A committed event (every type): counts batches and changes applied. */
void metrics_event(struct metrics *m, const inv_event *event);

/* The server's own metrics, in the text format. */
void metrics_write(struct metrics *m, FILE *out);

#endif /* ZINV_SERVER_METRICS_H */
