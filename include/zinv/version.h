/*
 * zinv/version.h - the library version, in one place.
 *
 * The Makefile reads INV_VERSION_MAJOR/MINOR/PATCH from this file with sed;
 * keep each on its own line in this exact form.
 */
#ifndef ZINV_VERSION_H
#define ZINV_VERSION_H

#define INV_VERSION_MAJOR 1
#define INV_VERSION_MINOR 1
#define INV_VERSION_PATCH 0
#define INV_VERSION_STRING "1.1.0"

/* One number that grows with every release: 10000 * major + 100 * minor + patch. */
#define INV_VERSION_NUMBER \
	(INV_VERSION_MAJOR * 10000 + INV_VERSION_MINOR * 100 + INV_VERSION_PATCH)

#endif /* ZINV_VERSION_H */
