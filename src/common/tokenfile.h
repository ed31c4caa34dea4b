/*
 * The auth token file, read the same way by discoveryd and discoveryctl.
 * A secret others can read is not a secret (as ssh says of private keys),
 * and a path that is not a regular file (a FIFO, a device) is refused
 * without blocking on it.
 */
#ifndef DSI_TOKENFILE_H
#define DSI_TOKENFILE_H

#include <stddef.h>

#define DSI_TOKEN_MAX 4095 /* bytes of token, the trailing newline not counted */

/*
 * A server's token as its handlers read it: a reload (SIGHUP) swaps it
 * while they run, never between NULL (no authentication) and a token, and
 * every token stays valid until the server is gone.
 */
typedef _Atomic(const char *) dsi_token_ref;

/*
 * Reads the token in path into out (NUL-terminated). The file must be a
 * regular file that neither group nor others can read, hold at most
 * min(DSI_TOKEN_MAX, out_len - 1) bytes of token after one trailing
 * newline ("\n" or "\r\n") is dropped, and no NUL byte; an empty token is
 * refused. Returns 0, or DSC_EINVAL with why ("PATH: ...") and out left
 * empty.
 */
int dsi_token_file_read(const char *path, char *out, size_t out_len, char *why, size_t why_len);

/*
 * The same rules for any one-line secret (a health check's header value);
 * what names the file in messages ("the token file").
 */
int dsi_secret_file_read(
    const char *path, const char *what, char *out, size_t out_len, char *why, size_t why_len);

/*
 * Only the first rules, for a secret another library reads (a private key
 * curl loads): a regular file that neither group nor others can read.
 * Returns 0, or DSC_EINVAL with why ("PATH: ...").
 */
int dsi_secret_file_check(const char *path, const char *what, char *why, size_t why_len);

#endif
