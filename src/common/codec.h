/* The one protobuf <-> nng message path, for every message type. */
#ifndef DSI_CODEC_H
#define DSI_CODEC_H

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/*
 * Serializes m into a new nng message. On success *out belongs to the
 * caller (or to nng once sent). Returns 0 or DSC_ENOMEM.
 */
int dsi_pack(const ProtobufCMessage *m, nng_msg **out);

/*
 * Parses len bytes at buf as a message of type desc. On success *out must be
 * released with protobuf_c_message_free_unpacked(*out, NULL).
 * Returns 0 or DSC_EPROTO for bytes that are not such a message.
 */
int dsi_unpack(
    const ProtobufCMessageDescriptor *desc, const void *buf, size_t len, ProtobufCMessage **out);

#endif
