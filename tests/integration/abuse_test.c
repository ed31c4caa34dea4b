/*
 * Abuse of the real discoveryd on loopback, in two identical rounds:
 * thousands of truncated, bit-flipped, spliced and random requests over a
 * raw REQ socket; requests over --max-request-size; stalled and garbage
 * peers; 64 concurrent clients mixing every call for a bounded time. Every
 * well-formed call gets an answer, the daemon stays up, no acknowledged
 * registration is lost, and its RSS stays bounded across the rounds.
 *
 * Every random choice comes from one seeded PRNG; the seed is printed, and
 * ABUSE_SEED=<n> in the environment replays a run.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include <discovery/v1/discovery.pb-c.h>

#include "common/codec.h"
#include "support/daemon.h"
#include "support/testutil.h"
#include "common/nngutil.h"

#define MAX_REQUEST    65536 /* the daemon's --max-request-size here */
#define STR(x)         #x
#define XSTR(x)        STR(x)
#define FUZZ_PER_ROUND 3200 /* hostile requests per round */
#define FUZZ_BUF       2048 /* no hostile request is longer */
#define N_CLIENTS      64
#define N_PORTS        24   /* endpoints each client cycles through */
#define LOAD_MS        3000 /* how long the 64 clients run, per round */
#define LOAD_MAX_OPS   4000 /* and at most this many calls each */
#define LOAD_TTL_MS    600000
#define N_STALLED      16    /* raw TCP peers that misbehave during the load */
#define DROP_WAIT_MS   1000  /* "no reply" for an oversized request */
#define GROWTH_MAX_KIB 32768 /* round 2 may not grow RSS by this much */
#define DEFAULT_SEED   UINT64_C(20261127)
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031 /* Linux's, hidden without _GNU_SOURCE */
#endif

/*
 * ThreadSanitizer's shadow memory multiplies a process's RSS and its runtime
 * takes descriptors of its own: the memory bound and the descriptor limit
 * below would measure TSan, not discoveryd.
 */
#if defined(__SANITIZE_THREAD__)
#define ABUSE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ABUSE_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define ABUSE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ABUSE_ASAN 1
#endif
#endif

/* Endpoints a polled (ttl_ms 0) hostile registration may carry: nothing serves port 1. */
static const char *const polled_ok[] = { "http://127.0.0.1:1", "tcp://127.0.0.1:1" };

/* ---- the PRNG: splitmix64, so a seed replays a run exactly ---- */

typedef struct rng {
	uint64_t s;
} rng;

static uint64_t
rng_next(rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
	z          = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z          = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform enough in [0, n) for n > 0. */
static uint32_t
rng_below(rng *r, uint32_t n)
{
	return (uint32_t) (rng_next(r) % n);
}

/* ---- the fixture: one daemon for every test, killed whatever happens ---- */

typedef struct fixture {
	td_daemon   d;
	dsc_client *c; /* the test's own client, for the checks between phases */
	uint64_t    seed;
	long        rss_before, rss_round[2]; /* KiB; 0 = not measured */
} fixture;

static fixture F;

/* What each load client believes it owns: acknowledged and not deregistered since. */
typedef struct record {
	bool kept[N_PORTS];
	bool beat[N_PORTS]; /* heartbeat acknowledged since the last registration */
} record;

static record R[N_CLIENTS]; /* carried from round 1 into round 2 */

static void
endpoint_of(int client, int port, char *out, size_t n)
{
	/* Half http, half tcp; TTL registrations, so nothing is ever dialed. */
	snprintf(out, n, "%s://127.0.0.1:%d", port % 2 ? "tcp" : "http",
	    30000 + client * N_PORTS + port);
}

static void
service_of(int client, char *out, size_t n)
{
	snprintf(out, n, "load-%d", client);
}

static int
group_setup(void **state)
{
	/* Endpoints confined to loopback too, beside would_dial_out: nothing leaves the host. */
	static const char *const args[] = { "--max-request-size", XSTR(MAX_REQUEST), "--log-level",
		"info", "--allow-endpoint", "127.0.0.0/8", NULL };
	const char              *env    = getenv("ABUSE_SEED");
	(void) state;

	memset(&F, 0, sizeof(F));
	memset(R, 0, sizeof(R));
	F.seed = env != NULL ? strtoull(env, NULL, 0) : DEFAULT_SEED;
	print_message(
	    "abuse seed %" PRIu64 " (replay with ABUSE_SEED=%" PRIu64 ")\n", F.seed, F.seed);
#ifdef ABUSE_ASAN
	/*
	 * ASan parks up to 256 MiB of freed memory in its quarantine: RSS that
	 * says nothing about leaks. The daemon gets a small one, so the RSS
	 * figures mean something and recent use-after-free is still caught.
	 */
	char        opts[512];
	const char *prev = getenv("ASAN_OPTIONS");
	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16", prev != NULL ? prev : "",
	    prev != NULL && prev[0] != 0 ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
#endif
	if (td_daemon_start(&F.d, args) != 0) {
		return -1;
	}
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS; /* liveness bound, not a speed claim */
	if (dsc_client_open(&F.c, F.d.url, &o) != 0) {
		td_daemon_kill(&F.d);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	dsc_client_close(F.c);
	F.c = NULL;
	td_daemon_kill(&F.d); /* a no-op after the SIGTERM test stopped it */
	return 0;
}

/* VmRSS of pid in KiB, or -1. */
static long
rss_kib(pid_t pid)
{
	char  path[64], line[256];
	long  kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	if ((f = fopen(path, "r")) == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

/* A well-formed call on the test's client is answered: the daemon is up. */
static void
assert_serving(const char *when)
{
	dsc_error err;
	int       rv = dsc_get_all(F.c, "fuzz-0", NULL, &err);
	if (rv != 0) {
		fail_msg("daemon not serving %s: %s (%s)", when, dsc_strerror(rv), err.message);
	}
}

/* ---- hostile bytes ---- */

/* The valid requests every hostile one starts from, encoded once. */
typedef struct corpus {
	unsigned char *buf[16];
	size_t         len[16];
	size_t         n;
} corpus;

static void
corpus_add(corpus *c, const Discovery__V1__Request *req)
{
	nng_msg *m;
	assert_int_equal(dsi_pack(&req->base, &m), 0);
	assert_true(c->n < 16 && nng_msg_len(m) > 0 && nng_msg_len(m) <= FUZZ_BUF / 4);
	c->len[c->n] = nng_msg_len(m);
	c->buf[c->n] = malloc(c->len[c->n]);
	assert_non_null(c->buf[c->n]);
	memcpy(c->buf[c->n], nng_msg_body(m), c->len[c->n]);
	c->n++;
	nng_msg_free(m);
}

static void
corpus_build(corpus *c)
{
	Discovery__V1__RegisterRequest__MetadataEntry e1
	    = DISCOVERY__V1__REGISTER_REQUEST__METADATA_ENTRY__INIT,
	    e2 = DISCOVERY__V1__REGISTER_REQUEST__METADATA_ENTRY__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry *md[] = { &e1, &e2 };
	Discovery__V1__RegisterRequest                 reg  = DISCOVERY__V1__REGISTER_REQUEST__INIT;
	Discovery__V1__ResolveRequest                  res  = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	Discovery__V1__DeregisterRequest dereg = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	Discovery__V1__IsHealthyRequest  ih    = DISCOVERY__V1__IS_HEALTHY_REQUEST__INIT;
	Discovery__V1__GetAllRequest     ga    = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	Discovery__V1__HeartbeatRequest  hb    = DISCOVERY__V1__HEARTBEAT_REQUEST__INIT;
	Discovery__V1__Request           req   = DISCOVERY__V1__REQUEST__INIT;

	memset(c, 0, sizeof(*c));
	e1.key   = "zone";
	e1.value = "eu-1";
	e2.key   = "version";
	e2.value = "2.1.0";

	/* Register: a TTL one with everything set, and a polled one on port 1. */
	reg.service     = "fuzz-0";
	reg.endpoint    = "http://127.0.0.1:40001/api";
	reg.metadata    = md;
	reg.n_metadata  = 2;
	reg.health_path = "/healthz";
	reg.ttl_ms      = LOAD_TTL_MS;
	reg.weight      = 3;
	req.auth_token  = "not-checked";
	req.call_case   = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_   = &reg;
	corpus_add(c, &req);
	reg.service    = "Fuzz_1";
	reg.endpoint   = "tcp://127.0.0.1:40002";
	reg.n_metadata = 1;
	req.auth_token = "";
	corpus_add(c, &req);
	reg.service     = "fuzz-2";
	reg.endpoint    = (char *) polled_ok[0];
	reg.ttl_ms      = 0;
	reg.health_path = "";
	reg.n_metadata  = 0;
	corpus_add(c, &req);

	res.service      = "fuzz-0";
	res.healthy_only = true;
	req.call_case    = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve      = &res;
	corpus_add(c, &req);

	dereg.service  = "fuzz-1";
	dereg.endpoint = "tcp://127.0.0.1:40002";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister = &dereg;
	corpus_add(c, &req);

	ih.service     = "fuzz-0";
	ih.endpoint    = "http://127.0.0.1:40001/api";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY;
	req.is_healthy = &ih;
	corpus_add(c, &req);

	ga.service    = "fuzz-0";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all   = &ga;
	corpus_add(c, &req);

	hb.service    = "fuzz-0";
	hb.endpoint   = "http://127.0.0.1:40001/api";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	req.heartbeat = &hb;
	corpus_add(c, &req);
}

static void
corpus_free(corpus *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->buf[i]);
	}
}

typedef enum mutation {
	M_VALID,         /* unchanged: must be answered like any call */
	M_TRUNCATE,      /* cut at a random point (0 included) */
	M_FLIP,          /* 1-8 random bits flipped */
	M_TRUNCATE_FLIP, /* both */
	M_RANDOM,        /* random bytes, 0-512 of them */
	M_RANDOM_TAIL,   /* a valid prefix, then random bytes */
	M_SPLICE,        /* two valid requests back to back (merged by protobuf), flipped */
	M_INSERT,        /* random bytes inserted at a random point */
	M_BIG_VARINT,    /* a run of 0xff: huge lengths and tags */
	M_COUNT,
} mutation;

static const char *const mutation_names[M_COUNT] = { "valid", "truncate", "flip", "truncate+flip",
	"random", "random-tail", "splice", "insert", "big-varint" };

static void
flip_bits(rng *r, unsigned char *buf, size_t len)
{
	int n = 1 + (int) rng_below(r, 8);
	for (int i = 0; i < n && len > 0; i++) {
		buf[rng_below(r, (uint32_t) len)] ^= (unsigned char) (1u << rng_below(r, 8));
	}
}

static void
random_bytes(rng *r, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		buf[i] = (unsigned char) rng_next(r);
	}
}

/* Builds one hostile request of kind m into buf (FUZZ_BUF bytes); returns its length. */
static size_t
mutate(rng *r, const corpus *c, mutation m, unsigned char *buf)
{
	size_t k   = rng_below(r, (uint32_t) c->n);
	size_t len = c->len[k];
	size_t at, n;

	memcpy(buf, c->buf[k], len);
	switch (m) {
	case M_VALID:
		break;
	case M_TRUNCATE:
		len = rng_below(r, (uint32_t) len);
		break;
	case M_FLIP:
		flip_bits(r, buf, len);
		break;
	case M_TRUNCATE_FLIP:
		len = 1 + rng_below(r, (uint32_t) len);
		flip_bits(r, buf, len);
		break;
	case M_RANDOM:
		len = rng_below(r, 513);
		random_bytes(r, buf, len);
		break;
	case M_RANDOM_TAIL:
		at = rng_below(r, (uint32_t) len);
		n  = rng_below(r, 256);
		random_bytes(r, buf + at, n);
		len = at + n;
		break;
	case M_SPLICE:
		k = rng_below(r, (uint32_t) c->n);
		memcpy(buf + len, c->buf[k], c->len[k]);
		len += c->len[k];
		if (rng_below(r, 2) == 0) {
			flip_bits(r, buf, len);
		}
		break;
	case M_INSERT:
		at = rng_below(r, (uint32_t) len + 1);
		n  = 1 + rng_below(r, 64);
		memmove(buf + at + n, buf + at, len - at);
		random_bytes(r, buf + at, n);
		len += n;
		break;
	case M_BIG_VARINT:
		at = rng_below(r, (uint32_t) len);
		n  = 1 + rng_below(r, 12);
		n  = at + n > len ? len - at : n;
		memset(buf + at, 0xff, n);
		break;
	case M_COUNT:
		break;
	}
	return len;
}

/*
 * True when the bytes decode to a registration the server would poll at an
 * address other than the port-1 ones: a flipped host could be a real,
 * non-loopback machine, and this test stays on loopback.
 */
static bool
would_dial_out(const unsigned char *buf, size_t len)
{
	Discovery__V1__Request *req = NULL;
	bool                    out = false;

	if (dsi_unpack(&discovery__v1__request__descriptor, buf, len, (ProtobufCMessage **) &req)
	    != 0) {
		return false;
	}
	if (req->call_case == DISCOVERY__V1__REQUEST__CALL_REGISTER
	    && req->register_->ttl_ms == 0) {
		out = strcmp(req->register_->endpoint, polled_ok[0]) != 0
		    && strcmp(req->register_->endpoint, polled_ok[1]) != 0;
	}
	protobuf_c_message_free_unpacked(&req->base, NULL);
	return out;
}

static void
hex(const unsigned char *buf, size_t len, char *out, size_t n)
{
	size_t w = 0;
	out[0]   = 0;
	for (size_t i = 0; i < len && w + 3 < n; i++) {
		w += (size_t) snprintf(out + w, n - w, "%02x", buf[i]);
	}
}

static nng_socket
raw_req(int recv_ms)
{
	nng_socket s;
	assert_int_equal(nng_req0_open(&s), 0);
	/* Resend off: a resent request would be a second call. */
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, recv_ms), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TU_LIVENESS_MS), 0);
	assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0), 0); /* any reply size */
	assert_int_equal(nng_dial(s, F.d.url, NULL, 0), 0);
	return s;
}

