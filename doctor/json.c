/* the doctor JSON contract (schema 1): fields may be added, never renamed.
 * Unknown facts are JSON null, never 0 or "". Ids are lower-case hex. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "doctor/doctor-private.h"

static void add_str(cJSON *o, const char *key, const char *v)
{
	if (v != NULL && v[0] != '\0')
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

static void add_u64(cJSON *o, const char *key, bool known, uint64_t v)
{
	if (known)
		cJSON_AddNumberToObject(o, key, (double)v);
	else
		cJSON_AddNullToObject(o, key);
}

static void add_hex(cJSON *o, const char *key, unsigned v, int width)
{
	char buf[12];

	snprintf(buf, sizeof(buf), "%0*x", width, v);
	cJSON_AddStringToObject(o, key, buf);
}

static cJSON *host_json(const struct detect_report *r)
{
	cJSON *host = cJSON_CreateObject(), *cpu, *flags;
	int i;

	add_str(host, "kernel", r->host.kernel);
	add_str(host, "cmdline", r->host.cmdline);
	cpu = cJSON_AddObjectToObject(host, "cpu");
	add_str(cpu, "model", r->cpu.model);
	add_u64(cpu, "cores", r->cpu.has_cores, (uint64_t)r->cpu.cores);
	flags = cJSON_AddArrayToObject(cpu, "flags");
	for (i = 0; i < r->cpu.n_flags; i++)
		cJSON_AddItemToArray(flags, cJSON_CreateString(r->cpu.flags[i]));
	add_u64(host, "ram_bytes", r->host.has_ram, r->host.ram_bytes);
	cJSON_AddBoolToObject(host, "virtual_machine", r->host.hypervisor);
	return host;
}

static void pci_json(cJSON *o, const struct detect_pci *p)
{
	cJSON_AddStringToObject(o, "pci", p->bdf);
	add_hex(o, "vendor_id", p->vendor, 4);
	add_hex(o, "device_id", p->device, 4);
	add_hex(o, "revision", p->revision, 2);
	add_hex(o, "subsystem_vendor_id", p->subsys_vendor, 4);
	add_hex(o, "subsystem_device_id", p->subsys_device, 4);
	add_hex(o, "class", p->class_code, 6);
}

/* "13.0" from cuDriverGetVersion's 13000 */
static void cuda_version_str(int v, char *out, size_t cap)
{
	snprintf(out, cap, "%d.%d", v / 1000, (v % 1000) / 10);
}

/* what the NVIDIA driver and lemon's table say about one NVIDIA GPU, and
 * where each fact came from */
static cJSON *nvidia_json(const struct doctor_result *res,
			  const struct compat_gpu *cg,
			  const struct detect_gpu *g)
{
	const struct detect_report *r = &res->report;
	const struct detect_cuda_device *d = NULL;
	cJSON *o = cJSON_CreateObject(), *src;
	char ver[16] = "";

	if (g->cuda_index >= 0 && g->cuda_index < r->cuda.n_devices)
		d = &r->cuda.devices[g->cuda_index];
	if (r->cuda.has_driver_version)
		cuda_version_str(r->cuda.driver_version, ver, sizeof(ver));
	add_str(o, "arch", cg->arch);
	add_str(o, "compute_capability", cg->cc);
	add_str(o, "cuda_target", cg->sm);
	add_str(o, "compute_capability_disagreement", cg->cc_disagreement);
	add_u64(o, "vram_bytes", d && d->has_total, d ? d->total_bytes : 0);
	add_u64(o, "vram_free_bytes", d && d->has_free, d ? d->free_bytes : 0);
	add_str(o, "driver_version", r->kmod_nvidia.version);
	add_str(o, "cuda_driver_version", ver);
	add_str(o, "cuda_error", d ? d->error : "");
	src = cJSON_AddObjectToObject(o, "sources");
	add_str(src, "name", cg->name_source);
	add_str(src, "arch", cg->arch[0] ? cg->cc_source : "");
	add_str(src, "compute_capability", cg->cc_source);
	add_str(src, "vram_bytes", d && d->has_total ? "cuda" : "");
	add_str(src, "vram_free_bytes", d && d->has_free ? "cuda" : "");
	add_str(src, "driver_version",
		r->kmod_nvidia.version[0] ? "sysfs_module_version" : "");
	add_str(src, "cuda_driver_version", ver[0] ? "cuda" : "");
	return o;
}

