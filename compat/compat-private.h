/* shared by the files of compat/ only: the in-memory form of the compat
 * tables (filled by load.c, read by lookup.c, resolve.c and pick.c) and the
 * small parsers they share */
#ifndef LEMON_COMPAT_PRIVATE_H
#define LEMON_COMPAT_PRIVATE_H

#include "compat/compat.h"

#define COMPAT_MAX_ACCEPTS 4
#define COMPAT_MAX_FW_NAMES 4
#define COMPAT_MAX_MATCH 4

struct compat_gpu_name {
	uint8_t rev;
	char name[96];
};

struct compat_gpu_rec {
	char key[24]; /* "1002:73ff:df", for messages */
	uint16_t vendor;
	uint16_t device;
	bool has_rev;
	uint8_t rev;
	struct compat_gpu_entry e;
	int n_names;
	struct compat_gpu_name *names; /* owned */
};

struct compat_gc_rec {
	char gc_ip[16];
	char gfx[16];
	uint32_t gfx_target_version;
};

struct compat_rocm_rec {
	char gfx[16];
	struct compat_rocm r;
};

struct compat_npu_rec {
	uint16_t vendor;
	uint16_t device;
	uint8_t rev;
	struct compat_npu_entry e;
};

/* a kernel release window [min, below) as major/minor pairs */
struct compat_kwin {
	bool has_min;
	uint32_t min[2];
	bool has_below;
	uint32_t below[2];
};

struct compat_drv_rule {
	char key[40];
	char generation[16];
	bool out_of_tree;
	struct compat_kwin win;
	int n;
	struct compat_protocol accepts[COMPAT_MAX_ACCEPTS];
};

struct compat_fw_rule {
	char key[40];
	bool out_of_tree;
	struct compat_kwin win;
	int n;
	char names[COMPAT_MAX_FW_NAMES][24];
};

/* what an amdxdna era does without an IOMMU (npus.json iommu_rules) */
struct compat_iommu_rule {
	char key[40];
	bool out_of_tree;
	struct compat_kwin win;
	struct compat_npu_iommu r;
};

struct compat_fw_version {
	char dir[32];     /* "amdnpu/17f0_10" */
	char version[48]; /* "1.0.0.63" */
	char protocol[16];
};

struct compat_kmsg_rec {
	char id[32];
	int n;
	char match[COMPAT_MAX_MATCH][160];
	char meaning[256];
	char fix[256];
	char severity[8];
};

struct compat_nvidia_rec {
	uint16_t device;
	struct compat_nvidia_entry e;
};

#define COMPAT_FLM_MAX_GENERATIONS 8

/* compat/flm.json's fastflowlm entry */
struct compat_flm_rec {
	char min_version[16];
	char firmware_min[16];
	char kernel_min[16];
	uint32_t kernel[2];
	char install[256];
	char firmware_fix[192];
	char memlock_fix[192];
	int n_generations;
	char generations[COMPAT_FLM_MAX_GENERATIONS][16];
};

struct compat_db {
	char dir[512]; /* where the tables were read (for backends.json) */
	int n_nvidia;
	struct compat_nvidia_rec *nvidia;
	int n_cuda;
	struct compat_cuda_runtime *cuda;
	int n_gpus;
	struct compat_gpu_rec *gpus;
	int n_gc;
	struct compat_gc_rec *gc;
	int n_rocm;
	struct compat_rocm_rec *rocm;
	int n_npus;
	struct compat_npu_rec *npus;
	int n_drv;
	struct compat_drv_rule *drv;
	int n_fwn;
	struct compat_fw_rule *fwn;
	int n_fwv;
	struct compat_fw_version *fwv;
	int n_iommu;
	struct compat_iommu_rule *iommu;
	int n_kmsg;
	struct compat_kmsg_rec *kmsg;
	struct compat_flm_rec *flm; /* NULL when flm.json was not loaded */
};

/* "6.17.0-5-generic" -> {6, 17}; INVALID_DATA when it does not start with
 * major.minor */
int compat_kernel_parse(const char *release, uint32_t out[2],
			struct lemon_err *err);

/* "6.12" -> {6, 12}; "7" -> {7, -1} (minor unknown) */
int compat_protocol_parse(const char *s, int *major, int *minor,
			  struct lemon_err *err);

/* template match (see SCHEMA.md): {major} {minor} {int} {hex} {any};
 * the template may start anywhere in line. Sets *major and *minor when the
 * template names them (else -1). */
bool compat_template_match(const char *tmpl, const char *line, int *major,
			   int *minor);

/* whether a driver accepting accepts[0..n) takes protocol major.minor
 * (minor -1: unknown, then only the major is compared) */
bool compat_protocol_accepted(const struct compat_protocol *accepts, int n,
			      int major, int minor);

/* "6.12+" / "6.12+ or 7.x" */
void compat_protocol_format(const struct compat_protocol *accepts, int n,
			    char *out, size_t cap);

/* lower-case hex id of exactly `digits` digits */
int compat_parse_hex_id(const char *s, size_t len, int digits, uint32_t *out);

/* ---- resolution internals (resolve.c, verdict.c) ----------------------- */

/* first kernel-log line about the NPU at bdf that matches a pattern whose id
 * starts with prefix (any id when NULL); with want_proto only lines that
 * state a protocol, otherwise only lines that carry a fix */
