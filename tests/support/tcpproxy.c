/* The cuttable loopback relay (tcpproxy.h): one thread, poll, a buffer per direction. */
#define _GNU_SOURCE /* accept4, pipe2 */
#include "support/tcpproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TP_MAX_PAIRS 128
#define TP_BUF       65536

/* One direction of a pair: bytes read from one side, not yet written to the other. */
typedef struct half {
	char   buf[TP_BUF];
	size_t len;
	bool   eof; /* the reading side ended its stream: pass the end on once flushed */
	bool   shut;
} half;

typedef struct pair {
	int  down; /* accepted from the process under test */
	int  up;   /* to the target; -1 until connected */
	bool held; /* accepted during a cut: its SYN "never arrived", so a heal drops it */
	half to_up, to_down;
} pair;

struct tp_proxy {
	int          lfd;
	int          port, target;
	int          wake[2];
	pthread_t    th;
	_Atomic bool cut;
	_Atomic bool stop;
	_Atomic long accepted;
	/* tp_cut/tp_heal wait (cv) until the thread starts a round after their change. */
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             gen, seen;
	pair           *pairs[TP_MAX_PAIRS];
	int             n;
};

static void
poke(tp_proxy *p)
{
	char c = 1;
	(void) !write(p->wake[1], &c, 1);
}

/* Waits until the relay thread starts a round after the change (a few ms). */
static void
settle(tp_proxy *p)
{
	pthread_mutex_lock(&p->mtx);
	int want = ++p->gen;
	pthread_mutex_unlock(&p->mtx);
	poke(p);
	pthread_mutex_lock(&p->mtx);
	while (p->seen < want) {
		pthread_cond_wait(&p->cv, &p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);
}

static int
connect_target(int port)
{
	struct sockaddr_in a  = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
	int                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr     = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	return fd;
}

static void
pair_close(tp_proxy *p, int i)
{
	pair *x = p->pairs[i];
	close(x->down);
	if (x->up >= 0) {
		close(x->up);
	}
	free(x);
	p->pairs[i] = p->pairs[--p->n];
}

/* Moves bytes one way; false when the pair is finished (an error, or both ends done). */
static bool
pump(half *h, int from, int to, short rev_from, short rev_to)
{
	if (h->len < TP_BUF && !h->eof && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = recv(from, h->buf + h->len, TP_BUF - h->len, MSG_DONTWAIT);
		if (n > 0) {
			h->len += (size_t) n;
		} else if (n == 0) {
			h->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			return false;
		}
	}
	if (h->len > 0 && (rev_to & POLLOUT)) {
		ssize_t n = send(to, h->buf, h->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			memmove(h->buf, h->buf + n, h->len - (size_t) n);
			h->len -= (size_t) n;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			return false;
		}
	}
	if (h->eof && h->len == 0 && !h->shut) {
		shutdown(to, SHUT_WR);
		h->shut = true;
	}
	return true;
}

static void
accept_one(tp_proxy *p)
{
	int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		return;
	}
	pair *x = p->n < TP_MAX_PAIRS ? calloc(1, sizeof(*x)) : NULL;
	if (x == NULL) {
		close(fd);
		return;
	}
	x->down          = fd;
	x->up            = -1;
	x->held          = atomic_load(&p->cut);
	p->pairs[p->n++] = x;
	atomic_fetch_add(&p->accepted, 1);
}

static void *
relay_main(void *arg)
{
	tp_proxy     *p = arg;
	struct pollfd fds[2 + 2 * TP_MAX_PAIRS];

	while (!atomic_load(&p->stop)) {
		pthread_mutex_lock(&p->mtx);
		bool cut = atomic_load(&p->cut); /* stored before gen moved: seen with it */
		p->seen  = p->gen;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mtx);
		int nf    = 0;
		fds[nf++] = (struct pollfd) { .fd = p->lfd, .events = POLLIN };
		fds[nf++] = (struct pollfd) { .fd = p->wake[0], .events = POLLIN };
		for (int i = 0; i < p->n && !cut; i++) {
			pair *x = p->pairs[i];
			if (x->held || (x->up < 0 && (x->up = connect_target(p->target)) < 0)) {
				pair_close(p, i--); /* held through a cut, or the target is gone */
				continue;
			}
		}
		for (int i = 0; i < p->n && !cut; i++) {
			pair *x  = p->pairs[i];
			short dn = (x->to_up.len < TP_BUF && !x->to_up.eof ? POLLIN : 0)
			    | (x->to_down.len > 0 ? POLLOUT : 0);
			short up = (x->to_down.len < TP_BUF && !x->to_down.eof ? POLLIN : 0)
			    | (x->to_up.len > 0 ? POLLOUT : 0);
			fds[nf++] = (struct pollfd) { .fd = x->down, .events = dn };
			fds[nf++] = (struct pollfd) { .fd = x->up, .events = up };
		}
		if (poll(fds, (nfds_t) nf, 200) < 0 && errno != EINTR) {
			break;
		}
		if (fds[1].revents & POLLIN) {
			char drain[64];
			while (read(p->wake[0], drain, sizeof(drain)) > 0) { }
		}
		if (fds[0].revents & POLLIN) {
			accept_one(p);
		}
		if (cut) {
			continue; /* held: nothing read, nothing written, nothing closed */
		}
		/* The pairs polled are the first (nf - 2) / 2; accept_one adds at the end. */
		int polled = (nf - 2) / 2;
		for (int i = polled - 1; i >= 0; i--) {
			pair *x  = p->pairs[i];
			short rd = fds[2 + 2 * i].revents, ru = fds[3 + 2 * i].revents;
			bool  ok = pump(&x->to_up, x->down, x->up, rd, ru)
			    && pump(&x->to_down, x->up, x->down, ru, rd);
			if (!ok || (x->to_up.shut && x->to_down.shut)) {
				pair_close(p, i);
			}
		}
	}
	return NULL;
}

int
tp_start(tp_proxy **out, int target_port)
{
	struct sockaddr_in a   = { .sin_family = AF_INET };
	socklen_t          len = sizeof(a);
	tp_proxy          *p   = calloc(1, sizeof(*p));

	if (p == NULL) {
		return -1;
	}
	p->target = target_port;
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->lfd            = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *) &a, sizeof(a)) != 0
	    || listen(p->lfd, 64) != 0 || getsockname(p->lfd, (struct sockaddr *) &a, &len) != 0
	    || pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		if (p->lfd >= 0) {
			close(p->lfd);
		}
		free(p);
		return -1;
	}
	p->port = ntohs(a.sin_port);
	if (pthread_create(&p->th, NULL, relay_main, p) != 0) {
		close(p->lfd);
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int
tp_port(const tp_proxy *p)
{
	return p->port;
}

long
tp_accepted(tp_proxy *p)
{
	return atomic_load(&p->accepted);
}

void
tp_cut(tp_proxy *p)
{
	atomic_store(&p->cut, true);
	settle(p);
}

void
tp_heal(tp_proxy *p)
{
	atomic_store(&p->cut, false);
	settle(p);
}

void
tp_stop(tp_proxy *p)
{
	if (p == NULL) {
		return;
	}
	atomic_store(&p->stop, true);
	poke(p);
	pthread_join(p->th, NULL);
	while (p->n > 0) {
		pair_close(p, p->n - 1);
	}
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mtx);
	free(p);
}
