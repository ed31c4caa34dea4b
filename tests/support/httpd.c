/* Test HTTP/1.1 server: one accept thread, one thread per connection, routes by path. */
#include "support/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TH_HEAD_MAX     8192 /* a request head (line and headers) larger than this is refused */
#define TH_BODY_MAX     (1024 * 1024) /* request bodies are read and dropped up to this */
#define TH_HANG_POLL_MS 20 /* how often a hanging request checks whether its client left */

/* What one path answers and how often it was asked. Lives until th_stop. */
typedef struct th_route {
	struct th_route *next;
	char            *path;
	int              status;   /* 0: never set, answers 404 */
	char            *location; /* not NULL: answers 302 with it */
	char            *need;     /* not NULL: "Name: value" a request must carry, else 403 */
	bool             hang;
	int              hits;
} th_route;

/* One accepted connection and the thread that serves it. */
typedef struct th_conn {
	struct th_conn *next;
	th_server      *srv;
	int             fd;   /* under srv->mtx; -1 once the thread has closed it */
	bool            done; /* under srv->mtx; the thread is finishing: join it */
	pthread_t       thread;
	size_t          len; /* bytes read but not consumed */
	char            buf[TH_HEAD_MAX];
} th_conn;

struct th_server {
	int             lfd;
	int             wake[2]; /* self-pipe: th_stop wakes the accept thread with it */
	int             port;
	pthread_t       acceptor;
	pthread_mutex_t mtx; /* guards everything below */
	pthread_cond_t  cv;  /* hang flags changed, or stopping */
	bool            stopping;
	th_route       *routes;
	th_conn        *conns;
	int             live; /* connections whose thread has not finished */
	int             total_hits;
};

/* The length of the path part of a request target: the query and fragment are ignored. */
static size_t
path_len(const char *target, size_t len)
{
	size_t n = 0;

	while (n < len && target[n] != '?' && target[n] != '#') {
		n++;
	}
	return n;
}

/* The route for path[0..len), created (404, no hits) when create is set. NULL: none, or ENOMEM. */
static th_route *
find_route(th_server *s, const char *path, size_t len, bool create)
{
	th_route *r;

	for (r = s->routes; r != NULL; r = r->next) {
		if (strlen(r->path) == len && memcmp(r->path, path, len) == 0) {
			return r;
		}
	}
	if (!create || (r = calloc(1, sizeof(*r))) == NULL) {
		return NULL;
	}
	if ((r->path = malloc(len + 1)) == NULL) {
		free(r);
		return NULL;
	}
	memcpy(r->path, path, len);
	r->path[len] = 0;
	r->next      = s->routes;
	s->routes    = r;
	return r;
}

static const char *
reason_phrase(int status)
{
	static const struct {
		int         status;
		const char *text;
	} reasons[] = {
		{ 200, "OK" },
		{ 201, "Created" },
		{ 202, "Accepted" },
		{ 204, "No Content" },
		{ 301, "Moved Permanently" },
		{ 302, "Found" },
		{ 303, "See Other" },
		{ 304, "Not Modified" },
		{ 307, "Temporary Redirect" },
		{ 308, "Permanent Redirect" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 408, "Request Timeout" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (reasons[i].status == status) {
			return reasons[i].text;
		}
	}
	return "Status";
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return -1;
		}
		p += w;
		n -= (size_t) w;
	}
	return 0;
}

/* Sends one response. location may be NULL; a HEAD response has no body. */
static int
respond(int fd, int status, const char *location, bool head_only, bool keep_alive)
{
	char   body[128];
	char  *msg;
	size_t cap;
	int    blen = 0, n, rv;

	/* 1xx, 204 and 304 never carry a body. */
	if (status >= 200 && status != 204 && status != 304) {
		blen = snprintf(body, sizeof(body), "%d %s\n", status, reason_phrase(status));
	}
	cap = 256 + (location != NULL ? strlen(location) : 0) + (size_t) blen;
	if ((msg = malloc(cap)) == NULL) {
		return -1;
	}
	n  = snprintf(msg, cap,
	     "HTTP/1.1 %d %s\r\n"
	      "Content-Type: text/plain\r\n"
	      "Content-Length: %d\r\n"
	      "%s%s%s"
	      "Connection: %s\r\n"
	      "\r\n"
	      "%s",
	     status, reason_phrase(status), blen, location != NULL ? "Location: " : "",
            location != NULL ? location : "", location != NULL ? "\r\n" : "",
            keep_alive ? "keep-alive" : "close", head_only ? "" : (blen > 0 ? body : ""));
	rv = n > 0 && (size_t) n < cap ? send_all(fd, msg, (size_t) n) : -1;
	free(msg);
	return rv;
}

