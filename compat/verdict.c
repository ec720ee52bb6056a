/* the one-line verdict on an NPU: ok, warn or fail with the exact reason
 * and the fix. The order of the checks follows what blocks first on a real
 * machine: an IOMMU turned off hides the NPU entirely, then a driver that
 * did not bind (protocol mismatch, no driver for this kernel, missing
 * firmware, a failure the kernel log names), then a bound driver whose
 * device node cannot be opened. Every number in a message (protocols,
 * kernel releases, firmware versions) comes from compat data. */
#include "compat/compat-private.h"

#include <stdio.h>
#include <string.h>

#include "util/str.h"

static void set(struct compat_npu *n, enum compat_status st, const char *msg,
		const char *fix)
{
	n->status = st;
	lemon_str_copy(n->message, sizeof(n->message), msg);
	lemon_str_copy(n->fix, sizeof(n->fix), fix);
}

/* "amdxdna in kernel 6.17" / "out-of-tree amdxdna 2.19.0" */
static void driver_name(const struct detect_report *report, char *out,
			size_t cap)
{
	uint32_t k[2];

	if (report->kmod_amdxdna.version[0])
		snprintf(out, cap, "out-of-tree amdxdna %.40s",
			 report->kmod_amdxdna.version);
	else if (compat_kernel_parse(report->host.kernel, k, NULL) == 0)
		snprintf(out, cap, "amdxdna in kernel %u.%u", k[0], k[1]);
	else
		snprintf(out, cap, "amdxdna in kernel %.40s",
			 report->host.kernel[0] ? report->host.kernel : "?");
}

/* the first in-tree kernel release whose amdxdna accepts major.minor for
 * this generation ("" when none does) */
static void kernel_accepting(const struct compat_db *db, const char *gen,
			     int major, int minor, char *out, size_t cap)
{
	uint32_t best[2] = { 0, 0 };
	bool found = false;
	int i;

	out[0] = '\0';
	for (i = 0; i < db->n_drv; i++) {
		const struct compat_drv_rule *r = &db->drv[i];

		if (r->out_of_tree || strcmp(r->generation, gen) != 0 ||
		    !compat_protocol_accepted(r->accepts, r->n, major, minor))
			continue;
		if (!found || r->win.min[0] < best[0] ||
		    (r->win.min[0] == best[0] && r->win.min[1] < best[1])) {
			best[0] = r->win.min[0];
			best[1] = r->win.min[1];
			found = true;
		}
	}
	if (found)
		snprintf(out, cap, "%u.%u", best[0], best[1]);
}

/* a known firmware version of this directory that the driver accepts */
static const struct compat_fw_version *
pinnable(const struct compat_db *db, const char *dir,
	 const struct compat_protocol *acc, int n_acc)
{
	int i, major, minor;

	for (i = 0; i < db->n_fwv; i++) {
		const struct compat_fw_version *v = &db->fwv[i];

		if (strcmp(v->dir, dir) != 0 ||
		    compat_protocol_parse(v->protocol, &major, &minor, NULL))
			continue;
		if (compat_protocol_accepted(acc, n_acc, major, minor))
			return v;
	}
	return NULL;
}

static void protocol_mismatch(const struct compat_db *db,
			      const struct detect_report *report,
			      const struct compat_protocol *acc, int n_acc,
			      int major, int minor, struct compat_npu *n)
{
	const struct compat_fw_version *pin;
	char drv[64], kern[16], msg[256], fix[256];
	bool newer = true;
	size_t len;
	int i;

	for (i = 0; i < n_acc; i++)
		if (major <= acc[i].major)
			newer = false;
	driver_name(report, drv, sizeof(drv));
	snprintf(msg, sizeof(msg),
		 "driver did not bind: firmware protocol %s is %s than what %s accepts (%s)",
		 n->firmware_protocol, newer ? "newer" : "older", drv,
		 n->driver_protocol);
	fix[0] = '\0';
	if (newer) {
		kernel_accepting(db, n->entry.generation, major, minor, kern,
				 sizeof(kern));
		if (kern[0])
			snprintf(fix, sizeof(fix),
				 "install kernel %s+ (or amdxdna-dkms)", kern);
		else
			snprintf(fix, sizeof(fix), "install amdxdna-dkms");
		pin = pinnable(db, n->entry.firmware_dir, acc, n_acc);
		len = strlen(fix);
		if (pin)
			snprintf(fix + len, sizeof(fix) - len,
				 ", or pin linux-firmware's protocol-%.*s npu.sbin (%s/npu.sbin -> npu.sbin.%s)",
				 (int)strcspn(pin->protocol, "."),
				 pin->protocol, pin->dir, pin->version);
		else
			snprintf(fix + len, sizeof(fix) - len,
				 ", or install %s firmware of protocol %s",
				 n->entry.firmware_dir, n->driver_protocol);
	} else {
		snprintf(fix, sizeof(fix),
			 "update linux-firmware (%s needs firmware of protocol %s)",
			 n->entry.firmware_dir, n->driver_protocol);
	}
	set(n, COMPAT_FAIL, msg, fix);
}