#define RAW_NOT_A_RESPONSE (-1) /* beside nng's error numbers */

/* Why a raw call got no Response, in words. */
static const char *
raw_strerror(int rv)
{
	return rv == RAW_NOT_A_RESPONSE ? "the reply is not a Response" : nng_strerror(rv);
}

/*
 * Sends len bytes and returns the decoded Response, or NULL with *rv set
 * (an nng error, or RAW_NOT_A_RESPONSE) when no usable reply came.
 */
static Discovery__V1__Response *
raw_call(nng_socket s, const void *buf, size_t len, int *rv)
{
	Discovery__V1__Response *resp = NULL;
	char                    *reply;
	size_t                   rlen;

	if ((*rv = nng_send(s, (void *) buf, len, 0)) != 0) {
		return NULL;
	}
	if ((*rv = nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC)) != 0) {
		return NULL;
	}
	if (dsi_unpack(
	        &discovery__v1__response__descriptor, reply, rlen, (ProtobufCMessage **) &resp)
	    != 0) {
		*rv = RAW_NOT_A_RESPONSE;
	}
	nng_free(reply, rlen);
	return resp;
}

/*
 * The contract for one hostile request: an answer that decodes as a
 * Response, never INTERNAL, INVALID_ARGUMENT for bytes that are not a
 * Request, a reason with every failure, and the matching result on success.
 * Returns NULL or why not (static text).
 */
static const char *
judge(const unsigned char *buf, size_t len, const Discovery__V1__Response *resp)
{
	Discovery__V1__Request *req = NULL;
	const char             *why = NULL;

	if (resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL) {
		return "STATUS_INTERNAL";
	}
	if (resp->status != DISCOVERY__V1__STATUS_CODE__STATUS_OK && resp->message[0] == 0) {
		return "a failure without a message";
	}
	if (dsi_unpack(&discovery__v1__request__descriptor, buf, len, (ProtobufCMessage **) &req)
	    != 0) {
		return resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT
		    ? NULL
		    : "undecodable bytes not answered INVALID_ARGUMENT";
	}
	if (req->call_case == DISCOVERY__V1__REQUEST__CALL__NOT_SET) {
		if (resp->status != DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT
		    && resp->status != DISCOVERY__V1__STATUS_CODE__STATUS_UNIMPLEMENTED) {
			why = "a request with no known call not refused";
		}
	} else if (resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_OK
	    && (int) resp->result_case != (int) req->call_case) {
		why = "an OK reply whose result does not match the call";
	}
	protobuf_c_message_free_unpacked(&req->base, NULL);
	return why;
}

