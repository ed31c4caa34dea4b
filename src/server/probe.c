/*
 * The libcurl probe: check URLs, the easy handle of one check, and the
 * meaning of its result. The checker's thread is the only caller, so the
 * callbacks below run there.
 */
#include "server/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "common/text.h"

int
dsi_check_url(
    const char *endpoint, const char *health_path, char *out, size_t out_len, bool *connect_only)
{
	CURLU *u      = curl_url();
	char  *scheme = NULL, *path = NULL, *full = NULL;
	int    rv = DSC_EINVAL;

	if (u == NULL) {
		return DSC_ENOMEM;
	}
	if (curl_url_set(u, CURLUPART_URL, endpoint, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK
	    || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		goto out;
	}
	*connect_only = strcmp(scheme, "tcp") == 0;
	if (*connect_only) {
		/* curl connects and stops: the scheme only picks the default port. */
		curl_url_set(u, CURLUPART_SCHEME, "http", 0);
		curl_url_set(u, CURLUPART_PATH, "/", 0);
	} else {
		if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
			goto out;
		}
		const char *hp
		    = health_path != NULL && health_path[0] != 0 ? health_path : "/health";
		const char *q
		    = strchr(hp, '?'); /* a query of the path's own joins the endpoint's */
		size_t hplen  = q != NULL ? (size_t) (q - hp) : strlen(hp);
		size_t plen   = strlen(path);
		size_t need   = plen + hplen + 2;
		char  *joined = malloc(need);
		if (joined == NULL) {
			rv = DSC_ENOMEM;
			goto out;
		}
		while (plen > 0 && path[plen - 1] == '/') {
			plen--;
		}
		snprintf(joined, need, "%.*s%s%.*s", (int) plen, path, hp[0] == '/' ? "" : "/",
		    (int) hplen, hp);
		CURLUcode uc = curl_url_set(u, CURLUPART_PATH, joined, 0);
		free(joined);
		if (uc == CURLUE_OK && q != NULL && q[1] != 0) {
			uc = curl_url_set(u, CURLUPART_QUERY, q + 1, CURLU_APPENDQUERY);
		}
		if (uc != CURLUE_OK) {
			goto out;
		}
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		goto out;
	}
	rv = dsi_strlcpy(out, full, out_len) ? 0 : DSC_EINVAL;
out:
	curl_free(scheme);
	curl_free(path);
	curl_free(full);
	curl_url_cleanup(u);
	return rv;
}

/*
 * curl asks for every socket it opens, with the address it resolved: the
 * one place a name that resolves to a denied range (say, a metadata
 * service) is caught, for HTTP and for tcp:// connects alike.
 */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	dsi_probe     *p = arg;
	char           why[160];
	const uint8_t *addr = NULL;
	(void) purpose;
	if (a->family == AF_INET) {
		addr = (const uint8_t *) &((struct sockaddr_in *) &a->addr)->sin_addr;
	} else if (a->family == AF_INET6) {
		addr = (const uint8_t *) &((struct sockaddr_in6 *) &a->addr)->sin6_addr;
	}
	if (p->policy != NULL && addr != NULL
	    && !dsi_netpolicy_permits(p->policy, a->family, addr, why, sizeof(why))) {
		free(p->refused);
		p->refused = strdup(why);
		return CURL_SOCKET_BAD;
	}
	curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
	if (fd == CURL_SOCKET_BAD && dsi_probe_errno_is_local(errno)) {
		p->local_errno = (int16_t) errno; /* ours, not the target's: see dsi_probe_result */
	}
	return fd;
}

static size_t
body_cb(char *data, size_t size, size_t n, void *arg)
{
	dsi_probe *p = arg;
	(void) data;
	size_t got  = size * n;
	size_t room = p->body < DSI_PROBE_BODY_CAP ? (size_t) DSI_PROBE_BODY_CAP - p->body : 0;
	p->body     = (uint16_t) (got > room ? DSI_PROBE_BODY_CAP + 1 : p->body + got);
	if (p->body > DSI_PROBE_BODY_CAP) {
		p->capped = true;
		return 0; /* enough: curl stops with CURLE_WRITE_ERROR */
	}
	return size * n;
}

