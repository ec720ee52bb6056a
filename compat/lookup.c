/* the raw lookups over the loaded compat tables (PCI id -> GPU entry, GC IP
 * -> gfx, gfx -> ROCm family, NPU id -> generation, kernel -> accepted NPU
 * firmware protocols and firmware names, kernel-log pattern matching) and the
 * small parsers they share; no policy lives here, resolve.c and pick.c
 * decide what the answers mean */
#include "compat/compat-private.h"

#include <stdio.h>
#include <string.h>

#include "util/str.h"

int compat_gfx_from_kfd(uint32_t v, char *gfx, size_t cap,
			struct lemon_err *err)
{
	uint32_t major = v / 10000, minor = (v / 100) % 100, step = v % 100;

	if (v == 0 || major == 0 || minor > 15 || step > 15)
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "gfx_target_version %u does not decode to a gfx target",
				     v);
	if (snprintf(gfx, cap, "gfx%u%x%x", major, minor, step) >= (int)cap)
		return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
				     "gfx name buffer too small");
	return 0;
}

int compat_gpu_lookup(const struct compat_db *db, uint16_t device,
		      uint8_t revision, struct compat_gpu_entry *out,
		      struct lemon_err *err)
{
	const struct compat_gpu_rec *generic = NULL, *hit = NULL;
	int i;

	for (i = 0; i < db->n_gpus; i++) {
		const struct compat_gpu_rec *g = &db->gpus[i];

		if (g->vendor != 0x1002 || g->device != device)
			continue;
		if (g->has_rev && g->rev == revision)
			hit = g;
		else if (!g->has_rev)
			generic = g;
	}
	if (!hit)
		hit = generic;
	if (!hit)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "AMD GPU 1002:%04x is not in the compat table",
				     device);
	*out = hit->e;
	/* libdrm's per-revision product name beats the id-wide name; where
	 * the names differ by revision and this one is not listed, the
	 * id-wide name may be another product (744c is the RX 7900 XTX at
	 * c8 and the GRE at ce): no name then */
	if (hit->n_names > 0)
		out->name[0] = '\0';
	for (i = 0; i < hit->n_names; i++)
		if (hit->names[i].rev == revision)
			lemon_str_copy(out->name, sizeof(out->name),
				       hit->names[i].name);
	return 0;
}

int compat_gfx_from_gc_ip(const struct compat_db *db, const char *gc_ip,
			  char *gfx, size_t cap, struct lemon_err *err)
{
	int i;

	for (i = 0; i < db->n_gc; i++)
		if (strcmp(db->gc[i].gc_ip, gc_ip) == 0) {
			if (!lemon_str_copy(gfx, cap, db->gc[i].gfx))
				return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
						     "gfx name buffer too small");
			return 0;
		}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "GC IP %s is not in the compat table", gc_ip);
}

int compat_rocm_lookup(const struct compat_db *db, const char *gfx,
		       struct compat_rocm *out, struct lemon_err *err)
{
	int i;

	for (i = 0; i < db->n_rocm; i++)
		if (strcmp(db->rocm[i].gfx, gfx) == 0) {
			*out = db->rocm[i].r;
			return 0;
		}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "no ROCm data for %s", gfx);
}

int compat_npu_lookup(const struct compat_db *db, uint16_t vendor,
		      uint16_t device, uint8_t revision,
		      struct compat_npu_entry *out, struct lemon_err *err)
{
	int i;

	for (i = 0; i < db->n_npus; i++) {
		const struct compat_npu_rec *r = &db->npus[i];

		if (r->vendor == vendor && r->device == device &&
		    r->rev == revision) {
			*out = r->e;
			return 0;
		}
	}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "NPU %04x:%04x rev %02x is not in the compat table",
			     vendor, device, revision);
}

/* ---- kernel releases and protocols --------------------------------------- */

static int leading_number(const char **s, uint32_t *out)
{
	uint64_t v;
	size_t n = strspn(*s, "0123456789");

	if (n == 0 || lemon_parse_u64(*s, n, 10, 0xffff, &v, NULL))
		return -1;
	*out = (uint32_t)v;
	*s += n;
	return 0;
}

int compat_kernel_parse(const char *release, uint32_t out[2],
			struct lemon_err *err)
{
	const char *s = release;