/*
 * Reads until c->buf holds a whole request head; returns its length (the
 * blank line included), or 0 when the client left, an error occurred or the
 * head is too large (answered with 431).
 */
static size_t
read_head(th_conn *c)
{
	for (;;) {
		for (size_t i = 3; i < c->len; i++) {
			if (memcmp(c->buf + i - 3, "\r\n\r\n", 4) == 0) {
				return i + 1;
			}
		}
		if (c->len == sizeof(c->buf)) {
			respond(c->fd, 431, NULL, false, false);
			return 0;
		}
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return 0;
		}
		c->len += (size_t) n;
	}
}

/* Drops the first n bytes of c->buf. */
static void
consume(th_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Reads and drops a request body of n bytes; the buffered part goes first. */
static int
discard_body(th_conn *c, size_t n)
{
	size_t have = n < c->len ? n : c->len;

	consume(c, have);
	n -= have;
	while (n > 0) {
		char    scratch[4096];
		ssize_t r = recv(c->fd, scratch, n < sizeof(scratch) ? n : sizeof(scratch), 0);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			return -1;
		}
		n -= (size_t) r;
	}
	return 0;
}

/* True when the client has closed its end (or the socket failed). Does not block. */
static bool
peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char          ch;

	if (poll(&p, 1, 0) <= 0) {
		return false;
	}
	if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
		return true;
	}
	return (p.revents & POLLIN) != 0 && recv(fd, &ch, 1, MSG_PEEK) == 0;
}

/* Case-insensitive: does value (of length n) contain word? */
static bool
has_token(const char *value, size_t n, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= n; i++) {
		if (strncasecmp(value + i, word, wl) == 0) {
			return true;
		}
	}
	return false;
}

/* Does the header block [p, end) hold want ("Name: value"), name in any case, value exactly? */
static bool
has_header(const char *p, const char *end, const char *want)
{
	size_t      nlen = strcspn(want, ":");
	const char *wv   = want + nlen + (want[nlen] == ':');
	wv += strspn(wv, " ");
	for (const char *eol; p < end - 2; p = eol + 2) {
		eol = memchr(p, '\r', (size_t) (end - p));
		if (eol == NULL) {
			return false;
		}
		const char *v = p + nlen + 1;
		if ((size_t) (eol - p) > nlen && p[nlen] == ':'
		    && strncasecmp(p, want, nlen) == 0) {
			while (v < eol && (*v == ' ' || *v == '\t')) {
				v++;
			}
			if ((size_t) (eol - v) == strlen(wv) && memcmp(v, wv, strlen(wv)) == 0) {
				return true;
			}
		}
	}
	return false;
}

/*
 * Answers the request whose head is c->buf[0..head). Returns true when the
 * connection stays open for another request.
 */