static cJSON *cuda_json(const struct detect_cuda *cu)
{
	cJSON *o = cJSON_CreateObject(), *devs;
	char ver[16] = "", cc[16];
	int i;

	cJSON_AddBoolToObject(o, "probed", cu->probed);
	if (!cu->probed)
		add_str(o, "skipped", cu->skipped_why);
	cJSON_AddBoolToObject(o, "library", cu->library);
	add_str(o, "error", cu->error);
	if (cu->has_driver_version)
		cuda_version_str(cu->driver_version, ver, sizeof(ver));
	add_str(o, "driver_version", ver);
	devs = cJSON_AddArrayToObject(o, "devices");
	for (i = 0; i < cu->n_devices; i++) {
		const struct detect_cuda_device *d = &cu->devices[i];
		cJSON *dj = cJSON_CreateObject();

		add_str(dj, "name", d->name);
		add_str(dj, "pci", d->bdf);
		if (d->cc_major >= 0)
			snprintf(cc, sizeof(cc), "%d.%d", d->cc_major % 100,
				 d->cc_minor % 100);
		add_str(dj, "compute_capability", d->cc_major >= 0 ? cc : "");
		add_u64(dj, "vram_bytes", d->has_total, d->total_bytes);
		add_u64(dj, "vram_free_bytes", d->has_free, d->free_bytes);
		add_str(dj, "error", d->error);
		cJSON_AddItemToArray(devs, dj);
	}
	return o;
}

/* what libdrm_amdgpu answered live for this GPU; null when not asked */
static void libdrm_gpu_json(cJSON *o, const struct compat_gpu *cg,
			    const struct detect_libdrm_gpu *l)
{
	cJSON *j;

	if (!l->queried && !l->error[0]) {
		cJSON_AddNullToObject(o, "libdrm");
		return;
	}
	j = cJSON_AddObjectToObject(o, "libdrm");
	add_u64(j, "family_id", l->has_info, l->family_id);
	add_u64(j, "chip_external_rev", l->has_info, l->chip_external_rev);
	add_u64(j, "vram_heap_bytes", l->has_vram, l->vram_heap);
	add_u64(j, "vram_used_bytes", l->has_vram, l->vram_used);
	add_u64(j, "gtt_heap_bytes", l->has_gtt, l->gtt_heap);
	add_u64(j, "gtt_used_bytes", l->has_gtt, l->gtt_used);
	add_str(j, "marketing_name", l->marketing_name);
	add_str(j, "disagreement", cg->libdrm_disagreement);
	add_str(j, "error", l->error);
}

static cJSON *gpu_json(const struct doctor_result *res, const struct compat_gpu *cg)
{
	const struct detect_gpu *g = &res->report.gpus[cg->index];
	cJSON *o = cJSON_CreateObject();
	bool accel = strcmp(cg->kind, "accelerator") == 0;

	pci_json(o, &g->pci);
	cJSON_AddStringToObject(o, "vendor", cg->vendor);
	add_str(o, "name", cg->name);
	add_str(o, "name_source", cg->name_source);
	add_str(o, "family", cg->family);
	add_str(o, "codename", cg->codename);
	add_str(o, "kind", accel ? "dgpu" : cg->kind);
	cJSON_AddBoolToObject(o, "accelerator", accel);
	add_str(o, "driver", g->pci.driver);
	add_str(o, "gfx", cg->gfx);
	add_str(o, "gfx_source", cg->gfx_source);
	cJSON_AddBoolToObject(o, "gfx_guess", cg->gfx_guess);
	add_str(o, "gfx_disagreement", cg->disagreement);
	add_str(o, "rocm_family", cg->rocm_family);
	add_str(o, "hsa_override_gfx_version", cg->hsa_override);
	add_u64(o, "vram_bytes", g->has_vram, g->vram_bytes);
	add_str(o, "vram_source", g->vram_source);
	add_u64(o, "gtt_bytes", g->has_gtt, g->gtt_bytes);
	add_u64(o, "kfd_gfx_target_version", g->has_kfd,
		g->kfd_gfx_target_version);
	libdrm_gpu_json(o, cg, &g->libdrm);
	if (g->has_kfd)
		cJSON_AddBoolToObject(o, "kfd_cwsr", g->kfd_cwsr);
	else
		cJSON_AddNullToObject(o, "kfd_cwsr");
	add_str(o, "gc_ip", g->gc_ip);
	add_str(o, "render_node", g->render_node);
	if (g->pci.vendor == 0x10de)
		cJSON_AddItemToObject(o, "nvidia", nvidia_json(res, cg, g));
	else
		cJSON_AddNullToObject(o, "nvidia");
	return o;
}

