/*
 * json_encode.c - response body encoders that need no store: every input is
 * a plain value, so a server, a test or another language can build them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error_int.h"
#include "json_int.h"

#define set inv__json_set
#define push inv__json_push

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

/* Messages may carry a backend's or a caller's bytes: keep them valid UTF-8
 * by replacing anything outside printable ASCII. */
static json_t *text_string(const char *s)
{
	json_t *j;
	char buf[512];
	size_t i;

	if (!s)
		s = "";
	j = json_string(s);
	if (j)
		return j;
	for (i = 0; i < sizeof(buf) - 1 && s[i]; i++)
		buf[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

/* Drop a half-built value after a failed set. */
static json_t *checked(json_t *value, int failed)
{
	if (failed) {
		json_decref(value);
		return NULL;
	}
	return value;
}

size_t inv_json_format_time(char out[32], int64_t ms, int zulu)
{
	int64_t secs = ms / 1000;
	int millis = (int)(ms % 1000);
	time_t t;
	struct tm tm;
	int n;

	if (millis < 0)
		millis += 1000, secs -= 1;
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", tm.tm_year + 1900,
	             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis,
	             zulu ? "Z" : "+0000");
	return n > 0 && n < 32 ? (size_t)n : 0;
}

static int check_out(char **out, size_t *len)
{
	if (!out || !len)
		return inv__error(INV_EINVAL, -1, "out", "out or len is NULL");
	*out = NULL;
	*len = 0;
	return 0;
}

/* ------------------------------------------------------------ locations */

static json_t *location_object(const inv_json_location *loc, int v3)
{
	const char *name = inv__location_type_name(loc->type);
	json_t *o = json_object();
	int bad = 0;

	if (!name)
		name = "UNKNOWN";
	if (v3) {
		bad |= set(o, "inventoryUuid", inv__json_uuid(&loc->uuid));
		bad |= set(o, "inventoryType", json_string(name));
		bad |= set(o, "name", json_string(name));
		bad |= set(o, "description", json_string("System generated location"));
		bad |= set(o, "defaultInventory", json_boolean(loc->is_default));
	} else {
		bad |= set(o, "uuid", inv__json_uuid(&loc->uuid));
		bad |= set(o, "type", json_string(name));
		bad |= set(o, "name", json_string(name));
		bad |= set(o, "description", json_string("System generated location"));
		bad |= set(o, "default", json_boolean(loc->is_default));
	}
	return checked(o, bad);
}

static int encode_location_list(char **out, size_t *len, const inv_json_location *locations,
                                size_t count, int v3)
{
	json_t *arr;
	size_t i;
	int bad = 0;

	if (check_out(out, len) || (count && !locations))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	arr = json_array();
	for (i = 0; i < count; i++)
		bad |= push(arr, location_object(&locations[i], v3));
	return inv__json_dump(out, len, checked(arr, bad));
}

int inv_json_encode_locations(char **out, size_t *len, const inv_json_location *locations,
                              size_t count)
{
	return encode_location_list(out, len, locations, count, 0);
}

int inv_json_encode_inventories(char **out, size_t *len, const inv_json_location *locations,
                                size_t count)
{
	return encode_location_list(out, len, locations, count, 1);
}

int inv_json_encode_inventory(char **out, size_t *len, const inv_json_location *location)
{
	if (check_out(out, len) || !location)
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	return inv__json_dump(out, len, location_object(location, 1));
}

/* ------------------------------------------------------------ status */

json_t *inv__json_variants(const inv_json_location *location, const inv_balance *balances,
                           size_t count)
{
	const char *type = inv__location_type_name(location->type);
	json_t *arr = json_array(), *loc_uuid = inv__json_uuid(&location->uuid);
	size_t i;
	int bad = !loc_uuid;

	for (i = 0; i < count && !bad; i++) {
		json_t *o = json_object();

		bad |= set(o, "locationUuid", json_incref(loc_uuid));
		bad |= set(o, "locationType", json_string(type ? type : "UNKNOWN"));
		bad |= set(o, "productUuid", inv__json_uuid(&balances[i].product));
		bad |= set(o, "variantUuid", inv__json_uuid(&balances[i].variant));
		bad |= set(o, "balance", inv__json_int_string(balances[i].balance));
		bad |= push(arr, checked(o, bad));
	}
	json_decref(loc_uuid);
	return checked(arr, bad);
}

int inv_json_encode_status(char **out, size_t *len, const inv_json_location *location,
                           const inv_balance *balances, size_t count, const inv_uuid *tracked,
                           size_t tracked_count)
{
	json_t *o;
	int bad = 0;
	size_t i;

	if (check_out(out, len) || !location || (count && !balances))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	o = json_object();
	bad |= set(o, "locationUuid", inv__json_uuid(&location->uuid));
	if (tracked) {
		json_t *arr = json_array();

		for (i = 0; i < tracked_count; i++)
			bad |= push(arr, inv__json_uuid(&tracked[i]));
		bad |= set(o, "trackedProducts", checked(arr, bad));
	}
	bad |= set(o, "variants", inv__json_variants(location, balances, count));
	return inv__json_dump(out, len, checked(o, bad));
}

/* ------------------------------------------------------------ low stock */

static json_t *low_stock_variants(const inv_low_stock *entries, size_t count)
{
	json_t *arr = json_array();
	size_t i;
	int bad = 0;

	for (i = 0; i < count && !bad; i++) {
		json_t *o = json_object();

		bad |= set(o, "variantUuid", inv__json_uuid(&entries[i].variant));
		bad |= set(o, "customLowStockLevel", entries[i].has_level
		                                             ? json_integer(entries[i].level)
		                                             : json_null());
		bad |= set(o, "lowStockAlert", json_boolean(entries[i].alert));
		bad |= push(arr, checked(o, bad));
	}
	return checked(arr, bad);
}

static json_t *low_stock_product(const inv_uuid *product, const inv_low_stock *entries,
                                 size_t count)
{
	json_t *o = json_object();
	int bad = 0;

	bad |= set(o, "productUuid", inv__json_uuid(product));
	bad |= set(o, "customLowStockLevelForVariants", low_stock_variants(entries, count));
	return checked(o, bad);
}

int inv_json_encode_low_stock_location(char **out, size_t *len, const inv_uuid *org,
                                       const inv_uuid *location, const inv_low_stock *entries,
                                       size_t count)
{
	json_t *o, *arr;
	size_t i = 0;
	int bad = 0;

	if (check_out(out, len) || !org || !location || (count && !entries))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	o = json_object();
	arr = json_array();
	bad |= set(o, "organizationUuid", inv__json_uuid(org));
	bad |= set(o, "locationUuid", inv__json_uuid(location));
	while (i < count && !bad) {
		size_t j = i + 1;

		while (j < count && inv_uuid_compare(&entries[j].product, &entries[i].product) == 0)
			j++;
		bad |= push(arr, low_stock_product(&entries[i].product, entries + i, j - i));
		i = j;
	}
	bad |= set(o, "customLowStockLevelsForProducts", checked(arr, bad));
	return inv__json_dump(out, len, checked(o, bad));
}

int inv_json_encode_low_stock_product(char **out, size_t *len, const inv_uuid *product,
                                      const inv_low_stock *entries, size_t count)
{
	if (check_out(out, len) || !product || (count && !entries))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	return inv__json_dump(out, len, low_stock_product(product, entries, count));
}

/* ------------------------------------------------------------ v3 */

int inv_json_encode_v3_stock(char **out, size_t *len, const inv_uuid *org,
                             const inv_uuid *location, const inv_balance *balances,
                             size_t count)
{
	json_t *arr, *org_j, *loc_j;
	size_t i;
	int bad;

	if (check_out(out, len) || !org || !location || (count && !balances))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	arr = json_array();
	org_j = inv__json_uuid(org);
	loc_j = inv__json_uuid(location);
	bad = !org_j || !loc_j;
	for (i = 0; i < count && !bad; i++) {
		const inv_balance *b = &balances[i];
		json_t *o = json_object();
		char when[32];

		inv_json_format_time(when, b->updated, 1);
		bad |= set(o, "organizationUuid", json_incref(org_j));
		bad |= set(o, "inventoryUuid", json_incref(loc_j));
		bad |= set(o, "productUuid", inv__json_uuid(&b->product));
		bad |= set(o, "variantUuid", inv__json_uuid(&b->variant));
		bad |= set(o, "balance", json_integer(b->balance));
		bad |= set(o, "lowStockLevel",
		           b->has_low_stock_level ? json_integer(b->low_stock_level) : json_null());
		bad |= set(o, "lowStockAlert", json_boolean(b->low_stock_alert));
		bad |= set(o, "updated", b->updated ? json_string(when) : json_null());
		bad |= push(arr, checked(o, bad));
	}
	json_decref(org_j);
	json_decref(loc_j);
	return inv__json_dump(out, len, checked(arr, bad));
}

int inv_json_encode_v3_products_status(char **out, size_t *len, const inv_uuid *products,
                                       const int32_t *enabled, size_t count)
{
	json_t *arr;
	size_t i;
	int bad = 0;

	if (check_out(out, len) || (count && (!products || !enabled)))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	arr = json_array();
	for (i = 0; i < count && !bad; i++) {
		json_t *o = json_object();

		bad |= set(o, "productUuid", inv__json_uuid(&products[i]));
		bad |= set(o, "enabled", json_boolean(enabled[i]));
		bad |= push(arr, checked(o, bad));
	}
	return inv__json_dump(out, len, checked(arr, bad));
}

/* ------------------------------------------------------------ errors */

int inv_json_encode_error(char **out, size_t *len, const char *error_type, const char *message,
                          const inv_json_violation *violations, size_t count)
{
	json_t *o, *arr;
	size_t i;
	int bad = 0;

	if (check_out(out, len) || !error_type || (count && !violations))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	o = json_object();
	arr = json_array();
	/* developerMessage is always present: a known client crashes without it. */
	bad |= set(o, "developerMessage", text_string(message ? message : error_type));
	bad |= set(o, "errorType", text_string(error_type));
	for (i = 0; i < count && !bad; i++) {
		json_t *v = json_object();

		bad |= set(v, "propertyName", text_string(violations[i].property
		                                                  ? violations[i].property : ""));
		bad |= set(v, "developerMessage", text_string(violations[i].message
		                                                      ? violations[i].message : ""));
		bad |= set(v, "constraintType",
		           json_string(inv_json_constraint_name(violations[i].constraint)));
		bad |= push(arr, checked(v, bad));
	}
	bad |= set(o, "violations", checked(arr, bad));
	return inv__json_dump(out, len, checked(o, bad));
}
