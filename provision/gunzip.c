/* Streaming gzip decoding between the downloader and libarchive, with
 * ISA-L's inflate: decompression is the single most expensive step of an
 * install (more than half the CPU time with zlib), and ISA-L's is several
 * times faster. A stream that does not start with the gzip magic passes
 * through untouched, for libarchive to recognise (zip, plain tar, xz). */
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>

#include "provision/provision-private.h"

#define GUNZIP_OUT_SIZE (1u << 20)

struct provision_gunzip {
	struct provision_fetch *src;
	struct inflate_state st;
	bool sniffed, gzip, in_eof, member_done;
	bool src_failed;     /* the error came from the download, not the data */
	unsigned char *out;
};

int provision_gunzip_new(struct provision_fetch *src, struct provision_gunzip **out,
		    struct lemon_err *err)
{
	struct provision_gunzip *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (g == NULL || (g->out = malloc(GUNZIP_OUT_SIZE)) == NULL) {
		free(g);
		return lemon_err_set(err, LEMON_ERR_INTERNAL, "out of memory");
	}
	g->src = src;
	isal_inflate_init(&g->st);
	g->st.crc_flag = ISAL_GZIP; /* parse the header, check CRC32 and size */
	*out = g;
	return 0;
}

bool provision_gunzip_source_failed(const struct provision_gunzip *g)
{
	return g != NULL && g->src_failed;
}

void provision_gunzip_free(struct provision_gunzip *g)
{
	if (g == NULL)
		return;
	free(g->out);
	free(g);
}

/* more compressed input when the decoder has used up what it had */
static int refill(struct provision_gunzip *g, struct lemon_err *err)
{
	const void *b;
	size_t n;

	if (g->st.avail_in > 0 || g->in_eof)
		return 0;
	if (provision_fetch_read(g->src, &b, &n, err) < 0) {
		g->src_failed = true;
		return -1;
	}
	if (n == 0) {
		g->in_eof = true;
		return 0;
	}
	/* ISA-L takes a non-const pointer but only reads the input */
	g->st.next_in = (uint8_t *)(uintptr_t)b;
	g->st.avail_in = (uint32_t)n;
	return 0;
}

int provision_gunzip_read(struct provision_gunzip *g, const void **buf, size_t *len,
		     struct lemon_err *err)
{
	size_t produced;
	int rc;

	*len = 0;
	if (!g->sniffed) {
		if (refill(g, err) < 0)
			return -1;
		g->sniffed = true;
		g->gzip = g->st.avail_in >= 2 && g->st.next_in[0] == 0x1f &&
			  g->st.next_in[1] == 0x8b;
	}
	if (!g->gzip) {
		if (refill(g, err) < 0)
			return -1;
		*buf = g->st.next_in;
		*len = g->st.avail_in;
		g->st.avail_in = 0;
		return 0;
	}
	for (;;) {
		if (g->member_done)
			return 0; /* anything after the stream is only hashed */
		if (refill(g, err) < 0)
			return -1;
		g->st.next_out = g->out;
		g->st.avail_out = GUNZIP_OUT_SIZE;
		rc = isal_inflate(&g->st);
		if (rc < 0)
			return provision_err_isal(err, rc, "gzip stream");
		produced = GUNZIP_OUT_SIZE - g->st.avail_out;
		if (g->st.block_state == ISAL_BLOCK_FINISH) {
			/* a second gzip member may follow (concatenated .gz) */
			if (refill(g, err) < 0)
				return -1;
			if (g->st.avail_in > 0 && g->st.next_in[0] == 0x1f) {
				uint8_t *in = g->st.next_in;
				uint32_t avail = g->st.avail_in;

				isal_inflate_reset(&g->st);
				g->st.crc_flag = ISAL_GZIP;
				g->st.next_in = in;
				g->st.avail_in = avail;
			} else {
				g->member_done = true;
			}
		} else if (produced == 0 && g->in_eof) {
			return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
					     "gzip stream: truncated");
		}
		if (produced > 0) {
			*buf = g->out;
			*len = produced;
			return 0;
		}
	}
}
