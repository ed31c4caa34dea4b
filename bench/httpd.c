/* The health sweep's HTTP server: one epoll thread, many keep-alive connections. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define IN_CAP  4096
#define OUT_CAP 4096

static const char ok_reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 2\r\n\r\nok";
static const char nf_reply[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 9\r\n\r\nnot found";

/* One connection: what was read and not yet parsed, what is left to write. */
typedef struct conn {
	int    fd;
	bool   hung; /* a hanging path was asked for: read and drop from now on */
	size_t in_len, out_len, out_off;
	char   in[IN_CAP];
	char   out[OUT_CAP];
} conn;

struct bh_server {
	int               lfd, efd, wake[2];
	int               port;
	pthread_t         th;
	int64_t           t0_ns;
	size_t            n_paths, max_hits;
	bool             *hang;
	uint32_t         *times; /* n_paths x max_hits */
	_Atomic uint32_t *count;
	_Atomic uint64_t  total, unknown;
	_Atomic size_t    max_conns;
	size_t            conns;
	conn            **by_fd; /* the server thread's alone */
	size_t            by_fd_cap;
};

uint32_t
bh_now_ms(const bh_server *s)
{
	return (uint32_t) ((bn_now_ns() - s->t0_ns) / 1000000);
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void
conn_close(bh_server *s, conn *c)
{
	epoll_ctl(s->efd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	s->by_fd[c->fd] = NULL;
	s->conns--;
	free(c);
}

/* Writes what is pending; false when the connection broke. */
static bool
conn_flush(bh_server *s, conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = c->fd };
			epoll_ctl(s->efd, EPOLL_CTL_MOD, c->fd, &ev);
			return true;
		}
		if (n <= 0) {
			return false;
		}
		c->out_off += (size_t) n;
	}
	c->out_off = c->out_len = 0;
	struct epoll_event ev   = { .events = EPOLLIN, .data.fd = c->fd };
	epoll_ctl(s->efd, EPOLL_CTL_MOD, c->fd, &ev);
	return true;
}

static void
queue_reply(conn *c, const char *r, size_t len)
{
	if (c->out_len + len <= OUT_CAP) {
		memcpy(c->out + c->out_len, r, len);
		c->out_len += len;
	}
}

/* Logs one request line; returns the path's index, or -1 for an unknown path. */
static long
note_request(bh_server *s, const char *req)
{
	const char *p = strchr(req, ' ');
	if (p == NULL || strncmp(p + 1, "/i/", 3) != 0) {
		return -1;
	}
	char         *end;
	unsigned long i = strtoul(p + 4, &end, 10);
	if (end == p + 4 || i >= s->n_paths) {
		return -1;
	}
	uint32_t k = atomic_load_explicit(&s->count[i], memory_order_relaxed);
	if (k < s->max_hits) {
		s->times[i * s->max_hits + k] = bh_now_ms(s);
		atomic_store_explicit(&s->count[i], k + 1, memory_order_release);
	}
	atomic_fetch_add_explicit(&s->total, 1, memory_order_relaxed);
	return (long) i;
}

/* Answers every complete request in the buffer. */
static void
conn_parse(bh_server *s, conn *c)
{
	size_t off = 0;
	while (!c->hung) {
		c->in[c->in_len] = 0;
		char *end        = strstr(c->in + off, "\r\n\r\n");
		if (end == NULL) {
			break;
		}
		long i = note_request(s, c->in + off);
		off    = (size_t) (end + 4 - c->in);
		if (i < 0) {
			atomic_fetch_add_explicit(&s->unknown, 1, memory_order_relaxed);
			queue_reply(c, nf_reply, sizeof(nf_reply) - 1);
		} else if (s->hang != NULL && s->hang[i]) {
			c->hung = true;
		} else {
			queue_reply(c, ok_reply, sizeof(ok_reply) - 1);
		}
	}
	if (c->hung) {
		c->in_len = 0;
	} else {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

static void
conn_readable(bh_server *s, conn *c)
{
	for (;;) {
		if (c->in_len >= IN_CAP - 1) {
			conn_close(s, c); /* a request this large is not a health check */
			return;
		}
		ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - 1 - c->in_len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		}
		if (n <= 0) {
			conn_close(s, c);
			return;
		}
		c->in_len += (size_t) n;
		conn_parse(s, c);
	}
	if (c->out_len > 0 && !conn_flush(s, c)) {
		conn_close(s, c);
	}
}

static void
accept_all(bh_server *s)
{
	for (;;) {
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0) {
			return; /* EAGAIN, or out of descriptors: the client retries */
		}
		if ((size_t) fd >= s->by_fd_cap) {
			size_t ncap = (size_t) fd * 2 + 64;
			conn **nb   = realloc(s->by_fd, ncap * sizeof(*nb));
			if (nb == NULL) {
				close(fd);
				continue;
			}
			memset(nb + s->by_fd_cap, 0, (ncap - s->by_fd_cap) * sizeof(*nb));
			s->by_fd     = nb;
			s->by_fd_cap = ncap;
		}
		conn              *c  = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		if (c == NULL || set_nonblock(fd) != 0
		    || epoll_ctl(s->efd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd        = fd;
		s->by_fd[fd] = c;
		if (++s->conns > atomic_load(&s->max_conns)) {
			atomic_store(&s->max_conns, s->conns);
		}
	}
}

static void *
serve(void *arg)
{
	bh_server         *s = arg;
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(s->efd, evs, 256, 1000);
		for (int k = 0; k < n; k++) {
			int fd = evs[k].data.fd;
			if (fd == s->wake[0]) {
				return NULL;
			}
			if (fd == s->lfd) {
				accept_all(s);
				continue;
			}
			conn *c = (size_t) fd < s->by_fd_cap ? s->by_fd[fd] : NULL;
			if (c == NULL) {
				continue;
			}
			if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
				conn_close(s, c);
			} else if (evs[k].events & EPOLLOUT) {
				if (!conn_flush(s, c)) {
					conn_close(s, c);
				}
			} else {
				conn_readable(s, c);
			}
		}
	}
}