	if (leading_number(&s, &out[0]) || *s != '.' ||
	    (s++, leading_number(&s, &out[1])))
		return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
				     "kernel release '%s' does not start with major.minor",
				     release);
	return 0;
}

int compat_protocol_parse(const char *s, int *major, int *minor,
			  struct lemon_err *err)
{
	const char *p = s;
	uint32_t a, b;

	if (leading_number(&p, &a) || a > 255)
		goto bad;
	*major = (int)a;
	*minor = -1;
	if (*p == '\0')
		return 0;
	if (*p != '.' || (p++, leading_number(&p, &b)) || b > 255 || *p)
		goto bad;
	*minor = (int)b;
	return 0;
bad:
	return lemon_err_set(err, LEMON_ERR_INVALID_DATA,
			     "malformed protocol version '%s'", s);
}

bool compat_protocol_accepted(const struct compat_protocol *accepts, int n,
			      int major, int minor)
{
	int i;

	for (i = 0; i < n; i++)
		if (accepts[i].major == major &&
		    (minor < 0 || minor >= accepts[i].min_minor))
			return true;
	return false;
}

void compat_protocol_format(const struct compat_protocol *accepts, int n,
			    char *out, size_t cap)
{
	size_t len = 0;
	int i, w;

	out[0] = '\0';
	for (i = 0; i < n && len < cap; i++) {
		if (accepts[i].min_minor == 0)
			w = snprintf(out + len, cap - len, "%s%d.x",
				     i ? " or " : "", accepts[i].major);
		else
			w = snprintf(out + len, cap - len, "%s%d.%d+",
				     i ? " or " : "", accepts[i].major,
				     accepts[i].min_minor);
		if (w < 0)
			return;
		len += (size_t)w;
	}
}

static bool kernel_in(const struct compat_kwin *w, const uint32_t k[2])
{
	if (w->has_min && (k[0] < w->min[0] ||
			   (k[0] == w->min[0] && k[1] < w->min[1])))
		return false;
	if (w->has_below && (k[0] > w->below[0] ||
			     (k[0] == w->below[0] && k[1] >= w->below[1])))
		return false;
	return true;
}

int compat_npu_driver_protocols(const struct compat_db *db,
				const char *generation, const char *kernel,
				const char *module_version,
				struct compat_protocol *out, int cap,
				int *n_out, struct lemon_err *err)
{
	bool oot = module_version && module_version[0];
	uint32_t k[2] = { 0, 0 };
	int i, j;

	*n_out = 0;
	if (!oot && compat_kernel_parse(kernel ? kernel : "", k, err))
		return -1;
	for (i = 0; i < db->n_drv; i++) {
		const struct compat_drv_rule *r = &db->drv[i];

		if (strcmp(r->generation, generation) != 0 ||
		    r->out_of_tree != oot || (!oot && !kernel_in(&r->win, k)))
			continue;
		for (j = 0; j < r->n && j < cap; j++)
			out[j] = r->accepts[j];
		*n_out = j;
		return 0;
	}
	if (oot)
		return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
				     "no protocol rule for %s with out-of-tree amdxdna %s",
				     generation, module_version);
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "no protocol rule for %s with the amdxdna of kernel %u.%u",
			     generation, k[0], k[1]);
}

int compat_npu_firmware_names(const struct compat_db *db, const char *kernel,
			      const char *module_version, char names[][24],
			      int cap, int *n_out, struct lemon_err *err)
{
	bool oot = module_version && module_version[0];
	uint32_t k[2] = { 0, 0 };
	int i, j;

	*n_out = 0;
	if (!oot && compat_kernel_parse(kernel ? kernel : "", k, err))
		return -1;
	for (i = 0; i < db->n_fwn; i++) {
		const struct compat_fw_rule *r = &db->fwn[i];

		if (r->out_of_tree != oot || (!oot && !kernel_in(&r->win, k)))
			continue;
		for (j = 0; j < r->n && j < cap; j++)
			lemon_str_copy(names[j], sizeof(names[j]), r->names[j]);
		*n_out = j;
		return 0;
	}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "no amdxdna firmware rule for kernel %u.%u", k[0],
			     k[1]);
}

int compat_npu_iommu_rule(const struct compat_db *db, const char *kernel,
			  const char *module_version,
			  struct compat_npu_iommu *out, struct lemon_err *err)
{
	bool oot = module_version && module_version[0];
	uint32_t k[2] = { 0, 0 };
	int i;

