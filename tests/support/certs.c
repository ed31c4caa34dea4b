/* Throwaway certificates for TLS tests (certs.h). */
#include "support/certs.h"

#include <stdio.h>
#include <sys/stat.h>

#include "support/daemon.h"

#define OPENSSL "/usr/bin/openssl"

static int
run_quiet(const char *const *argv)
{
	char out[4096], err[4096];
	int  rv = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "%s exited %d:\n%s%s", argv[0], rv, out, err);
	}
	return rv;
}

int
tcert_make_ca(const char *dir, const char *name)
{
	char crt[400], key[400], subj[64];
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(subj, sizeof(subj), "/CN=%s", name);
	return run_quiet((const char *[]) { OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
	    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
	    "-subj", subj, NULL });
}

int
tcert_make_leaf(const char *dir, const char *name, const char *ca, const char *san)
{
	char crt[400], key[400], csr[400], ext[400], ca_crt[400], ca_key[400], subj[64];
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(csr, sizeof(csr), "%s/%s.csr", dir, name);
	snprintf(ext, sizeof(ext), "%s/%s.ext", dir, name);
	snprintf(ca_crt, sizeof(ca_crt), "%s/%s.crt", dir, ca);
	snprintf(ca_key, sizeof(ca_key), "%s/%s.key", dir, ca);
	snprintf(subj, sizeof(subj), "/CN=%s", name);
	FILE *f = fopen(ext, "w");
	if (f == NULL) {
		return -1;
	}
	fprintf(f, "subjectAltName=%s\n", san);
	fclose(f);
	if (run_quiet((const char *[]) { OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt",
	        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj",
	        subj, NULL })
	    != 0) {
		return -1;
	}
	if (run_quiet(
	        (const char *[]) { OPENSSL, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey",
	            ca_key, "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext, NULL })
	    != 0) {
		return -1;
	}
	return chmod(key, 0600);
}
