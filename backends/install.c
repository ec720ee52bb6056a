/* every bundle install the server process makes, counted in one place:
 * the first run's (backends_prepare), the bundle of a fallback candidate
 * that the supervisor provisions on demand (backends_resolve_exe), and
 * those POST /api/v1/backends/install asks for (server/backends_route.c).
 * The counts live in the backends object rather than in server/, which
 * backends/ may not call; GET /metrics reads them from backends_snapshot.
 * They are kept under the supervisor's lock, taken only for a moment
 * here (never across the download), so a snapshot sees an install either
 * running or ended, never both. */
#include <pthread.h>

#include "backends/backends-private.h"

struct counted {
	struct backends *b;
	const struct provision_opts *caller;
	uint64_t seen; /* what the counts have been told of this download */
};

/* a resumed download's done starts at the .part an earlier attempt (or
 * an earlier process, stopped mid-download) kept: those bytes were not
 * downloaded by this install and are not counted again */
static void on_resume(void *ctx, uint64_t kept)
{
	struct counted *k = ctx;

	k->seen = kept;
	if (k->caller->on_resume)
		k->caller->on_resume(k->caller->progress_ctx, kept);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct counted *k = ctx;

	/* done counts the current download from its start (a resumed .part
	 * included, which on_resume took as seen): a retry that starts over
	 * reports less than before, and is counted afresh */
	pthread_mutex_lock(&k->b->mu);
	k->b->installs.bytes += done >= k->seen ? done - k->seen : done;
	pthread_mutex_unlock(&k->b->mu);
	k->seen = done;
	if (k->caller->on_progress)
		k->caller->on_progress(k->caller->progress_ctx, done, total);
}

int backends_install(struct backends *b, const struct compat_backend_asset *a,
		     const struct provision_opts *opts, struct provision_result *res,
		     struct lemon_err *err)
{
	struct counted k = { .b = b, .caller = opts };
	struct provision_opts po = *opts;
	int rc;

	po.on_progress = on_progress;
	po.on_resume = on_resume;
	po.progress_ctx = &k;
	pthread_mutex_lock(&b->mu);
	b->installs.in_progress++;
	pthread_mutex_unlock(&b->mu);
	rc = provision_install(a, &po, res, err);
	pthread_mutex_lock(&b->mu);
	b->installs.in_progress--;
	if (rc == 0)
		b->installs.completed++;
	else
		b->installs.failed++;
	pthread_mutex_unlock(&b->mu);
	return rc;
}