static void
hostile_round(int round)
{
	rng           r = { F.seed };
	corpus        c;
	unsigned char buf[FUZZ_BUF];
	int           by_kind[M_COUNT] = { 0 }, by_status[17] = { 0 }, skipped = 0;

	corpus_build(&c);
	nng_socket s = raw_req(TU_LIVENESS_MS);
	for (int i = 0; i < FUZZ_PER_ROUND; i++) {
		mutation m   = i % 20 == 0 ? M_VALID : (mutation) (1 + rng_below(&r, M_COUNT - 1));
		size_t   len = mutate(&r, &c, m, buf);
		for (int tries = 0; would_dial_out(buf, len); tries++) {
			assert_true(tries < 100);
			skipped++;
			len = mutate(&r, &c, m, buf);
		}
		by_kind[m]++;

		int                      rv;
		Discovery__V1__Response *resp = raw_call(s, buf, len, &rv);
		const char *why = resp != NULL ? judge(buf, len, resp) : raw_strerror(rv);
		if (why != NULL) {
			char h[2 * 96 + 1];
			hex(buf, len < 96 ? len : 96, h, sizeof(h));
			fail_msg("round %d request %d (%s, %zu bytes, seed %" PRIu64 "): %s "
			         "(status %d, \"%s\"); first bytes %s",
			    round, i, mutation_names[m], len, F.seed, why,
			    resp != NULL ? (int) resp->status : -1,
			    resp != NULL ? resp->message : "", h);
		}
		by_status[resp->status < 17 ? resp->status : 0]++;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	dsi_close_bounded(s, DSI_CLOSE_BOUND_MS, NULL); /* nng 1.5.2 */
	corpus_free(&c);
	char kinds[256];
	int  w = 0;
	for (int m = 0; m < M_COUNT; m++) {
		w += snprintf(kinds + w, sizeof(kinds) - (size_t) w, "%s%d %s", m ? ", " : "",
		    by_kind[m], mutation_names[m]);
	}
	print_message("round %d: %d hostile requests (%s; %d re-drawn to stay on loopback), "
	              "each answered: OK %d, INVALID_ARGUMENT %d, NOT_FOUND %d, other %d\n",
	    round, FUZZ_PER_ROUND, kinds, skipped, by_status[0], by_status[3], by_status[5],
	    FUZZ_PER_ROUND - by_status[0] - by_status[3] - by_status[5]);
	assert_serving("after the hostile requests");
}

/* ---- sizes around the limit ---- */

/* A well-formed Resolve of exactly len bytes, padded with auth_token (the caller frees). */
static unsigned char *
resolve_of_size(size_t len)
{
	Discovery__V1__ResolveRequest res = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	Discovery__V1__Request        req = DISCOVERY__V1__REQUEST__INIT;
	size_t                        pad = len;
	char                         *tok = malloc(len + 1);
	unsigned char                *out = malloc(len);

	assert_true(tok != NULL && out != NULL);
	res.service    = "fuzz-0";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve    = &res;
	req.auth_token = tok;
	for (int i = 0; i < 8; i++) { /* converges in 2: the varint length settles */
		memset(tok, 't', pad);
		tok[pad]    = 0;
		size_t size = protobuf_c_message_get_packed_size(&req.base);
		if (size == len) {
			break;
		}
		pad = pad + len - size;
	}
	assert_int_equal(protobuf_c_message_get_packed_size(&req.base), len);
	protobuf_c_message_pack(&req.base, out);
	free(tok);
	return out;
}

static void
oversized_round(int round)
{
	/* A request of exactly --max-request-size is answered; one byte more is not. */
	static const size_t fits  = MAX_REQUEST;
	static const size_t big[] = { MAX_REQUEST + 1, 128 * 1024, 4 * 1024 * 1024 };
	enum { N_BIG = sizeof(big) / sizeof(big[0]) };
	nng_socket s[N_BIG];
	nng_aio   *aio[N_BIG];
	int        rv;

	/* Just under the limit: a full answer. */
	unsigned char           *body = resolve_of_size(fits);
	nng_socket               ok   = raw_req(TU_LIVENESS_MS);
	Discovery__V1__Response *resp = raw_call(ok, body, fits, &rv);
	if (resp == NULL) {
		fail_msg("round %d: a %zu-byte request was not answered: %s", round, fits,
		    raw_strerror(rv));
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	free(body);

	/* Over it: every one in flight at once, each on its own connection. */
	for (size_t i = 0; i < N_BIG; i++) {
		nng_msg *m;
		s[i] = raw_req(DROP_WAIT_MS);
		assert_int_equal(nng_msg_alloc(&m, big[i]), 0);
		memset(nng_msg_body(m), 0, big[i]);
		assert_int_equal(nng_sendmsg(s[i], m, 0), 0);
		assert_int_equal(nng_aio_alloc(&aio[i], NULL, NULL), 0);
		nng_aio_set_timeout(aio[i], DROP_WAIT_MS);
		nng_recv_aio(s[i], aio[i]);
	}
	for (size_t i = 0; i < N_BIG; i++) {
		nng_aio_wait(aio[i]);
		rv = nng_aio_result(aio[i]);
		if (rv == 0) {
			nng_msg_free(nng_aio_get_msg(aio[i]));
			fail_msg("round %d: a %zu-byte request over the %d-byte limit was answered",
			    round, big[i], MAX_REQUEST);
		}
		nng_aio_free(aio[i]);
		dsi_close_bounded(s[i], DSI_CLOSE_BOUND_MS, NULL); /* nng 1.5.2 */
	}

	/* The connection that behaved is still answered, and so is a new one. */
	body = resolve_of_size(64);
	resp = raw_call(ok, body, 64, &rv);
	if (resp == NULL) {
		fail_msg("round %d: no answer after the oversized requests: %s", round,
		    raw_strerror(rv));
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	free(body);
	dsi_close_bounded(ok, DSI_CLOSE_BOUND_MS, NULL); /* nng 1.5.2 */
	assert_serving("after the oversized requests");
	print_message("round %d: %zu bytes answered; %zu, %zu and %zu bytes dropped\n", round, fits,
	    big[0], big[1], big[2]);
}

/* ---- misbehaving TCP peers, held open during the load ---- */

static int
tcp_port(const char *url)
{
	const char *colon = strrchr(url, ':');
	return colon != NULL ? atoi(colon + 1) : 0;
}

static int
tcp_connect(int port)
{
	struct sockaddr_in sa;
	int                fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0) {
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_port        = htons((uint16_t) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Four kinds, four of each: half a message then silence; a handshake then
 * silence; an HTTP request instead of a handshake; a length over the limit.
 * Sends are best effort (and never raise SIGPIPE): the server may already
 * have hung up.
 */
static void
stalled_open(int *fds)
{
	static const unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 }; /* req0 */
	static const char          http[]   = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	int                        port     = tcp_port(F.d.url);

	for (int i = 0; i < N_STALLED; i++) {
		unsigned char hdr[8 + 12] = { 0 };
		uint64_t      n;
		fds[i] = tcp_connect(port);
		assert_true(fds[i] >= 0);
		switch (i % 4) {
		case 0: /* 1,000 bytes announced, 12 sent */
			n = 1000;
			for (int b = 0; b < 8; b++) {
				hdr[b] = (unsigned char) (n >> (56 - 8 * b));
			}
			hdr[8] = 0x80; /* a request ID */
			(void) send(fds[i], hello, sizeof(hello), MSG_NOSIGNAL);
			(void) send(fds[i], hdr, sizeof(hdr), MSG_NOSIGNAL);
			break;
		case 1:
			(void) send(fds[i], hello, sizeof(hello), MSG_NOSIGNAL);
			break;
		case 2:
			(void) send(fds[i], http, sizeof(http) - 1, MSG_NOSIGNAL);
			break;
		case 3: /* 2^40 bytes announced */
			n = UINT64_C(1) << 40;
			for (int b = 0; b < 8; b++) {
				hdr[b] = (unsigned char) (n >> (56 - 8 * b));
			}
			(void) send(fds[i], hello, sizeof(hello), MSG_NOSIGNAL);
			(void) send(fds[i], hdr, 8, MSG_NOSIGNAL);
			break;
		}
	}
}

static void
stalled_close(int *fds)
{
	for (int i = 0; i < N_STALLED; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
		}
	}
}

/* ---- 64 concurrent clients ---- */

typedef struct loader {
	int     id;
	int     round;
	int64_t deadline; /* tu_now_ms() */
	record *rec;
	long    calls;
	char    fail[768];
} loader;

/* True (and the failure recorded) unless rv is one of the allowed outcomes. */
static bool
bad(loader *w, const char *op, int rv, int want, int or_want, const dsc_error *err)
{
	if (rv == want || rv == or_want) {
		return false;
	}
	snprintf(w->fail, sizeof(w->fail), "round %d client %d call %ld %s: %s (%d), wanted %s: %s",
	    w->round, w->id, w->calls, op, dsc_strerror(rv), rv, dsc_strerror(want),
	    rv != 0 ? err->message : "");
	return true;
}

static int
kept_count(const record *rec)
{
	int n = 0;
	for (int k = 0; k < N_PORTS; k++) {
		n += rec->kept[k];
	}
	return n;
}

/* Which port an endpoint of this client is, or -1. */
static int
port_index(int client, const char *ep)
{
	for (int k = 0; k < N_PORTS; k++) {
		char mine[64];
		endpoint_of(client, k, mine, sizeof(mine));
		if (strcmp(mine, ep) == 0) {
			return k;
		}
	}
	return -1;
}

/*
 * One step: a call chosen at random, and the answer it must get given what
 * this client alone has done to its own service. Returns false on failure.
 */
static bool
load_step(loader *w, dsc_client *c, rng *r)
{
	char      svc[32], other[32], ep[64];
	record   *rec  = w->rec;
	int       k    = (int) rng_below(r, N_PORTS);
	uint32_t  pick = rng_below(r, 100);
	dsc_error err;
	int       rv;

	memset(&err, 0, sizeof(err));
	service_of(w->id, svc, sizeof(svc));
	service_of((int) rng_below(r, N_CLIENTS), other, sizeof(other));
	endpoint_of(w->id, k, ep, sizeof(ep));
	w->calls++;

	if (pick < 30) {
		char             iter[24];
		dsc_kv           md[] = { { "client", svc }, { "call", iter } };
		dsc_registration reg  = { .service = svc,
			 .endpoint                 = ep,
			 .metadata                 = md,
			 .n_metadata               = 2,
			 .ttl_ms                   = LOAD_TTL_MS,
			 .weight                   = 1 + (uint32_t) k };
		dsc_instance    *x    = NULL;
		snprintf(iter, sizeof(iter), "%ld", w->calls);
		rv = dsc_register(c, &reg, &x, &err);
		if (bad(w, "register", rv, 0, 0, &err)) {
			return false;
		}
		if (strcmp(x->endpoint, ep) != 0
		    || x->health != (rec->beat[k] ? DSC_HEALTH_HEALTHY : DSC_HEALTH_UNKNOWN)) {
			snprintf(w->fail, sizeof(w->fail), "client %d: register %s answered %s, %s",
			    w->id, ep, x->endpoint, dsc_health_name(x->health));
			dsc_instance_free(x);
			return false;
		}
		dsc_instance_free(x);
		rec->kept[k] = true;
	} else if (pick < 45) {
		uint32_t removed = 99;
		rv               = dsc_deregister(c, svc, ep, &removed, &err);
		if (bad(w, "deregister", rv, 0, 0, &err)) {
			return false;
		}
		if (removed != (rec->kept[k] ? 1u : 0u)) {
			snprintf(w->fail, sizeof(w->fail), "client %d: deregister %s removed %u",
			    w->id, ep, removed);
			return false;
		}
		rec->kept[k] = rec->beat[k] = false;
	} else if (pick < 60) {
		dsc_instance *x = NULL;
		rv              = dsc_resolve(c, svc, false, &x, &err);
		if (bad(w, "resolve", rv, kept_count(rec) > 0 ? 0 : DSC_ENOTFOUND, -1, &err)) {
			return false;
		}
		if (x != NULL) {
			int at = port_index(w->id, x->endpoint);
			if (at < 0 || !rec->kept[at]) {
				snprintf(w->fail, sizeof(w->fail),
				    "client %d: resolve gave %s, which it does not hold", w->id,
				    x->endpoint);
				dsc_instance_free(x);
				return false;
			}
			dsc_instance_free(x);
		}
	} else if (pick < 70) {
		bool       healthy = false;
		dsc_health st      = DSC_HEALTH_UNKNOWN;
		rv                 = dsc_is_healthy(c, svc, ep, &healthy, &st, &err);
		if (bad(w, "is_healthy", rv, rec->kept[k] ? 0 : DSC_ENOTFOUND, -1, &err)) {
			return false;
		}
		if (rv == 0 && healthy != rec->beat[k]) {
			snprintf(w->fail, sizeof(w->fail), "client %d: is_healthy %s says %s",
			    w->id, ep, dsc_health_name(st));
			return false;
		}
	} else if (pick < 80) {
		rv = dsc_heartbeat(c, svc, ep, NULL, &err);
		if (bad(w, "heartbeat", rv, rec->kept[k] ? 0 : DSC_ENOTFOUND, -1, &err)) {
			return false;
		}
		rec->beat[k] = rec->kept[k];
	} else if (pick < 90) {
		dsc_instance_list *l = NULL;
		rv                   = dsc_get_all(c, svc, &l, &err);
		if (bad(w, "get_all", rv, 0, 0, &err)) {
			return false;
		}
		bool match = l->count == (size_t) kept_count(rec);
		for (size_t i = 0; match && i < l->count; i++) {
			int at = port_index(w->id, l->items[i].endpoint);
			match  = at >= 0 && rec->kept[at];
		}
		if (!match) {
			snprintf(w->fail, sizeof(w->fail),
			    "client %d: get_all lists %zu instances, it holds %d", w->id, l->count,
			    kept_count(rec));
		}
		dsc_instance_list_free(l);
		return match;
	} else if (pick < 96) {
		/* Another client's service: whatever it holds right now. */
		rv = dsc_resolve(c, other, false, NULL, &err);
		if (bad(w, "resolve other", rv, 0, DSC_ENOTFOUND, &err)) {
			return false;
		}
	} else if (pick < 97) {
		rv = dsc_get_all(c, NULL, NULL, &err);
		if (bad(w, "get_all every service", rv, 0, 0, &err)) {
			return false;
		}
	} else if (pick < 99) {
		/* Well-formed but invalid: refused, with an answer. */
		dsc_registration reg = { .service = "Not A Name!", .endpoint = ep };
		rv                   = dsc_register(c, &reg, NULL, &err);
		if (bad(w, "register with a bad name", rv, DSC_EINVAL, -1, &err)) {
			return false;
		}
	} else {
		uint32_t removed = 99;
		rv               = dsc_deregister(c, svc, NULL, &removed, &err);
		if (bad(w, "deregister every instance", rv, 0, 0, &err)) {
			return false;
		}
		if (removed != (uint32_t) kept_count(rec)) {
			snprintf(w->fail, sizeof(w->fail),
			    "client %d: deregister of the service removed %u, it held %d", w->id,
			    removed, kept_count(rec));
			return false;
		}
		memset(rec, 0, sizeof(*rec));
	}
	return true;
}

static void *
load_main(void *p)
{
	loader            *w = p;
	rng                r = { F.seed ^ ((uint64_t) w->round << 32) ^ (uint64_t) (w->id + 1) };
	dsc_client        *c;
	dsc_client_options o;

	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS; /* a missing answer, not a slow one */
	if (dsc_client_open(&c, F.d.url, &o) != 0) {
		snprintf(w->fail, sizeof(w->fail), "client %d: open failed", w->id);
		return NULL;
	}
	while (w->calls < LOAD_MAX_OPS && tu_now_ms() < w->deadline && load_step(w, c, &r)) { }
	dsc_client_close(c);
	return NULL;
}

/* Every acknowledged registration is in GetAll, and nothing that was deregistered. */
static void
verify_records(int round)
{
	dsc_instance_list *l;
	dsc_error          err;
	int                want = 0, seen = 0;

	for (int i = 0; i < N_CLIENTS; i++) {
		want += kept_count(&R[i]);
	}
	int rv = dsc_get_all(F.c, NULL, &l, &err);
	if (rv != 0) {
		fail_msg("round %d: get_all: %s (%s)", round, dsc_strerror(rv), err.message);
	}
	for (size_t i = 0; i < l->count; i++) {
		int id;
		if (sscanf(l->items[i].service, "load-%d", &id) != 1) {
			continue;
		}
		int k = id >= 0 && id < N_CLIENTS ? port_index(id, l->items[i].endpoint) : -1;
		if (k < 0 || !R[id].kept[k]) {
			char what[160];
			snprintf(
			    what, sizeof(what), "%s %s", l->items[i].service, l->items[i].endpoint);
			dsc_instance_list_free(l);
			fail_msg("round %d: %s is registered but was deregistered or never "
			         "acknowledged",
			    round, what);
		}
		seen++;
	}
	dsc_instance_list_free(l);
	print_message("round %d: %d acknowledged registrations held, %d found in GetAll\n", round,
	    want, seen);
	assert_int_equal(seen, want); /* none lost */
}

static void
load_round(int round)
{
	pthread_t t[N_CLIENTS];
	loader   *w = calloc(N_CLIENTS, sizeof(*w));
	int       fds[N_STALLED];
	int64_t   start = tu_now_ms();
	long      calls = 0;

	assert_non_null(w);
	stalled_open(fds);
	for (int i = 0; i < N_CLIENTS; i++) {
		w[i] = (loader) {
			.id = i, .round = round, .deadline = start + LOAD_MS, .rec = &R[i]
		};
		assert_int_equal(pthread_create(&t[i], NULL, load_main, &w[i]), 0);
	}
	for (int i = 0; i < N_CLIENTS; i++) {
		pthread_join(t[i], NULL);
	}
	stalled_close(fds);
	for (int i = 0; i < N_CLIENTS; i++) {
		calls += w[i].calls;
	}
	for (int i = 0; i < N_CLIENTS; i++) {
		if (w[i].fail[0] != 0) {
			char msg[sizeof(w[i].fail)];
			snprintf(msg, sizeof(msg), "%s", w[i].fail);
			free(w);
			fail_msg("%s (seed %" PRIu64 ")", msg, F.seed);
		}
	}
	free(w);
	print_message("round %d: %d clients made %ld calls in %" PRId64
	              " ms, every one answered as expected\n",
	    round, N_CLIENTS, calls, tu_now_ms() - start);
	verify_records(round);
	assert_serving("after the concurrent clients");
}

/* ---- the tests ---- */

static void
abuse_round(int round)
{
	if (round == 1) {
		F.rss_before = rss_kib(F.d.pid);
		assert_true(F.rss_before > 0);
	}
	hostile_round(round);
	oversized_round(round);
	load_round(round);
	F.rss_round[round - 1] = rss_kib(F.d.pid);
	assert_true(F.rss_round[round - 1] > 0); /* still running */
}

static void
test_round_one(void **state)
{
	(void) state;
	abuse_round(1);
}

static void
test_round_two(void **state)
{
	(void) state;
	abuse_round(2);
}

static void
test_memory_is_bounded(void **state)
{
	(void) state;
	print_message("RSS before %ld KiB, after %ld KiB, after round 2 %ld KiB\n", F.rss_before,
	    F.rss_round[0], F.rss_round[1]);
	assert_true(F.rss_before > 0 && F.rss_round[0] > 0 && F.rss_round[1] > 0);
	/*
	 * A sanity bound, not a measurement. Round 2 repeats round 1 on a
	 * registry of the same size, so what it adds is what requests leave
	 * behind; tens of thousands of calls make any per-call leak show. The
	 * sanitizer build's LeakSanitizer catches exact leaks at the daemon's exit.
	 */
	if (F.rss_round[1] - F.rss_round[0] >= GROWTH_MAX_KIB) {
		fail_msg("round 2 grew RSS by %ld KiB (bound %d KiB)",
		    F.rss_round[1] - F.rss_round[0], GROWTH_MAX_KIB);
	}
}

static void
test_sigterm_exits_zero(void **state)
{
	(void) state;
	assert_serving("at the end");
	assert_int_equal(td_daemon_stop(&F.d), 0);
}

/* ---- strings with NUL bytes, raw metadata counts, decode cost (issue 18) ---- */

/* Packs req, turns every '@' on the wire into a 0 byte, and sends it raw. */
static Discovery__V1__Response *
call_with_nuls(nng_socket s, const Discovery__V1__Request *req)
{
	nng_msg                 *m;
	Discovery__V1__Response *resp;
	int                      rv;

	assert_int_equal(dsi_pack(&req->base, &m), 0);
	char *b = nng_msg_body(m);
	for (size_t i = 0; i < nng_msg_len(m); i++) {
		b[i] = b[i] == '@' ? 0 : b[i];
	}
	resp = raw_call(s, b, nng_msg_len(m), &rv);
	nng_msg_free(m);
	if (resp == NULL) {
		fail_msg("no Response: %s", raw_strerror(rv));
	}
	return resp;
}

static void
expect_refused(Discovery__V1__Response *resp, Discovery__V1__StatusCode st, const char *fragment)
{
	if (resp->status != st || strstr(resp->message, fragment) == NULL) {
		fail_msg("status %d \"%s\", wanted %d with \"%s\"", resp->status, resp->message, st,
		    fragment);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* The service is not registered: nothing was stored under a name cut short. */
static void
assert_unregistered(const char *service)
{
	dsc_error err;
	int       rv = dsc_resolve(F.c, service, false, NULL, &err);
	if (rv != DSC_ENOTFOUND) {
		fail_msg("resolve %s: %s, wanted not found", service, dsc_strerror(rv));
	}
}

static void
test_nul_bytes_in_every_string_field(void **state)
{
	const Discovery__V1__StatusCode BAD = DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT;
	Discovery__V1__RegisterRequest__MetadataEntry e
	    = DISCOVERY__V1__REGISTER_REQUEST__METADATA_ENTRY__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry *md[] = { &e };
	Discovery__V1__RegisterRequest                 reg  = DISCOVERY__V1__REGISTER_REQUEST__INIT;
	Discovery__V1__ResolveRequest                  res  = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	Discovery__V1__DeregisterRequest dereg = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	Discovery__V1__IsHealthyRequest  ih    = DISCOVERY__V1__IS_HEALTHY_REQUEST__INIT;
	Discovery__V1__GetAllRequest     ga    = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	Discovery__V1__HeartbeatRequest  hb    = DISCOVERY__V1__HEARTBEAT_REQUEST__INIT;
	Discovery__V1__Request           req   = DISCOVERY__V1__REQUEST__INIT;
	nng_socket                       s     = raw_req(TU_LIVENESS_MS);
	(void) state;

	req.call_case = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_ = &reg;
	reg.ttl_ms    = LOAD_TTL_MS;
	/* Each string of a Register in turn; the others are valid. */
	reg.service  = "nul@evil";
	reg.endpoint = "http://127.0.0.1:40011";
	expect_refused(call_with_nuls(s, &req), BAD, "register.service holds a NUL");
	assert_unregistered("nul");
	reg.service  = "nul-endpoint";
	reg.endpoint = "http://127.0.0.1:40011@http://evil/";
	expect_refused(call_with_nuls(s, &req), BAD, "register.endpoint holds a NUL");
	reg.endpoint    = "http://127.0.0.1:40011";
	reg.health_path = "/h@ealth";
	expect_refused(call_with_nuls(s, &req), BAD, "register.health_path holds a NUL");
	reg.health_path = "";
	reg.metadata    = md;
	reg.n_metadata  = 1;
	e.key           = "k@=x y";
	e.value         = "v";
	expect_refused(call_with_nuls(s, &req), BAD, "register.metadata.key holds a NUL");
	e.key   = "k";
	e.value = "v@junk";
	expect_refused(call_with_nuls(s, &req), BAD, "register.metadata.value holds a NUL");
	assert_unregistered("nul-endpoint");
	/* No token is configured here: a token holding a 0 is still refused. */
	e.value        = "v";
	req.auth_token = "s3cret@junk";
	expect_refused(call_with_nuls(s, &req), BAD, "auth_token holds a NUL");
	assert_unregistered("nul-endpoint");
	req.auth_token = "";

	/* Every other call's strings. */
	res.service   = "fuzz@0";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve   = &res;
	expect_refused(call_with_nuls(s, &req), BAD, "resolve.service holds a NUL");
	dereg.service  = "fuzz-0";
	dereg.endpoint = "@";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister = &dereg;
	expect_refused(call_with_nuls(s, &req), BAD, "deregister.endpoint holds a NUL");
	dereg.service  = "fuzz@0";
	dereg.endpoint = "";
	expect_refused(call_with_nuls(s, &req), BAD, "deregister.service holds a NUL");
	ih.service     = "fuzz@0";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY;
	req.is_healthy = &ih;
	expect_refused(call_with_nuls(s, &req), BAD, "is_healthy.service holds a NUL");
	ih.service  = "fuzz-0";
	ih.endpoint = "http://127.0.0.1:40001/api@";
	expect_refused(call_with_nuls(s, &req), BAD, "is_healthy.endpoint holds a NUL");
	ga.service    = "fuzz@0";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all   = &ga;
	expect_refused(call_with_nuls(s, &req), BAD, "get_all.service holds a NUL");
	hb.service    = "fuzz@0";
	hb.endpoint   = "http://127.0.0.1:40001/api";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	req.heartbeat = &hb;
	expect_refused(call_with_nuls(s, &req), BAD, "heartbeat.service holds a NUL");
	hb.service  = "fuzz-0";
	hb.endpoint = "http://127.0.0.1:40001/api@";
	expect_refused(call_with_nuls(s, &req), BAD, "heartbeat.endpoint holds a NUL");
	dsi_close_bounded(s, 1000 * tu_slowdown(), NULL);
	assert_serving("after NUL bytes");
}

static void
test_nul_in_the_token_is_permission_denied(void **state)
{
	char                           dir[256], path[300], url[128];
	td_daemon                      d;
	Discovery__V1__RegisterRequest reg = DISCOVERY__V1__REGISTER_REQUEST__INIT;
	Discovery__V1__Request         req = DISCOVERY__V1__REQUEST__INIT;
	(void) state;

	assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "abuse-token"), 0);
	snprintf(path, sizeof(path), "%s/token", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("s3cret\n", f);
	fclose(f);
	chmod(path, 0600);
	const char *const args[]
	    = { "--token-file", path, "--allow-endpoint", "127.0.0.0/8", NULL };
	assert_int_equal(td_daemon_start(&d, args), 0);
	snprintf(url, sizeof(url), "%s", F.d.url);
	snprintf(F.d.url, sizeof(F.d.url), "%s", d.url); /* raw_req dials F.d.url */
	nng_socket s = raw_req(TU_LIVENESS_MS);
	snprintf(F.d.url, sizeof(F.d.url), "%s", url);

	reg.service    = "nul-token";
	reg.endpoint   = "http://127.0.0.1:40012";
	reg.ttl_ms     = LOAD_TTL_MS;
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_  = &reg;
	req.auth_token = "s3cret@junk";
	expect_refused(
	    call_with_nuls(s, &req), DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED, "NUL");
	req.auth_token                = "s3cret";
	Discovery__V1__Response *resp = call_with_nuls(s, &req);
	assert_int_equal(resp->status, DISCOVERY__V1__STATUS_CODE__STATUS_OK);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	dsi_close_bounded(s, 1000 * tu_slowdown(), NULL);
	assert_int_equal(td_daemon_stop(&d), 0);
	tu_rmtree(dir);
}

/* Appends the varint v at b + *n. */
static void
put_varint(unsigned char *b, size_t *n, size_t v)
{
	for (; v >= 0x80; v >>= 7) {
		b[(*n)++] = (unsigned char) (v | 0x80);
	}
	b[(*n)++] = (unsigned char) v;
}

static void
test_metadata_and_decode_cost_are_bounded(void **state)
{
	size_t         cap = MAX_REQUEST, n = 0, body = MAX_REQUEST - 16;
	unsigned char *b = malloc(cap);
	nng_socket     s = raw_req(TU_LIVENESS_MS);
	int            rv;
	(void) state;
	assert_non_null(b);

	/* Nearly 64 KiB of empty metadata entries: refused before decoding. */
	b[n++] = 0x52; /* Request.register */
	put_varint(b, &n, body);
	for (size_t i = 0; i < body / 2; i++) {
		b[n++] = 0x1a; /* RegisterRequest.metadata, empty */
		b[n++] = 0x00;
	}
	Discovery__V1__Response *resp = raw_call(s, b, n, &rv);
	assert_non_null(resp);
	expect_refused(
	    resp, DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED, "entries as sent");

	/* One key 65 times: one key once de-duplicated, 65 entries of work. */
	n = 0;
	unsigned char reg[1024];
	size_t        rn = 0;
	reg[rn++]        = 0x0a;
	reg[rn++]        = 3;
	memcpy(reg + rn, "dup", 3);
	rn += 3;
	reg[rn++] = 0x12;
	reg[rn++] = 22;
	memcpy(reg + rn, "http://127.0.0.1:40013", 22);
	rn += 22;
	reg[rn++] = 0x28; /* ttl_ms */
	put_varint(reg, &rn, LOAD_TTL_MS);
	for (int i = 0; i < 65; i++) {
		static const unsigned char entry[] = { 0x1a, 6, 0x0a, 1, 'k', 0x12, 1, 'v' };
		memcpy(reg + rn, entry, sizeof(entry));
		rn += sizeof(entry);
	}
	b[n++] = 0x52;
	put_varint(b, &n, rn);
	memcpy(b + n, reg, rn);
	n += rn;
	resp = raw_call(s, b, n, &rv);
	assert_non_null(resp);
	expect_refused(
	    resp, DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED, "duplicate keys count");
	assert_unregistered("dup");

	/* Thousands of unknown fields, which protobuf-c would copy one by one. */
	n      = 0;
	b[n++] = 0x5a; /* Request.resolve { service: "a" } */
	b[n++] = 3;
	b[n++] = 0x0a;
	b[n++] = 1;
	b[n++] = 'a';
	while (n + 3 <= body) {
		b[n++] = 0xf8; /* field 31, varint 0 */
		b[n++] = 0x01;
		b[n++] = 0x00;
	}
	resp = raw_call(s, b, n, &rv);
	assert_non_null(resp);
	expect_refused(resp, DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, "fields");
	free(b);
	dsi_close_bounded(s, 1000 * tu_slowdown(), NULL);
	assert_serving("after costly requests");
}

/* ---- a log output nobody reads (issue 18, item 4) ---- */

#define STALL_CLIENTS 8
#define STALL_CALLS   300 /* per client, each a Register and a Resolve that fails */

/* discoveryd with its stderr in a pipe the test reads only when it chooses. */
typedef struct piped {
	pid_t  pid;
	int    rfd;
	char   url[128];
	char   dir[256];
	char   tail[4096]; /* the last bytes read, for searching across reads */
	size_t tail_len;
} piped;

/* Reads what is there (waiting up to wait_ms) into the tail; false at end of file. */
static bool
piped_read(piped *p, int wait_ms)
{
	struct pollfd pfd = { .fd = p->rfd, .events = POLLIN, .revents = 0 };
	char          buf[65536];

	if (poll(&pfd, 1, wait_ms) <= 0) {
		return true;
	}
	ssize_t got = read(p->rfd, buf, sizeof(buf));
	if (got <= 0) {
		return false;
	}
	/* Keep the last half of the tail and the new bytes' end. */
	size_t keep = p->tail_len > sizeof(p->tail) / 2 ? sizeof(p->tail) / 2 : p->tail_len;
	memmove(p->tail, p->tail + p->tail_len - keep, keep);
	size_t add
	    = (size_t) got < sizeof(p->tail) / 2 - 1 ? (size_t) got : sizeof(p->tail) / 2 - 1;
	memcpy(p->tail + keep, buf + got - add, add);
	p->tail_len          = keep + add;
	p->tail[p->tail_len] = 0;
	for (size_t i = 0; i < p->tail_len; i++) {
		p->tail[i] = p->tail[i] == 0 ? ' ' : p->tail[i];
	}
	return true;
}

/* Reads until text shows (true) or the liveness bound passes. */
static bool
piped_wait_for(piped *p, const char *text)
{
	int64_t until = tu_now_ms() + TU_LIVENESS_MS;
	while (tu_now_ms() < until) {
		if (strstr(p->tail, text) != NULL) {
			return true;
		}
		if (!piped_read(p, 100)) {
			return strstr(p->tail, text) != NULL;
		}
	}
	return false;
}

static void
piped_start(piped *p)
{
	char        data[300];
	int         fds[2];
	const char *cmd[TD_MAX_COMMAND];
	char        words[1024];

	memset(p, 0, sizeof(*p));
	assert_int_equal(tu_mkdtemp(p->dir, sizeof(p->dir), "abuse-log"), 0);
	snprintf(data, sizeof(data), "%s/data.db", p->dir);
	const char *const argv[] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", data, "--log-level", "debug", "--allow-endpoint",
		"127.0.0.0/8", NULL };
	assert_int_equal(td_command(cmd, TD_MAX_COMMAND, argv, words, sizeof(words)), 0);
	assert_int_equal(pipe(fds), 0);
	(void) fcntl(fds[0], F_SETPIPE_SZ, 4096); /* fills sooner; 64 KiB would fill too */
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execvp(cmd[0], (char *const *) cmd);
		_exit(127);
	}
	close(fds[1]);
	p->rfd = fds[0];
	assert_true(piped_wait_for(p, "listening on "));
	/* The line may have come in two reads: wait for its end. */
	int64_t until = tu_now_ms() + TU_LIVENESS_MS;
	while (strchr(strstr(p->tail, "listening on "), '\n') == NULL && tu_now_ms() < until) {
		piped_read(p, 100);
	}
	assert_int_equal(sscanf(strstr(p->tail, "listening on ") + 13, "%127s", p->url), 1);
}

/* Waits for the daemon's exit within the liveness bound; its exit status, or -1. */
static int
piped_wait_exit(piped *p)
{
	int64_t until = tu_now_ms() + TU_LIVENESS_MS;
	int     st;
	while (tu_now_ms() < until) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		tu_sleep_ms(10);
	}
	return -1;
}

static void
piped_end(piped *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
	if (p->rfd > 0) {
		close(p->rfd);
		p->rfd = 0;
	}
	if (p->dir[0] != 0) {
		tu_rmtree(p->dir);
		p->dir[0] = 0;
	}
}

static piped P; /* ended by piped_teardown, whatever the test's outcome */

static int
piped_teardown(void **state)
{
	(void) state;
	piped_end(&P);
	return 0;
}

typedef struct staller {
	const char *url;
	int         id;
	int         round;
	char        fail[768];
} staller;

/* Registers and resolves; every call must be answered within the liveness bound. */
static void *
stall_client(void *arg)
{
	staller           *w = arg;
	dsc_client        *c;
	dsc_client_options o;
	dsc_error          err;
	int                rv;

	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	if ((rv = dsc_client_open(&c, w->url, &o)) != 0) {
		snprintf(w->fail, sizeof(w->fail), "open: %s", dsc_strerror(rv));
		return NULL;
	}
	for (int i = 0; i < STALL_CALLS && w->fail[0] == 0; i++) {
		char svc[32], ep[64];
		snprintf(svc, sizeof(svc), "stall-%d", w->id);
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 20000 + w->round * STALL_CALLS + i);
		dsc_registration reg = { .service = svc, .endpoint = ep, .ttl_ms = LOAD_TTL_MS };
		if ((rv = dsc_register(c, &reg, NULL, &err)) != 0) {
			snprintf(w->fail, sizeof(w->fail), "client %d register %d: %s (%.500s)",
			    w->id, i, dsc_strerror(rv), err.message);
		} else if ((rv = dsc_resolve(c, "stall-nosuch", false, NULL, &err))
		    != DSC_ENOTFOUND) {
			snprintf(w->fail, sizeof(w->fail), "client %d resolve %d: %s (%.500s)",
			    w->id, i, dsc_strerror(rv), rv != 0 ? err.message : "");
		}
	}
	dsc_client_close(c);
	return NULL;
}

