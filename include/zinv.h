/*
 * zinv.h - libzinv, the embeddable Zettle Inventory engine.
 *
 * The application header: include this one.  Storage backend authors also
 * include <zinv/backend.h>.  See libzinv(3) for the concepts, the ownership,
 * threading and error rules, and the ABI policy.
 */
#ifndef ZINV_H
#define ZINV_H

#include "zinv/version.h"
#include "zinv/common.h"
#include "zinv/store.h"
#include "zinv/org.h"
#include "zinv/tracking.h"
#include "zinv/apply.h"
#include "zinv/balances.h"
#include "zinv/lowstock.h"
#include "zinv/journal.h"
#include "zinv/events.h"
#include "zinv/json.h"
#include "zinv/rest.h"
#include "zinv/sync.h"

#endif /* ZINV_H */
