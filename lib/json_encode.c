/*
 * json_encode.c - response body encoders that need no store: every input is
 * a plain value, so a server, a test or another language can build them.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error_int.h"
#include "json_int.h"

/* A first allocation for `count` items of at most `per` bytes after
 * `base`; 0 (grow on demand) when that does not fit a size_t. */
static size_t size_hint(size_t base, size_t count, size_t per)
{
	return count > (SIZE_MAX - base) / per ? 0 : base + count * per;
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

static void location_object(inv__jw *w, const inv_json_location *loc, int v3)
{
	const char *name = inv__location_type_name(loc->type);

	if (!name)
		name = "UNKNOWN";
	inv__jw_open(w, '{');
	inv__jw_key(w, v3 ? "inventoryUuid" : "uuid");
	inv__jw_uuid(w, &loc->uuid);
	inv__jw_key(w, v3 ? "inventoryType" : "type");
	inv__jw_cstr(w, name);
	inv__jw_key(w, "name");
	inv__jw_cstr(w, name);
	inv__jw_key(w, "description");
	inv__jw_cstr(w, "System generated location");
	inv__jw_key(w, v3 ? "defaultInventory" : "default");
	inv__jw_bool(w, loc->is_default);
	inv__jw_close(w, '}');
}

static int encode_location_list(char **out, size_t *len, const inv_json_location *locations,
                                size_t count, int v3)
{
	inv__jw w;
	size_t i;

	if (check_out(out, len) || (count && !locations))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, size_hint(2, count, 160));
	inv__jw_open(&w, '[');
	for (i = 0; i < count; i++)
		location_object(&w, &locations[i], v3);
	inv__jw_close(&w, ']');
	return inv__jw_finish(&w, out, len);
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
	inv__jw w;

	if (check_out(out, len) || !location)
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, 160);
	location_object(&w, location, 1);
	return inv__jw_finish(&w, out, len);
}

/* ------------------------------------------------------------ status */

/* The longest element of "variants": five keys, three UUIDs, the longest
 * type name and a 20-digit balance, with its braces and a comma. */
#define VARIANT_MAX 224

static void variants_array(inv__jw *w, const inv_json_location *location,
                           const inv_balance *balances, size_t count)
{
	const char *type = inv__location_type_name(location->type);
	size_t i;

	if (!type)
		type = "UNKNOWN";
	inv__jw_open(w, '[');
	for (i = 0; i < count; i++) {
		inv__jw_open(w, '{');
		inv__jw_key(w, "locationUuid");
		inv__jw_uuid(w, &location->uuid);
		inv__jw_key(w, "locationType");
		inv__jw_cstr(w, type);
		inv__jw_key(w, "productUuid");
		inv__jw_uuid(w, &balances[i].product);
		inv__jw_key(w, "variantUuid");
		inv__jw_uuid(w, &balances[i].variant);
		inv__jw_key(w, "balance");
		inv__jw_int_string(w, balances[i].balance);
		inv__jw_close(w, '}');
	}
	inv__jw_close(w, ']');
}

int inv_json_encode_status(char **out, size_t *len, const inv_json_location *location,
                           const inv_balance *balances, size_t count, const inv_uuid *tracked,
                           size_t tracked_count)
{
	inv__jw w;
	size_t i;

	if (check_out(out, len) || !location || (count && !balances))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, size_hint(size_hint(96, tracked ? tracked_count : 0, 39), count,
	                           VARIANT_MAX));
	inv__jw_open(&w, '{');
	inv__jw_key(&w, "locationUuid");
	inv__jw_uuid(&w, &location->uuid);
	if (tracked) {
		inv__jw_key(&w, "trackedProducts");
		inv__jw_open(&w, '[');
		for (i = 0; i < tracked_count; i++)
			inv__jw_uuid(&w, &tracked[i]);
		inv__jw_close(&w, ']');
	}
	inv__jw_key(&w, "variants");
	variants_array(&w, location, balances, count);
	inv__jw_close(&w, '}');
	return inv__jw_finish(&w, out, len);
}

/* ------------------------------------------------------------ low stock */

static void low_stock_product(inv__jw *w, const inv_uuid *product, const inv_low_stock *entries,
                              size_t count)
{
	size_t i;

	inv__jw_open(w, '{');
	inv__jw_key(w, "productUuid");
	inv__jw_uuid(w, product);
	inv__jw_key(w, "customLowStockLevelForVariants");
	inv__jw_open(w, '[');
	for (i = 0; i < count; i++) {
		inv__jw_open(w, '{');
		inv__jw_key(w, "variantUuid");
		inv__jw_uuid(w, &entries[i].variant);
		inv__jw_key(w, "customLowStockLevel");
		if (entries[i].has_level)
			inv__jw_int(w, entries[i].level);
		else
			inv__jw_null(w);
		inv__jw_key(w, "lowStockAlert");
		inv__jw_bool(w, entries[i].alert);
		inv__jw_close(w, '}');
	}
	inv__jw_close(w, ']');
	inv__jw_close(w, '}');
}

