/* the readable doctor report: sections, ok/warn/fail marks, and under each
 * problem the exact command or kernel parameter that fixes it */
#include <stdio.h>
#include <string.h>

#include "doctor/doctor-private.h"

static const char *mark(enum doctor_status st, bool color)
{
	switch (st) {
	case DOCTOR_OK:
		return color ? "\033[32m[ ok ]\033[0m" : "[ ok ]";
	case DOCTOR_WARN:
		return color ? "\033[33m[warn]\033[0m" : "[warn]";
	case DOCTOR_FAIL:
		return color ? "\033[31m[FAIL]\033[0m" : "[FAIL]";
	case DOCTOR_SKIP:
		return color ? "\033[2m[skip]\033[0m" : "[skip]";
	case DOCTOR_UNKNOWN:
		return color ? "\033[2m[ ?? ]\033[0m" : "[ ?? ]";
	}
	return "[    ]";
}

static void print_section_checks(const struct doctor_result *res,
				 const char *section, FILE *out, bool color)
{
	int i;

	for (i = 0; i < res->n_checks; i++) {
		const struct doctor_check *c = &res->checks[i];

		if (strcmp(c->section, section) != 0)
			continue;
		fprintf(out, "  %s %s\n", mark(c->status, color), c->message);
		if (c->fix[0] != '\0' && c->status != DOCTOR_OK)
			fprintf(out, "         fix: %s\n", c->fix);
	}
}

static void print_system(const struct doctor_result *res, FILE *out, bool color)
{
	const struct detect_report *r = &res->report;
	char ram[32] = "unknown";
	int i;

	if (r->host.has_ram)
		doctor_format_bytes(r->host.ram_bytes, ram, sizeof(ram));
	fprintf(out, "System\n");
	fprintf(out, "  kernel %s%s\n", r->host.kernel[0] ? r->host.kernel : "unknown",
		r->live ? "" : " (recorded tree)");
	fprintf(out, "  cpu    %s, %d logical cores, RAM %s%s\n",
		r->cpu.model[0] ? r->cpu.model : "unknown", r->cpu.cores, ram,
		r->host.hypervisor ? ", virtual machine" : "");
	fprintf(out, "  flags ");
	for (i = 0; i < r->cpu.n_flags; i++)
		fprintf(out, " %s", r->cpu.flags[i]);
	fprintf(out, "%s\n", r->cpu.n_flags ? "" : " none of note");
	print_section_checks(res, "system", out, color);
}

static void print_backend(const struct doctor_result *res, FILE *out, bool color)
{
	const struct compat_choice *ch = &res->choice;
	int i;

	fprintf(out, "\nBackend\n");
	for (i = 0; i < ch->n; i++) {
		const struct compat_candidate *c = &ch->c[i];

		fprintf(out, "  %s %s%s%s: %s%s%s\n",
			mark(c->usable ? DOCTOR_OK : DOCTOR_SKIP, color),
			c->backend, c->target[0] ? ":" : "", c->target, c->reason,
			c->env[0] ? "; env " : "", c->env);
	}
	if (ch->recommended >= 0 && ch->recommended < ch->n)
		fprintf(out, "  => recommended: %s%s%s\n",
			ch->c[ch->recommended].backend,
			ch->c[ch->recommended].target[0] ? ":" : "",
			ch->c[ch->recommended].target);
}

void doctor_print_text(const struct doctor_result *res, FILE *out,
		       bool use_color)
{
	int i, fails = 0, warns = 0;

	print_system(res, out, use_color);
	fprintf(out, "\nGPUs\n");
	print_section_checks(res, "gpu", out, use_color);
	fprintf(out, "\nNPUs\n");
	if (res->view.n_npus == 0)
		fprintf(out, "  %s no NPU found\n", mark(DOCTOR_OK, use_color));
	print_section_checks(res, "npu", out, use_color);
	fprintf(out, "\nVulkan\n");
	print_section_checks(res, "vulkan", out, use_color);
	for (i = 0; i < res->report.vulkan.n_devices; i++) {
		const struct detect_vk_device *d = &res->report.vulkan.devices[i];

		fprintf(out, "         %s (%s, %s%s)\n", d->name,
			detect_vk_type_name(d->type), d->driver,
			d->type == DETECT_VK_CPU ? ", not a GPU" : "");
	}
	print_backend(res, out, use_color);
	for (i = 0; i < res->n_checks; i++) {
		fails += res->checks[i].status == DOCTOR_FAIL;
		warns += res->checks[i].status == DOCTOR_WARN;
	}
	for (i = 0; i < res->report.n_probe_errors; i++)
		fprintf(out, "  note: %s probe: %s\n",
			res->report.probe_errors[i].probe,
			res->report.probe_errors[i].err.msg);
	fprintf(out, "\n%d problem%s, %d warning%s\n", fails, fails == 1 ? "" : "s",
		warns, warns == 1 ? "" : "s");
}
