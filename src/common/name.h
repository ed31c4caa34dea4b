/* Service names: normalization and validation, shared by every binary. */
#ifndef DSI_NAME_H
#define DSI_NAME_H

#include <stddef.h>

#define DSI_NAME_MAX 63

/*
 * Normalizes name (lowercase, '_' becomes '-') into out, which holds
 * DSI_NAME_MAX + 1 bytes, and validates the result: 1-63 characters of
 * [a-z0-9.-], starting and ending with a letter or digit.
 * Returns 0, or DSC_EINVAL with a reason in why (of size why_len); out is
 * only meaningful on success.
 */
int dsi_name_normalize(const char *name, char out[DSI_NAME_MAX + 1], char *why, size_t why_len);

#endif
