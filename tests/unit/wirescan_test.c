/* Wire scan: counts and NUL findings on encoded Requests, and hostile bytes never read past the
 * end. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/v1/discovery.pb-c.h>

#include "server/wirescan.h"

typedef Discovery__V1__Request                        Request;
typedef Discovery__V1__RegisterRequest__MetadataEntry Entry;

/* Encodes req into a malloc'd buffer of exactly its size, so ASan and valgrind see overreads. */
static uint8_t *
encode(const Request *req, size_t *len)
{
	*len         = protobuf_c_message_get_packed_size(&req->base);
	uint8_t *buf = malloc(*len > 0 ? *len : 1);
	assert_non_null(buf);
	protobuf_c_message_pack(&req->base, buf);
	return buf;
}

/* The scan on an exact-size copy of bytes. */
static int
scan_bytes(const void *bytes, size_t len, dsi_wirescan *out)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	memcpy(copy, bytes, len);
	int rv = dsi_wirescan_run(&discovery__v1__request__descriptor, copy, len, out);
	free(copy);
	return rv;
}

/* A register request with n metadata entries (key "k<i>", value "v"). */
typedef struct regbuild {
	Request                        req;
	Discovery__V1__RegisterRequest rr;
	Entry                          ents[80];
	Entry                         *ptrs[80];
	char                           keys[80][8];
} regbuild;

static void
regbuild_init(regbuild *b, size_t n)
{
	discovery__v1__request__init(&b->req);
	discovery__v1__register_request__init(&b->rr);
	b->rr.service  = "svc";
	b->rr.endpoint = "http://127.0.0.1:1";
	for (size_t i = 0; i < n; i++) {
		discovery__v1__register_request__metadata_entry__init(&b->ents[i]);
		snprintf(b->keys[i], sizeof(b->keys[i]), "k%zu", i);
		b->ents[i].key   = b->keys[i];
		b->ents[i].value = "v";
		b->ptrs[i]       = &b->ents[i];
	}
	b->rr.metadata   = b->ptrs;
	b->rr.n_metadata = n;
	b->req.call_case = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	b->req.register_ = &b->rr;
}

static void
test_counts_fields_and_entries(void **state)
{
	regbuild    *b = malloc(sizeof(*b));
	dsi_wirescan s;
	size_t       len;
	(void) state;

	for (size_t n = 0; n <= 70; n += 7) {
		regbuild_init(b, n);
		b->req.auth_token = "tok";
		uint8_t *buf      = encode(&b->req, &len);
		assert_int_equal(scan_bytes(buf, len, &s), 0);
		/* token + register; service + endpoint + n entries; key + value in each */
		assert_int_equal(s.fields, 2 + 2 + n + 2 * n);
		assert_int_equal(s.repeated, n);
		assert_int_equal(s.nul_top, 0);
		assert_string_equal(s.nul_path, "");
		free(buf);
	}
	free(b);

	/* Empty entries, each two bytes on the wire, are counted one by one. */
	uint8_t many[2 + 2 + 2 * 1000];
	many[0] = 0x52; /* field 10 (register), length-delimited */
	many[1] = 0xd0; /* 2000 as a varint: 0xd0 0x0f */
	many[2] = 0x0f;
	for (size_t i = 0; i < 1000; i++) {
		many[3 + 2 * i] = 0x1a; /* field 3 (metadata), length-delimited */
		many[4 + 2 * i] = 0x00;
	}
	assert_int_equal(scan_bytes(many, 3 + 2000, &s), 0);
	assert_int_equal(s.repeated, 1000);
	assert_int_equal(s.fields, 1001);
}

static void
test_unknown_and_repeated_fields_count(void **state)
{
	dsi_wirescan s;
	(void) state;

	/* Field 99 varint, field 98 fixed64, field 97 fixed32, field 1 twice. */
	static const uint8_t b[] = { 0x98, 0x06, 0x05, 0x91, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0x8d,
		0x06, 1, 2, 3, 4, 0x0a, 0x01, 'a', 0x0a, 0x00 };
	assert_int_equal(scan_bytes(b, sizeof(b), &s), 0);
	assert_int_equal(s.fields, 5);
	assert_int_equal(s.repeated, 0);
}

