/*
 * The wire scan. Its framing rules copy protobuf-c 1.4.1's own scan
 * (protobuf_c_message_unpack), so that what it calls malformed protobuf-c
 * refuses too; it is never stricter than protobuf-c on well-formed bytes.
 */
#include "server/wirescan.h"

#include <discovery/discovery.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* No schema we decode nests this deep; below it a message is walked as opaque bytes. */
#define DEPTH_MAX 16

/*
 * One walk's state: the result and the names of the fields above the one
 * being walked. The path is formatted only when a NUL is found: every
 * request is walked, so the common case costs no string work.
 */
typedef struct walk {
	dsi_wirescan *out;
	uint32_t      top;              /* the top-level field being walked */
	const char   *above[DEPTH_MAX]; /* above[d]: the field at depth d holding this one */
} walk;

/* A field key (number and wire type) as protobuf-c reads it; 0 when malformed. */
static size_t
read_key(const uint8_t *p, size_t len, uint32_t *tag, unsigned *wire_type)
{
	size_t   max   = len > 5 ? 5 : len;
	uint32_t t     = (uint32_t) (p[0] & 0x7f) >> 3;
	unsigned shift = 4;

	if ((p[0] & 0xf8) == 0) {
		return 0; /* field number 0 */
	}
	*wire_type = p[0] & 7;
	if ((p[0] & 0x80) == 0) {
		*tag = t;
		return 1;
	}
	for (size_t i = 1; i < max; i++) {
		/* protobuf-c drops the bits of a fifth byte past 32: so do we. */
		uint32_t bits = shift < 32 ? (uint32_t) (p[i] & 0x7f) << shift : 0;
		t |= bits;
		shift += 7;
		if ((p[i] & 0x80) == 0) {
			*tag = t;
			return i + 1;
		}
	}
	return 0;
}

/* The bytes of a varint (at most 10); 0 when it does not end in time. */
static size_t
varint_size(const uint8_t *p, size_t len)
{
	size_t max = len < 10 ? len : 10;
	for (size_t i = 0; i < max; i++) {
		if ((p[i] & 0x80) == 0) {
			return i + 1;
		}
	}
	return 0;
}

/* A length prefix and its data: the total size, the prefix's in *hdr; 0 when malformed. */
static size_t
length_delimited_size(const uint8_t *p, size_t len, size_t *hdr)
{
	size_t   max   = len < 5 ? len : 5;
	uint64_t val   = 0;
	unsigned shift = 0;
	size_t   i;

	for (i = 0; i < max; i++) {
		val |= (uint64_t) (p[i] & 0x7f) << shift;
		shift += 7;
		if ((p[i] & 0x80) == 0) {
			break;
		}
	}
	if (i == max || val > INT_MAX || val > len - (i + 1)) {
		return 0;
	}
	*hdr = i + 1;
	return *hdr + (size_t) val;
}

/* Elements in a packed repeated field's n bytes, as protobuf-c will allocate them. */
static size_t
packed_count(ProtobufCType type, const uint8_t *p, size_t n)
{
	size_t count = 0;
	switch (type) {
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return n / 4;
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return n / 8;
	case PROTOBUF_C_TYPE_BOOL:
		return n;
	default:
		for (size_t i = 0; i < n; i++) {
			count += (p[i] & 0x80) == 0;
		}
		return count;
	}
}

static bool
packable(const ProtobufCFieldDescriptor *f)
{
	return (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) != 0
	    || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES
	        && f->type != PROTOBUF_C_TYPE_MESSAGE);
}

static void
note_nul(walk *w, unsigned depth, const char *name)
{
	dsi_wirescan *o = w->out;
	o->nul_top |= w->top < 64 ? UINT64_C(1) << w->top : UINT64_C(1);
	if (o->nul_path[0] != 0) {
		return; /* the first one is named */
	}
	size_t at = 0;
	for (unsigned d = 0; d <= depth && at < sizeof(o->nul_path) - 1; d++) {
		const char *part = d < depth ? w->above[d] : name;
		int         n    = snprintf(
		               o->nul_path + at, sizeof(o->nul_path) - at, "%s%s", d > 0 ? "." : "", part);
		if (n < 0) {
			break;
		}
		at += (size_t) n;
	}
}

static int
walk_message(
    walk *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len, unsigned depth)
{
	while (len > 0) {
		uint32_t tag;
		unsigned wire_type;
		size_t   used = read_key(p, len, &tag, &wire_type);
		size_t   n, hdr = 0;

		if (used == 0) {
			return DSC_EPROTO;
		}
		p += used;
		len -= used;
		switch (wire_type) {
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			n = varint_size(p, len);
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
			n = len >= 8 ? 8 : 0;
			break;
		case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
			n = length_delimited_size(p, len, &hdr);
			break;
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			n = len >= 4 ? 4 : 0;
			break;
		default:
			n = 0; /* groups: protobuf-c refuses them */
			break;
		}
		if (n == 0) {
			return DSC_EPROTO;
		}
		w->out->fields++;
		if (depth == 0) {
			w->top = tag;
		}

		const ProtobufCFieldDescriptor *f
		    = protobuf_c_message_descriptor_get_field(desc, tag);
		bool delimited = wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
		if (f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED) {
			w->out->repeated += delimited && packable(f)
			    ? packed_count(f->type, p + hdr, n - hdr)
			    : 1;
		}
		/* A known field with another wire type fails in protobuf-c: not ours to judge. */
		if (f != NULL && delimited && f->type == PROTOBUF_C_TYPE_STRING
		    && memchr(p + hdr, 0, n - hdr) != NULL) {
			note_nul(w, depth, f->name);
		} else if (f != NULL && delimited && f->type == PROTOBUF_C_TYPE_MESSAGE
		    && depth + 1 < DEPTH_MAX) {
			w->above[depth] = f->name;
			int rv = walk_message(w, f->descriptor, p + hdr, n - hdr, depth + 1);
			if (rv != 0) {
				return rv;
			}
		}
		p += n;
		len -= n;
	}
	return 0;
}

int
dsi_wirescan_run(
    const ProtobufCMessageDescriptor *desc, const void *buf, size_t len, dsi_wirescan *out)
{
	walk w;
	w.out            = out;
	w.top            = 0;
	out->fields      = 0;
	out->repeated    = 0;
	out->nul_top     = 0;
	out->nul_path[0] = 0;
	return walk_message(&w, desc, buf, len, 0);
}
