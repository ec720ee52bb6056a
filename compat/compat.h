/* compat: the data-driven compatibility table and what it says about the
 * facts detect found.
 *
 * All hardware and release knowledge lives in the JSON files of compat/ (documented in
 * compat/SCHEMA.md, every entry with its source). This layer loads and
 * validates that data, resolves each detected device to a gfx target / NPU
 * generation, and orders the backend candidates with a reason for each
 * rejection. Adding a device is a data edit, never a code edit. */
#ifndef LEMON_COMPAT_H
#define LEMON_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/detect.h"
#include "detect/flm.h"
#include "util/err.h"

struct compat_db;

/* loads every compat file from dir (NULL: LEMON_COMPAT_DIR env, else the
 * directory compiled in as LEMON_DATADIR). Unknown keys, duplicates and
 * malformed values are INVALID_DATA naming the file and the entry. The
 * caller owns *out; free with compat_db_free. */
int compat_db_load(const char *dir, struct compat_db **out,
		   struct lemon_err *err);

/* the data topics; a machine without AMD GPUs needs no GPU table */
enum {
	COMPAT_TOPIC_GPU = 1 << 0,     /* gpus, gc-ip, rocm */
	COMPAT_TOPIC_NPU = 1 << 1,     /* npus */
	COMPAT_TOPIC_KMSG = 1 << 2,    /* kernel-log patterns */
	COMPAT_TOPIC_NVIDIA = 1 << 3,  /* nvidia: ids, CUDA runtimes */
	COMPAT_TOPIC_ALL = 0xf,
};

/* like compat_db_load for the given topics only; lookups in a topic that
 * was not loaded find nothing (NOT_FOUND), as for an unknown device */
int compat_db_load_topics(const char *dir, unsigned topics,
			  struct compat_db **out, struct lemon_err *err);

/* the topics a detect report needs (AMD GPUs, NVIDIA GPUs, NPUs, driver
 * log lines) */
unsigned compat_topics_for(const struct detect_report *report);
void compat_db_free(struct compat_db *db);

/* ---- raw lookups ------------------------------------------------------ */

struct compat_gpu_entry {
	char gfx[16];      /* "gfx1151" */
	char name[96];     /* marketing name, "" when the data has none */
	char kind[16];     /* "igpu", "dgpu", "accelerator" */
	char family[16];   /* "RDNA3.5" */
	char codename[96]; /* chip code name, "Navi 31", "" when none */
	char gc_ip[16];    /* "" when not pinned */
	char confidence[8];
};

/* AMD GPU by PCI device id and revision (a revision-specific entry wins
 * over the generic one); NOT_FOUND when unknown. The name is the one
 * libdrm gives this revision; an id whose names differ by revision and
 * that lacks this one gets no name ("" : never another revision's
 * product), the caller says the family instead. */
int compat_gpu_lookup(const struct compat_db *db, uint16_t device,
		      uint8_t revision, struct compat_gpu_entry *out,
		      struct lemon_err *err);

/* GC IP version ("11.5.1") -> gfx target; NOT_FOUND when unknown */
int compat_gfx_from_gc_ip(const struct compat_db *db, const char *gc_ip,
			  char *gfx, size_t cap, struct lemon_err *err);

/* KFD gfx_target_version -> "gfx" + major + hex minor + hex stepping; the
 * rule the kernel and ROCm use (110501 -> gfx1151, 90010 -> gfx90a) */
int compat_gfx_from_kfd(uint32_t gfx_target_version, char *gfx, size_t cap,
			struct lemon_err *err);

struct compat_rocm {
	char family[16];          /* ROCm llama.cpp build family, "gfx110X" */
	bool prebuilt;            /* a ROCm llama.cpp build exists for it */
	char hsa_override[16];    /* HSA_OVERRIDE_GFX_VERSION, "" when none */
	char override_family[16]; /* family to use with that override */
	char therock_family[24];  /* TheRock build family, "gfx101X-dgpu", "" */
	char therock_linux[24];   /* TheRock's Linux status, "" when unlisted */
	/* ROCm needs the KFD CWSR fix (the node's cwsr_size/ctl_stack_size)
	 * on this target; the first kernel that has it, "" when not needed */
	char kfd_cwsr_kernel[16];
	char note[256];
};

/* gfx target -> ROCm facts; NOT_FOUND for targets the data does not know */
int compat_rocm_lookup(const struct compat_db *db, const char *gfx,
		       struct compat_rocm *out, struct lemon_err *err);