static bool
serve(th_conn *c, size_t head)
{
	th_server  *s = c->srv;
	const char *p = c->buf, *end = c->buf + head;
	const char *eol, *sp1, *sp2;
	bool        keep_alive = true, head_only, http10;
	size_t      body       = 0;
	int         status;
	char       *location = NULL;

	/* Request line: METHOD SP TARGET SP VERSION CRLF. */
	eol = memchr(p, '\r', (size_t) (end - p));
	sp1 = memchr(p, ' ', (size_t) (eol - p));
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t) (eol - sp1 - 1)) : NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == p || sp2 == sp1 + 1 || sp1[1] != '/'
	    || eol - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		respond(c->fd, 400, NULL, false, false);
		return false;
	}
	const char *headers = eol + 2;
	head_only           = sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0;
	http10              = sp2[8] == '0';
	keep_alive          = !http10;

	/* Headers: only Connection and Content-Length matter here. */
	for (p = eol + 2; p < end - 2; p = eol + 2) {
		const char *colon;
		size_t      vlen;

		eol   = memchr(p, '\r', (size_t) (end - p));
		colon = memchr(p, ':', (size_t) (eol - p));
		if (colon == NULL) {
			respond(c->fd, 400, NULL, false, false);
			return false;
		}
		vlen = (size_t) (eol - colon - 1);
		if (colon - p == 10 && strncasecmp(p, "connection", 10) == 0) {
			if (has_token(colon + 1, vlen, "close")) {
				keep_alive = false;
			} else if (http10 && has_token(colon + 1, vlen, "keep-alive")) {
				keep_alive = true;
			}
		} else if (colon - p == 14 && strncasecmp(p, "content-length", 14) == 0) {
			char  num[32];
			char *stop;

			if (vlen >= sizeof(num)) {
				respond(c->fd, 400, NULL, false, false);
				return false;
			}
			memcpy(num, colon + 1, vlen);
			num[vlen]            = 0;
			unsigned long long v = strtoull(num, &stop, 10);
			if (stop == num || v > TH_BODY_MAX) {
				respond(c->fd, 400, NULL, false, false);
				return false;
			}
			body = (size_t) v;
		}
	}

	/* Count the request, then wait for as long as its path hangs. */
	pthread_mutex_lock(&s->mtx);
	th_route *r = find_route(s, sp1 + 1, path_len(sp1 + 1, (size_t) (sp2 - sp1 - 1)), true);
	s->total_hits++;
	if (r != NULL) {
		r->hits++;
	}
	while (r != NULL && r->hang && !s->stopping) {
		struct timespec until;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += TH_HANG_POLL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cv, &s->mtx, &until);
		if (peer_gone(c->fd)) {
			pthread_mutex_unlock(&s->mtx);
			return false;
		}
	}
	if (s->stopping) {
		pthread_mutex_unlock(&s->mtx);
		return false;
	}
	if (r == NULL) {
		status = 500; /* out of memory: no route to count on */
	} else if (r->need != NULL && !has_header(headers, end, r->need)) {
		status = 403;
	} else if (r->location != NULL) {
		status   = 302;
		location = strdup(r->location);
	} else {
		status = r->status != 0 ? r->status : 404;
	}
	pthread_mutex_unlock(&s->mtx);

	consume(c, head);
	if (discard_body(c, body) != 0) {
		free(location);
		return false;
	}
	if (status == 302 && location == NULL) {
		status = 500;
	}
	int rv = respond(c->fd, status, location, head_only, keep_alive);
	free(location);
	return rv == 0 && keep_alive;
}

static void *
conn_main(void *arg)
{
	th_conn   *c = arg;
	th_server *s = c->srv;
	size_t     head;

	while ((head = read_head(c)) > 0 && serve(c, head)) { }
	/* Closed under the lock, so th_stop never shuts down a reused descriptor. */
	pthread_mutex_lock(&s->mtx);
	close(c->fd);
	c->fd   = -1;
	c->done = true;
	s->live--;
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

/* Joins and frees the connections whose threads have finished. */
static void
reap(th_server *s)
{
	th_conn **pp, *dead = NULL, *c;

	pthread_mutex_lock(&s->mtx);
	for (pp = &s->conns; (c = *pp) != NULL;) {
		if (c->done) {
			*pp     = c->next;
			c->next = dead;
			dead    = c;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&s->mtx);
	while ((c = dead) != NULL) {
		dead = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}
}

/* Hands fd to a new connection thread, or closes it when over the limit or stopping. */
static void
add_conn(th_server *s, int fd)
{
	th_conn *c = calloc(1, sizeof(*c));

	pthread_mutex_lock(&s->mtx);
	if (c == NULL || s->stopping || s->live >= TH_MAX_CONNS) {
		pthread_mutex_unlock(&s->mtx);
		close(fd);
		free(c);
		return;
	}
	c->srv = s;
	c->fd  = fd;
	if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
		pthread_mutex_unlock(&s->mtx);
		close(fd);
		free(c);
		return;
	}
	c->next  = s->conns;
	s->conns = c;
	s->live++;
	pthread_mutex_unlock(&s->mtx);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void *
accept_main(void *arg)
{
	th_server *s = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = s->lfd, .events = POLLIN },
			{ .fd = s->wake[0], .events = POLLIN },
		};

		reap(s);
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return NULL;
		}
		if (p[1].revents != 0) {
			return NULL; /* th_stop */
		}
		if ((p[0].revents & POLLIN) == 0) {
			continue;
		}
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
			    || errno == ENOMEM) {
				sleep_ms(10); /* let descriptors be released */
			}
			continue;
		}
		/* Daemons forked by the tests must not inherit our sockets. */
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		add_conn(s, fd);
	}
}

static int
set_cloexec(int fd)
{
	return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? 0 : errno;
}