static cJSON *npu_json(const struct doctor_result *res, const struct compat_npu *cn)
{
	const struct detect_npu *n = &res->report.npus[cn->index];
	cJSON *o = cJSON_CreateObject(), *fw;
	char rel[40], node[48];

	pci_json(o, &n->pci);
	add_str(o, "generation", cn->known ? cn->entry.generation : "");
	add_str(o, "name", cn->known ? cn->entry.product : "");
	add_str(o, "driver", n->pci.driver);
	snprintf(rel, sizeof(rel), "accel/%s", n->accel_node);
	detect_root_display(DETECT_BASE_DEV, rel, node, sizeof(node));
	add_str(o, "device_node", n->accel_node[0] ? node : "");
	if (cn->firmware.file[0] != '\0') {
		fw = cJSON_AddObjectToObject(o, "firmware");
		cJSON_AddStringToObject(fw, "file", cn->firmware.file);
		add_str(fw, "version", cn->firmware.version);
	} else {
		cJSON_AddNullToObject(o, "firmware");
	}
	add_str(o, "firmware_protocol", cn->firmware_protocol);
	add_str(o, "driver_protocol", cn->driver_protocol);
	add_str(o, "sysfs_fw_version", n->fw_version);
	cJSON_AddBoolToObject(o, "fastflowlm", cn->known && cn->entry.fastflowlm);
	cJSON_AddStringToObject(o, "status", cn->status == COMPAT_OK   ? "ok" :
					     cn->status == COMPAT_WARN ? "warn" :
									 "fail");
	add_str(o, "message", cn->message);
	add_str(o, "fix", cn->fix);
	return o;
}

static cJSON *vulkan_json(const struct detect_vulkan *vk)
{
	cJSON *o = cJSON_CreateObject(), *devs;
	int i;

	cJSON_AddBoolToObject(o, "probed", vk->probed);
	if (!vk->probed)
		add_str(o, "skipped", vk->skipped_why);
	cJSON_AddBoolToObject(o, "loader", vk->loader);
	add_str(o, "error", vk->error);
	devs = cJSON_AddArrayToObject(o, "devices");
	for (i = 0; i < vk->n_devices; i++) {
		const struct detect_vk_device *d = &vk->devices[i];
		cJSON *dj = cJSON_CreateObject();
		char api[32];

		cJSON_AddStringToObject(dj, "name", d->name);
		add_hex(dj, "vendor_id", d->vendor_id, 4);
		add_hex(dj, "device_id", d->device_id, 4);
		add_str(dj, "driver", d->driver);
		add_str(dj, "driver_info", d->driver_info);
		add_str(dj, "pci", d->pci_bdf);
		cJSON_AddStringToObject(dj, "type", detect_vk_type_name(d->type));
		snprintf(api, sizeof(api), "%u.%u.%u",
			 (d->api_version >> 22) & 0x7f,
			 (d->api_version >> 12) & 0x3ff, d->api_version & 0xfff);
		cJSON_AddStringToObject(dj, "api", api);
		cJSON_AddItemToArray(devs, dj);
	}
	return o;
}

static cJSON *kmod_json(const struct detect_kmod *k)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "loaded", k->loaded);
	if (k->has_available) {
		cJSON_AddBoolToObject(o, "available", k->available);
		cJSON_AddBoolToObject(o, "builtin", k->builtin);
	} else {
		cJSON_AddNullToObject(o, "available");
		cJSON_AddNullToObject(o, "builtin");
	}
	add_str(o, "version", k->version);
	add_str(o, "path", k->path);
	return o;
}

static cJSON *candidate_json(const struct compat_candidate *cand)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "backend", cand->backend);
	add_str(c, "target", cand->target);
	add_str(c, "gfx", cand->gfx);
	cJSON_AddBoolToObject(c, "usable", cand->usable);
	cJSON_AddStringToObject(c, "reason", cand->reason);
	add_str(c, "env", cand->env);
	return c;
}

/* the GPU/CPU candidates, then FastFlowLM's on the NPU (never the
 * recommended llama.cpp path: it serves its own models) */
static cJSON *backend_json(const struct doctor_result *res)
{
	const struct compat_choice *ch = &res->choice;
	cJSON *o = cJSON_CreateObject(), *cands;
	const struct compat_candidate *rec = NULL;
	int i;

	if (ch->recommended >= 0 && ch->recommended < ch->n)
		rec = &ch->c[ch->recommended];
	add_str(o, "recommended", rec ? rec->backend : "");
	add_str(o, "target", rec ? rec->target : "");
	cands = cJSON_AddArrayToObject(o, "candidates");
	for (i = 0; i < ch->n; i++)
		cJSON_AddItemToArray(cands, candidate_json(&ch->c[i]));
	if (res->has_flm_candidate) {
		cJSON *c = candidate_json(&res->flm_candidate);

		add_str(c, "path", res->flm.path);
		add_str(c, "version", res->flm.version);
		cJSON_AddItemToArray(cands, c);
	}
	return o;
}