	if (!oot && compat_kernel_parse(kernel ? kernel : "", k, err))
		return -1;
	for (i = 0; i < db->n_iommu; i++) {
		const struct compat_iommu_rule *r = &db->iommu[i];

		if (r->out_of_tree != oot || (!oot && !kernel_in(&r->win, k)))
			continue;
		*out = r->r;
		return 0;
	}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "no IOMMU rule for this amdxdna");
}

int compat_npu_firmware_protocol(const struct compat_db *db, const char *dir,
				 const char *version, char *protocol,
				 size_t cap, struct lemon_err *err)
{
	size_t dlen = strlen(dir);
	int i;

	/* "amdnpu/17f0_10/" and "17f0_10" name the same directory */
	while (dlen > 0 && dir[dlen - 1] == '/')
		dlen--;
	for (i = 0; i < db->n_fwv; i++) {
		const struct compat_fw_version *v = &db->fwv[i];
		const char *d = v->dir;

		if (dlen == 7)
			d += strlen("amdnpu/");
		if (strlen(d) == dlen && strncmp(d, dir, dlen) == 0 &&
		    strcmp(v->version, version) == 0) {
			if (!lemon_str_copy(protocol, cap, v->protocol))
				return lemon_err_set(err, LEMON_ERR_TOO_LARGE,
						     "protocol buffer too small");
			return 0;
		}
	}
	return lemon_err_set(err, LEMON_ERR_NOT_FOUND,
			     "firmware %.*s version %s has no known protocol",
			     (int)dlen, dir, version);
}

/* ---- kernel-log templates ------------------------------------------------ */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* matches tmpl against the start of s (recursive only for {any}) */
static bool match_here(const char *t, const char *s, int *major, int *minor)
{
	while (*t) {
		if (*t != '{') {
			if (*t != *s)
				return false;
			t++;
			s++;
			continue;
		}
		if (strncmp(t, "{any}", 5) == 0) {
			for (;; s++) {
				if (match_here(t + 5, s, major, minor))
					return true;
				if (!*s)
					return false;
			}
		}
		if (strncmp(t, "{hex}", 5) == 0) {
			size_t n = 0;

			while (is_hex(s[n]))
				n++;
			if (n == 0)
				return false;
			s += n;
			t += 5;
			continue;
		}
		{
			int *slot = NULL;
			size_t tl, n = 0;
			uint64_t v;

			if (strncmp(t, "{major}", 7) == 0) {
				slot = major;
				tl = 7;
			} else if (strncmp(t, "{minor}", 7) == 0) {
				slot = minor;
				tl = 7;
			} else if (strncmp(t, "{int}", 5) == 0) {
				tl = 5;
			} else {
				return false;
			}
			if (*s == '-' && !slot)
				n++;
			while (s[n] >= '0' && s[n] <= '9')
				n++;
			if (n == 0 || (n == 1 && *s == '-'))
				return false;
			if (slot) {
				if (lemon_parse_u64(s, n, 10, 255, &v, NULL))
					return false;
				*slot = (int)v;
			}
			s += n;
			t += tl;
		}
	}
	return true;
}

bool compat_template_match(const char *tmpl, const char *line, int *major,
			   int *minor)
{
	const char *s;

	for (s = line; *s; s++) {
		*major = -1;
		*minor = -1;
		if (match_here(tmpl, s, major, minor))
			return true;
	}
	*major = -1;
	*minor = -1;
	return false;
}

bool compat_kmsg_match(const struct compat_db *db, const char *line,
		       struct compat_kmsg_hit *out)
{
	int i, j, major, minor;

	for (i = 0; i < db->n_kmsg; i++) {
		const struct compat_kmsg_rec *r = &db->kmsg[i];

		for (j = 0; j < r->n; j++) {
			if (!compat_template_match(r->match[j], line, &major,
						   &minor))
				continue;
			memset(out, 0, sizeof(*out));
			lemon_str_copy(out->id, sizeof(out->id), r->id);
			lemon_str_copy(out->meaning, sizeof(out->meaning),
				       r->meaning);
			lemon_str_copy(out->fix, sizeof(out->fix), r->fix);
			out->proto_major = major;
			out->proto_minor = minor;
			return true;
		}
	}
	return false;
}