/* NVIDIA GPU by PCI device id (compat/nvidia.json) */
struct compat_nvidia_entry {
	char arch[24];      /* "Hopper" */
	char cc[8];         /* compute capability "9.0" */
	char kind[16];      /* "dgpu", "accelerator" */
	char name[96];      /* "H100 SXM5 80GB" */
	char chip[16];      /* "GH100" */
	char confidence[8];
};

/* NOT_FOUND when the id is not in the table */
int compat_nvidia_lookup(const struct compat_db *db, uint16_t device,
			 struct compat_nvidia_entry *out,
			 struct lemon_err *err);

/* what a CUDA runtime major version needs from the machine */
struct compat_cuda_runtime {
	int major;            /* 12 */
	char min_driver[24];  /* "525.60.13" */
	char min_cc[8];       /* "5.0" */
};

/* NOT_FOUND when the data does not know that major version */
int compat_cuda_runtime_lookup(const struct compat_db *db, int major,
			       struct compat_cuda_runtime *out,
			       struct lemon_err *err);

/* compares dotted NVIDIA driver versions ("580.95.05" with "525.60.13",
 * missing parts count as 0): *cmp < 0, 0, > 0. INVALID_DATA when either
 * is not 1-4 decimal parts */
int compat_driver_version_cmp(const char *a, const char *b, int *cmp,
			      struct lemon_err *err);

/* architecture of a compute capability major ("9" -> "Hopper"), NULL
 * when unknown; for a live answer the table has no entry for */
const char *compat_nvidia_arch_of_cc(int major, int minor);

/* what the pinned CUDA bundle for sm ("sm_90") needs: its name
 * ("llamacpp:cuda:sm_90"), the CUDA runtime it carries ("12.9") and the
 * oldest driver for that runtime ("" when the data does not know it).
 * NOT_FOUND when no bundle is built for sm. */
struct compat_cuda_need {
	char bundle[40];
	char runtime[16];
	char min_driver[24];
	char targets[96]; /* every sm with a bundle, "sm_75, sm_80, ..." */
};
int compat_cuda_need(const struct compat_db *db, const char *sm,
		     struct compat_cuda_need *out, struct lemon_err *err);

struct compat_protocol {
	int major;
	int min_minor; /* accepts major.min_minor and above */
};

struct compat_npu_entry {
	char generation[16];      /* "npu4" */
	char xdna[24];            /* "XDNA 2" */
	char product[256];
	char firmware_dir[32];    /* "amdnpu/17f0_10" (no trailing slash) */
	bool fastflowlm;          /* FastFlowLM supports it */
	char confidence[8];
};

int compat_npu_lookup(const struct compat_db *db, uint16_t vendor,
		      uint16_t device, uint8_t revision,
		      struct compat_npu_entry *out, struct lemon_err *err);

/* protocol versions the amdxdna driver of this kernel release accepts for a
 * generation; n_out <= cap entries (7.0+ accepts 6.12+ or 7.x for npu4).
 * module_version is the out-of-tree amdxdna version ("" for in-tree). */
int compat_npu_driver_protocols(const struct compat_db *db,
				const char *generation, const char *kernel,
				const char *module_version,
				struct compat_protocol *out, int cap, int *n_out,
				struct lemon_err *err);

/* firmware names the driver of this kernel tries, in order ("npu_7.sbin",
 * "npu.sbin"); n_out <= cap */
int compat_npu_firmware_names(const struct compat_db *db, const char *kernel,
			      const char *module_version, char names[][24],
			      int cap, int *n_out, struct lemon_err *err);

/* what the amdxdna of this kernel (or the out-of-tree one) does without an
 * IOMMU: "fails" (every open needs SVA/PASID) or "needs-carveout" (it
 * falls back to carveout memory only when one is configured) */
struct compat_npu_iommu {
	char without[16];
	char message[256];
	char fix[256];
	char confidence[8];
};

/* NOT_FOUND when no rule covers that driver */
int compat_npu_iommu_rule(const struct compat_db *db, const char *kernel,
			  const char *module_version,
			  struct compat_npu_iommu *out, struct lemon_err *err);

/* known firmware version -> protocol "7" or "6.12"; NOT_FOUND when unknown */
int compat_npu_firmware_protocol(const struct compat_db *db, const char *dir,
				 const char *version, char *protocol,
				 size_t cap, struct lemon_err *err);

