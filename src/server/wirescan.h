/*
 * Wire scan: one allocation-free walk over an encoded protobuf message,
 * guided by its descriptor, before protobuf-c decodes it. It tells what
 * decoding cannot: how many fields the decode would allocate for, and
 * whether a string field holds a 0 byte (protobuf-c hands strings over as
 * C strings, so such a string would be cut short without a trace).
 */
#ifndef DSI_WIRESCAN_H
#define DSI_WIRESCAN_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSI_WIRESCAN_PATH_MAX 96

/* What one walk found; counts cover every depth. */
typedef struct dsi_wirescan {
	size_t fields;   /* field occurrences, unknown and repeated ones included */
	size_t repeated; /* elements of repeated fields (packed ones counted one by one) */
	/*
	 * Bit n: top-level field n (1-63) holds a string with a 0 byte, in
	 * itself or in a message below it; bit 0 stands for fields 64 and up.
	 */
	uint64_t nul_top;
	/* The first such string, as field names from the top: "register.metadata.key". */
	char nul_path[DSI_WIRESCAN_PATH_MAX];
} dsi_wirescan;

/*
 * Walks len bytes at buf as a message of type desc, writing *out (zeroed
 * first). Returns 0, or DSC_EPROTO for bytes protobuf-c would not decode
 * either: a bad tag, a truncated value, an unsupported wire type, or such
 * a fault inside a known sub-message. The walk never reads outside
 * [buf, buf + len), recurses at most a few levels, and allocates nothing.
 * It judges framing only: a 0 return does not promise that decoding
 * succeeds (a known field with the wrong wire type is left to protobuf-c).
 */
int dsi_wirescan_run(
    const ProtobufCMessageDescriptor *desc, const void *buf, size_t len, dsi_wirescan *out);

#endif
