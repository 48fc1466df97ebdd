/*
 * json_events.c - encoders that read core objects: batch results and the
 * webhook payloads and Pusher envelope of WIRE.md section 10.
 */
#include <stdio.h>
#include <string.h>

#include "error_int.h"
#include "json_int.h"

#define set inv__json_set

static json_t *uuid_or_null(const inv_uuid *u)
{
	return u ? inv__json_uuid(u) : json_null();
}

int inv_json_encode_result(char **out, size_t *len, const inv_result *result)
{
	const inv_location *loc;
	inv_json_location lv;

	if (!out || !len || !result)
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	*out = NULL;
	*len = 0;
	loc = inv_result_location(result);
	if (!loc)
		return inv__error(INV_EINVAL, -1, "result", "the result has no location");
	lv.uuid = *inv_location_uuid(loc);
	lv.type = (int32_t)inv_location_get_type(loc);
	lv.is_default = inv_location_is_default(loc);
	return inv_json_encode_status(out, len, &lv, inv_result_balances(result),
	                              inv_result_count(result), NULL, 0);
}

const char *inv_json_event_name(int type)
{
	switch (type) {
	case INV_EVENT_BALANCE_CHANGED: return "InventoryBalanceChanged";
	case INV_EVENT_TRACKING_STARTED: return "InventoryTrackingStarted";
	case INV_EVENT_TRACKING_STOPPED: return "InventoryTrackingStopped";
	case INV_EVENT_LOW_STOCK: return "InventoryLowStockChanged";
	default: return NULL;
	}
}

