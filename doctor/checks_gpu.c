/* GPU checks: driver binding, KFD, device-node access, gfx sources, and
 * the backend verdict */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor-private.h"

/* "sudo usermod -aG render $USER" for a node the user cannot open */
static void access_fix(const struct detect_node *n, char *fix, size_t cap)
{
	if (n->group[0] != '\0' && n->gid != 0)
		snprintf(fix, cap,
			 "sudo usermod -aG %s $USER, then log out and back in",
			 n->group);
	else
		snprintf(fix, cap,
			 "grant access to %s (mode %03o, gid %u): add a udev rule or run as a user in its group",
			 n->path, n->mode, n->gid);
}

bool doctor_check_node(struct doctor_result *res, const char *section,
		       const char *id, const char *rel)
{
	const struct detect_node *n = detect_find_node(&res->report, rel);
	char fix[256], path[48];

	detect_root_display(DETECT_BASE_DEV, rel, path, sizeof(path));
	if (n == NULL || !n->exists) {
		doctor_add(res, section, id, DOCTOR_FAIL,
			   "load the driver (see the checks above) so the kernel creates it",
			   "%s does not exist", path);
		return false;
	}
	if (!n->has_mode) {
		doctor_add(res, section, id, DOCTOR_UNKNOWN, NULL,
			   "%s exists; its permissions were not recorded, so whether this user can open it is unknown",
			   path);
		return true;
	}
	if (n->readable && n->writable) {
		doctor_add(res, section, id, DOCTOR_OK, NULL,
			   "%s is readable and writable", path);
		return true;
	}
	access_fix(n, fix, sizeof(fix));
	doctor_add(res, section, id, DOCTOR_FAIL, fix,
		   "%s is not accessible to this user (mode %03o, group %s)",
		   path, n->mode, n->group[0] ? n->group : "unknown");
	return false;
}

static void amdgpu_fix(const struct detect_kmod *km, char *fix, size_t cap)
{
	if (km->loaded)
		snprintf(fix, cap,
			 "amdgpu is loaded but did not bind: read 'sudo dmesg | grep amdgpu' for the probe error");
	else if (km->has_available && !km->available)
		snprintf(fix, cap,
			 "install a kernel with amdgpu (CONFIG_DRM_AMDGPU) and linux-firmware");
	else
		snprintf(fix, cap, "sudo modprobe amdgpu");
}