struct compat_kmsg_hit {
	char id[32];        /* "npu-protocol-mismatch", "npu-sva", ... */
	char meaning[256];
	char fix[256];
	int proto_major;    /* from the line when it states one, else -1 */
	int proto_minor;
};

/* matches one kernel-log line against the known failure patterns */
bool compat_kmsg_match(const struct compat_db *db, const char *line,
		       struct compat_kmsg_hit *out);

/* ---- resolution of a detect report ------------------------------------ */

enum compat_status { COMPAT_OK = 0, COMPAT_WARN, COMPAT_FAIL };

struct compat_gpu {
	int index;              /* into report->gpus */
	const char *vendor;     /* "AMD", "NVIDIA", "Intel" */
	char name[128];
	char kind[16];          /* "igpu" / "dgpu" / "accelerator" */
	char family[16];        /* AMD: "GCN4", "RDNA3", "" when unknown */
	char codename[96];      /* AMD: "Navi 31", "" when unknown */
	char gfx[16];           /* "" when unknown */
	char gfx_source[16];    /* "kfd", "ip_discovery", "pci_table", "" */
	bool gfx_guess;         /* best-effort answer for an unknown id */
	char disagreement[256]; /* sources that disagree, "" when none */
	/* libdrm's live answer against sysfs/amdgpu.ids, "" when they agree
	 * or libdrm was not asked */
	char libdrm_disagreement[256];
	char rocm_family[16];
	bool rocm_prebuilt;
	char therock_family[24]; /* TheRock build family, "" when unlisted */
	char therock_linux[24];  /* TheRock's Linux status, "" when unlisted */
	char kfd_cwsr_kernel[16]; /* see compat_rocm, "" when not needed */
	char hsa_override[16];
	char note[256];         /* why an answer is a guess, "" otherwise */
	/* NVIDIA: architecture, compute capability, the CUDA build target */
	char arch[24];          /* "Hopper", "" when unknown */
	char cc[8];             /* "9.0", "" when unknown */
	char cc_source[16];     /* "cuda" (the driver), "pci_table", "" */
	char sm[16];            /* "sm_90", "" when unknown */
	char cc_disagreement[128]; /* driver and table differ, "" if not */
	char name_source[16];   /* NVIDIA: "cuda", "vulkan", "pci.ids", "pci_table";
				 * AMD: "libdrm", "pci_table", "family", "vulkan" */
};

struct compat_npu {
	int index; /* into report->npus */
	bool known;
	struct compat_npu_entry entry;
	struct detect_firmware firmware; /* file[0] == 0 when none found */
	char firmware_protocol[16];      /* "7.2" / "6.12" / "7", "" unknown */
	char driver_protocol[32];        /* "6.12+" / "6.12+ or 7.x", "" unknown */
	enum compat_status status;
	char message[256];
	char fix[256];
};

struct compat_view {
	int n_gpus;
	struct compat_gpu gpus[DETECT_MAX_GPUS];
	int n_npus;
	struct compat_npu npus[DETECT_MAX_NPUS];
};

/* resolves every GPU and NPU of the report: gfx from KFD first, then
 * ip_discovery, then the PCI table (unknown ids get a labelled guess);
 * NPU generation, firmware and protocol compatibility */
int compat_resolve(const struct compat_db *db, const struct lemon_root *root,
		   const struct detect_report *report, struct compat_view *out,
		   struct lemon_err *err);

/* ---- backend choice --------------------------------------------------- */

#define COMPAT_MAX_CANDIDATES 8

struct compat_candidate {
	char backend[16]; /* "cuda", "rocm", "vulkan", "cpu" */
	char target[16];  /* gfx family for rocm, sm_NN for cuda, "" otherwise */
	char gfx[16];     /* the device's gfx target, "" for vulkan/cpu */
	int gpu_index;    /* the GPU it runs on: an index into report->gpus
			   * (compat_gpu.index), -1 for cpu or unknown */
	bool usable;
	char reason[256]; /* why usable, or exactly why not and the fix */
	char env[64];     /* extra environment, e.g. HSA_OVERRIDE_GFX_VERSION=10.3.0 */
};

struct compat_choice {
	int n;
	struct compat_candidate c[COMPAT_MAX_CANDIDATES];
	int recommended; /* index of the first usable candidate */
};

/* ordered candidates (per GPU, discrete before integrated: cuda:<sm> for
 * NVIDIA, rocm:<family> for AMD; then vulkan, then cpu), each with a human
 * reason; cpu is always last and always usable */