static void
test_finds_nul_in_every_string(void **state)
{
	static const struct {
		const char *path;
		unsigned    top;
	} cases[] = {
		{ "auth_token", 1 },
		{ "register.service", 10 },
		{ "register.endpoint", 10 },
		{ "register.health_path", 10 },
		{ "register.metadata.key", 10 },
		{ "register.metadata.value", 10 },
	};
	regbuild    *b = malloc(sizeof(*b));
	dsi_wirescan s;
	size_t       len;
	(void) state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		regbuild_init(b, 2);
		b->req.auth_token = "tok";
		uint8_t *buf      = encode(&b->req, &len);
		/* Turn the first byte of the chosen string into a 0, on the wire. */
		const char *victim = c == 0 ? "tok"
		    : c == 1                ? "svc"
		    : c == 2                ? "http://127.0.0.1:1"
		    : c == 3                ? NULL
		    : c == 4                ? "k1"
		                            : NULL;
		if (c == 3) {
			free(buf);
			b->rr.health_path = "/hz";
			buf               = encode(&b->req, &len);
			victim            = "/hz";
		} else if (c == 5) {
			free(buf);
			b->ents[1].value = "vv";
			buf              = encode(&b->req, &len);
			victim           = "vv";
		}
		uint8_t *at = memmem(buf, len, victim, strlen(victim));
		assert_non_null(at);
		at[strlen(victim) - 1] = 0;
		assert_int_equal(scan_bytes(buf, len, &s), 0);
		assert_string_equal(s.nul_path, cases[c].path);
		assert_int_equal(s.nul_top, UINT64_C(1) << cases[c].top);
		free(buf);
	}
	free(b);

	/* Every other call's strings too. */
	Request                         req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__GetAllRequest    ga  = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	Discovery__V1__HeartbeatRequest hb  = DISCOVERY__V1__HEARTBEAT_REQUEST__INIT;
	ga.service                          = "a";
	req.call_case                       = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all                         = &ga;
	uint8_t *buf                        = encode(&req, &len);
	buf[len - 1]                        = 0;
	assert_int_equal(scan_bytes(buf, len, &s), 0);
	assert_string_equal(s.nul_path, "get_all.service");
	free(buf);
	hb.service    = "a";
	hb.endpoint   = "b";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	req.heartbeat = &hb;
	buf           = encode(&req, &len);
	buf[len - 1]  = 0;
	assert_int_equal(scan_bytes(buf, len, &s), 0);
	assert_string_equal(s.nul_path, "heartbeat.endpoint");
	free(buf);
}

/* Never stricter than protobuf-c: what the scan refuses, protobuf-c refuses too. */
static void
check_agrees(const uint8_t *buf, size_t len)
{
	dsi_wirescan s;
	if (scan_bytes(buf, len, &s) != 0) {
		ProtobufCMessage *m = protobuf_c_message_unpack(&discovery__v1__request__descriptor,
		    NULL, len, len > 0 ? buf : (const uint8_t *) "");
		if (m != NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			fail_msg("the scan refused %zu bytes protobuf-c decodes", len);
		}
	}
}

static void
test_truncated_and_garbage_input(void **state)
{
	regbuild *b = malloc(sizeof(*b));
	size_t    len;
	uint64_t  x = 88172645463325252ull; /* xorshift64 */
	(void) state;

	regbuild_init(b, 5);
	b->req.auth_token = "tok";
	b->rr.health_path = "/hz";
	b->rr.ttl_ms      = 1000;
	uint8_t *buf      = encode(&b->req, &len);
	/* Every prefix: cut anywhere, including inside a varint or a length. */
	for (size_t n = 0; n < len; n++) {
		check_agrees(buf, n);
	}
	/* Every single-byte corruption, three ways. */
	uint8_t *mut = malloc(len);
	for (size_t i = 0; i < len; i++) {
		static const uint8_t with[] = { 0x00, 0xff, 0x80 };
		for (size_t w = 0; w < 3; w++) {
			memcpy(mut, buf, len);
			mut[i] = with[w];
			check_agrees(mut, len);
		}
	}
	free(mut);
	free(buf);
	free(b);
	/* Random bytes of every length up to 64. */
	uint8_t rnd[64];
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t) round % (sizeof(rnd) + 1);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			rnd[i] = (uint8_t) x;
		}
		check_agrees(rnd, n);
	}
	/* Lengths and tags at their extremes. */
	static const uint8_t huge_len[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f };
	static const uint8_t long_len[] = { 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t long_tag[] = { 0xf8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00 };
	static const uint8_t long_vint[]
	    = { 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t group[] = { 0x0b, 0x0c };
	dsi_wirescan         s;
	assert_int_not_equal(scan_bytes(huge_len, sizeof(huge_len), &s), 0);
	assert_int_not_equal(scan_bytes(long_len, sizeof(long_len), &s), 0);
	assert_int_not_equal(scan_bytes(long_tag, sizeof(long_tag), &s), 0);
	assert_int_not_equal(scan_bytes(long_vint, sizeof(long_vint), &s), 0);
	assert_int_not_equal(scan_bytes(group, sizeof(group), &s), 0);
	check_agrees(huge_len, sizeof(huge_len));
	check_agrees(long_len, sizeof(long_len));
	check_agrees(long_tag, sizeof(long_tag));
	check_agrees(long_vint, sizeof(long_vint));
	check_agrees(group, sizeof(group));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_fields_and_entries),
		cmocka_unit_test(test_unknown_and_repeated_fields_count),
		cmocka_unit_test(test_finds_nul_in_every_string),
		cmocka_unit_test(test_truncated_and_garbage_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