int inv_json_encode_low_stock_location(char **out, size_t *len, const inv_uuid *org,
                                       const inv_uuid *location, const inv_low_stock *entries,
                                       size_t count)
{
	inv__jw w;
	size_t i = 0;

	if (check_out(out, len) || !org || !location || (count && !entries))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, 0);
	inv__jw_open(&w, '{');
	inv__jw_key(&w, "organizationUuid");
	inv__jw_uuid(&w, org);
	inv__jw_key(&w, "locationUuid");
	inv__jw_uuid(&w, location);
	inv__jw_key(&w, "customLowStockLevelsForProducts");
	inv__jw_open(&w, '[');
	while (i < count) {
		size_t j = i + 1;

		while (j < count && inv_uuid_compare(&entries[j].product, &entries[i].product) == 0)
			j++;
		low_stock_product(&w, &entries[i].product, entries + i, j - i);
		i = j;
	}
	inv__jw_close(&w, ']');
	inv__jw_close(&w, '}');
	return inv__jw_finish(&w, out, len);
}

int inv_json_encode_low_stock_product(char **out, size_t *len, const inv_uuid *product,
                                      const inv_low_stock *entries, size_t count)
{
	inv__jw w;

	if (check_out(out, len) || !product || (count && !entries))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, 0);
	low_stock_product(&w, product, entries, count);
	return inv__jw_finish(&w, out, len);
}

/* ------------------------------------------------------------ v3 */

int inv_json_encode_v3_stock(char **out, size_t *len, const inv_uuid *org,
                             const inv_uuid *location, const inv_balance *balances,
                             size_t count)
{
	inv__jw w;
	size_t i;

	if (check_out(out, len) || !org || !location || (count && !balances))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, 0);
	inv__jw_open(&w, '[');
	for (i = 0; i < count; i++) {
		const inv_balance *b = &balances[i];
		char when[32];

		inv__jw_open(&w, '{');
		inv__jw_key(&w, "organizationUuid");
		inv__jw_uuid(&w, org);
		inv__jw_key(&w, "inventoryUuid");
		inv__jw_uuid(&w, location);
		inv__jw_key(&w, "productUuid");
		inv__jw_uuid(&w, &b->product);
		inv__jw_key(&w, "variantUuid");
		inv__jw_uuid(&w, &b->variant);
		inv__jw_key(&w, "balance");
		inv__jw_int(&w, b->balance);
		inv__jw_key(&w, "lowStockLevel");
		if (b->has_low_stock_level)
			inv__jw_int(&w, b->low_stock_level);
		else
			inv__jw_null(&w);
		inv__jw_key(&w, "lowStockAlert");
		inv__jw_bool(&w, b->low_stock_alert);
		inv__jw_key(&w, "updated");
		if (b->updated) {
			inv_json_format_time(when, b->updated, 1);
			inv__jw_cstr(&w, when);
		} else {
			inv__jw_null(&w);
		}
		inv__jw_close(&w, '}');
	}
	inv__jw_close(&w, ']');
	return inv__jw_finish(&w, out, len);
}

int inv_json_encode_v3_products_status(char **out, size_t *len, const inv_uuid *products,
                                       const int32_t *enabled, size_t count)
{
	inv__jw w;
	size_t i;

	if (check_out(out, len) || (count && (!products || !enabled)))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, 0);
	inv__jw_open(&w, '[');
	for (i = 0; i < count; i++) {
		inv__jw_open(&w, '{');
		inv__jw_key(&w, "productUuid");
		inv__jw_uuid(&w, &products[i]);
		inv__jw_key(&w, "enabled");
		inv__jw_bool(&w, enabled[i]);
		inv__jw_close(&w, '}');
	}
	inv__jw_close(&w, ']');
	return inv__jw_finish(&w, out, len);
}

/* ------------------------------------------------------------ errors */

int inv_json_encode_error(char **out, size_t *len, const char *error_type, const char *message,
                          const inv_json_violation *violations, size_t count)
{
	inv__jw w;
	size_t i;

	if (check_out(out, len) || !error_type || (count && !violations))
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	inv__jw_init(&w, 0);
	inv__jw_open(&w, '{');
	/* developerMessage is always present: a known client crashes without it. */
	inv__jw_key(&w, "developerMessage");
	inv__jw_text(&w, message ? message : error_type);
	inv__jw_key(&w, "errorType");
	inv__jw_text(&w, error_type);
	inv__jw_key(&w, "violations");
	inv__jw_open(&w, '[');
	for (i = 0; i < count; i++) {
		inv__jw_open(&w, '{');
		inv__jw_key(&w, "propertyName");
		inv__jw_text(&w, violations[i].property);
		inv__jw_key(&w, "developerMessage");
		inv__jw_text(&w, violations[i].message);
		inv__jw_key(&w, "constraintType");
		inv__jw_cstr(&w, inv_json_constraint_name(violations[i].constraint));
		inv__jw_close(&w, '}');
	}
	inv__jw_close(&w, ']');
	inv__jw_close(&w, '}');
	return inv__jw_finish(&w, out, len);
}