static void
stall_load(const char *url, int clients, int round)
{
	pthread_t th[STALL_CLIENTS];
	staller   w[STALL_CLIENTS];
	for (int i = 0; i < clients; i++) {
		w[i] = (staller) { .url = url, .id = i, .round = round, .fail = "" };
		assert_int_equal(pthread_create(&th[i], NULL, stall_client, &w[i]), 0);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
	}
	for (int i = 0; i < clients; i++) {
		if (w[i].fail[0] != 0) {
			fail_msg("with the log output stalled: %s", w[i].fail);
		}
	}
}

static void
test_a_stalled_log_output_never_stalls_serving(void **state)
{
	piped *p = &P;
	(void) state;

	piped_start(p);
	/* Nobody reads the log: about 4,800 lines at debug level, far more than fit. */
	stall_load(p->url, STALL_CLIENTS, 0);
	/* Once the output drains, the daemon says what it dropped. */
	if (!piped_wait_for(p, "log lines dropped")) {
		fail_msg("no \"log lines dropped\" report once the log output drained");
	}
	/* Stalled again, and full: SIGTERM still ends it, and cleanly. */
	stall_load(p->url, STALL_CLIENTS / 2, 1);
	kill(p->pid, SIGTERM);
	int st = piped_wait_exit(p);
	if (st != 0 && p->pid > 0) {
		/* Perhaps a wrapper (valgrind) blocked on the pipe: drain it to learn more. */
		while (piped_read(p, 100)) {
			if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
				p->pid = 0;
				break;
			}
		}
		fail_msg("discoveryd did not exit on SIGTERM with its log output stalled");
	}
	assert_int_equal(st, 0);
}

