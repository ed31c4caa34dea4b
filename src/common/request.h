/*
 * Building Requests from the library's types, once for every sender: the
 * client library, the server's start-up registrations and the benchmarks.
 */
#ifndef DSI_REQUEST_H
#define DSI_REQUEST_H

#include <discovery/discovery.h>
#include <discovery/v1/discovery.pb-c.h>

/*
 * A Register Request for reg, ready for dsi_pack: call_case REGISTER, and
 * register_ holding every field of reg with all reg->n_metadata entries
 * (no cap; the server enforces its own limits).
 *
 * Ownership: the Request, its RegisterRequest and the metadata entries are
 * one allocation, freed with dsi_request_free (never with protobuf-c's
 * free_unpacked). Strings are borrowed, not copied: reg's strings must
 * outlive *out, and reg itself need not. A NULL string (service, endpoint,
 * health path, a metadata key or value) is sent as "". auth_token is "";
 * the caller may point it at a token of its own, which it keeps owning.
 *
 * Returns 0 with *out set, or DSC_EINVAL (reg NULL, or metadata NULL with
 * n_metadata > 0) or DSC_ENOMEM, with *out untouched.
 */
int dsi_request_register_new(Discovery__V1__Request **out, const dsc_registration *reg);

/* Frees a Request built by this module; NULL is a no-op. Borrowed strings are not touched. */
void dsi_request_free(Discovery__V1__Request *req);

#endif