int
bh_start(bh_server **out, size_t n_paths, size_t max_hits, const bool *hang)
{
	bh_server         *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	socklen_t          sl  = sizeof(sa);
	int                one = 1, rv = ENOMEM;

	if (s == NULL) {
		return ENOMEM;
	}
	s->lfd = s->efd = s->wake[0] = s->wake[1] = -1;
	s->n_paths                                = n_paths;
	s->max_hits                               = max_hits;
	s->t0_ns                                  = bn_now_ns();
	s->times                                  = calloc(n_paths * max_hits, sizeof(*s->times));
	s->count                                  = calloc(n_paths, sizeof(*s->count));
	s->hang                                   = calloc(n_paths, sizeof(*s->hang));
	if (s->times == NULL || s->count == NULL || s->hang == NULL) {
		goto fail;
	}
	for (size_t i = 0; hang != NULL && i < n_paths; i++) {
		s->hang[i] = hang[i];
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0
	    || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || bind(s->lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0 || listen(s->lfd, 4096) != 0
	    || getsockname(s->lfd, (struct sockaddr *) &sa, &sl) != 0 || set_nonblock(s->lfd) != 0
	    || pipe(s->wake) != 0 || (s->efd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		rv = errno;
		goto fail;
	}
	s->port                = ntohs(sa.sin_port);
	struct epoll_event lev = { .events = EPOLLIN, .data.fd = s->lfd };
	struct epoll_event wev = { .events = EPOLLIN, .data.fd = s->wake[0] };
	if (epoll_ctl(s->efd, EPOLL_CTL_ADD, s->lfd, &lev) != 0
	    || epoll_ctl(s->efd, EPOLL_CTL_ADD, s->wake[0], &wev) != 0) {
		rv = errno;
		goto fail;
	}
	if ((rv = pthread_create(&s->th, NULL, serve, s)) != 0) {
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->lfd >= 0) {
		close(s->lfd);
	}
	if (s->efd >= 0) {
		close(s->efd);
	}
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	free(s->times);
	free(s->count);
	free(s->hang);
	free(s);
	return rv;
}

int
bh_port(const bh_server *s)
{
	return s->port;
}

void
bh_stop(bh_server *s)
{
	if (s == NULL) {
		return;
	}
	ssize_t w = write(s->wake[1], "x", 1);
	(void) w;
	pthread_join(s->th, NULL);
	for (size_t fd = 0; fd < s->by_fd_cap; fd++) {
		if (s->by_fd[fd] != NULL) {
			conn_close(s, s->by_fd[fd]);
		}
	}
	close(s->lfd);
	close(s->efd);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s->by_fd);
	free(s->times);
	free(s->count);
	free(s->hang);
	free(s);
}

const uint32_t *
bh_hits(bh_server *s, size_t i, size_t *n)
{
	*n = atomic_load_explicit(&s->count[i], memory_order_acquire);
	return s->times + i * s->max_hits;
}

uint64_t
bh_total(bh_server *s)
{
	return atomic_load(&s->total);
}

uint64_t
bh_unknown(bh_server *s)
{
	return atomic_load(&s->unknown);
}

size_t
bh_max_conns(bh_server *s)
{
	return atomic_load(&s->max_conns);
}