/* ---- connection limits (issue 18, items 1 and 2): each test runs its own daemon ---- */

#define FLOOD_FRAMES    60000 /* pipelined requests from the peer that never reads */
#define FLOOD_SERVICE   "flood"
#define FLOOD_N         40          /* instances, so each reply is kilobytes */
#define FLOOD_DRAIN_MAX (64u << 20) /* far above a socket buffer, far below 60000 replies */
#define PARTIAL_CONNS   100
#define PARTIAL_CAP     64            /* --max-connections there */
#define PARTIAL_BODY    (1024 * 1024) /* the default --max-request-size */
#define PARTIAL_SLACK   (48 * 1024)   /* KiB of RSS beyond the partial buffers the bound allows */

/* A loopback TCP connection with a small receive buffer (set before connect), or -1. */
static int
tcp_connect_small(int port, int rcvbuf)
{
	struct sockaddr_in sa;
	int                fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0) {
		return -1;
	}
	if (rcvbuf > 0) {
		(void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_port        = htons((uint16_t) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The SP frame header of a REQ message: 64-bit big-endian length, then the request id. */
static void
sp_header(unsigned char *out, uint64_t body_len, uint32_t id)
{
	uint64_t n = body_len + 4;
	for (int b = 0; b < 8; b++) {
		out[b] = (unsigned char) (n >> (56 - 8 * b));
	}
	id |= UINT32_C(0x80000000);
	for (int b = 0; b < 4; b++) {
		out[8 + b] = (unsigned char) (id >> (24 - 8 * b));
	}
}

/* True once the peer has closed fd (reset or end of stream), waiting up to ms. */
static bool
closed_within(int fd, int ms)
{
	struct pollfd p   = { .fd = fd, .events = POLLRDHUP };
	int64_t       end = tu_now_ms() + ms;
	for (;;) {
		int64_t left = end - tu_now_ms();
		if (left <= 0) {
			return false;
		}
		p.revents = 0;
		if (poll(&p, 1, (int) (left < 200 ? left : 200)) > 0
		    && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
			return true;
		}
	}
}

/*
 * The server's close reaches a non-reader late: its FIN queues behind the
 * replies the peer never read, and its RST only comes once nng frees the
 * descriptor. Reading is what lets the FIN through, so the flooder reads
 * to the end; a server that closed sends at most its socket buffer first,
 * one that did not would send a reply per request, far past the bound.
 */
static bool
drained_to_close(int fd, int64_t end, size_t max_bytes)
{
	static unsigned char buf[65536];
	struct pollfd        p    = { .fd = fd, .events = POLLIN };
	size_t               seen = 0;
	while (seen <= max_bytes && tu_now_ms() < end) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			return true; /* EOF or ECONNRESET */
		}
		if (n > 0) {
			seen += (size_t) n;
			continue;
		}
		p.revents = 0;
		(void) poll(&p, 1, 200);
	}
	print_message("read %zu bytes without an end\n", seen);
	return false;
}

static td_daemon L; /* the limits tests' daemon, killed whatever happens */

static void
limits_daemon(const char *const *args)
{
	if (td_daemon_start(&L, args) != 0) {
		fail_msg("the daemon did not start");
	}
}

static int
limits_teardown(void **state)
{
	(void) state;
	td_daemon_kill(&L); /* a no-op once the test stopped it */
	return 0;
}

static dsc_client *
limits_client(const td_daemon *d)
{
	dsc_client_options o;
	dsc_client        *c;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS; /* liveness bound, not a speed claim */
	assert_int_equal(dsc_client_open(&c, d->url, &o), 0);
	return c;
}

/* The peer that pipelines GetAll requests and never reads a reply. */
typedef struct flooder {
	int            fd;
	unsigned char *frame; /* one SP frame, its id patched per request */
	size_t         len;
	long           sent;
	bool           closed; /* the server hung up on it */
} flooder;

static void *
flood_main(void *arg)
{
	flooder      *f   = arg;
	int64_t       end = tu_now_ms() + TU_LIVENESS_MS;
	struct pollfd p   = { .fd = f->fd, .events = POLLOUT };

	fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK);
	while (f->sent < FLOOD_FRAMES && tu_now_ms() < end) {
		size_t off = 0;
		sp_header(f->frame, f->len - 12, (uint32_t) f->sent + 1);
		while (off < f->len && tu_now_ms() < end) {
			ssize_t n = send(f->fd, f->frame + off, f->len - off, MSG_NOSIGNAL);
			if (n > 0) {
				off += (size_t) n;
				continue;
			}
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				f->closed = true; /* EPIPE or ECONNRESET: the server hung up */
				return NULL;
			}
			p.revents = 0;
			if (poll(&p, 1, 200) > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) {
				f->closed = true;
				return NULL;
			}
		}
		f->sent++;
	}
	return NULL;
}