bool compat_kmsg_find(const struct compat_db *db,
		      const struct detect_report *report, const char *bdf,
		      const char *prefix, bool want_proto,
		      struct compat_kmsg_hit *hit);

/* fills n->status, message and fix for one NPU; tried lists the firmware
 * paths looked for ("" when none were looked for); acc/n_acc are the
 * protocols the installed driver accepts (n_acc 0: no driver rule) */
void compat_npu_verdict(const struct compat_db *db,
			const struct detect_report *report,
			const struct detect_npu *npu, const char *tried,
			const struct compat_protocol *acc, int n_acc,
			struct compat_npu *n);

/* ---- loader internals (load.c, load-npu.c) ----------------------------- */

struct cJSON;

enum compat_ftype { CF_STR, CF_BOOL, CF_NUM, CF_OBJ, CF_ARR };

/* an allowed key of a JSON object and its type (nullable: null is also
 * accepted, and read as absent) */
struct compat_field {
	const char *key;
	enum compat_ftype type;
	bool required;
	bool nullable;
};

/* where the loader is, for messages */
struct compat_ctx {
	char path[512];
	const char *entry; /* key of the entry being read, NULL at top level */
};

/* ---- the schema checker (schema.c) ------------------------------------ */

/* text (len bytes, NUL-terminated) as one JSON object whose top-level keys
 * are `schema` (required, must be 1) and fields; *out is the caller's to
 * cJSON_Delete. INVALID_DATA naming ctx->path and the key. */
int compat_doc_parse(const struct compat_ctx *ctx, const char *text,
		     size_t len, const struct compat_field *fields, size_t n,
		     struct cJSON **out, struct lemon_err *err);
/* reads dir/name (dir alone when name is NULL; at most max bytes) into
 * ctx->path and checks it with compat_doc_parse */
int compat_doc_load(struct compat_ctx *ctx, const char *dir, const char *name,
		    size_t max, const struct compat_field *fields, size_t n,
		    struct cJSON **out, struct lemon_err *err);
/* INVALID_DATA "<path>: entry '<entry>': <msg>"; returns -1 */
int compat_bad(const struct compat_ctx *ctx, struct lemon_err *err,
	       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* rejects unknown and repeated keys, wrong types and missing required keys */
int compat_check_keys(const struct compat_ctx *ctx, const struct cJSON *obj,
		      const struct compat_field *fields, size_t n,
		      struct lemon_err *err);
/* optional string field into out ("" when absent or null; present ones
 * non-empty) */
int compat_get_str(const struct compat_ctx *ctx, const struct cJSON *obj,
		   const char *key, char *out, size_t cap,
		   struct lemon_err *err);
/* like compat_get_str, the value must be one of allowed (NULL-terminated) */
int compat_get_enum(const struct compat_ctx *ctx, const struct cJSON *obj,
		    const char *key, const char *const *allowed, char *out,
		    size_t cap, struct lemon_err *err);
extern const char *const compat_confidences[];
bool compat_gfx_valid(const char *s);
bool compat_version3_valid(const char *s);

/* section loaders of npus.json and kmsg*.json (load-npu.c) */
int compat_load_npu_devices(struct compat_db *db, const struct compat_ctx *ctx,
			    const struct cJSON *sec, struct lemon_err *err);
int compat_load_driver_protocols(struct compat_db *db,
				 const struct compat_ctx *ctx,
				 const struct cJSON *sec, struct lemon_err *err);
int compat_load_firmware_names(struct compat_db *db,
			       const struct compat_ctx *ctx,
			       const struct cJSON *sec, struct lemon_err *err);
int compat_load_firmware_versions(struct compat_db *db,
				  const struct compat_ctx *ctx,
				  const struct cJSON *sec,
				  struct lemon_err *err);
int compat_load_kmsg(struct compat_db *db, const struct compat_ctx *ctx,
		     const struct cJSON *sec, struct lemon_err *err);
int compat_load_flm(struct compat_db *db, const struct compat_ctx *ctx,
		    const struct cJSON *sec, struct lemon_err *err); /* flm.c */
int compat_load_iommu_rules(struct compat_db *db,
			    const struct compat_ctx *ctx,
			    const struct cJSON *sec, struct lemon_err *err);

/* section loaders of nvidia.json (nvidia.c) */
int compat_load_nvidia_gpus(struct compat_db *db, const struct compat_ctx *ctx,
			    const struct cJSON *sec, struct lemon_err *err);
int compat_load_cuda_runtimes(struct compat_db *db,
			      const struct compat_ctx *ctx,
			      const struct cJSON *sec, struct lemon_err *err);

/* NVIDIA facts of one GPU: compute capability from the CUDA driver first,
 * the PCI table second (nvidia.c) */
void compat_resolve_nvidia(const struct compat_db *db,
			   const struct detect_report *report,
			   const struct detect_gpu *gpu, struct compat_gpu *g);

/* the cuda candidate of one NVIDIA GPU (pick-cuda.c); out has room */
void compat_add_cuda(const struct compat_db *db,
		     const struct detect_report *report,
		     const struct compat_gpu *g, struct compat_choice *out);

/* a device node the user must open; fills reason when it is not usable
 * (pick.c) */
bool compat_node_ok(const struct detect_report *report, const char *rel,
		    const char *what, char *reason, size_t cap);

#endif
