/* Unit tests of the AMD GPU table's coverage and names (compat/lookup.c,
 * compat/resolve.c over the shipped compat data): every device id and
 * revision of libdrm's amdgpu.ids (lemon's upstream copy and this machine's
 * copy when it has one) and of the kernel pciidlist resolves to a gfx target
 * through compat_gpu_lookup; the GCN-era and RDNA1 chips get the gfx target
 * KFD (or, where KFD does not run, LLVM) gives them; names follow the
 * revision, and a revision the table lacks gets the family, never another
 * revision's product. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compat/compat.h"
#include "util/str.h"

static int setup(void **state)
{
	struct compat_db *db = NULL;
	struct lemon_err err = { 0 };

	if (compat_db_load(LEMON_DATADIR, &db, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	compat_db_free(*state);
	return 0;
}

static int hexval(const char *s, size_t n, uint32_t *out)
{
	uint64_t v;

	if (n == 0 || lemon_parse_u64(s, n, 16, 0xffff, &v, NULL) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* every "DEVICE,\tREV,\tNAME" line of an amdgpu.ids file resolves; returns
 * the number of lines checked, -1 when the file is absent */
static int walk_ids(const struct compat_db *db, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int checked = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		struct compat_gpu_entry e;
		struct lemon_err err = { 0 };
		char *c1 = strchr(line, ','), *c2;
		const char *rs;
		size_t rn;
		uint32_t dev = 0, rev = 0;

		if (line[0] == '#' || !c1 || !(c2 = strchr(c1 + 1, ',')))
			continue;
		rs = c1 + 1;
		rn = (size_t)(c2 - rs);
		lemon_str_trim(&rs, &rn);
		assert_int_equal(hexval(line, (size_t)(c1 - line), &dev), 0);
		assert_int_equal(hexval(rs, rn, &rev), 0);
		if (compat_gpu_lookup(db, (uint16_t)dev, (uint8_t)rev, &e,
				      &err) != 0)
			fail_msg("%s: 1002:%04x rev %02x: %s", path, dev, rev,
				 err.msg);
		assert_true(e.gfx[0] != '\0');
		assert_true(e.family[0] != '\0');
		checked++;
	}
	fclose(f);
	return checked;
}

static void test_amdgpu_ids_resolve(void **state)
{
	int n;

	n = walk_ids(*state, LEMON_DATADIR "/upstream/amdgpu.ids");
	assert_true(n > 700); /* every line, not an empty walk */
	n = walk_ids(*state, "/usr/share/libdrm/amdgpu.ids");
	if (n < 0)
		print_message("no amdgpu.ids on this machine, skipped\n");
	else
		assert_true(n > 0);
}

static void test_pciidlist_resolves(void **state)
{
	FILE *f = fopen(LEMON_DATADIR "/upstream/amdgpu-pciidlist.txt", "r");
	char line[1024];
	int checked = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		const char *p = line, *w;
		size_t n;

		if (line[0] == '#')
			continue;
		p += strcspn(p, " \n"); /* the chip */
		while (*p == ' ') {
			struct compat_gpu_entry e;
			uint32_t dev = 0;

			w = ++p;
			n = strcspn(w, " \n");
			p = w + n;
			if (n == 3 && strncmp(w, "apu", 3) == 0)
				continue;
			assert_int_equal(hexval(w, n, &dev), 0);
			if (compat_gpu_lookup(*state, (uint16_t)dev, 0x00, &e,
					      NULL) != 0)
				fail_msg("pciidlist 1002:%04x unresolved", dev);
			checked++;
		}
	}
	fclose(f);
	assert_true(checked > 300);
}

struct want {
	uint16_t dev;
	uint8_t rev;
	const char *gfx, *family, *kind;
};