/* a word of the kernel command line, whole ("amdgpu.si_support=1") */
static bool cmdline_has(const char *cmdline, const char *word)
{
	size_t n = strlen(word);
	const char *p;

	for (p = strstr(cmdline, word); p; p = strstr(p + 1, word))
		if ((p == cmdline || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

/* GCN 1 (Southern Islands) and GCN 2 (Sea Islands) parts are driven by
 * radeon unless the kernel is told otherwise (amdgpu_drv.c: "SI support
 * provided by radeon. Use radeon.si_support=0 amdgpu.si_support=1 to
 * override", and the same for CIK); radeon has no Vulkan driver, Mesa's
 * RADV needs amdgpu. Returns false for other parts. */
static bool legacy_driver_check(struct doctor_result *res,
				const struct compat_gpu *cg, const char *id)
{
	const struct detect_gpu *g = &res->report.gpus[cg->index];
	const char *cmd = res->report.host.cmdline;
	bool si = strcmp(cg->family, "GCN1") == 0;
	const char *param = si ? "si_support" : "cik_support";
	char want[2][40], fix[256];

	if (!si && strcmp(cg->family, "GCN2") != 0)
		return false;
	snprintf(want[0], sizeof(want[0]), "radeon.%s=0", param);
	snprintf(want[1], sizeof(want[1]), "amdgpu.%s=1", param);
	if (cmdline_has(cmd, want[0]) && cmdline_has(cmd, want[1]))
		snprintf(fix, sizeof(fix),
			 "the command line already has %s %s: use a kernel whose amdgpu is built with %s, or read 'sudo dmesg | grep amdgpu'",
			 want[0], want[1],
			 si ? "CONFIG_DRM_AMDGPU_SI=y" : "CONFIG_DRM_AMDGPU_CIK=y");
	else
		snprintf(fix, sizeof(fix),
			 "add '%s %s' to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then sudo update-grub) and reboot",
			 want[0], want[1]);
	doctor_add(res, "gpu", id, DOCTOR_FAIL, fix,
		   "%s (1002:%04x, %s, %s %s) is driven by %s, not amdgpu: Vulkan (Mesa's RADV) and ROCm need amdgpu, which takes %s parts only when told to",
		   cg->name, g->pci.device, cg->gfx,
		   si ? "GCN 1," : "GCN 2,",
		   si ? "Southern Islands" : "Sea Islands",
		   g->pci.driver[0] ? g->pci.driver : "no driver",
		   si ? "Southern Islands" : "Sea Islands");
	return true;
}

/* gfx1151 (Strix Halo): ROCm needs the kernel's CWSR fix, visible as
 * cwsr_size and ctl_stack_size in the KFD node's properties */
static void check_cwsr(struct doctor_result *res, const struct compat_gpu *cg,
		       const struct detect_gpu *g)
{
	char id[40], fix[160];

	snprintf(id, sizeof(id), "kfd-cwsr:%s", g->pci.bdf);
	if (g->kfd_cwsr) {
		doctor_add(res, "gpu", id, DOCTOR_OK, NULL,
			   "KFD node %d reports cwsr_size and ctl_stack_size: the kernel has the CWSR fix %s needs",
			   g->kfd_node, cg->gfx);
		return;
	}
	snprintf(fix, sizeof(fix),
		 "install kernel %s or newer (or a kernel with the CWSR fix backported)",
		 cg->kfd_cwsr_kernel);
	doctor_add(res, "gpu", id, DOCTOR_FAIL, fix,
		   "KFD node %d lacks cwsr_size and ctl_stack_size: kernel %s has no CWSR fix for %s, so ROCm cannot run on it",
		   g->kfd_node,
		   res->report.host.kernel[0] ? res->report.host.kernel : "?",
		   cg->gfx);
}

/* what the kernel said through libdrm (live), and whether it agrees with
 * sysfs and amdgpu.ids */
static void check_libdrm(struct doctor_result *res, const struct compat_gpu *cg,
			 const struct detect_gpu *g)
{
	const struct detect_libdrm_gpu *l = &g->libdrm;
	char id[40], vram[24] = "?", gtt[24] = "?";

	snprintf(id, sizeof(id), "libdrm:%s", g->pci.bdf);
	if (l->has_vram)
		doctor_format_bytes(l->vram_heap, vram, sizeof(vram));
	if (l->has_gtt)
		doctor_format_bytes(l->gtt_heap, gtt, sizeof(gtt));
	if (cg->libdrm_disagreement[0]) {
		doctor_add(res, "gpu", id, DOCTOR_WARN,
			   "report it: lemon doctor --json output",
			   "libdrm and sysfs disagree: %s",
			   cg->libdrm_disagreement);
		return;
	}
	doctor_add(res, "gpu", id, DOCTOR_OK, NULL,
		   "libdrm: family %u, external revision 0x%x, VRAM heap %s, GTT heap %s",
		   l->family_id, l->chip_external_rev, vram, gtt);
}

static void check_one_gpu(struct doctor_result *res, const struct compat_gpu *cg)
{
	const struct detect_gpu *g = &res->report.gpus[cg->index];
	char id[32], fix[256], path[48];

	snprintf(id, sizeof(id), "gpu:%s", g->pci.bdf);
	if (g->pci.vendor == 0x10de)
		return; /* checks_nvidia.c */
	if (g->pci.vendor != 0x1002) {
		char mem[80] = "", size[24];

		if (g->has_vram) {
			doctor_format_bytes(g->vram_bytes, size, sizeof(size));
			snprintf(mem, sizeof(mem), ", VRAM %s (%s)", size,
				 g->vram_source);
		}
		doctor_add(res, "gpu", id, g->pci.driver[0] ? DOCTOR_OK : DOCTOR_WARN,
			   NULL, "%s (%04x:%04x), driver %s%s", cg->name,
			   g->pci.vendor, g->pci.device,
			   g->pci.driver[0] ? g->pci.driver : "none", mem);
		/* the render node the Vulkan driver opens */
		if (g->render_node[0] != '\0') {
			snprintf(path, sizeof(path), "dri/%s", g->render_node);
			snprintf(id, sizeof(id), "render:%s", g->render_node);
			doctor_check_node(res, "gpu", id, path);
		}
		return;
	}
	if (strcmp(g->pci.driver, "amdgpu") != 0) {
		if (legacy_driver_check(res, cg, id))
			return;
		amdgpu_fix(&res->report.kmod_amdgpu, fix, sizeof(fix));
		doctor_add(res, "gpu", id, DOCTOR_FAIL, fix,
			   "%s (1002:%04x) is not bound to amdgpu (driver: %s)",
			   cg->name, g->pci.device,
			   g->pci.driver[0] ? g->pci.driver : "none");
		return;
	}
	if (cg->gfx[0] == '\0')
		doctor_add(res, "gpu", id, DOCTOR_WARN,
			   "report the device: lemon doctor --json output and lspci -nn",
			   "%s (1002:%04x rev %02x): unknown gfx target", cg->name,
			   g->pci.device, g->pci.revision);
	else if (cg->disagreement[0] != '\0' || cg->gfx_guess)
		doctor_add(res, "gpu", id, DOCTOR_WARN, NULL,
			   "%s: %s (%s%s)%s%s", cg->name, cg->gfx,
			   cg->gfx_source, cg->gfx_guess ? ", a guess" : "",
			   cg->disagreement[0] ? "; " : "", cg->disagreement);
	else
		doctor_add(res, "gpu", id, DOCTOR_OK, NULL,
			   "%s: %s (from %s), %s%s", cg->name, cg->gfx,
			   cg->gfx_source,
			   cg->rocm_prebuilt ? "ROCm family " :
					       "no ROCm bundle for it",
			   cg->rocm_prebuilt ? cg->rocm_family : "");
	if (cg->kfd_cwsr_kernel[0] && g->has_kfd)
		check_cwsr(res, cg, g);
	if (g->libdrm.queried)
		check_libdrm(res, cg, g);
	if (g->render_node[0] != '\0') {
		snprintf(path, sizeof(path), "dri/%s", g->render_node);
		snprintf(id, sizeof(id), "render:%s", g->render_node);
		doctor_check_node(res, "gpu", id, path);
	}
}

static void check_kfd(struct doctor_result *res)
{
	bool bound = false;
	int i;

	for (i = 0; i < res->report.n_gpus; i++)
		if (strcmp(res->report.gpus[i].pci.driver, "amdgpu") == 0)
			bound = true;
	if (!bound)
		return;
	if (!res->report.kfd_present) {
		doctor_add(res, "gpu", "kfd", DOCTOR_FAIL,
			   "use a kernel built with CONFIG_HSA_AMD=y (all distribution kernels are)",
			   "amdgpu is bound but the KFD topology is missing, so ROCm cannot run");
		return;
	}
	doctor_check_node(res, "gpu", "kfd-access", "kfd");
}

void doctor_check_gpu(struct doctor_result *res)
{
	int i;

	/* a hypervisor's emulated display is said, and not counted */
	for (i = 0; i < res->report.n_virtual_displays; i++) {
		const struct detect_pci *p = &res->report.virtual_displays[i];
		char id[32];

		snprintf(id, sizeof(id), "display:%s", p->bdf);
		doctor_add(res, "gpu", id, DOCTOR_SKIP, NULL,
			   "%s%s%04x:%04x (driver %s): a virtual display adapter, not a GPU for inference",
			   p->name, p->name[0] ? " " : "", p->vendor, p->device,
			   p->driver[0] ? p->driver : "none");
	}
	if (res->view.n_gpus == 0) {
		doctor_add(res, "gpu", "gpu", DOCTOR_OK, NULL, "no GPU found");
		return;
	}
	for (i = 0; i < res->view.n_gpus; i++)
		check_one_gpu(res, &res->view.gpus[i]);
	check_kfd(res);
}

void doctor_check_backend(struct doctor_result *res)
{
	const struct compat_choice *ch = &res->choice;
	const struct compat_candidate *c;

	if (ch->n == 0 || ch->recommended < 0 || ch->recommended >= ch->n) {
		doctor_add(res, "backend", "backend", DOCTOR_FAIL, NULL,
			   "no usable backend");
		return;
	}
	c = &ch->c[ch->recommended];
	doctor_add(res, "backend", "backend", DOCTOR_OK, NULL,
		   "recommended: %s%s%s: %s", c->backend,
		   c->target[0] ? ":" : "", c->target, c->reason);
}
