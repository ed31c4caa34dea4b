/*
 * TLS configurations from PEM files. nng does the TLS; mbedTLS, the engine
 * Debian's nng is built with, is called directly for one thing nng leaves
 * out: checking that a private key belongs to its certificate. nng takes a
 * mismatched pair without complaint, and every handshake then fails.
 */
#include "common/tls.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A certificate chain is a few KiB; the bound makes a wrong path (a log, a device) cheap. */
#define PEM_MAX (1024 * 1024)

bool
dsi_url_is_tls(const char *url)
{
	return url != NULL && strncmp(url, "tls+", 4) == 0;
}

#if MBEDTLS_VERSION_MAJOR >= 3
/* mbedTLS 3 wants randomness (for blinding) to parse and check private keys. */
static int
random_bytes(void *arg, unsigned char *buf, size_t len)
{
	FILE  *f = fopen("/dev/urandom", "rb");
	size_t n = f != NULL ? fread(buf, 1, len, f) : 0;
	(void) arg;
	if (f != NULL) {
		fclose(f);
	}
	return n == len ? 0 : MBEDTLS_ERR_PK_BAD_INPUT_DATA;
}
#define RNG_ARGS , random_bytes, NULL
#else
#define RNG_ARGS
#endif

/* Reads a whole PEM file into a new string; what names it in messages. */
static int
read_pem(const char *what, const char *path, char **out, char *why, size_t why_len)
{
	FILE  *f = fopen(path, "rb");
	char  *buf;
	size_t n;

	if (f == NULL) {
		snprintf(why, why_len, "%s %s: cannot read: %s", what, path, strerror(errno));
		return DSC_EINVAL;
	}
	if ((buf = malloc(PEM_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(why, why_len, "out of memory");
		return DSC_ENOMEM;
	}
	n = fread(buf, 1, PEM_MAX + 1, f);
	if (ferror(f) || n > PEM_MAX) {
		snprintf(why, why_len, "%s %s: %s", what, path,
		    ferror(f) ? "cannot read it" : "is larger than 1 MiB");
		fclose(f);
		free(buf);
		return DSC_EINVAL;
	}
	fclose(f);
	buf[n] = 0;
	if (strstr(buf, "-----BEGIN ") == NULL) {
		snprintf(why, why_len, "%s %s: not a PEM file", what, path);
		free(buf);
		return DSC_EINVAL;
	}
	*out = buf;
	return 0;
}

/* Frees a buffer that held a private key, overwriting it first. */
static void
wipe_free(char *buf)
{
	if (buf != NULL) {
		/* volatile, so the compiler cannot drop the stores before free. */
		for (volatile char *p = buf; *p != 0; p++) {
			*p = 0;
		}
		free(buf);
	}
}

/* Parses both, and checks that the key is the certificate's. */
static int
check_pair(const dsi_tls_files *f, const char *cert, const char *key, char *why, size_t why_len)
{
	mbedtls_x509_crt   crt;
	mbedtls_pk_context pk;
	int                rv;

	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&pk);
	if (mbedtls_x509_crt_parse(&crt, (const unsigned char *) cert, strlen(cert) + 1) != 0) {
		snprintf(why, why_len, "certificate %s: not a PEM certificate", f->cert);
		rv = DSC_EINVAL;
	} else if ((rv = mbedtls_pk_parse_key(
	                &pk, (const unsigned char *) key, strlen(key) + 1, NULL, 0 RNG_ARGS))
	    != 0) {
		snprintf(why, why_len, "private key %s: %s", f->key,
		    rv == MBEDTLS_ERR_PK_PASSWORD_REQUIRED
		        ? "is encrypted; an unencrypted key is needed"
		        : "not a PEM private key");
		rv = DSC_EINVAL;
	} else if (mbedtls_pk_check_pair(&crt.pk, &pk RNG_ARGS) != 0) {
		snprintf(
		    why, why_len, "private key %s does not match certificate %s", f->key, f->cert);
		rv = DSC_EINVAL;
	}
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&crt);
	return rv;
}

int
dsi_tls_config(
    nng_tls_config **out, nng_tls_mode mode, const dsi_tls_files *f, char *why, size_t why_len)
{
	nng_tls_config *cfg  = NULL;
	char           *cert = NULL, *key = NULL, *ca = NULL;
	int             rv;

	if (mode == NNG_TLS_MODE_SERVER && (f->cert == NULL || f->key == NULL)) {
		snprintf(why, why_len, "a TLS server needs a certificate and its private key");
		return DSC_EINVAL;
	}
	if ((f->cert == NULL) != (f->key == NULL)) {
		snprintf(
		    why, why_len, "a certificate needs its private key, and a key its certificate");
		return DSC_EINVAL;
	}
	if (mode == NNG_TLS_MODE_CLIENT && (f->ca == NULL || f->server_name == NULL)) {
		/* Without both, anyone on the path could pose as the server. */
		snprintf(why, why_len, "a TLS client needs a CA file %s",
		    f->ca == NULL ? "to verify the server with" : "and the server's name");
		return DSC_EINVAL;
	}
	if ((rv = nng_tls_config_alloc(&cfg, mode)) != 0) {
		snprintf(why, why_len, "cannot set up TLS: %s", nng_strerror(rv));
		return rv == NNG_ENOMEM ? DSC_ENOMEM : DSC_EINVAL;
	}
	if (f->cert != NULL) {
		if ((rv = read_pem("certificate", f->cert, &cert, why, why_len)) != 0
		    || (rv = read_pem("private key", f->key, &key, why, why_len)) != 0
		    || (rv = check_pair(f, cert, key, why, why_len)) != 0) {
			goto fail;
		}
		if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
			snprintf(why, why_len, "certificate %s: %s", f->cert, nng_strerror(rv));
			rv = DSC_EINVAL;
			goto fail;
		}
	}
	if (f->ca != NULL) {
		if ((rv = read_pem("CA file", f->ca, &ca, why, why_len)) != 0) {
			goto fail;
		}
		/* As nng_tls_config_ca_file does: a CRL, if any, is in the same file. */
		rv = nng_tls_config_ca_chain(
		    cfg, ca, strstr(ca, "-----BEGIN X509 CRL-----") != NULL ? ca : NULL);
		if (rv != 0) {
			snprintf(why, why_len, "CA file %s: no usable certificate: %s", f->ca,
			    nng_strerror(rv));
			rv = DSC_EINVAL;
			goto fail;
		}
	}
	/* Servers ask for client certificates only with a CA to check them against. */
	rv = nng_tls_config_auth_mode(
	    cfg, f->ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE);
	if (rv == 0 && f->server_name != NULL) {
		rv = nng_tls_config_server_name(cfg, f->server_name);
	}
	if (rv != 0) {
		snprintf(why, why_len, "cannot set up TLS: %s", nng_strerror(rv));
		rv = rv == NNG_ENOMEM ? DSC_ENOMEM : DSC_EINVAL;
		goto fail;
	}
	*out = cfg;
	cfg  = NULL;
fail:
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	free(cert);
	wipe_free(key);
	free(ca);
	return rv;
}