static void test_gcn_and_rdna1_targets(void **state)
{
	static const struct want w[] = {
		{ 0x6798, 0x00, "gfx600", "GCN1", "dgpu" }, /* Tahiti */
		{ 0x6810, 0x00, "gfx601", "GCN1", "dgpu" }, /* Pitcairn */
		{ 0x6820, 0x00, "gfx601", "GCN1", "dgpu" }, /* Cape Verde */
		{ 0x6610, 0x00, "gfx602", "GCN1", "dgpu" }, /* Oland */
		{ 0x6666, 0x00, "gfx602", "GCN1", "dgpu" }, /* Hainan */
		{ 0x130f, 0x00, "gfx700", "GCN2", "igpu" }, /* Kaveri */
		{ 0x67b0, 0x00, "gfx701", "GCN2", "dgpu" }, /* Hawaii */
		{ 0x6649, 0x00, "gfx704", "GCN2", "dgpu" }, /* Bonaire */
		{ 0x9830, 0x00, "gfx703", "GCN2", "igpu" }, /* Kabini */
		{ 0x9851, 0x00, "gfx703", "GCN2", "igpu" }, /* Mullins */
		{ 0x9874, 0xc4, "gfx801", "GCN3", "igpu" }, /* Carrizo */
		{ 0x6939, 0x00, "gfx802", "GCN3", "dgpu" }, /* Tonga */
		{ 0x7300, 0xc1, "gfx803", "GCN3", "dgpu" }, /* Fiji */
		{ 0x98e4, 0x80, "gfx810", "GCN3", "igpu" }, /* Stoney */
		{ 0x67df, 0xc1, "gfx803", "GCN4", "dgpu" }, /* RX 580 */
		{ 0x699f, 0xc7, "gfx803", "GCN4", "dgpu" }, /* RX 550 */
		{ 0x694c, 0xc0, "gfx803", "GCN4", "dgpu" }, /* Vega M */
		{ 0x687f, 0xc1, "gfx900", "GCN5", "dgpu" }, /* Vega 64 */
		{ 0x15dd, 0xc1, "gfx902", "GCN5", "igpu" }, /* Raven */
		{ 0x15d8, 0xc1, "gfx902", "GCN5", "igpu" }, /* Picasso */
		{ 0x69af, 0xc0, "gfx904", "GCN5", "dgpu" }, /* Vega 12 */
		{ 0x66af, 0xc1, "gfx906", "GCN5", "dgpu" }, /* Radeon VII */
		{ 0x66a1, 0x02, "gfx906", "GCN5", "accelerator" }, /* MI50 */
		{ 0x66a1, 0x06, "gfx906", "GCN5", "dgpu" },	   /* Pro VII */
		{ 0x1636, 0xc1, "gfx90c", "GCN5", "igpu" },	   /* Renoir */
		{ 0x738c, 0x01, "gfx908", "CDNA", "accelerator" }, /* MI100 */
		{ 0x731f, 0xc1, "gfx1010", "RDNA1", "dgpu" }, /* RX 5700 XT */
		{ 0x7360, 0xc3, "gfx1011", "RDNA1", "dgpu" }, /* Navi 12 */
		{ 0x7340, 0xc1, "gfx1012", "RDNA1", "dgpu" }, /* RX 5500 */
		{ 0x13fe, 0x00, "gfx1013", "RDNA1",
		  "igpu" }, /* Cyan Skillfish */
		/* the RDNA2/3 APUs the issue names as possible gaps */
		{ 0x164e, 0xc1, "gfx1036", "RDNA2", "igpu" }, /* Raphael */
		{ 0x13c0, 0xc1, "gfx1036", "RDNA2",
		  "igpu" }, /* Granite Ridge */
		{ 0x1681, 0xc1, "gfx1035", "RDNA2", "igpu" },	/* Rembrandt */
		{ 0x1506, 0xc1, "gfx1036", "RDNA2", "igpu" },	/* Mendocino */
		{ 0x163f, 0xae, "gfx1033", "RDNA2", "igpu" },	/* Van Gogh */
		{ 0x15bf, 0xc1, "gfx1103", "RDNA3", "igpu" },	/* Phoenix */
		{ 0x1114, 0xc2, "gfx1152", "RDNA3.5", "igpu" }, /* Krackan */
	};
	size_t i;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		struct compat_gpu_entry e;

		if (compat_gpu_lookup(*state, w[i].dev, w[i].rev, &e, NULL))
			fail_msg("1002:%04x unresolved", w[i].dev);
		if (strcmp(e.gfx, w[i].gfx) || strcmp(e.family, w[i].family) ||
		    strcmp(e.kind, w[i].kind))
			fail_msg("1002:%04x:%02x is %s %s %s, want %s %s %s",
				 w[i].dev, w[i].rev, e.gfx, e.family, e.kind,
				 w[i].gfx, w[i].family, w[i].kind);
	}
}

