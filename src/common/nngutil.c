/* nng at the boundary: its errors as dsc_err, bound listener URLs, bounded closes. */
#include "common/nngutil.h"

#include <arpa/inet.h>
#include <discovery/discovery.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "common/timeutil.h"

int
dsi_err_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return DSC_OK;
	case NNG_ETIMEDOUT:
		return DSC_ETIMEDOUT;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EUNREACHABLE:
	case NNG_EADDRINUSE:
		return DSC_ECONNREFUSED;
	case NNG_ENOMEM:
		return DSC_ENOMEM;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return DSC_ECLOSED;
	case NNG_EADDRINVAL:
	case NNG_EINVAL:
	case NNG_ENOTSUP:
		return DSC_EINVAL;
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH:
		return DSC_ETLS;
	default:
		return DSC_ETRANSPORT;
	}
}

void
dsi_listener_url(nng_listener l, const char *url, char *out, size_t n)
{
	nng_sockaddr sa;
	dsi_strlcpy(out, url, n);
	if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0) {
		return;
	}
	const char *colon = strrchr(url, ':');
	unsigned    port  = 0;
	if (sa.s_family == NNG_AF_INET) {
		port = ntohs(sa.s_in.sa_port);
	} else if (sa.s_family == NNG_AF_INET6) {
		port = ntohs(sa.s_in6.sa_port);
	}
	if (colon != NULL && port != 0 && strcmp(colon, ":0") == 0) {
		snprintf(out, n, "%.*s:%u", (int) (colon - url), url, port);
	}
}

bool
dsi_url_is_served(const char *url)
{
	static const char *const ok[]
	    = { "tcp://", "tcp4://", "tcp6://", "tls+tcp://", "tls+tcp4://", "tls+tcp6://" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (strncmp(url, ok[i], strlen(ok[i])) == 0) {
			return true;
		}
	}
	return false;
}

uint64_t
dsi_listener_accept_failures(nng_stat *snapshot, nng_listener l)
{
	static const char *const names[] = { "oom", "other" };
	nng_stat                *ls = snapshot != NULL ? nng_stat_find_listener(snapshot, l) : NULL;
	uint64_t                 n  = 0;
	for (size_t i = 0; ls != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
		nng_stat *st = nng_stat_find(ls, names[i]);
		if (st != NULL) {
			n += nng_stat_value(st);
		}
	}
	return n;
}

/* A socket close handed to its own thread; whoever finishes last frees it. */
typedef struct closer {
	nng_socket      sock;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	bool            abandoned;
	void (*late)(void *); /* runs if the close ends after the bound */
	void *late_arg;
} closer;

static void
closer_free(closer *c)
{
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

static void *
closer_main(void *arg)
{
	closer *c = arg;
	nng_close(c->sock);
	pthread_mutex_lock(&c->mtx);
	c->done        = true;
	bool abandoned = c->abandoned;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mtx);
	if (abandoned) {
		if (c->late != NULL) {
			c->late(c->late_arg);
		}
		closer_free(c);
	}
	return NULL;
}

/*
 * nng 1.5.2 (Debian 12) can block forever in nng_close when a TCP pipe is
 * closed in the middle of receiving a message: the pipe's receive is
 * re-armed after the close and the pipe is never reaped (fixed upstream in
 * 1.6.0, nng #1636). Every reply has been sent by now, so the close is
 * given a bound and then left to the process exit.
 */
bool
dsi_close_bounded(nng_socket sock, int bound_ms, const dsi_log *log)
{
	return dsi_close_bounded_then(sock, bound_ms, log, NULL, NULL);
}

bool
dsi_close_bounded_then(
    nng_socket sock, int bound_ms, const dsi_log *log, void (*late)(void *), void *arg)
{
	closer         *c = calloc(1, sizeof(*c));
	pthread_t       t;
	struct timespec deadline;

	if (c == NULL) {
		nng_close(sock);
		return true;
	}
	c->sock     = sock;
	c->late     = late;
	c->late_arg = arg;
	pthread_mutex_init(&c->mtx, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&t, NULL, closer_main, c) != 0) {
		closer_free(c);
		nng_close(sock);
		return true;
	}
	pthread_detach(t);
	dsi_realtime_after(&deadline, bound_ms);
	pthread_mutex_lock(&c->mtx);
	while (!c->done) {
		if (pthread_cond_timedwait(&c->cv, &c->mtx, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	bool done    = c->done;
	c->abandoned = !done;
	pthread_mutex_unlock(&c->mtx);
	if (done) {
		closer_free(c);
	} else {
		dsi_warn(log,
		    "a socket did not close within %d ms (nng 1.5.2 pipe-close bug, fixed in nng "
		    "1.6.0); leaving it to the process exit",
		    bound_ms);
	}
	return done;
}

void
dsi_sockaddr_text(const nng_sockaddr *sa, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "";

	out[0] = 0;
	if (sa->s_family == NNG_AF_INET) {
		inet_ntop(AF_INET, &sa->s_in.sa_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, (unsigned) ntohs(sa->s_in.sa_port));
	} else if (sa->s_family == NNG_AF_INET6) {
		inet_ntop(AF_INET6, sa->s_in6.sa_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, (unsigned) ntohs(sa->s_in6.sa_port));
	} else if (sa->s_family == NNG_AF_IPC) {
		snprintf(out, n, "%s", sa->s_ipc.sa_path);
	}
}
