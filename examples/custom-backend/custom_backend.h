/*
 * custom_backend.h - a storage backend written from scratch against
 * <zinv/backend.h>, as a template for bringing your own storage.
 *
 *     void *instance;
 *     inv_store *store;
 *     custom_backend_new(&instance);
 *     if (inv_store_open(&store, custom_backend_ops(), instance, NULL) != 0)
 *         custom_backend_ops()->close(instance);   // still ours on failure
 *
 * See README.md beside this file.
 */
#ifndef CUSTOM_BACKEND_H
#define CUSTOM_BACKEND_H

#include <zinv/backend.h>

/* The operations table: static, one for every instance. */
const inv_backend_ops *custom_backend_ops(void);

/* A new, empty instance; 0 or INV_ENOMEM.  Released by ops->close(), which
 * inv_store_close() calls once the store owns the instance. */
int custom_backend_new(void **instance);

#endif /* CUSTOM_BACKEND_H */
