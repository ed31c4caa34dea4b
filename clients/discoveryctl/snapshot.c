/* discoveryctl snapshot save FILE: the admin endpoint's online copy, saved atomically. */
#include "discoveryctl/snapshot.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discoveryctl/output.h"

#define SQLITE_MAGIC "SQLite format 3" /* the first 16 bytes of every SQLite file, NUL included */

/* The download: into fd, with the body's first bytes kept for the check. */
typedef struct download {
	int    fd;
	int    err; /* errno of a failed write, else 0 */
	size_t len;
	char   head[512]; /* the first bytes: the file's header, or the error's JSON */
} download;

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	download *d     = arg;
	size_t    total = size * n;
	if (d->len < sizeof(d->head) - 1) {
		size_t k = sizeof(d->head) - 1 - d->len;
		memcpy(d->head + d->len, p, total < k ? total : k);
	}
	for (size_t off = 0; off < total;) {
		ssize_t w = write(d->fd, p + off, total - off);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			d->err = w < 0 ? errno : EIO;
			return 0; /* libcurl stops with CURLE_WRITE_ERROR */
		}
		off += (size_t) w;
	}
	d->len += total;
	return total;
}

/* An HTTP answer other than 200: says why, from the JSON error when there is one. */
static int
http_failed(const ctl *c, long status, download *d)
{
	/* The body's start (kept in head) is JSON {"error": ...} when the server says why. */
	char         why[256] = "";
	json_error_t jerr;
	json_t      *body = json_loads(d->head, JSON_DISABLE_EOF_CHECK, &jerr);
	const char  *msg  = json_string_value(json_object_get(body, "error"));
	for (size_t i = 0; msg != NULL && msg[i] != 0 && i < sizeof(why) - 1; i++) {
		/* No control byte from a server reaches the terminal. */
		why[i]     = (unsigned char) msg[i] < 0x20 || msg[i] == 0x7f ? '?' : msg[i];
		why[i + 1] = 0;
	}
	json_decref(body);
	size_t n = strlen(why);
	if (status == 401 || status == 403) {
		ctl_say("snapshot: the admin endpoint %s the auth token%s: give --token-file FILE "
		        "or set $" TOKEN_ENV,
		    status == 401 ? "needs" : "did not accept",
		    status == 401 ? " (a snapshot always needs one when the server has one)" : "");
		return EXIT_AUTH;
	}
	ctl_say("snapshot: %s answered %ld%s%s", c->admin, status, n > 0 ? ": " : "", why);
	return EXIT_REJECTED;
}

/* GET /v1/snapshot into fd; returns an EXIT_*. */
static int
fetch(const ctl *c, int fd)
{
	char               url[1024], auth[4200];
	download           d      = { .fd = fd };
	struct curl_slist *hdrs   = NULL;
	const char        *token  = c->token != NULL ? c->token : getenv(TOKEN_ENV);
	long               status = 0;
	int                rv     = EXIT_OK;
	CURL              *e;

	int base = (int) strlen(c->admin);
	while (base > 0 && c->admin[base - 1] == '/') {
		base--;
	}
	snprintf(url, sizeof(url), "%.*s/v1/snapshot", base, c->admin);
	if ((e = curl_easy_init()) == NULL) {
		ctl_say("snapshot: cannot start libcurl");
		return EXIT_LOCAL;
	}
	if (token != NULL && token[0] != 0) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		if ((hdrs = curl_slist_append(NULL, auth)) == NULL) {
			curl_easy_cleanup(e);
			return EXIT_LOCAL;
		}
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* --timeout bounds the connection; the copy itself may take longer on a large file. */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) c->timeout_ms);
	if (c->tls.ca_file != NULL) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->tls.ca_file);
	}
	if (c->tls.cert_file != NULL) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->tls.cert_file);
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->tls.key_file);
	}
	CURLcode cc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_WRITE_ERROR && d.err != 0) {
		ctl_say("snapshot: cannot write the copy: %s", strerror(d.err));
		rv = EXIT_LOCAL;
	} else if (cc != CURLE_OK) {
		ctl_say("snapshot: cannot fetch %s: %s", url, curl_easy_strerror(cc));
		if (cc == CURLE_COULDNT_CONNECT) {
			fprintf(stderr,
			    "discoveryctl: hint: is discoveryd running with its admin "
			    "endpoint on %s (--admin, $" ADMIN_ENV ")?\n",
			    c->admin);
		}
		rv = EXIT_UNREACHABLE;
	} else if (status != 200) {
		rv = http_failed(c, status, &d);
	} else if (d.len < sizeof(SQLITE_MAGIC)
	    || memcmp(d.head, SQLITE_MAGIC, sizeof(SQLITE_MAGIC)) != 0) {
		ctl_say("snapshot: %s did not send an SQLite file (%zu bytes)", url, d.len);
		rv = EXIT_REJECTED;
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(e);
	return rv;
}

int
ctl_cmd_snapshot(ctl *c)
{
	const char *file = c->args[1];
	char        tmp[4096];
	int         fd, rv;

	if (strcmp(c->args[0], "save") != 0) {
		ctl_say("snapshot: unknown subcommand '%s' (snapshot save FILE)", c->args[0]);
		return EXIT_USAGE;
	}
	if (strcmp(c->admin, "off") == 0) {
		ctl_say("snapshot: --admin is off: give the admin endpoint's URL");
		return EXIT_USAGE;
	}
	if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", file) >= sizeof(tmp)) {
		ctl_say("snapshot: %s: the name is too long", file);
		return EXIT_USAGE;
	}
	/* Beside FILE, so that the rename stays on one file system; mkstemp makes it 0600. */
	if ((fd = mkstemp(tmp)) < 0) {
		ctl_say("snapshot: cannot create %s: %s", tmp, strerror(errno));
		return EXIT_LOCAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ctl_say("snapshot: cannot start libcurl");
		rv = EXIT_LOCAL;
	} else {
		rv = fetch(c, fd);
		curl_global_cleanup();
	}
	if (rv == EXIT_OK && (fchmod(fd, 0600) != 0 || fsync(fd) != 0)) {
		ctl_say("snapshot: cannot write %s: %s", tmp, strerror(errno));
		rv = EXIT_LOCAL;
	}
	if (close(fd) != 0 && rv == EXIT_OK) {
		ctl_say("snapshot: cannot write %s: %s", tmp, strerror(errno));
		rv = EXIT_LOCAL;
	}
	if (rv == EXIT_OK && rename(tmp, file) != 0) {
		ctl_say("snapshot: cannot rename %s to %s: %s", tmp, file, strerror(errno));
		rv = EXIT_LOCAL;
	}
	if (rv != EXIT_OK) {
		unlink(tmp);
		return rv;
	}
	struct stat st;
	long long   size = stat(file, &st) == 0 ? (long long) st.st_size : -1;
	if (c->json) {
		json_t *o = json_object();
		json_object_set_new(o, "file", ctl_json_text(file));
		json_object_set_new(o, "bytes", json_integer(size));
		ctl_json_print(o);
	} else {
		fputs("saved ", stdout);
		ctl_put_clean(stdout, file);
		printf(" (%lld bytes)\n", size);
	}
	return EXIT_OK;
}