static void resolve_one(const struct compat_db *db, uint16_t dev, uint8_t rev,
			const char *libdrm_name, struct compat_gpu *out)
{
	struct detect_report *r = calloc(1, sizeof(*r));
	struct compat_view *v = calloc(1, sizeof(*v));
	struct detect_gpu *g;

	assert_non_null(r);
	assert_non_null(v);
	g = &r->gpus[r->n_gpus++];
	lemon_str_copy(g->pci.bdf, sizeof(g->pci.bdf), "0000:03:00.0");
	g->pci.vendor = 0x1002;
	g->pci.device = dev;
	g->pci.revision = rev;
	lemon_str_copy(g->pci.driver, sizeof(g->pci.driver), "amdgpu");
	lemon_str_copy(g->marketing_name, sizeof(g->marketing_name),
		       libdrm_name);
	assert_int_equal(compat_resolve(db, NULL, r, v, NULL), 0);
	*out = v->gpus[0];
	free(v);
	free(r);
}

static void test_names_by_revision(void **state)
{
	struct compat_gpu_entry e;
	struct compat_gpu g;

	/* 744c: one id, four products */
	assert_int_equal(compat_gpu_lookup(*state, 0x744c, 0xce, &e, NULL), 0);
	assert_string_equal(e.name, "AMD Radeon RX 7900 GRE");
	assert_int_equal(compat_gpu_lookup(*state, 0x744c, 0xc8, &e, NULL), 0);
	assert_string_equal(e.name, "AMD Radeon RX 7900 XTX");
	/* a revision the table lacks: no product name at all */
	assert_int_equal(compat_gpu_lookup(*state, 0x744c, 0x01, &e, NULL), 0);
	assert_string_equal(e.name, "");
	assert_string_equal(e.gfx, "gfx1100");
	/* 7480 is the RX 7600 at cf and a mobile part at c1 */
	assert_int_equal(compat_gpu_lookup(*state, 0x7480, 0xcf, &e, NULL), 0);
	assert_string_equal(e.name, "AMD Radeon RX 7600");
	assert_int_equal(compat_gpu_lookup(*state, 0x7480, 0xc1, &e, NULL), 0);
	assert_string_equal(e.name, "AMD Radeon RX 7700S");

	/* resolved without a machine amdgpu.ids: the table's name by
	 * revision, else the chip and family */
	resolve_one(*state, 0x744c, 0xce, "", &g);
	assert_string_equal(g.name, "AMD Radeon RX 7900 GRE");
	assert_string_equal(g.name_source, "pci_table");
	resolve_one(*state, 0x744c, 0x01, "", &g);
	assert_string_equal(g.name, "AMD Navi 31, RDNA3 family");
	assert_string_equal(g.name_source, "family");
	resolve_one(*state, 0x67df, 0x42, "", &g);
	assert_string_equal(g.name, "AMD Polaris 10 (Ellesmere), GCN4 family");
	assert_string_equal(g.family, "GCN4");
	/* the machine's libdrm answer (exact id and revision) wins */
	resolve_one(*state, 0x67df, 0xc1, "AMD Radeon RX 580 Series", &g);
	assert_string_equal(g.name, "AMD Radeon RX 580 Series");
	assert_string_equal(g.name_source, "libdrm");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amdgpu_ids_resolve),
		cmocka_unit_test(test_pciidlist_resolves),
		cmocka_unit_test(test_gcn_and_rdna1_targets),
		cmocka_unit_test(test_names_by_revision),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
