/* Download progress: a one-line bar with bytes, rate and ETA when stderr
 * is a terminal, JSON lines (one object per update, for tools and logs)
 * when asked, nothing otherwise. Updates are rate-limited so a fast
 * loopback transfer does not spend its time printing. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "provision/provision-private.h"
#include "util/str.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(uint64_t n, char *out, size_t cap)
{
	if (n >= (1ULL << 30))
		snprintf(out, cap, "%.2f GiB", (double)n / (double)(1ULL << 30));
	else if (n >= (1ULL << 20))
		snprintf(out, cap, "%.1f MiB", (double)n / (double)(1ULL << 20));
	else
		snprintf(out, cap, "%.0f KiB", (double)n / 1024.0);
}

/* JSON string content: the label is an asset name, but escape anyway */
static void json_str(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, out);
	}
}

void provision_progress_init(struct provision_meter *p, enum provision_progress mode,
			const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	if (mode == PROVISION_PROGRESS_AUTO)
		mode = isatty(STDERR_FILENO) ? PROVISION_PROGRESS_BAR :
		       PROVISION_PROGRESS_NONE;
	p->mode = mode;
	lemon_str_copy(p->label, sizeof(p->label), label);
	p->total = total;
	p->t0 = now_s();
	p->last = 0;
}

static void draw(struct provision_meter *p, uint64_t done, double t, bool final)
{
	char a[32], b[32], r[32];
	double el = t - p->t0;
	double rate = el > 0 ? (double)(done - p->start_bytes) / el : 0;
	int width = 24, fill = 0, i;
	char bar[32];

	if (p->mode == PROVISION_PROGRESS_JSON) {
		fprintf(stderr, "{\"event\":\"%s\",\"asset\":\"",
			final ? "downloaded" : "progress");
		json_str(stderr, p->label);
		fprintf(stderr, "\",\"bytes\":%llu,\"total\":%llu,\"rate\":%.0f}\n",
			(unsigned long long)done, (unsigned long long)p->total,
			rate);
		return;
	}
	human(done, a, sizeof(a));
	human(p->total, b, sizeof(b));
	human((uint64_t)rate, r, sizeof(r));
	if (p->total)
		fill = (int)((double)done * width / (double)p->total);
	for (i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = 0;
	if (p->total && rate > 0 && !final)
		fprintf(stderr, "\r%.40s [%s] %s / %s  %s/s  ETA %.0fs   ",
			p->label, bar, a, b, r,
			(double)(p->total - (done < p->total ? done : p->total)) / rate);
	else
		fprintf(stderr, "\r%.40s [%s] %s / %s  %s/s          ", p->label,
			bar, a, p->total ? b : "?", r);
	if (final)
		fputc('\n', stderr);
	p->drawn = true;
}

void provision_progress_update(struct provision_meter *p, uint64_t done)
{
	double t;

	if (p == NULL)
		return;
	t = now_s();
	/* the caller's callback is independent of what stderr shows */
	if (p->on_progress && t - p->cb_last >= 0.25) {
		p->cb_last = t;
		p->on_progress(p->progress_ctx, done, p->total);
	}
	if (p->mode == PROVISION_PROGRESS_NONE)
		return;
	if (t - p->last < (p->mode == PROVISION_PROGRESS_BAR ? 0.1 : 0.5))
		return;
	p->last = t;
	draw(p, done, t, false);
}

void provision_progress_event(struct provision_meter *p, const char *event,
			 const char *detail)
{
	if (p == NULL || p->mode == PROVISION_PROGRESS_NONE)
		return;
	if (p->mode == PROVISION_PROGRESS_JSON) {
		fprintf(stderr, "{\"event\":\"%s\",\"asset\":\"", event);
		json_str(stderr, p->label);
		fprintf(stderr, "\",\"detail\":\"");
		json_str(stderr, detail ? detail : "");
		fprintf(stderr, "\"}\n");
		return;
	}
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
	fprintf(stderr, "%s: %s\n", event, detail ? detail : "");
}

void provision_progress_finish(struct provision_meter *p, uint64_t done)
{
	if (p && p->on_progress)
		p->on_progress(p->progress_ctx, done, p->total);
	if (p == NULL || p->mode == PROVISION_PROGRESS_NONE)
		return;
	draw(p, done, now_s(), true);
}

void provision_progress_resume(struct provision_meter *p, uint64_t kept,
			  const char *part_path)
{
	if (p == NULL)
		return;
	/* the kept bytes are neither part of the rate nor, for a caller
	 * that counts what it downloads, bytes this attempt received */
	p->start_bytes = kept;
	if (p->on_resume)
		p->on_resume(p->progress_ctx, kept);
	provision_progress_event(p, "resume", part_path);
}