int
th_start(th_server **out)
{
	th_server         *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	struct sockaddr_in sa;
	socklen_t          slen = sizeof(sa);
	int                one  = 1;
	int                rv;

	if (s == NULL) {
		return ENOMEM;
	}
	s->lfd     = -1;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rv = pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rv != 0) {
		pthread_mutex_destroy(&s->mtx);
		free(s);
		return rv;
	}

	if (pipe(s->wake) != 0 || (s->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		rv = errno;
		goto fail;
	}
	if ((rv = set_cloexec(s->wake[0])) != 0 || (rv = set_cloexec(s->wake[1])) != 0
	    || (rv = set_cloexec(s->lfd)) != 0) {
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port        = 0;
	if (setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || bind(s->lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0
	    || listen(s->lfd, SOMAXCONN) != 0
	    || getsockname(s->lfd, (struct sockaddr *) &sa, &slen) != 0) {
		rv = errno;
		goto fail;
	}
	s->port = ntohs(sa.sin_port);
	if ((rv = pthread_create(&s->acceptor, NULL, accept_main, s)) != 0) {
		goto fail;
	}
	*out = s;
	return 0;

fail:
	if (s->lfd >= 0) {
		close(s->lfd);
	}
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
	return rv != 0 ? rv : EIO;
}

int
th_port(const th_server *s)
{
	return s->port;
}

void
th_stop(th_server *s)
{
	th_conn  *c;
	th_route *r;

	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mtx);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	while (write(s->wake[1], "x", 1) < 0 && errno == EINTR) { }
	pthread_join(s->acceptor, NULL);

	/* No new connections now. Wake every thread blocked in recv or send. */
	pthread_mutex_lock(&s->mtx);
	for (c = s->conns; c != NULL; c = c->next) {
		if (c->fd >= 0) {
			shutdown(c->fd, SHUT_RDWR);
		}
	}
	pthread_mutex_unlock(&s->mtx);
	while ((c = s->conns) != NULL) {
		s->conns = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}

	while ((r = s->routes) != NULL) {
		s->routes = r->next;
		free(r->path);
		free(r->location);
		free(r->need);
		free(r);
	}
	close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

/* Runs the change under the lock on path's route; EINVAL or ENOMEM otherwise. */
static int
route_for(th_server *s, const char *path, th_route **out)
{
	if (path == NULL || path[0] != '/') {
		return EINVAL;
	}
	pthread_mutex_lock(&s->mtx);
	*out = find_route(s, path, path_len(path, strlen(path)), true);
	if (*out == NULL) {
		pthread_mutex_unlock(&s->mtx);
		return ENOMEM;
	}
	return 0;
}

int
th_set(th_server *s, const char *path, int status)
{
	th_route *r;
	int       rv;

	if (status < 100 || status > 999) {
		return EINVAL;
	}
	if ((rv = route_for(s, path, &r)) != 0) {
		return rv;
	}
	r->status = status;
	free(r->location);
	r->location = NULL;
	pthread_mutex_unlock(&s->mtx);
	return 0;
}

int
th_set_redirect(th_server *s, const char *path, const char *location)
{
	th_route *r;
	char     *copy;
	int       rv;

	if (location == NULL || strpbrk(location, "\r\n") != NULL) {
		return EINVAL;
	}
	if ((copy = strdup(location)) == NULL) {
		return ENOMEM;
	}
	if ((rv = route_for(s, path, &r)) != 0) {
		free(copy);
		return rv;
	}
	r->status = 302;
	free(r->location);
	r->location = copy;
	pthread_mutex_unlock(&s->mtx);
	return 0;
}

int
th_set_hang(th_server *s, const char *path, bool hang)
{
	th_route *r;
	int       rv;

	if ((rv = route_for(s, path, &r)) != 0) {
		return rv;
	}
	r->hang = hang;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	return 0;
}

int
th_hits(th_server *s, const char *path)
{
	th_route *r;
	int       n = 0;

	if (path == NULL) {
		return 0;
	}
	pthread_mutex_lock(&s->mtx);
	r = find_route(s, path, path_len(path, strlen(path)), false);
	if (r != NULL) {
		n = r->hits;
	}
	pthread_mutex_unlock(&s->mtx);
	return n;
}

int
th_total_hits(th_server *s)
{
	pthread_mutex_lock(&s->mtx);
	int n = s->total_hits;
	pthread_mutex_unlock(&s->mtx);
	return n;
}

int
th_set_require_header(th_server *s, const char *path, const char *header)
{
	th_route *r;
	char     *copy = NULL;
	int       rv;

	if (header != NULL && (strchr(header, ':') == NULL || (copy = strdup(header)) == NULL)) {
		return strchr(header, ':') == NULL ? EINVAL : ENOMEM;
	}
	if ((rv = route_for(s, path, &r)) != 0) {
		free(copy);
		return rv;
	}
	free(r->need);
	r->need = copy;
	pthread_mutex_unlock(&s->mtx);
	return 0;
}