char *doctor_to_json(const struct doctor_result *res, bool pretty)
{
	cJSON *root = cJSON_CreateObject(), *arr, *errs;
	char *out;
	int i;

	cJSON_AddNumberToObject(root, "schema", 1);
	cJSON_AddStringToObject(root, "lemon", LEMON_VERSION);
	cJSON_AddBoolToObject(root, "live", res->report.live);
	cJSON_AddItemToObject(root, "host", host_json(&res->report));
	arr = cJSON_AddArrayToObject(root, "gpus");
	for (i = 0; i < res->view.n_gpus; i++)
		cJSON_AddItemToArray(arr, gpu_json(res, &res->view.gpus[i]));
	/* emulated display adapters: listed apart, never a GPU */
	arr = cJSON_AddArrayToObject(root, "virtual_displays");
	for (i = 0; i < res->report.n_virtual_displays; i++) {
		const struct detect_pci *p = &res->report.virtual_displays[i];
		cJSON *vd = cJSON_CreateObject();

		pci_json(vd, p);
		add_str(vd, "name", p->name);
		add_str(vd, "driver", p->driver);
		cJSON_AddItemToArray(arr, vd);
	}
	arr = cJSON_AddArrayToObject(root, "npus");
	for (i = 0; i < res->view.n_npus; i++)
		cJSON_AddItemToArray(arr, npu_json(res, &res->view.npus[i]));
	cJSON_AddItemToObject(root, "vulkan", vulkan_json(&res->report.vulkan));
	cJSON_AddItemToObject(root, "cuda", cuda_json(&res->report.cuda));
	arr = cJSON_AddObjectToObject(root, "libdrm");
	cJSON_AddBoolToObject(arr, "probed", res->report.libdrm.probed);
	add_str(arr, "skipped", res->report.libdrm.skipped_why);
	cJSON_AddBoolToObject(arr, "library", res->report.libdrm.library);
	add_str(arr, "error", res->report.libdrm.error);
	arr = cJSON_AddObjectToObject(root, "kernel_modules");
	cJSON_AddItemToObject(arr, "amdgpu", kmod_json(&res->report.kmod_amdgpu));
	cJSON_AddItemToObject(arr, "amdxdna", kmod_json(&res->report.kmod_amdxdna));
	cJSON_AddItemToObject(arr, "nvidia", kmod_json(&res->report.kmod_nvidia));
	cJSON_AddItemToObject(arr, "nvidia_uvm",
			      kmod_json(&res->report.kmod_nvidia_uvm));
	cJSON_AddItemToObject(arr, "nouveau", kmod_json(&res->report.kmod_nouveau));
	arr = cJSON_AddObjectToObject(root, "user");
	add_u64(arr, "memlock_bytes", res->report.user.has_memlock &&
				      !res->report.user.memlock_unlimited,
		res->report.user.memlock_bytes);
	cJSON_AddBoolToObject(arr, "memlock_unlimited", res->report.user.memlock_unlimited);
	arr = cJSON_AddArrayToObject(root, "checks");
	for (i = 0; i < res->n_checks; i++) {
		const struct doctor_check *c = &res->checks[i];
		cJSON *cj = cJSON_CreateObject();

		cJSON_AddStringToObject(cj, "id", c->id);
		cJSON_AddStringToObject(cj, "section", c->section);
		cJSON_AddStringToObject(cj, "status", doctor_status_name(c->status));
		cJSON_AddStringToObject(cj, "message", c->message);
		add_str(cj, "fix", c->fix);
		cJSON_AddItemToArray(arr, cj);
	}
	cJSON_AddItemToObject(root, "backend", backend_json(res));
	errs = cJSON_AddArrayToObject(root, "probe_errors");
	for (i = 0; i < res->report.n_probe_errors; i++) {
		const struct detect_probe_error *pe = &res->report.probe_errors[i];
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "probe", pe->probe);
		cJSON_AddStringToObject(e, "code", lemon_err_code_name(pe->err.code));
		cJSON_AddStringToObject(e, "message", pe->err.msg);
		cJSON_AddItemToArray(errs, e);
	}
	out = pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}
