/*
 * map.c - the intrusive UUID hash map behind the org registry and the
 * variant and product handles.  Nodes never move, so callers hand out
 * pointers to them as stable handles.
 */
#include <stdlib.h>

#include "core_int.h"

inv__map_node *inv__map_find(const inv__map *map, const inv_uuid *key)
{
	inv__map_node *n;

	if (!map->buckets)
		return NULL;
	for (n = map->buckets[inv__uuid_hash(key) & map->mask]; n; n = n->next)
		if (inv__uuid_eq(&n->key, key))
			return n;
	return NULL;
}

static int map_grow(inv__map *map)
{
	size_t size = map->buckets ? (map->mask + 1) * 2 : 16, i;
	inv__map_node **b = calloc(size, sizeof(*b));

	if (!b)
		return INV_ENOMEM;
	if (map->buckets) {
		for (i = 0; i <= map->mask; i++) {
			inv__map_node *n = map->buckets[i], *next;

			for (; n; n = next) {
				size_t h = inv__uuid_hash(&n->key) & (size - 1);

				next = n->next;
				n->next = b[h];
				b[h] = n;
			}
		}
		free(map->buckets);
	}
	map->buckets = b;
	map->mask = size - 1;
	return 0;
}

int inv__map_insert(inv__map *map, inv__map_node *node)
{
	size_t h;

	if (!map->buckets || map->count >= map->mask + 1) {
		int rc = map_grow(map);

		if (rc)
			return rc;
	}
	h = inv__uuid_hash(&node->key) & map->mask;
	node->next = map->buckets[h];
	map->buckets[h] = node;
	map->count++;
	return 0;
}

void inv__map_remove(inv__map *map, inv__map_node *node)
{
	inv__map_node **p;

	if (!map->buckets)
		return;
	for (p = &map->buckets[inv__uuid_hash(&node->key) & map->mask]; *p; p = &(*p)->next) {
		if (*p == node) {
			*p = node->next;
			map->count--;
			return;
		}
	}
}

void inv__map_dispose(inv__map *map, void (*free_node)(inv__map_node *))
{
	size_t i;

	if (map->buckets && free_node) {
		for (i = 0; i <= map->mask; i++) {
			inv__map_node *n = map->buckets[i], *next;

			for (; n; n = next) {
				next = n->next;
				free_node(n);
			}
		}
	}
	free(map->buckets);
	map->buckets = NULL;
	map->mask = map->count = 0;
}

int inv__grow(void *buf, size_t *cap, size_t need, size_t size)
{
	void **p = buf;
	size_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * size);
	if (!q)
		return INV_ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}