int compat_pick_backend(const struct compat_db *db,
			const struct detect_report *report,
			const struct compat_view *view,
			struct compat_choice *out, struct lemon_err *err);

/* the FastFlowLM candidate (backend "flm", target the NPU generation) for
 * the first NPU: refused with lemon's NPU verdict and fix when the NPU does
 * not work, with flm validate's firmware/kernel floors, with how to install
 * flm when it is missing or too old; else usable. NOT_FOUND when the report
 * has no NPU or flm.json was not loaded (compat/flm.c) */
int compat_flm_candidate(const struct compat_db *db,
			 const struct detect_report *report,
			 const struct compat_view *view,
			 const struct detect_flm *flm,
			 struct compat_candidate *out, struct lemon_err *err);

/* ---- backend manifest (compat/backends.json, compat/backends.c) -------- */

#define COMPAT_MAX_BACKEND_ASSETS 24
#define COMPAT_MAX_FAMILY_TARGETS 8

/* one installable bundle; templates hold {version} (and {asset} in url) */
struct compat_backend_asset {
	char name[40];     /* "llamacpp:cpu", "llamacpp:rocm:gfx110X", "flm:npu" */
	char backend[16];  /* "llamacpp", "flm" (FastFlowLM) */
	char target[24];   /* "cpu", "vulkan", "rocm-gfx110X" (install dir part) */
	char kind[16];     /* "cpu", "vulkan", "rocm", "cuda": compat_candidate.backend;
			    * "npu" for FastFlowLM */
	char family[16];   /* rocm build family, cuda "sm_NN", "" otherwise */
	char cuda_runtime[16]; /* cuda: the CUDA runtime bundled ("12.9") */
	int n_gfx;
	char gfx_targets[COMPAT_MAX_FAMILY_TARGETS][16];
	char version[32];  /* pinned release */
	char asset[128];   /* asset name template */
	char url[256];     /* download URL template */
	char format[16];   /* "tar.gz", "zip" */
	char exe[128];     /* executable path template inside the archive */
	char tag[40];      /* release tag template ("{version}" unless the
			    * publisher's tags differ, "v{version}") */
	char smoke[16];    /* the argument the smoke test runs exe with:
			    * "--version", flm's "version" */
	char sha256[65];   /* of the pinned version's asset, "" when unknown */
	uint64_t size;     /* its size in bytes, 0 when unknown */
	char pin_source[256]; /* where sha256 and size were read, "" if none */
	/* the declared pattern that finds the asset when the publisher's
	 * name drifts from `asset` (match_os "": no pattern); family and
	 * format complete it */
	char match_os[16];
	char match_arch[16];
	char match_accel[16]; /* "" for a CPU build: no accelerator word */
	char source[512];
};

struct compat_backends {
	int n;
	struct compat_backend_asset a[COMPAT_MAX_BACKEND_ASSETS];
};

/* loads backends.json from dir (NULL: LEMON_COMPAT_DIR env, else
 * LEMON_DATADIR); INVALID_DATA names the file and entry. Free with
 * compat_backends_free. */
int compat_backends_load(const char *dir, struct compat_backends **out,
			 struct lemon_err *err);
void compat_backends_free(struct compat_backends *bm);

/* kind "cpu"/"vulkan"/"rocm"/"cuda"; for rocm, target is a family
 * ("gfx110X") or a gfx target it covers ("gfx1101"), for cuda an "sm_NN",
 * NULL/"" for cpu and vulkan.
 * NOT_FOUND (naming what was asked) when no bundle fits. */
int compat_backend_find(const struct compat_backends *bm, const char *kind,
			const char *target,
			const struct compat_backend_asset **out,
			struct lemon_err *err);

/* a version becomes part of file and directory names (the install
 * directory, the download's .part): 1 to 31 printable ASCII characters,
 * no space, '/', '\\' or "..". Versions come from the user and from
 * mirrors, neither trusted. */
bool compat_version_ok(const char *v);
#define COMPAT_VERSION_RULE \
	"want 1 to 31 printable characters without space, '/', '\\' or '..'"

/* substitutes {version} into the templates (and {asset} into url); a
 * result that does not fit is TOO_LARGE, an unusable version INVALID_ARG */
int compat_backend_expand(const struct compat_backend_asset *a,
			  const char *version, char *asset, size_t asset_cap,
			  char *url, size_t url_cap, char *exe, size_t exe_cap,
			  struct lemon_err *err);

