/*
 * json_int.h - shared internals of the codecs (lib/json*.c) and the REST
 * dispatcher (lib/rest*.c).
 */
#ifndef ZINV_JSON_INT_H
#define ZINV_JSON_INT_H

#include <jansson.h>

#include <zinv/json.h>

/* At most this many violations are collected per body: a 10,000-change
 * body of garbage must not answer with a 10 MB error. */
#define INV__VIOLATIONS_MAX 100

struct inv_json_violations {
	size_t count;
	size_t cap;
	inv_json_violation *items;  /* property and message strings owned */
	int truncated;
};

/* Append a violation (property copied).  INV_ENOMEM on allocation failure. */
int inv__violation_add(inv_json_violations *list, const char *property, int constraint,
                       const char *message);
inv_json_violations *inv__violations_new(void);

/* Dump `value` compactly, keys in insertion order, into a NUL-terminated
 * heap string for inv_free(); steals the reference to `value`. */
int inv__json_dump(char **out, size_t *len, json_t *value);

/* New string holding the lowercase text of `uuid`; NULL on ENOMEM. */
json_t *inv__json_uuid(const inv_uuid *uuid);

/* New string holding the decimal text of `n`. */
json_t *inv__json_int_string(int64_t n);

/* "STORE", "SOLD", "BIN", "SUPPLIER"; NULL for another value. */
const char *inv__location_type_name(int type);

/* The value of a location type name (exact match, or case-insensitive when
 * `nocase`); 0 when unknown.  `len` bytes of `name`. */
int inv__location_type_parse(const char *name, size_t len, int nocase);

/* Object and array builders that stop at the first failed allocation:
 * they drop `value` when either side is NULL and return -1, so a caller
 * ORs the results and frees the half-built root once. */
int inv__json_set(json_t *obj, const char *key, json_t *value);
int inv__json_push(json_t *arr, json_t *value);

/*
 * The JSON writer of the response encoders (lib/json_write.c): text
 * appended to one growing buffer, what a compact jansson dump of the same
 * values writes.  Separating commas are its business: a caller opens,
 * writes keys and values, and closes.  The first failed allocation marks
 * the writer failed and drops every later write; inv__jw_finish() then
 * frees the text and answers INV_ENOMEM, so a caller checks only there.
 */
typedef struct inv__jw {
	char *buf;
	size_t len, cap;
	int comma;   /* the next key or value needs a ',' first */
	int failed;
} inv__jw;

/* Start empty; `size_hint` bytes are allocated at once (0: on demand). */
void inv__jw_init(inv__jw *w, size_t size_hint);
/* '{' or '[' and the matching '}' or ']'. */
void inv__jw_open(inv__jw *w, char bracket);
void inv__jw_close(inv__jw *w, char bracket);
/* An object key: a literal of the wire format, written without escapes. */
void inv__jw_key(inv__jw *w, const char *key);
/* A string of `n` bytes of valid UTF-8, escaped. */
void inv__jw_string(inv__jw *w, const char *s, size_t n);
void inv__jw_cstr(inv__jw *w, const char *s);
/* A string from bytes of unknown origin (a backend's or a caller's
 * message; NULL is ""): written as is when valid UTF-8, else its first 511
 * bytes with every byte outside printable ASCII replaced by '?'. */
void inv__jw_text(inv__jw *w, const char *s);
/* The lowercase text of `uuid`, quoted. */
void inv__jw_uuid(inv__jw *w, const inv_uuid *uuid);
/* A JSON number; the same digits as a string (the v1 `balance`). */
void inv__jw_int(inv__jw *w, int64_t n);
void inv__jw_int_string(inv__jw *w, int64_t n);
void inv__jw_bool(inv__jw *w, int value);
void inv__jw_null(inv__jw *w);
/* Hand the NUL-terminated text to *out (for inv_free()) and its length to
 * *len; INV_ENOMEM, with the text freed, when any write failed. */
int inv__jw_finish(inv__jw *w, char **out, size_t *len);

#endif /* ZINV_JSON_INT_H */