/*
 * Item 1: one connection pipelines tens of thousands of requests and never
 * reads. Before the fix every other client timed out until it went away;
 * now it loses its own connection and a normal client keeps being answered.
 */
static void
test_pipelining_non_reader(void **state)
{
	static const char *const   args[] = { "--reply-timeout", "2", "--log-level", "info", NULL };
	static const unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 }; /* req0 */
	dsc_kv                     md[8];
	char                       val[8][96], ep[64];
	flooder                    f = { 0 };
	pthread_t                  th;
	const char                *wrap = getenv("DISCOVERY_TEST_WRAPPER");
	(void) state;

	if (wrap != NULL && wrap[0] != 0) {
		/*
		 * Under valgrind the daemon runs 10 to 50 times slower: whether the
		 * reply deadline or the per-connection cap closes the flooder first,
		 * and when, measures valgrind. The plain, ASan and TSan passes run it.
		 */
		print_message("skipped under DISCOVERY_TEST_WRAPPER\n");
		skip();
	}
	limits_daemon(args);
	dsc_client *c = limits_client(&L);
	for (int i = 0; i < 8; i++) {
		snprintf(val[i], sizeof(val[i]), "%0*d", 90, i);
		md[i].key   = (const char *[]) { "a", "b", "c", "d", "e", "f", "g", "h" }[i];
		md[i].value = val[i];
	}
	for (int i = 0; i < FLOOD_N; i++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 20000 + i);
		dsc_registration r = { .service = FLOOD_SERVICE,
			.endpoint               = ep,
			.metadata               = md,
			.n_metadata             = 8,
			.ttl_ms                 = LOAD_TTL_MS };
		assert_ok(dsc_register(c, &r, NULL, NULL));
	}

	Discovery__V1__GetAllRequest ga  = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	Discovery__V1__Request       req = DISCOVERY__V1__REQUEST__INIT;
	ga.service                       = FLOOD_SERVICE;
	req.call_case                    = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all                      = &ga;
	f.len                            = 12 + protobuf_c_message_get_packed_size(&req.base);
	f.frame                          = malloc(f.len);
	assert_non_null(f.frame);
	protobuf_c_message_pack(&req.base, f.frame + 12);
	f.fd = tcp_connect_small(tcp_port(L.url), 4096);
	assert_true(f.fd >= 0);
	assert_int_equal(send(f.fd, hello, sizeof(hello), MSG_NOSIGNAL), (ssize_t) sizeof(hello));
	assert_int_equal(pthread_create(&th, NULL, flood_main, &f), 0);

	/* Meanwhile: a normal client is answered, call after call. */
	for (int i = 0; i < 40; i++) {
		dsc_instance *inst = NULL;
		dsc_error     err;
		int           rv = dsc_resolve(c, FLOOD_SERVICE, false, &inst, &err);
		if (rv != 0) {
			fail_msg("resolve %d during the flood: %s (%s)", i, dsc_strerror(rv),
			    err.message);
		}
		dsc_instance_free(inst);
		tu_sleep_ms(50);
	}
	pthread_join(th, NULL);

	/* The server says why it closed the connection, then the peer sees the end. */
	int64_t end    = tu_now_ms() + TU_LIVENESS_MS;
	bool    logged = false;
	while (!logged && tu_now_ms() < end) {
		logged = td_daemon_log_contains(&L, "--max-connection-requests")
		    || td_daemon_log_contains(&L, "--reply-timeout");
		if (!logged) {
			tu_sleep_ms(50);
		}
	}
	if (logged && !f.closed) {
		f.closed = drained_to_close(f.fd, end, FLOOD_DRAIN_MAX);
	}
	print_message("the non-reader sent %ld requests; the server %s it%s\n", f.sent,
	    f.closed ? "closed" : "did not close", logged ? "" : " (nothing logged)");
	assert_true(logged);
	assert_true(f.closed);
	close(f.fd);
	free(f.frame);

	/* Afterwards the server still serves, old client and new. */
	assert_ok(dsc_resolve(c, FLOOD_SERVICE, false, NULL, NULL));
	dsc_client_close(c);
	c = limits_client(&L);
	assert_ok(dsc_resolve(c, FLOOD_SERVICE, false, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&L), 0);
}