/* the release tag of version (a->tag with {version} substituted) */
int compat_backend_tag(const struct compat_backend_asset *a,
		       const char *version, char *out, size_t cap,
		       struct lemon_err *err);

/* ---- end of backend manifest ------------------------------------------ */

/* ---- model registry (compat/models.c, compat/models.json) ------------- */

#define COMPAT_MAX_MODELS 128
#define COMPAT_MODEL_MAX_PARTS 16  /* split GGUF parts per model */
#define COMPAT_MODEL_MAX_SUGGEST 4

enum compat_model_label {
	COMPAT_MODEL_LLM = 1u << 0,
	COMPAT_MODEL_EMBEDDING = 1u << 1,
	COMPAT_MODEL_REASONING = 1u << 2,
	COMPAT_MODEL_VISION = 1u << 3,
};

struct compat_model_file {
	char file[256];    /* path inside the repo ("x-00001-of-00002.gguf") */
	uint64_t size;     /* bytes, 0 when unknown */
	char sha256[65];   /* lower-case hex, "" when unknown */
};

/* with less than vram_below_mb of VRAM, suggest model instead */
struct compat_model_suggest {
	uint32_t vram_below_mb;
	char model[64];
};

struct compat_model {
	char name[64];     /* 1..63 of [A-Za-z0-9._:-], no "..", no leading '.' */
	char recipe[16];   /* backend kind: "llamacpp" or "flm" (FastFlowLM,
			    * no repo or files: flm fetches its models) */
	char gguf[64];     /* flm: the registry's GGUF of this model, "" none */
	char repo[128];    /* Hugging Face "owner/name" */
	int n_files;       /* 1, or the split parts in order */
	struct compat_model_file files[COMPAT_MODEL_MAX_PARTS];
	/* the vision projector (llama.cpp's --mmproj), pulled and published
	 * with the model: mmproj.file "" when none; its sha256 is mandatory */
	struct compat_model_file mmproj;
	char mmproj_repo[128]; /* the projector's repo: the model's unless given */
	unsigned labels;   /* enum compat_model_label bits */
	int n_suggest;
	struct compat_model_suggest suggest[COMPAT_MODEL_MAX_SUGGEST];
	char source[512];
	bool user;         /* from the user's models.json */
};

struct compat_models {
	int n;
	struct compat_model m[COMPAT_MAX_MODELS];
};

/* loads models.json from dir (NULL: LEMON_COMPAT_DIR env, else
 * LEMON_DATADIR), then merges user_file over it (NULL: LEMON_MODELS_JSON
 * env, else $XDG_CONFIG_HOME/lemon/models.json, else
 * ~/.config/lemon/models.json; a missing user file is fine): a user entry
 * replaces the shipped one of the same name. INVALID_DATA names the file
 * and entry. Free with compat_models_free. */
int compat_models_load(const char *dir, const char *user_file,
		       struct compat_models **out, struct lemon_err *err);
void compat_models_free(struct compat_models *reg);

/* parses one registry document (for tests and the loader); what names it
 * in messages. `schema` 1 is required, `about` too unless user; unknown
 * keys, a key given twice and a name given twice in one document are
 * INVALID_DATA naming the file, entry and key. Entries are appended to
 * reg, replacing same-name ones of an earlier document. */
int compat_models_parse(struct compat_models *reg, const char *text,
			const char *what, bool user, struct lemon_err *err);

/* a model name as the store takes it (backends_model_name_valid is this
 * rule): 1..63 of [A-Za-z0-9._:-], not starting with '-' or '.', without
 * "..", and not ending in ".mmproj" (NAME.mmproj.gguf is NAME's vision
 * projector) */
bool compat_model_name_valid(const char *name);

/* the entry named name; NOT_FOUND "model 'x' is not in the registry" */
int compat_model_find(const struct compat_models *reg, const char *name,
		      const struct compat_model **out, struct lemon_err *err);

/* the model to use on a device with vram_mb of free VRAM (0: unknown, no
 * change): the suggestion with the smallest vram_below_mb above vram_mb,
 * else m itself */
const char *compat_model_suggest_for(const struct compat_model *m,
				     uint32_t vram_mb);

/* "llm,embedding" style list of the label bits into out */
void compat_model_labels_str(unsigned labels, char *out, size_t cap);

/* ---- end of model registry -------------------------------------------- */

#endif
