/* Generic encode/decode: descriptors carry the per-message knowledge. */
#include "common/codec.h"

#include <discovery/discovery.h>

int
dsi_pack(const ProtobufCMessage *m, nng_msg **out)
{
	size_t   size = protobuf_c_message_get_packed_size(m);
	nng_msg *msg;

	if (nng_msg_alloc(&msg, size) != 0) {
		return DSC_ENOMEM;
	}
	if (size > 0) {
		protobuf_c_message_pack(m, nng_msg_body(msg));
	}
	*out = msg;
	return 0;
}

int
dsi_unpack(
    const ProtobufCMessageDescriptor *desc, const void *buf, size_t len, ProtobufCMessage **out)
{
	static const uint8_t empty[1] = { 0 };
	ProtobufCMessage    *m;

	/* protobuf-c wants a non-NULL pointer even for zero bytes. */
	m = protobuf_c_message_unpack(desc, NULL, len, len > 0 ? buf : empty);
	if (m == NULL) {
		return DSC_EPROTO;
	}
	*out = m;
	return 0;
}
