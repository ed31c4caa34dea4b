/* CIDR rules for the addresses endpoints may point at. */
#include "server/netpolicy.h"

#include <arpa/inet.h>
#include <discovery/discovery.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/text.h"

int
dsi_cidr_parse(const char *text, dsi_cidr *out, char *why, size_t why_len)
{
	char        addr[64], esc[80];
	const char *slash = strchr(text, '/');
	size_t      alen  = slash != NULL ? (size_t) (slash - text) : strlen(text);

	memset(out, 0, sizeof(*out));
	dsi_text_escape(text, esc, sizeof(esc));
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(why, why_len, "\"%s\" is not an address or CIDR range", esc);
		return DSC_EINVAL;
	}
	memcpy(addr, text, alen);
	addr[alen] = 0;
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		out->prefix = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		out->prefix = 128;
	} else {
		snprintf(why, why_len, "\"%s\" is not an address or CIDR range", esc);
		return DSC_EINVAL;
	}
	if (slash != NULL) {
		char *end = NULL;
		long  n   = strtol(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end != 0 || n < 0 || n > out->prefix) {
			snprintf(why, why_len, "\"%s\" has a prefix length outside 0-%d", esc,
			    out->prefix);
			return DSC_EINVAL;
		}
		out->prefix = (int) n;
	}
	dsi_strlcpy(out->text, text, sizeof(out->text));
	return 0;
}

int
dsi_netpolicy_add(dsi_netpolicy *p, bool allow, const char *cidr, char *why, size_t why_len)
{
	dsi_cidr c;
	int      rv = dsi_cidr_parse(cidr, &c, why, why_len);
	if (rv != 0) {
		return rv;
	}
	if ((allow ? p->n_allow : p->n_deny) >= DSI_NETPOLICY_MAX) {
		snprintf(why, why_len, "at most %d rules of each kind", DSI_NETPOLICY_MAX);
		return DSC_ELIMIT;
	}
	if (allow) {
		p->allow[p->n_allow++] = c;
	} else {
		p->deny[p->n_deny++] = c;
	}
	return 0;
}

void
dsi_netpolicy_init(dsi_netpolicy *p)
{
	char why[128];
	memset(p, 0, sizeof(*p));
	dsi_netpolicy_add(p, false, DSI_NETPOLICY_DENY_V4, why, sizeof(why));
	dsi_netpolicy_add(p, false, DSI_NETPOLICY_DENY_V6, why, sizeof(why));
}

static bool
covers(const dsi_cidr *c, int family, const uint8_t *addr)
{
	if (c->family != family) {
		return false;
	}
	int full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(c->addr, addr, (size_t) full) != 0) {
		return false;
	}
	if (rest == 0) {
		return true;
	}
	uint8_t mask = (uint8_t) (0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}

/* The verdict of the rules on one address, as given (no embedded forms). */
static bool
judge(const dsi_netpolicy *p, int family, const uint8_t *addr, char *why, size_t why_len)
{
	char text[64];

	inet_ntop(family, addr, text, sizeof(text));
	for (size_t i = 0; i < p->n_allow; i++) {
		if (covers(&p->allow[i], family, addr)) {
			return true;
		}
	}
	for (size_t i = 0; i < p->n_deny; i++) {
		if (covers(&p->deny[i], family, addr)) {
			snprintf(why, why_len, "address %s is in the denied range %s", text,
			    p->deny[i].text);
			return false;
		}
	}
	if (p->n_allow > 0) {
		snprintf(why, why_len, "address %s is outside every --allow-endpoint range", text);
		return false;
	}
	return true;
}