CURL *
dsi_probe_start(dsi_probe *p, const char *url, int timeout_ms, CURLSH *share,
    const dsi_netpolicy *policy, const dsi_check_http *http, void *private_data)
{
	CURL *e = curl_easy_init();
	if (e == NULL) {
		return NULL;
	}
	p->body        = 0;
	p->capped      = false;
	p->policy      = policy;
	p->local_errno = 0;
	free(p->refused);
	p->refused = NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, private_data);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
	/* A health check never leaves the endpoint: no redirects, no other protocols. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); /* checks go straight to the instance */
	curl_easy_setopt(e, CURLOPT_SHARE, share);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "discoveryd health check");
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, p);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
	if (p->connect_only) {
		curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	} else if (http != NULL) {
		/* Never CURLOPT_VERBOSE: the headers carry secrets. */
		if (http->ca_file != NULL) {
			/* Instead of the system's: Debian's libcurl also has a CA directory. */
			curl_easy_setopt(e, CURLOPT_CAINFO, http->ca_file);
			curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		}
		if (http->cert != NULL) {
			curl_easy_setopt(e, CURLOPT_SSLCERT, http->cert);
			curl_easy_setopt(e, CURLOPT_SSLKEY, http->key);
		}
		if (http->headers != NULL) {
			curl_easy_setopt(e, CURLOPT_HTTPHEADER, http->headers);
		}
	}
	return e;
}

bool
dsi_probe_errno_is_local(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

void
dsi_probe_ended(dsi_probe *p, CURLcode res)
{
	if (p->local_errno != 0 || p->refused != NULL
	    || (res != CURLE_COULDNT_CONNECT && res != CURLE_COULDNT_RESOLVE_HOST)) {
		return;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		close(fd);
	} else if (dsi_probe_errno_is_local(errno)) {
		p->local_errno = (int16_t) errno;
	}
}

dsi_probe_verdict
dsi_probe_result(
    const dsi_probe *p, CURLcode res, long code, int timeout_ms, char *reason, size_t reason_len)
{
	dsi_probe_verdict v = DSI_PROBE_FAILED;
	if (res == CURLE_OK && p->connect_only) {
		v = DSI_PROBE_OK;
		snprintf(reason, reason_len, "TCP connect succeeded");
	} else if (res == CURLE_OK || (res == CURLE_WRITE_ERROR && p->capped)) {
		v = code >= 200 && code <= 299 ? DSI_PROBE_OK : DSI_PROBE_FAILED;
		snprintf(reason, reason_len, "HTTP %ld", code);
	} else if (p->refused != NULL) {
		snprintf(reason, reason_len, "refused by the endpoint policy: %s", p->refused);
	} else if (p->local_errno != 0) {
		v = DSI_PROBE_LOCAL_ERROR;
		snprintf(
		    reason, reason_len, "no socket for the check: %s", strerror(p->local_errno));
	} else if (res == CURLE_OUT_OF_MEMORY || res == CURLE_FAILED_INIT) {
		v = DSI_PROBE_LOCAL_ERROR; /* curl could not start the transfer here */
		snprintf(reason, reason_len, "%s", curl_easy_strerror(res));
	} else if (res == CURLE_OPERATION_TIMEDOUT) {
		v = DSI_PROBE_TIMED_OUT;
		snprintf(reason, reason_len, "timeout after %d ms", timeout_ms);
	} else {
		snprintf(reason, reason_len, "%s", curl_easy_strerror(res));
	}
	return v;
}

void
dsi_probe_clear(dsi_probe *p)
{
	free(p->refused);
	p->refused = NULL;
}