/* the in-tree release that first has a driver for this generation */
static void first_kernel(const struct compat_db *db, const char *gen,
			 char *out, size_t cap)
{
	uint32_t best[2] = { 0, 0 };
	int i;

	out[0] = '\0';
	for (i = 0; i < db->n_drv; i++) {
		const struct compat_drv_rule *r = &db->drv[i];

		if (r->out_of_tree || strcmp(r->generation, gen) != 0)
			continue;
		if (!out[0] || r->win.min[0] < best[0] ||
		    (r->win.min[0] == best[0] && r->win.min[1] < best[1])) {
			best[0] = r->win.min[0];
			best[1] = r->win.min[1];
			snprintf(out, cap, "%u.%u", best[0], best[1]);
		}
	}
}

static void unbound(const struct compat_db *db,
		    const struct detect_report *report,
		    const struct detect_npu *npu, const char *tried, int n_acc,
		    struct compat_npu *n)
{
	struct compat_kmsg_hit hit;
	char msg[256], fix[256], first[16];

	if (n_acc == 0) {
		first_kernel(db, n->entry.generation, first, sizeof(first));
		if (first[0]) {
			snprintf(msg, sizeof(msg),
				 "driver did not bind: kernel %s has no amdxdna for %s (mainline since %s)",
				 report->host.kernel[0] ? report->host.kernel : "?",
				 n->entry.generation, first);
			snprintf(fix, sizeof(fix),
				 "install kernel %s+ or amdxdna-dkms", first);
		} else {
			snprintf(msg, sizeof(msg),
				 "driver did not bind: no mainline amdxdna supports %s",
				 n->entry.generation);
			snprintf(fix, sizeof(fix),
				 "install AMD's out-of-tree driver (amdxdna-dkms, github.com/amd/xdna-driver)");
		}
		set(n, COMPAT_FAIL, msg, fix);
		return;
	}
	if (tried[0] && !n->firmware.file[0]) {
		snprintf(msg, sizeof(msg),
			 "driver did not bind: no NPU firmware found (tried %s)",
			 tried);
		snprintf(fix, sizeof(fix),
			 "update linux-firmware (it ships the %s/ files)",
			 n->entry.firmware_dir);
		set(n, COMPAT_FAIL, msg, fix);
		return;
	}
	if (compat_kmsg_find(db, report, npu->pci.bdf, NULL, false, &hit)) {
		snprintf(msg, sizeof(msg), "driver did not bind: %.200s",
			 hit.meaning);
		set(n, COMPAT_FAIL, msg, hit.fix);
		return;
	}
	if (report->kmod_amdxdna.has_available &&
	    !report->kmod_amdxdna.available) {
		snprintf(msg, sizeof(msg),
			 "driver did not bind: the amdxdna module is not available for kernel %s",
			 report->host.kernel[0] ? report->host.kernel : "?");
		set(n, COMPAT_FAIL, msg,
		    "install a kernel built with CONFIG_DRM_ACCEL_AMDXDNA, or amdxdna-dkms");
		return;
	}
	snprintf(msg, sizeof(msg), "NPU %s present but amdxdna is not bound",
		 npu->pci.bdf);
	set(n, COMPAT_FAIL, msg,
	    "load the driver: sudo modprobe amdxdna, then read sudo dmesg | grep amdxdna");
}

static void bound(const struct compat_db *db,
		  const struct detect_report *report,
		  const struct detect_npu *npu, bool mismatch,
		  struct compat_npu *n)
{
	struct compat_kmsg_hit hit;
	char msg[256];

