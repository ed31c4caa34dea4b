/*
 * Opening a file that must be a regular file: the configuration file and
 * the token file. A FIFO without a writer would block open(2) and read(2)
 * forever, and a device can be read without end; both are refused at once.
 */
#ifndef DSI_REGFILE_H
#define DSI_REGFILE_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * Opens path for reading without blocking (O_NONBLOCK, so a FIFO with no
 * writer cannot hold the open), checks with fstat that it is a regular
 * file, then clears O_NONBLOCK. what names the file in messages ("the
 * token file"). Returns 0 with *fd (the caller closes it) and *st filled,
 * or DSC_EINVAL with why ("PATH: cannot read WHAT: ..." or "PATH: WHAT is
 * not a regular file") and nothing left open.
 */
int dsi_regfile_open(
    const char *path, const char *what, int *fd, struct stat *st, char *why, size_t why_len);

/*
 * Reads the whole regular file at path (opened as above) into a malloc'd,
 * NUL-terminated buffer the caller frees, refusing one over max bytes
 * before reading it (and one that grows past max while being read).
 * Returns 0 with *data and *len, or DSC_EINVAL / DSC_ENOMEM with why.
 */
int dsi_regfile_read(const char *path, const char *what, size_t max, char **data, size_t *len,
    char *why, size_t why_len);

#endif
