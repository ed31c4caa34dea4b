/*
 * Validation of what clients send, apart from the call machinery in
 * dispatch.c: the screen over raw request bytes before they are decoded,
 * and the rules a registration must meet. Every function returns 0, or an
 * error with the reason in msg.
 */
#ifndef DSI_VALIDATE_H
#define DSI_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "server/netpolicy.h"
#include "server/registry.h"
#include "server/wirescan.h"

#define DSI_HEALTH_PATH_MAX 1024 /* bytes after the leading '/' */

/*
 * Before decoding: walks the raw Request into *scan, and refuses bytes
 * protobuf-c would not decode (DSC_EINVAL), more metadata entries than
 * the limit, duplicate keys included (DSC_ELIMIT), or more fields than a
 * request within the limits needs (DSC_EINVAL), so that decoding costs no
 * more than the limits allow. limits NULL: the defaults.
 */
int dsi_validate_request_bytes(const dsi_registry_limits *limits, const void *buf, size_t len,
    dsi_wirescan *scan, char *msg, size_t n);

/*
 * Register's metadata as sent, duplicate keys included, against the entry
 * and byte limits (DSC_ELIMIT): the store and the registry see every entry,
 * so the limit must pay for each. limits NULL: the defaults.
 */
int dsi_validate_metadata_sent(const dsi_registry_limits *limits,
    const Discovery__V1__RegisterRequest *rq, char *msg, size_t n);

/*
 * The health path a registration is checked at: "health" when none was given,
 * with a leading '/', so <endpoint><path> stays on the endpoint's own host.
 */
void dsi_validate_health_path(const char *given, char *out, size_t len);

/*
 * The rules a registration must meet beyond its service name and endpoint:
 * the endpoint policy (policy NULL: none), the schemes endpoints may use
 * (DSI_SCHEME_* bits of server/endpoint.h; 0: any), health path, TTL and
 * metadata. DSC_EINVAL.
 */
int dsi_validate_registration(const dsi_netpolicy *policy, unsigned schemes,
    const dsi_registration *reg, char *msg, size_t len);

#endif