/*
 * Opens PARTIAL_CONNS connections, each sending a 1 MiB request but its
 * last byte; returns the RSS (KiB) once they are all sent. Between them
 * client c is answered (and so stays busy: an idle client would lose its
 * connection to the idle timeout, and could not get another past the cap).
 */
static long
partial_round(const td_daemon *d, dsc_client *c, int *fds, unsigned char *buf)
{
	static const unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 }; /* req0 */
	for (int i = 0; i < PARTIAL_CONNS; i++) {
		fds[i] = tcp_connect_small(tcp_port(d->url), 0);
		assert_true(fds[i] >= 0);
		sp_header(buf, PARTIAL_BODY, (uint32_t) i + 1);
		/* Best effort: a connection past the cap is closed under us. */
		(void) send(fds[i], hello, sizeof(hello), MSG_NOSIGNAL);
		size_t off = 0, len = 12 + PARTIAL_BODY - 1;
		while (off < len) {
			ssize_t n = send(fds[i], buf + off, len - off, MSG_NOSIGNAL);
			if (n <= 0) {
				break;
			}
			off += (size_t) n;
		}
		assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
	}
	tu_sleep_ms(200); /* let the daemon read what it will */
	return rss_kib(d->pid);
}

/*
 * Item 2: connections holding 1 MiB requests minus one byte. Past
 * --max-connections they are refused; the rest are closed by the idle
 * timeout; RSS stays within max_connections x max_request (plus slack) in
 * two rounds; a normal client keeps working throughout.
 */
