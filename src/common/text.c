/* Validation and escaping of untrusted text. */
#include "common/text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool
dsi_text_is_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	while (*p != 0) {
		unsigned c = *p;
		if (c < 0x20 || c == 0x7f) {
			return false;
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		size_t   len;
		uint32_t cp;
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp  = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp  = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp  = c & 0x07;
		} else {
			return false;
		}
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80) {
				return false;
			}
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates and values past Unicode. */
		static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
		if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)
		    || (cp >= 0x80 && cp < 0xa0)) {
			return false;
		}
		p += len;
	}
	return true;
}

char *
dsi_text_escape(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t            o     = 0;
	if (n == 0) {
		return out;
	}
	for (const unsigned char *p = (const unsigned char *) s; *p != 0; p++) {
		char   buf[4];
		size_t len;
		if (*p < 0x20 || *p >= 0x7f || *p == '\\' || *p == '"') {
			buf[0] = '\\';
			buf[1] = 'x';
			buf[2] = hex[*p >> 4];
			buf[3] = hex[*p & 0xf];
			len    = 4;
		} else {
			buf[0] = (char) *p;
			len    = 1;
		}
		if (o + len + 4 > n) { /* keep room for "..." and NUL */
			if (o + 4 <= n) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, buf, len);
		o += len;
	}
	out[o < n ? o : n - 1] = 0;
	return out;
}

bool
dsi_strlcpy(char *dst, const char *src, size_t n)
{
	int rv = snprintf(dst, n, "%s", src);
	return rv >= 0 && (size_t) rv < n;
}

bool
dsi_secret_equal(const char *a, const char *b)
{
	const unsigned char *x  = (const unsigned char *) (a != NULL ? a : "");
	const unsigned char *y  = (const unsigned char *) (b != NULL ? b : "");
	size_t               lx = strlen((const char *) x), ly = strlen((const char *) y);
	size_t               n    = lx > ly ? lx : ly;
	volatile unsigned    diff = (unsigned) (lx ^ ly);
	for (size_t i = 0; i < n; i++) {
		diff |= (unsigned) ((i < lx ? x[i] : 0) ^ (i < ly ? y[i] : 0));
	}
	return diff == 0;
}

int
dsi_failf(int rv, char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return rv;
}