	if (compat_kmsg_find(db, report, npu->pci.bdf, "npu-sva", false, &hit) ||
	    compat_kmsg_find(db, report, npu->pci.bdf, "npu-pasid", false,
			     &hit)) {
		snprintf(msg, sizeof(msg),
			 "amdxdna is bound but opening the NPU fails: %.200s",
			 hit.meaning);
		set(n, COMPAT_FAIL, msg, hit.fix);
		return;
	}
	if (!npu->accel_node[0]) {
		snprintf(msg, sizeof(msg),
			 "amdxdna is bound to %s but created no accel device node",
			 npu->pci.bdf);
		set(n, COMPAT_WARN, msg,
		    "read the driver's messages: sudo dmesg | grep amdxdna");
		return;
	}
	/* the accel node's access is not judged here: the doctor's node
	 * check judges it once (two checks on one node contradicted each
	 * other on a recording without permissions) */
	if (mismatch) {
		snprintf(msg, sizeof(msg),
			 "amdxdna is bound although firmware protocol %s is outside what lemon's data says it accepts (%s)",
			 n->firmware_protocol, n->driver_protocol);
		set(n, COMPAT_WARN, msg, "");
		return;
	}
	snprintf(msg, sizeof(msg),
		 "%s, %s: amdxdna bound, firmware %s, protocol %s%s",
		 n->entry.generation, n->entry.xdna,
		 npu->fw_version[0]      ? npu->fw_version :
		 n->firmware.version[0] ? n->firmware.version :
					  "version unknown",
		 n->firmware_protocol[0] ? n->firmware_protocol : "unknown",
		 n->entry.fastflowlm ? "" : "; FastFlowLM does not support it");
	set(n, COMPAT_OK, msg, "");
}

/* the IOMMU is off on the command line: what that costs depends on the
 * amdxdna era (npus.json iommu_rules); a driver no rule covers gets the
 * old fixed answer */
static void iommu_off(const struct compat_db *db,
		      const struct detect_report *report, struct compat_npu *n)
{
	const struct detect_iommu *io = &report->iommu;
	const char *param = io->cmdline_amd_iommu_off ? "amd_iommu=off" :
							"iommu=off";
	struct compat_npu_iommu rule;
	char msg[256];

	if (compat_npu_iommu_rule(db, report->host.kernel,
				  report->kmod_amdxdna.version, &rule,
				  NULL) != 0) {
		snprintf(msg, sizeof(msg),
			 "the IOMMU is off (%s on the kernel command line); amdxdna needs it for the NPU",
			 param);
		set(n, COMPAT_FAIL, msg,
		    io->cmdline_amd_iommu_off ?
			    "remove amd_iommu=off from the kernel command line" :
			    "remove iommu=off from the kernel command line");
		return;
	}
	snprintf(msg, sizeof(msg), "the IOMMU is off (%s): %.200s%s", param,
		 rule.message,
		 strcmp(rule.confidence, "low") == 0 ? " (uncertain)" : "");
	set(n, strcmp(rule.without, "fails") == 0 ? COMPAT_FAIL : COMPAT_WARN,
	    msg, rule.fix);
}

void compat_npu_verdict(const struct compat_db *db,
			const struct detect_report *report,
			const struct detect_npu *npu, const char *tried,
			const struct compat_protocol *acc, int n_acc,
			struct compat_npu *n)
{
	const struct detect_iommu *io = &report->iommu;
	bool mismatch = false;
	int major = -1, minor = -1;
	char msg[256];

	if (!n->known) {
		snprintf(msg, sizeof(msg),
			 "unknown NPU %04x:%04x rev %02x: lemon's data does not know its generation",
			 npu->pci.vendor, npu->pci.device, npu->pci.revision);
		set(n, COMPAT_WARN, msg, "");
		return;
	}
	if (io->cmdline_amd_iommu_off || io->cmdline_iommu_off) {
		iommu_off(db, report, n);
		return;
	}
	if (n->firmware_protocol[0] && n_acc > 0 &&
	    compat_protocol_parse(n->firmware_protocol, &major, &minor,
				  NULL) == 0)
		mismatch = !compat_protocol_accepted(acc, n_acc, major, minor);
	if (strcmp(npu->pci.driver, "amdxdna") != 0) {
		if (mismatch)
			protocol_mismatch(db, report, acc, n_acc, major, minor,
					  n);
		else
			unbound(db, report, npu, tried, n_acc, n);
		return;
	}
	bound(db, report, npu, mismatch, n);
}