static void
test_partial_requests_bounded(void **state)
{
	/*
	 * The idle timeout stretched: opening all PARTIAL_CONNS must take less
	 * than it, or the first ones are closed before the last ones come and
	 * the cap is never reached (TSan on a loaded machine did that once).
	 */
	char idle[32];
	snprintf(idle, sizeof(idle), "%d", tu_slowdown());
	const char *const args[] = { "--max-connections", XSTR(PARTIAL_CAP), "--idle-timeout", idle,
		"--log-level", "info", NULL };
	static int        fds[PARTIAL_CONNS];
	(void) state;

	/* Under valgrind or TSan the RSS is theirs; the closing is still checked. */
	const char *wrap       = getenv("DISCOVERY_TEST_WRAPPER");
	bool        rss_counts = wrap == NULL || wrap[0] == 0;
#ifdef ABUSE_TSAN
	rss_counts = false;
#endif
	limits_daemon(args);
	dsc_client    *c    = limits_client(&L);
	unsigned char *buf  = calloc(1, 12 + PARTIAL_BODY);
	long           rss0 = rss_kib(L.pid), bound;
	assert_non_null(buf);
	assert_true(rss0 > 0);
	assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
	bound = rss0 + (long) PARTIAL_CAP * (PARTIAL_BODY / 1024) + PARTIAL_SLACK;

	for (int round = 1; round <= 2; round++) {
		long rss = partial_round(&L, c, fds, buf);
		print_message("round %d: RSS %ld KiB with the partial requests held (before %ld, "
		              "bound %ld)\n",
		    round, rss, rss0, bound);
		if (rss > bound && rss_counts) {
			fail_msg("round %d: RSS %ld KiB over the bound %ld KiB", round, rss, bound);
		}
		/*
		 * The client stays busy (a call every 200 ms, so the idle timeout
		 * never takes its connection) and is answered while they are held.
		 */
		int64_t end = tu_now_ms() + TU_LIVENESS_MS;
		for (int i = 0; i < PARTIAL_CONNS; i++) {
			do {
				assert_int_equal(
				    dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
			} while (!closed_within(fds[i], 200) && tu_now_ms() < end);
			if (tu_now_ms() >= end) {
				fail_msg("round %d: connection %d still open past the idle timeout",
				    round, i);
			}
			close(fds[i]);
		}
	}
	assert_true(td_daemon_log_contains(&L, "--max-connections"));
	assert_true(td_daemon_log_contains(&L, "--idle-timeout"));
	assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	free(buf);
	assert_int_equal(td_daemon_stop(&L), 0);
}

#define FD_LIMIT 64  /* the daemon's descriptor limit in the next test, soft and hard */
#define FD_CONNS 100 /* raw connections: more than it can accept */

/*
 * Item 3, the server half: out of descriptors, the daemon says so (nng
 * retries failed accepts silently, and its statistics missed EMFILE here,
 * so the descriptor count is what is watched), the raised limit is logged
 * at start, and once the flood is gone the server serves again.
 */
static void
test_descriptor_exhaustion_logged(void **state)
{
	static const char *const args[] = { "--log-level", "info", NULL };
	static int               fds[FD_CONNS];
	const char              *prev = getenv("DISCOVERY_TEST_WRAPPER");
	char                     wrapper[512];
	int                      rv;
	(void) state;

	if (prev != NULL && prev[0] != 0) {
		/* valgrind keeps descriptors of its own: the limit would not mean the same. */
		print_message("skipped under DISCOVERY_TEST_WRAPPER\n");
		skip();
	}
#ifdef ABUSE_TSAN
	print_message("skipped under ThreadSanitizer (its runtime needs descriptors too)\n");
	skip();
#endif
	/* prlimit(1) runs the daemon with a low limit. */
	snprintf(wrapper, sizeof(wrapper), "prlimit --nofile=%d:%d%s%s", FD_LIMIT, FD_LIMIT,
	    prev != NULL ? " " : "", prev != NULL ? prev : "");
	char *saved = prev != NULL ? strdup(prev) : NULL;
	setenv("DISCOVERY_TEST_WRAPPER", wrapper, 1);
	rv = td_daemon_start(&L, args);
	if (saved != NULL) {
		setenv("DISCOVERY_TEST_WRAPPER", saved, 1);
		free(saved);
	} else {
		unsetenv("DISCOVERY_TEST_WRAPPER");
	}
	if (rv != 0) {
		fail_msg("the daemon did not start under prlimit");
	}
	assert_true(td_daemon_log_contains(&L, "file descriptor limit " XSTR(FD_LIMIT)));
	dsc_client *c = limits_client(&L);
	assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);

	static const unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 }; /* req0 */
	for (int i = 0; i < FD_CONNS; i++) {
		/* The kernel completes the connection even when the daemon cannot accept it. */
		fds[i] = tcp_connect_small(tcp_port(L.url), 0);
		if (fds[i] >= 0) {
			(void) send(fds[i], hello, sizeof(hello), MSG_NOSIGNAL);
		}
	}
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	while (!td_daemon_log_contains(&L, "file descriptors in use") && tu_now_ms() < end) {
		tu_sleep_ms(100);
	}
	assert_true(td_daemon_log_contains(&L, "file descriptors in use: new connections"));
	for (int i = 0; i < FD_CONNS; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
		}
	}
	/* Descriptors back: the client that was connected, and a new one, are answered. */
	assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	c = limits_client(&L);
	assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&L), 0);
}

/* Also fixed: anything but tcp:// and tls+tcp:// is refused at start-up, with exit 2. */
static void
test_ipc_refused(void **state)
{
	static const char *const cases[][2] = {
		{ "--listen", "ipc:///tmp/discovery-abuse-ipc" },
		{ "--publish", "ipc:///tmp/discovery-abuse-ipc-pub" },
		{ "--listen", "inproc://discovery" },
	};
	char out[4096], err[4096];
	(void) state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[]
		    = { DISCOVERYD_PATH, "--data", ":memory:", "--listen", "tcp://127.0.0.1:0",
			      "--publish", "tcp://127.0.0.1:0", cases[i][0], cases[i][1], NULL };
		int rv = td_run(argv, out, sizeof(out), err, sizeof(err));
		if (rv != 2 || strstr(err, "only tcp:// and tls+tcp:// URLs are served") == NULL
		    || strstr(err, cases[i][1]) == NULL) {
			fail_msg("%s %s: exit %d, stderr: %s", cases[i][0], cases[i][1], rv, err);
		}
	}
}

/* The budget: max-connections x max-request-size over max-request-memory is refused. */
static void
test_request_memory_budget(void **state)
{
	const char *argv[] = { DISCOVERYD_PATH, "--data", ":memory:", "--listen",
		"tcp://127.0.0.1:0", "--publish", "tcp://127.0.0.1:0", "--max-connections", "4096",
		"--max-request-size", "1048576", NULL };
	char        out[4096], err[4096];
	(void) state;

	int rv = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv != 2 || strstr(err, "--max-request-memory") == NULL) {
		fail_msg("exit %d, stderr: %s", rv, err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_one),
		cmocka_unit_test(test_round_two),
		cmocka_unit_test(test_memory_is_bounded),
		cmocka_unit_test(test_nul_bytes_in_every_string_field),
		cmocka_unit_test(test_nul_in_the_token_is_permission_denied),
		cmocka_unit_test(test_metadata_and_decode_cost_are_bounded),
		cmocka_unit_test(test_sigterm_exits_zero),
		cmocka_unit_test_teardown(
		    test_a_stalled_log_output_never_stalls_serving, piped_teardown),
	};
	/* The connection limits: each test starts a daemon of its own. */
	const struct CMUnitTest limits[] = {
		cmocka_unit_test_teardown(test_pipelining_non_reader, limits_teardown),
		cmocka_unit_test_teardown(test_partial_requests_bounded, limits_teardown),
		cmocka_unit_test_teardown(test_descriptor_exhaustion_logged, limits_teardown),
		cmocka_unit_test(test_ipc_refused),
		cmocka_unit_test(test_request_memory_budget),
	};
	int rv = cmocka_run_group_tests(tests, group_setup, group_teardown);
	return rv | cmocka_run_group_tests(limits, NULL, NULL);
}
