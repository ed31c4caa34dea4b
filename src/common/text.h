/* Checks and escaping for strings that arrive from the network. */
#ifndef DSI_TEXT_H
#define DSI_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s is valid UTF-8 without C0 controls or DEL. */
bool dsi_text_is_clean(const char *s);

/*
 * Writes s into out (of size n, always NUL-terminated), with control bytes,
 * backslashes, quotes and non-ASCII bytes as \xNN, and truncates with "..."
 * past n. For log lines and error messages that quote client input.
 * Returns out.
 */
char *dsi_text_escape(const char *s, char *out, size_t n);

/*
 * Compares two secrets in time that depends only on their lengths, never on
 * where they first differ. NULL counts as "".
 */
bool dsi_secret_equal(const char *a, const char *b);

/* Writes the message into why (snprintf) and returns rv: for "return dsi_failf(...)". */
int dsi_failf(int rv, char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* snprintf that never fails to terminate and reports truncation as false. */
bool dsi_strlcpy(char *dst, const char *src, size_t n);

#endif