bool
dsi_netpolicy_permits(
    const dsi_netpolicy *p, int family, const uint8_t *addr, char *why, size_t why_len)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zero[12]   = { 0 };
	static const uint8_t nat64[12]  = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

	if (family != AF_INET6) {
		return judge(p, family, addr, why, why_len);
	}
	/*
	 * ::ffff:a.b.c.d is a.b.c.d, and so is the deprecated ::a.b.c.d (but
	 * not :: or ::1): judge them as IPv4, or the v4 rules are bypassed.
	 */
	if (memcmp(addr, mapped, sizeof(mapped)) == 0
	    || (memcmp(addr, zero, sizeof(zero)) == 0
	        && (addr[12] | addr[13] | addr[14] | (addr[15] & 0xfe)) != 0)) {
		return judge(p, AF_INET, addr + 12, why, why_len);
	}
	/*
	 * NAT64 (64:ff9b::/96) and 6to4 (2002:a.b.c.d::/48) reach an IPv4
	 * address through a gateway: both the IPv6 and the IPv4 must pass.
	 */
	if (memcmp(addr, nat64, sizeof(nat64)) == 0) {
		return judge(p, AF_INET6, addr, why, why_len)
		    && judge(p, AF_INET, addr + 12, why, why_len);
	}
	if (addr[0] == 0x20 && addr[1] == 0x02) {
		return judge(p, AF_INET6, addr, why, why_len)
		    && judge(p, AF_INET, addr + 2, why, why_len);
	}
	return judge(p, AF_INET6, addr, why, why_len);
}

/*
 * An IPv4 address in any form inet_aton(3) takes (and so getaddrinfo, and
 * the clients' resolvers): one to four parts, each decimal, octal (leading
 * 0) or hex (0x), the last filling the bytes that remain, as in
 * 2852039166, 0xa9.0xfe.0.1, 169.254.43518 or 0251.0376.0251.0376. Unlike
 * glibc's inet_aton it takes nothing after the number.
 */
static bool
parse_ipv4_any(const char *s, uint8_t out[4])
{
	uint64_t parts[4];
	int      n = 0;

	for (;;) {
		uint64_t v = 0, base = 10;
		int      digits = 0;
		if (n == 4) {
			return false;
		}
		if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
			base = 16;
			s += 2;
			digits = -1; /* "0x" alone is 0 to inet_aton; take it as such */
		} else if (s[0] == '0') {
			base = 8;
		}
		for (;; s++, digits = digits < 0 ? 1 : digits + 1) {
			int d;
			if (*s >= '0' && *s <= '9') {
				d = *s - '0';
			} else if (base == 16 && *s >= 'a' && *s <= 'f') {
				d = *s - 'a' + 10;
			} else if (base == 16 && *s >= 'A' && *s <= 'F') {
				d = *s - 'A' + 10;
			} else {
				break;
			}
			if ((uint64_t) d >= base) {
				return false;
			}
			v = v * base + (uint64_t) d;
			if (v > 0xffffffffu) {
				return false;
			}
		}
		if (digits == 0) {
			return false;
		}
		parts[n++] = v;
		if (*s == 0) {
			break;
		}
		if (*s++ != '.') {
			return false;
		}
	}
	uint64_t addr = 0;
	for (int i = 0; i < n - 1; i++) {
		if (parts[i] > 0xff) {
			return false;
		}
		addr |= parts[i] << (24 - 8 * i);
	}
	if (parts[n - 1] > (0xffffffffu >> (8 * (n - 1)))) {
		return false;
	}
	addr |= parts[n - 1];
	for (int i = 0; i < 4; i++) {
		out[i] = (uint8_t) (addr >> (24 - 8 * i));
	}
	return true;
}

bool
dsi_netpolicy_permits_host(const dsi_netpolicy *p, const char *host, char *why, size_t why_len)
{
	uint8_t addr[16];
	char    buf[64];
	size_t  len = strlen(host);

	/* curl gives IPv6 hosts in brackets, with an optional zone. */
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (len - 2 >= sizeof(buf)) {
			return true; /* no IPv6 literal is this long: not one the rules know */
		}
		memcpy(buf, host + 1, len - 2);
		buf[len - 2]           = 0;
		buf[strcspn(buf, "%")] = 0;
		return inet_pton(AF_INET6, buf, addr) != 1
		    || dsi_netpolicy_permits(p, AF_INET6, addr, why, why_len);
	}
	/*
	 * A trailing dot makes a name absolute, and resolvers take
	 * "169.254.169.254." as the address: judge the host without it.
	 */
	while (len > 0 && host[len - 1] == '.') {
		len--;
	}
	if (len == 0 || len >= sizeof(buf)) {
		return true; /* a name: the checker decides when it connects */
	}
	memcpy(buf, host, len);
	buf[len] = 0;
	if (parse_ipv4_any(buf, addr)) {
		return dsi_netpolicy_permits(p, AF_INET, addr, why, why_len);
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		return dsi_netpolicy_permits(p, AF_INET6, addr, why, why_len);
	}
	return true;
}