/* {uuid, timestamp, userType, clientUuid}: who acted, and when. */
static json_t *change_info(const inv_journal_entry *entry)
{
	json_t *o = json_object();
	char when[32];
	int bad = 0;

	inv_json_format_time(when, inv_journal_entry_time(entry), 0);
	bad |= set(o, "uuid", uuid_or_null(inv_journal_entry_user_uuid(entry)));
	bad |= set(o, "timestamp", json_string(when));
	bad |= set(o, "userType", json_string("USER"));
	bad |= set(o, "clientUuid", uuid_or_null(inv_journal_entry_client_uuid(entry)));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *balance_entry(const inv_uuid *org, const inv_journal_record *r, int64_t balance)
{
	json_t *o = json_object();
	int bad = 0;

	bad |= set(o, "organizationUuid", inv__json_uuid(org));
	bad |= set(o, "locationUuid", inv__json_uuid(&r->location));
	bad |= set(o, "productUuid", inv__json_uuid(&r->product));
	bad |= set(o, "variantUuid", inv__json_uuid(&r->variant));
	bad |= set(o, "balance", inv__json_int_string(balance));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *payload_object(const inv_event *event, size_t item)
{
	const inv_uuid *org = inv_event_org_uuid(event);
	const inv_journal_entry *entry = inv_event_entry(event);
	const inv_journal_record *items = inv_event_items(event);
	size_t n = inv_event_item_count(event), i;
	json_t *o = json_object();
	int bad = 0;

	bad |= set(o, "organizationUuid", inv__json_uuid(org));
	switch (inv_event_get_type(event)) {
	case INV_EVENT_BALANCE_CHANGED: {
		json_t *before = json_array(), *after = json_array();

		for (i = 0; i < n && before && after; i++) {
			/* Index i of both lists is the same variant and location. */
			bad |= inv__json_push(before, balance_entry(org, &items[i], items[i].before));
			bad |= inv__json_push(after, balance_entry(org, &items[i], items[i].after));
		}
		bad |= set(o, "updated", change_info(entry));
		bad |= set(o, "balanceBefore", before);
		bad |= set(o, "balanceAfter", after);
		bad |= set(o, "externalUuid", uuid_or_null(inv_journal_entry_external_uuid(entry)));
		break;
	}
	case INV_EVENT_TRACKING_STARTED:
	case INV_EVENT_TRACKING_STOPPED:
		if (item >= n)
			goto bad;
		bad |= set(o, "productUuid", inv__json_uuid(&items[item].product));
		bad |= set(o, inv_event_get_type(event) == INV_EVENT_TRACKING_STARTED
		              ? "created" : "changeInformation", change_info(entry));
		break;
	case INV_EVENT_LOW_STOCK:
		if (item >= n)
			goto bad;
		bad |= set(o, "locationUuid", inv__json_uuid(&items[item].location));
		bad |= set(o, "productUuid", inv__json_uuid(&items[item].product));
		bad |= set(o, "variantUuid", inv__json_uuid(&items[item].variant));
		bad |= set(o, "balance", inv__json_int_string(items[item].after));
		bad |= set(o, "lowStockLevel", json_integer(items[item].quantity));
		bad |= set(o, "low", json_boolean(items[item].low));
		break;
	default:
		goto bad;
	}
	if (!bad)
		return o;
bad:
	json_decref(o);
	return NULL;
}

static int check_event(char **out, size_t *len, const inv_event *event, size_t item)
{
	if (!out || !len || !event)
		return inv__error(INV_EINVAL, -1, NULL, "NULL argument");
	*out = NULL;
	*len = 0;
	if (!inv_json_event_name(inv_event_get_type(event)))
		return inv__error(INV_EINVAL, -1, "event", "unknown event type %d",
		                  (int)inv_event_get_type(event));
	if (inv_event_get_type(event) != INV_EVENT_BALANCE_CHANGED &&
	    item >= inv_event_item_count(event))
		return inv__error(INV_EINVAL, -1, "item", "the event has %zu items",
		                  inv_event_item_count(event));
	return 0;
}

int inv_json_encode_event_payload(char **out, size_t *len, const inv_event *event, size_t item)
{
	int rc = check_event(out, len, event, item);

	if (rc)
		return rc;
	return inv__json_dump(out, len, payload_object(event, item));
}

/* A stable UUID per (organization, sequence, type, item), so that a
 * message rebuilt from the journal carries the same messageUuid and a
 * subscriber can drop duplicates. */
static void derive_message_uuid(inv_uuid *out, const inv_event *event, size_t item)
{
	uint64_t seq = (uint64_t)inv_journal_entry_sequence(inv_event_entry(event));
	uint64_t tag = ((uint64_t)inv_event_get_type(event) << 56) ^ (uint64_t)item;
	size_t i;

	*out = *inv_event_org_uuid(event);
	for (i = 0; i < 8; i++) {
		out->bytes[i] ^= (uint8_t)(seq >> (8 * i));
		out->bytes[8 + i] ^= (uint8_t)(tag >> (8 * i));
	}
	out->bytes[6] = (uint8_t)((out->bytes[6] & 0x0f) | 0x80); /* version 8: custom */
	out->bytes[8] = (uint8_t)((out->bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

int inv_json_encode_webhook(char **out, size_t *len, const inv_event *event, size_t item,
                            const inv_json_envelope_options *opts)
{
	inv_json_envelope_options o = INV_JSON_ENVELOPE_OPTIONS_INIT;
	char *payload = NULL, when[32], idtext[37];
	size_t plen;
	inv_uuid mid;
	json_t *env;
	int rc, bad = 0;

	rc = check_event(out, len, event, item);
	if (rc)
		return rc;
	if (opts) {
		if (opts->version != INV_JSON_ENVELOPE_OPTIONS_VERSION)
			return inv__error(INV_EVERSION, -1, "version", "unknown options version %u",
			                  opts->version);
		o = *opts;
	}
	rc = inv_json_encode_event_payload(&payload, &plen, event, item);
	if (rc)
		return rc;
	if (o.message_uuid)
		mid = *o.message_uuid;
	else
		derive_message_uuid(&mid, event, item);
	inv_uuid_format(&mid, idtext);
	inv_json_format_time(when, o.timestamp ? o.timestamp
	                                       : inv_journal_entry_time(inv_event_entry(event)), 1);
	env = json_object();
	bad |= set(env, "organizationUuid", inv__json_uuid(inv_event_org_uuid(event)));
	bad |= set(env, "messageUuid", json_string(idtext));
	bad |= set(env, "eventName", json_string(inv_json_event_name(inv_event_get_type(event))));
	bad |= set(env, "messageId", json_string(o.message_id ? o.message_id : idtext));
	bad |= set(env, "payload", json_stringn(payload, plen));
	bad |= set(env, "timestamp", json_string(when));
	inv_free(payload);
	if (bad) {
		json_decref(env);
		env = NULL;
	}
	return inv__json_dump(out, len, env);
}
