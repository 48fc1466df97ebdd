/*
 * json_violations.c - the violation list the decoders and the dispatcher
 * fill, and the helpers every codec file shares.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_int.h"
#include "json_int.h"

static const char *const constraint_names[] = {
	[INV_JSON_UNKNOWN] = "UNKNOWN",
	[INV_JSON_MUST_NOT_BE_NULL] = "MUST_NOT_BE_NULL",
	[INV_JSON_MUST_BE_GREATER_THAN] = "MUST_BE_GREATER_THAN",
	[INV_JSON_MUST_BE_LESS_OR_EQUAL_THAN] = "MUST_BE_LESS_OR_EQUAL_THAN",
	[INV_JSON_MUST_MATCH_PATTERN] = "MUST_MATCH_PATTERN",
	[INV_JSON_MUST_NOT_BE_EMPTY] = "MUST_NOT_BE_EMPTY",
	[INV_JSON_INVALID_SIZE] = "INVALID_SIZE",
	[INV_JSON_INVALID_RANGE] = "INVALID_RANGE",
};

const char *inv_json_constraint_name(int constraint)
{
	if (constraint < 0 || (size_t)constraint >= sizeof(constraint_names) / sizeof(*constraint_names))
		return "UNKNOWN";
	return constraint_names[constraint];
}

inv_json_violations *inv__violations_new(void)
{
	return calloc(1, sizeof(inv_json_violations));
}

int inv__violation_add(inv_json_violations *list, const char *property, int constraint,
                       const char *message)
{
	inv_json_violation *v;

	if (list->count >= INV__VIOLATIONS_MAX) {
		list->truncated = 1;
		return 0;
	}
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 4;
		inv_json_violation *items = realloc(list->items, cap * sizeof(*items));

		if (!items)
			return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
		list->items = items;
		list->cap = cap;
	}
	v = &list->items[list->count];
	v->property = strdup(property ? property : "");
	v->message = strdup(message ? message : "");
	if (!v->property || !v->message) {
		free((char *)v->property);
		free((char *)v->message);
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	v->constraint = constraint;
	v->reserved = 0;
	list->count++;
	return 0;
}

size_t inv_json_violations_count(const inv_json_violations *list)
{
	return list ? list->count : 0;
}

const inv_json_violation *inv_json_violations_at(const inv_json_violations *list, size_t i)
{
	if (!list || i >= list->count)
		return NULL;
	return &list->items[i];
}

void inv_json_violations_free(inv_json_violations *list)
{
	size_t i;

	if (!list)
		return;
	for (i = 0; i < list->count; i++) {
		free((char *)list->items[i].property);
		free((char *)list->items[i].message);
	}
	free(list->items);
	free(list);
}

struct dump_buf {
	char *data;
	size_t len;
	size_t cap;
};

static int dump_append(const char *buffer, size_t size, void *payload)
{
	struct dump_buf *b = payload;

	if (b->cap - b->len <= size) {
		size_t cap = b->cap ? b->cap : 256;
		char *data;

		while (cap - b->len <= size)
			cap *= 2;
		data = realloc(b->data, cap);
		if (!data)
			return -1;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, buffer, size);
	b->len += size;
	return 0;
}

int inv__json_dump(char **out, size_t *len, json_t *value)
{
	/* Our own buffer (one pass, malloc'd here) so that inv_free() is the
	 * right destructor even when the application replaced jansson's
	 * allocator. */
	struct dump_buf b = { NULL, 0, 0 };
	int rc;

	if (!value)
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	rc = json_dump_callback(value, dump_append, &b,
	                        JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	json_decref(value);
	if (rc != 0 || dump_append("", 1, &b) != 0) {
		free(b.data);
		return inv__error(INV_ENOMEM, -1, NULL, "out of memory");
	}
	*out = b.data;
	*len = b.len - 1;
	return 0;
}

int inv__json_set(json_t *obj, const char *key, json_t *value)
{
	if (!obj || !value) {
		json_decref(value);
		return -1;
	}
	return json_object_set_new_nocheck(obj, key, value);
}

int inv__json_push(json_t *arr, json_t *value)
{
	if (!arr || !value) {
		json_decref(value);
		return -1;
	}
	return json_array_append_new(arr, value);
}

json_t *inv__json_uuid(const inv_uuid *uuid)
{
	char text[37];

	inv_uuid_format(uuid, text);
	return json_stringn(text, INV_UUID_STRLEN);
}

json_t *inv__json_int_string(int64_t n)
{
	char text[24];
	int len = snprintf(text, sizeof(text), "%" PRId64, n);

	return json_stringn(text, (size_t)len);
}

static const char *const type_names[] = { NULL, "STORE", "SOLD", "BIN", "SUPPLIER" };

const char *inv__location_type_name(int type)
{
	if (type < INV_LOCATION_STORE || type > INV_LOCATION_SUPPLIER)
		return NULL;
	return type_names[type];
}

int inv__location_type_parse(const char *name, size_t len, int nocase)
{
	int t;

	for (t = INV_LOCATION_STORE; t <= INV_LOCATION_SUPPLIER; t++) {
		const char *n = type_names[t];
		size_t i;

		if (strlen(n) != len)
			continue;
		for (i = 0; i < len; i++) {
			char c = name[i];

			if (nocase && c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			if (c != n[i])
				break;
		}
		if (i == len)
			return t;
	}
	return 0;
}
