/* The health checks' TLS files and headers, checked and built once per checker. */
#include "server/checkhttp.h"

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/regfile.h"
#include "common/text.h"
#include "common/tokenfile.h"

static bool
is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
	    || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Visible ASCII, spaces and tabs: nothing that could end the header line. */
static bool
is_clean_value(const char *v)
{
	for (const unsigned char *p = (const unsigned char *) v; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p >= 0x7f) {
			return false;
		}
	}
	return true;
}

dsi_check_http_options
dsi_check_http_options_from(const dsi_server_options *o)
{
	dsi_check_http_options h = { .ca_file = o->check_ca_file,
		.cert                         = o->check_cert,
		.key                          = o->check_key,
		.headers                      = o->check_header,
		.n_headers                    = o->n_check_header,
		.header_files                 = o->check_header_file,
		.n_header_files               = o->n_check_header_file };
	return h;
}

int
dsi_check_header_parse(
    const char *item, size_t *name_len, const char **value, char *why, size_t why_len)
{
	size_t n = 0;
	while (is_tchar(item[n])) {
		n++;
	}
	if (n == 0 || item[n] != ':') {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "expects NAME: VALUE, with NAME a header name (letters, digits, '-'...)");
	}
	const char *v = item + n + 1;
	v += strspn(v, " \t");
	if (v[0] == 0 || !is_clean_value(v)) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "header %.*s: the value must be non-empty visible ASCII, spaces or tabs",
		    (int) (n > 64 ? 64 : n), item);
	}
	*name_len = n;
	*value    = v;
	return 0;
}

/* Appends "name: value" to h's list, leaving no copy of the value behind. */
static int
add_header(dsi_check_http *h, const char *name, size_t name_len, const char *value)
{
	size_t             len  = name_len + 2 + strlen(value) + 1;
	char              *line = malloc(len);
	struct curl_slist *n    = NULL;
	if (line != NULL) {
		snprintf(line, len, "%.*s: %s", (int) name_len, name, value);
		n = curl_slist_append(h->headers, line);
		memset(line, 0, len);
		free(line);
	}
	if (n == NULL) {
		return DSC_ENOMEM;
	}
	h->headers = n;
	return 0;
}

/* A copy of path after checking it is a readable regular file (a secret one, if secret). */
static int
checked_copy(char **out, const char *path, const char *what, bool secret, char *why, size_t why_len)
{
	int fd, rv;
	if (secret) {
		rv = dsi_secret_file_check(path, what, why, why_len);
	} else {
		struct stat st;
		if ((rv = dsi_regfile_open(path, what, &fd, &st, why, why_len)) == 0) {
			close(fd);
		}
	}
	if (rv == 0 && (*out = strdup(path)) == NULL) {
		rv = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	return rv;
}

int
dsi_check_http_build(dsi_check_http *h, const dsi_check_http_options *o, char *why, size_t why_len)
{
	char value[DSI_TOKEN_MAX + 1];
	int  rv = 0;

	memset(h, 0, sizeof(*h));
	if ((o->cert == NULL) != (o->key == NULL)) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "a health check client certificate needs both --check-cert and --check-key");
	}
	if (o->ca_file != NULL
	    && (rv = checked_copy(
	            &h->ca_file, o->ca_file, "the health check CA file", false, why, why_len))
	        != 0) {
		goto fail;
	}
	if (o->cert != NULL
	    && ((rv = checked_copy(
	             &h->cert, o->cert, "the health check certificate", false, why, why_len))
	            != 0
	        || (rv = checked_copy(&h->key, o->key, "the health check key", true, why, why_len))
	            != 0)) {
		goto fail;
	}
	for (size_t i = 0; i < o->n_headers + o->n_header_files; i++) {
		bool        from_file = i >= o->n_headers;
		const char *item = from_file ? o->header_files[i - o->n_headers] : o->headers[i];
		const char *v;
		size_t      name_len;
		if ((rv = dsi_check_header_parse(item, &name_len, &v, why, why_len)) != 0) {
			goto fail;
		}
		if (from_file) {
			if ((rv = dsi_secret_file_read(
			         v, "the header file", value, sizeof(value), why, why_len))
			    != 0) {
				goto fail;
			}
			if (!is_clean_value(value)) {
				rv = dsi_failf(DSC_EINVAL, why, why_len,
				    "%s: the header file must hold one line of visible ASCII", v);
				goto fail;
			}
			v = value;
		}
		rv = add_header(h, item, name_len, v);
		memset(value, 0, sizeof(value));
		if (rv != 0) {
			dsi_failf(rv, why, why_len, "out of memory");
			goto fail;
		}
	}
	return 0;
fail:
	memset(value, 0, sizeof(value));
	dsi_check_http_free(h);
	return rv;
}

void
dsi_check_http_free(dsi_check_http *h)
{
	free(h->ca_file);
	free(h->cert);
	free(h->key);
	curl_slist_free_all(h->headers);
	memset(h, 0, sizeof(*h));
}
