/*
 * Test support: a tiny HTTP/1.1 server on 127.0.0.1 that plays the health
 * endpoints discoveryd checks. Each path answers a status set at run time
 * (unknown paths answer 404), can hang, or can redirect; the server counts
 * the requests it receives per path. One thread accepts, one thread serves
 * each connection (at most TH_MAX_CONNS at once; extra connections are
 * closed at once). Keep-alive is supported; "Connection: close" is honoured.
 * Paths are compared without their query string, in th_* calls as well.
 */
#ifndef TEST_HTTPD_H
#define TEST_HTTPD_H

#include <stdbool.h>

#define TH_MAX_CONNS 256

typedef struct th_server th_server;

/*
 * Listens on 127.0.0.1 on an ephemeral port and starts serving. Returns 0 and
 * *out, which th_stop releases, or an errno value (and *out is untouched).
 */
int th_start(th_server **out);

/* The TCP port it listens on. */
int th_port(const th_server *s);

/*
 * Stops promptly (well under a second) even with hanging requests and idle
 * keep-alive connections: every connection is shut down without an answer,
 * every thread joined and everything freed. NULL is a no-op.
 */
void th_stop(th_server *s);

/*
 * Per-path behaviour; takes effect for requests answered after the call
 * returns. Each returns 0, or EINVAL (path not starting with '/') or ENOMEM.
 *
 * th_set: answer status (for example 200 or 500); clears any redirect.
 * th_set_redirect: answer 302 with "Location: location".
 * th_set_hang: when true, requests for path are read (and counted) but not
 * answered until the path is un-hung (they are then answered as set) or the
 * server stops. The path keeps its status; a path never set answers 404.
 */
int th_set(th_server *s, const char *path, int status);
int th_set_redirect(th_server *s, const char *path, const char *location);
int th_set_hang(th_server *s, const char *path, bool hang);

/*
 * th_set_require_header: requests for path answer 403 unless they carry
 * header ("Name: value"; the name in any case, the value exactly). NULL
 * lifts the requirement.
 */
int th_set_require_header(th_server *s, const char *path, const char *header);

/* Requests received for path, counted as soon as a request is read, hanging or not. */
int th_hits(th_server *s, const char *path);

/* Requests received for every path, unknown ones included. */
int th_total_hits(th_server *s);

#endif
