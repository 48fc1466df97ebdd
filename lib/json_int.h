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

/* The v1 "variants" array of a status object. */
json_t *inv__json_variants(const inv_json_location *location, const inv_balance *balances,
                           size_t count);

#endif /* ZINV_JSON_INT_H */
