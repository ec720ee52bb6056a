#!/usr/bin/env python3
"""Derives lemon's compat/*.json tables from the reference data in ../shared/data.

Reads amd-gpus.json, gc-ip-to-gfx.json, rocm-families.json and amd-npus.json,
checks them (id formats, the KFD gfx_target_version -> gfx rule, GC IP ->
gfx agreement, known primary-source corrections) and writes compat/gpus.json,
compat/gc-ip.json, compat/rocm.json, compat/npus.json and compat/kmsg.json in
lemon's own format (documented in compat/SCHEMA.md). Hand-edited entries live
in compat/*-local.json and are never written here.

Usage: scripts/gen-compat.py [SHARED_DATA_DIR] [--check]
  --check  compare with the committed files instead of writing (exit 1 on drift)
Python 3 standard library only.
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "compat")

# upstream locations behind the shared data (SOURCES.md)
URL_SHARED = "lemon ../shared/data"
SRC_DI = "https://github.com/GPUOpen-Tools/device_info@a44c00c0c5f83acbda444ac500c8b0e627b05fa1 DeviceInfo.cpp"
SRC_IDS = "https://gitlab.freedesktop.org/mesa/drm/-/blob/main/data/amdgpu.ids (mirror sailfishos-mirror/drm@82f74e7a5a7403392e91352af00210ae26a81f19)"
SRC_KDRV = "https://github.com/torvalds/linux/blob/master/drivers/gpu/drm/amd/amdgpu/amdgpu_drv.c (pciidlist)"
SRC_KFD = "https://github.com/torvalds/linux/blob/master/drivers/gpu/drm/amd/amdkfd/kfd_device.c (kgd2kfd_probe)"
SRC_LEM = "https://github.com/lemonade-sdk/lemonade@e385039ed33551de7f54cb73194cd08088772c08"
SRC_LRM = "https://github.com/lemonade-sdk/llamacpp-rocm@28def64ea376346df8169aac97518751bb903302 .github/workflows/build-llamacpp-rocm.yml"
SRC_LLC = "https://github.com/lemonade-sdk/llama.cpp@54b6d82751c0bad2e81ca78d3e8a92d9e4d62f52 .github/workflows/release.yml"
SRC_XDNA_K = "https://github.com/torvalds/linux/tree/master/drivers/accel/amdxdna"
SRC_XD = "https://github.com/amd/xdna-driver@856409cafc23cee55976ebcaa0a073ab4ec6dfe2"
SRC_FIX7 = "dri-devel: 'accel/amdxdna: Update firmware version check for latest firmware' (commit f1eac46fe5f7, 2025-12-18) and the npu_7.sbin fix (2026-02-25, closes https://gitlab.freedesktop.org/drm/amd/-/issues/5009)"

HEX4 = re.compile(r"^[0-9a-f]{4}$")
HEX2 = re.compile(r"^[0-9a-f]{2}$")
GFX = re.compile(r"^gfx[0-9]{1,2}[0-9a-f]{2}$|^gfx[0-9][0-9a-f]{2}$")
VER3 = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
KINDS = ("igpu", "dgpu", "accelerator")
CONFIDENCE = ("high", "medium", "low")


class DataError(Exception):
    pass


def fail(what, msg):
    raise DataError("%s: %s" % (what, msg))


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=no_duplicates(path))


def no_duplicates(path):
    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                fail(path, "duplicate key %r" % k)
            seen[k] = v
        return seen
    return hook


def kfd_to_gfx(v):
    """KFD gfx_target_version rule: gfx + decimal major + hex minor + hex stepping"""
    major, minor, step = v // 10000, (v // 100) % 100, v % 100
    if minor > 15 or step > 15:
        return None
    return "gfx%d%x%x" % (major, minor, step)


# ---- corrections where the primary source wins (listed in the report) ----

# the kernel pciidlist binds 0x73A8 as CHIP_SIENNA_CICHLID (Navi 21, GC 10.3.0,
# gfx1030); amd-gpus.json left it out because device_info disagrees. It lives in
# compat/gpus-local.json with that reasoning, so nothing is derived for it here.

# ---------------------------------------------------------------- GPUs -----

def gen_gpus(shared, gc_map):
    data = load(os.path.join(shared, "amd-gpus.json"))
    out = {}
    for e in data:
        dev = e.get("device_id", "")
        if not HEX4.match(dev):
            fail("amd-gpus.json", "malformed device_id %r" % dev)
        for key in ("gfx", "kind", "family", "confidence", "source"):
            if not e.get(key):
                fail("amd-gpus.json %s" % dev, "missing %s" % key)
        if not GFX.match(e["gfx"]):
            fail("amd-gpus.json %s" % dev, "malformed gfx %r" % e["gfx"])
        if e["kind"] not in KINDS:
            fail("amd-gpus.json %s" % dev, "unknown kind %r" % e["kind"])
        if e["confidence"] not in CONFIDENCE:
            fail("amd-gpus.json %s" % dev, "unknown confidence %r" % e["confidence"])
        gc = e.get("gc_ip")
        if gc is not None:
            if not VER3.match(gc):
                fail("amd-gpus.json %s" % dev, "malformed gc_ip %r" % gc)
            if gc_map.get(gc) != e["gfx"]:
                fail("amd-gpus.json %s" % dev,
                     "gc_ip %s maps to %s in gc-ip-to-gfx.json, entry says %s"
                     % (gc, gc_map.get(gc), e["gfx"]))
        revs = e.get("revisions") or [None]
        for rev in revs:
            if rev is not None and not HEX2.match(rev):
                fail("amd-gpus.json %s" % dev, "malformed revision %r" % rev)
            key = "1002:%s" % dev + (":%s" % rev if rev else "")
            if key in out:
                fail("amd-gpus.json", "duplicate entry %s" % key)
            ent = {"gfx": e["gfx"], "family": e["family"], "kind": e["kind"]}
            if e.get("name"):
                ent["name"] = e["name"]
            if e.get("codename"):
                ent["codename"] = e["codename"]
            if gc:
                ent["gc_ip"] = gc
            names = e.get("names_by_revision") or {}
            if rev is None and names:
                for r in names:
                    if not HEX2.match(r):
                        fail("amd-gpus.json %s" % dev, "malformed revision %r" % r)
                ent["names"] = dict(sorted(names.items()))
            ent["confidence"] = e["confidence"]
            if e.get("note"):
                ent["note"] = e["note"]
            ent["source"] = e["source"]
            out[key] = ent
    local = load(os.path.join(OUT, "gpus-local.json"))["gpus"]
    out.update(gen_derived_gpus(set(out) | set(local), gc_map))
    return {
        "schema": 1,
        "about": "AMD GPU PCI device id (and revision where it matters) -> gfx target, family, kind, GC IP and name. The runtime KFD gfx_target_version and the ip_discovery GC IP win over this table. Generated by scripts/gen-compat.py from ../shared/data/amd-gpus.json (facts from GPUOpen device_info, libdrm amdgpu.ids, the kernel pciidlist and kfd_device.c) and, for every other id of the kernel pciidlist and of libdrm's amdgpu.ids (GCN 1 on), from compat/upstream/ (the pciidlist's chip per id, the chip's gfx target from kfd_device.c or LLVM, names from amdgpu.ids); hand-edited entries are in gpus-local.json.",
        "gpus": dict(sorted(out.items())),
    }


# ------------------------------------------- every amdgpu id, GCN 1 on ----

# upstream lists kept in compat/upstream/ (see the headers of those files)
IDS_FILE = os.path.join(OUT, "upstream", "amdgpu.ids")
PCIIDLIST_FILE = os.path.join(OUT, "upstream", "amdgpu-pciidlist.txt")
SRC_IDS_NEW = "https://gitlab.freedesktop.org/mesa/drm/-/blob/main/data/amdgpu.ids (file version 15cdcfe9e1c4b00f2a819bc1f4b3efa1326ac6bc, 2026-02-25, via mirror sailfishos-mirror/drm; copy in compat/upstream/amdgpu.ids)"
SRC_KDRV_60C = "https://github.com/torvalds/linux/blob/60c250a98d4ca12a34a89a498cb05d4d221f2f19/drivers/gpu/drm/amd/amdgpu/amdgpu_drv.c pciidlist (extract in compat/upstream/amdgpu-pciidlist.txt)"
SRC_LLVM = "https://github.com/llvm/llvm-project/blob/main/llvm/docs/AMDGPUUsage.rst processor table (gfx600 tahiti, gfx601 pitcairn/verde, gfx602 oland/hainan, gfx703 kabini/mullins, gfx704 bonaire, gfx802 iceland/tonga, gfx810 stoney)"

# kernel CHIP_* -> (gfx, family, codename, gc_ip, how the gfx is known).
# "kfd": kfd_device.c kgd2kfd_probe gives the gfx_target_version for the chip
# (pre-SOC15 chips by asic type, later ones by GC IP); "llvm": KFD does not
# run on the chip, so the target is the LLVM processor the chip is compiled
# as (what Mesa's ac_get_llvm_processor_name names it).
CHIPS = {
    "TAHITI": ("gfx600", "GCN1", "Tahiti (Southern Islands)", None, "llvm"),
    "PITCAIRN": ("gfx601", "GCN1", "Pitcairn (Southern Islands)", None, "llvm"),
    "VERDE": ("gfx601", "GCN1", "Cape Verde (Southern Islands)", None, "llvm"),
    "OLAND": ("gfx602", "GCN1", "Oland (Southern Islands)", None, "llvm"),
    "HAINAN": ("gfx602", "GCN1", "Hainan (Southern Islands)", None, "llvm"),
    "KAVERI": ("gfx700", "GCN2", "Kaveri (Sea Islands APU)", None, "kfd 70000"),
    "HAWAII": ("gfx701", "GCN2", "Hawaii (Sea Islands)", None, "kfd 70001"),
    "BONAIRE": ("gfx704", "GCN2", "Bonaire (Sea Islands)", None, "llvm"),
    "KABINI": ("gfx703", "GCN2", "Kabini (Sea Islands APU)", None, "llvm"),
    "MULLINS": ("gfx703", "GCN2", "Mullins (Sea Islands APU)", None, "llvm"),
    "TOPAZ": ("gfx802", "GCN3", "Topaz (Iceland)", None, "llvm"),
    "TONGA": ("gfx802", "GCN3", "Tonga", None, "kfd 80002"),
    "FIJI": ("gfx803", "GCN3", "Fiji", None, "kfd 80003"),
    "CARRIZO": ("gfx801", "GCN3", "Carrizo (APU)", None, "kfd 80001"),
    "STONEY": ("gfx810", "GCN3", "Stoney (APU)", None, "llvm"),
    "POLARIS10": ("gfx803", "GCN4", "Polaris 10 (Ellesmere)", None, "kfd 80003"),
    "POLARIS11": ("gfx803", "GCN4", "Polaris 11 (Baffin)", None, "kfd 80003"),
    "POLARIS12": ("gfx803", "GCN4", "Polaris 12 (Lexa)", None, "kfd 80003"),
    "VEGAM": ("gfx803", "GCN4", "Vega M (Polaris 22)", None, "kfd 80003"),
    "VEGA10": ("gfx900", "GCN5", "Vega 10", "9.0.1", "kfd"),
    "VEGA12": ("gfx904", "GCN5", "Vega 12", "9.2.1", "kfd"),
    "VEGA20": ("gfx906", "GCN5", "Vega 20", "9.4.0", "kfd"),
    "RAVEN": ("gfx902", "GCN5", "Raven / Picasso / Raven2 (APU)", None, "kfd 90002 (GC 9.1.0 and 9.2.2)"),
    "RENOIR": ("gfx90c", "GCN5", "Renoir / Cezanne / Lucienne / Barcelo (APU)", "9.3.0", "kfd"),
    "ARCTURUS": ("gfx908", "CDNA", "Arcturus", "9.4.1", "kfd"),
    "ALDEBARAN": ("gfx90a", "CDNA2", "Aldebaran", "9.4.2", "kfd"),
    "NAVI10": ("gfx1010", "RDNA1", "Navi 10", "10.1.10", "kfd"),
    "NAVI12": ("gfx1011", "RDNA1", "Navi 12", "10.1.2", "kfd"),
    "NAVI14": ("gfx1012", "RDNA1", "Navi 14", "10.1.1", "kfd"),
    "CYAN_SKILLFISH": ("gfx1013", "RDNA1", "Cyan Skillfish (APU)", "10.1.3", "kfd 100103 (GC 10.1.3 and 10.1.4)"),
    "SIENNA_CICHLID": ("gfx1030", "RDNA2", "Navi 21 (Sienna Cichlid)", "10.3.0", "kfd"),
    "NAVY_FLOUNDER": ("gfx1031", "RDNA2", "Navi 22 (Navy Flounder)", "10.3.2", "kfd"),
    "DIMGREY_CAVEFISH": ("gfx1032", "RDNA2", "Navi 23 (Dimgrey Cavefish)", "10.3.4", "kfd"),
    "VANGOGH": ("gfx1033", "RDNA2", "Van Gogh (APU)", "10.3.1", "kfd"),
    "BEIGE_GOBY": ("gfx1034", "RDNA2", "Navi 24 (Beige Goby)", "10.3.5", "kfd"),
    "YELLOW_CARP": ("gfx1035", "RDNA2", "Rembrandt (Yellow Carp, APU)", "10.3.3", "kfd"),
}
# compute-only parts: every id of these chips is an accelerator
ACCEL_CHIPS = ("ARCTURUS", "ALDEBARAN")


def parse_amdgpu_ids(path):
    """libdrm amdgpu.ids -> {device: {revision: name}} (lower-case hex)"""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "," not in line:
                continue
            parts = [p.strip() for p in line.split(",", 2)]
            if len(parts) != 3 or not parts[2]:
                fail("%s:%d" % (path, n), "malformed line %r" % line)
            dev, rev = parts[0].lower(), parts[1].lower()
            if not HEX4.match(dev) or not HEX2.match(rev):
                fail("%s:%d" % (path, n), "malformed id %r" % line)
            # a repeated key keeps its first name (libdrm's lookup does too)
            out.setdefault(dev, {}).setdefault(rev, parts[2])
    return out


def parse_pciidlist(path):
    """compat/upstream/amdgpu-pciidlist.txt -> {device: (chip, is_apu)}"""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            chip, apu = words[0], len(words) > 1 and words[1] == "apu"
            if chip not in CHIPS:
                fail("%s:%d" % (path, n), "no gfx mapping for CHIP_%s" % chip)
            for dev in words[2 if apu else 1:]:
                if not HEX4.match(dev) or dev in out:
                    fail("%s:%d" % (path, n), "bad or repeated id %r" % dev)
                out[dev] = (chip, apu)
    return out


def chip_source(chip, dev):
    gfx, _, _, gc, how = CHIPS[chip]
    src = "%s: 0x%s -> CHIP_%s; " % (SRC_KDRV_60C, dev, chip)
    if how == "llvm":
        return src + "CHIP_%s -> %s: %s (KFD does not run on this chip)" % (chip, gfx, SRC_LLVM)
    if gc:
        how = "GC %s -> %s" % (gc, gfx) if how == "kfd" else how
    return src + "CHIP_%s -> %s: %s (%s)" % (chip, gfx, SRC_KFD, how)


def gen_derived_gpus(taken, gc_map):
    """entries for every id of the kernel pciidlist and of libdrm's
    amdgpu.ids that ../shared/data does not cover (taken: keys already
    defined by amd-gpus.json or gpus-local.json)"""
    names = parse_amdgpu_ids(IDS_FILE)
    kern = parse_pciidlist(PCIIDLIST_FILE)
    out = {}
    for dev in sorted(kern):
        key = "1002:%s" % dev
        if key in taken:
            continue
        chip, apu = kern[dev]
        gfx, family, codename, gc, _ = CHIPS[chip]
        if gc and gc_map.get(gc) != gfx:
            fail("CHIPS %s" % chip, "GC %s maps to %s in gc-ip.json" % (gc, gc_map.get(gc)))
        revs = names.get(dev, {})
        accel = [r for r, n in revs.items() if "Instinct" in n]
        kind = "igpu" if apu else "accelerator" if chip in ACCEL_CHIPS else "dgpu"
        if revs and len(accel) == len(revs):
            kind = "accelerator"
        src = chip_source(chip, dev)
        ent = {"gfx": gfx, "family": family, "kind": kind, "codename": codename}
        if gc:
            ent["gc_ip"] = gc
        if revs:
            ent["names"] = dict(sorted(revs.items()))
            src += "; marketing names: " + SRC_IDS_NEW
        ent["confidence"] = "medium" if CHIPS[chip][4] == "llvm" else "high"
        ent["source"] = src
        out[key] = ent
        # an Instinct revision of an id that also names other products
        for r in accel if kind != "accelerator" else []:
            out["%s:%s" % (key, r)] = {
                "gfx": gfx, "family": family, "kind": "accelerator",
                "codename": codename, **({"gc_ip": gc} if gc else {}),
                "name": revs[r], "confidence": ent["confidence"],
                "source": src}
    return out


# -------------------------------------------------------------- GC IP ------

def gen_gc(shared):
    data = load(os.path.join(shared, "gc-ip-to-gfx.json"))
    out = {}
    for e in data["entries"]:
        gc, gfx, tv = e["gc_ip"], e["gfx"], e["gfx_target_version"]
        if not VER3.match(gc):
            fail("gc-ip-to-gfx.json", "malformed gc_ip %r" % gc)
        if not GFX.match(gfx):
            fail("gc-ip-to-gfx.json %s" % gc, "malformed gfx %r" % gfx)
        if kfd_to_gfx(tv) != gfx:
            fail("gc-ip-to-gfx.json %s" % gc,
                 "gfx_target_version %d decodes to %s, entry says %s"
                 % (tv, kfd_to_gfx(tv), gfx))
        if gc in out:
            fail("gc-ip-to-gfx.json", "duplicate gc_ip %s" % gc)
        if e.get("confidence") not in CONFIDENCE:
            fail("gc-ip-to-gfx.json %s" % gc, "bad confidence")
        ent = {"gfx": gfx, "gfx_target_version": tv, "chips": e["chips"],
               "confidence": e["confidence"]}
        if e.get("note"):
            ent["note"] = e["note"]
        src = e["source"]
        if "kfd_device.c" in src and "github.com" not in src:
            src = SRC_KFD + "; " + src
        ent["source"] = src
        out[gc] = ent
    doc = {
        "schema": 1,
        "about": "amdgpu ip_discovery GC IP version (cardN/device/ip_discovery/die/0/GC/0/{major,minor,revision}) -> gfx target and the KFD gfx_target_version it reports. Generated by scripts/gen-compat.py from ../shared/data/gc-ip-to-gfx.json (Linux kfd_device.c kgd2kfd_probe and later amd-gfx patches).",
        "gc_ip": dict(sorted(out.items())),
    }
    return doc, {k: v["gfx"] for k, v in out.items()}


# --------------------------------------------------------------- ROCm ------

# TheRock's families for targets the shared data does not list
# (cmake/therock_amdgpu_targets.cmake) and TheRock's Linux status for them
# (SUPPORTED_GPUS.md, via ../shared/data/rocm-families.json
# rocm_official_support.therock_stream)
SRC_ROCK_CMAKE = "https://github.com/ROCm/TheRock@02eb4a57fdf5a19809c807e51fcd6945b432ddc1 cmake/therock_amdgpu_targets.cmake"
THEROCK_LEGACY = {
    "gfx906": ("gfx90X-dgpu", "build passing only"),
    "gfx900": (None, "build passing only"),
    "gfx90c": (None, "build passing only"),
    "gfx1010": ("gfx101X-dgpu", "release ready"),
    "gfx1011": ("gfx101X-dgpu", "release ready"),
    "gfx1012": ("gfx101X-dgpu", "release ready"),
}


def legacy_rocm(gfx):
    """a gfx target no published ROCm llama.cpp bundle carries"""
    fam, status = THEROCK_LEGACY.get(gfx, (None, None))
    ent = {"family": gfx, "prebuilt": False}
    if fam:
        ent["therock_family"] = fam
    if status:
        ent["therock_linux"] = status
        ent["note"] = ("TheRock builds a ROCm runtime for %s%s (%s), but neither Lemonade's "
                       "nightly llamacpp-rocm assets nor its supported families include it: no "
                       "ROCm llama.cpp bundle; Vulkan is the path" %
                       (gfx, " in family " + fam if fam else "", status))
    else:
        ent["note"] = ("no ROCm release builds for %s (TheRock does not list it): no ROCm "
                       "llama.cpp bundle; Vulkan is the path" % gfx)
    ent["source"] = ("%s (targets and families); https://github.com/ROCm/TheRock@89553ce3746eda74ade42557470d25e37c91b6f0 SUPPORTED_GPUS.md (Linux status); "
                     "%s src/cpp/server/backends/llamacpp/llamacpp_server.cpp (supported families); %s (nightly families)"
                     % (SRC_ROCK_CMAKE, SRC_LEM, SRC_LRM))
    return ent


def gen_rocm(shared, gpu_gfx=()):
    data = load(os.path.join(shared, "rocm-families.json"))
    lem = data["lemonade"]
    fams = lem["rocm_asset_families"]
    supported = set(lem["llamacpp_rocm_supported_families"])
    overrides = {}
    for w in data["hsa_override_gfx_version"]["workarounds"]:
        if not VER3.match(w["override"]):
            fail("rocm-families.json", "malformed override %r" % w["override"])
        for g in w["gfx"]:
            if g in overrides:
                fail("rocm-families.json", "two overrides for %s" % g)
            overrides[g] = w
    out = {}
    for t in data["gfx_targets"]:
        gfx = t["gfx"]
        if not GFX.match(gfx):
            fail("rocm-families.json", "malformed gfx %r" % gfx)
        fam = t["lemonade_asset_family"]
        if fams.get(gfx, gfx) != fam:
            fail("rocm-families.json %s" % gfx,
                 "family %s disagrees with rocm_asset_families (%s)" % (fam, fams.get(gfx, gfx)))
        lem_ok = bool(t["lemonade_llamacpp_rocm_supported"])
        if lem_ok != (fam in supported):
            fail("rocm-families.json %s" % gfx, "supported flag disagrees with the family list")
        stable = bool(t["in_lemonade_stable_llamacpp_build"])
        nightly = t.get("nightly_llamacpp_rocm_asset") is not None
        ent = {"family": fam, "prebuilt": lem_ok and (stable or nightly),
               "stable_build": stable, "nightly_build": nightly,
               "upstream_build": bool(t["in_upstream_llamacpp_ubuntu_rocm_7.2_build"]),
               "therock_linux": t["therock_linux_status"]}
        rock = lem["channels"]["stable"]["therock_url_mapping"]
        if rock.get(gfx) or rock.get(fam):
            ent["therock_family"] = rock.get(gfx) or rock.get(fam)
        w = overrides.get(gfx)
        # the override is a workaround only worth giving where no bundle
        # lemon installs (Lemonade's nightly llamacpp-rocm family assets)
        # carries code for the target itself: gfx1031 runs the gfx103X
        # build as is, gfx1035 needs the override to run it
        if w and not nightly:
            parts = w["override"].split(".")
            base = "gfx%s%x%x" % (parts[0], int(parts[1]), int(parts[2]))
            ent["hsa_override"] = w["override"]
            ent["override_family"] = fams.get(base, base)
            ent["override_confidence"] = w["confidence"]
            ent["override_source"] = w["source"]
        # Strix Halo: ROCm needs the KFD CWSR fix (the node's cwsr_size
        # and ctl_stack_size); the note names the first kernel with it
        cwsr = re.search(r"cwsr_size and ctl_stack_size.*kernel (\d+\.\d+\.\d+)\+", t.get("note", ""))
        if cwsr:
            ent["kfd_cwsr_kernel"] = cwsr.group(1)
        if t.get("note"):
            ent["note"] = t["note"]
        ent["source"] = "%s src/cpp/resources/backend_versions.json, src/cpp/server/backends/llamacpp/llamacpp_server.cpp (families); %s (stable targets); %s (nightly families); https://github.com/ROCm/TheRock@89553ce3746eda74ade42557470d25e37c91b6f0 SUPPORTED_GPUS.md" % (SRC_LEM, SRC_LLC, SRC_LRM)
        out[gfx] = ent
    for g in overrides:
        if g not in out:
            fail("rocm-families.json", "override for unknown target %s" % g)
    for g in sorted(set(gpu_gfx) - set(out)):
        out[g] = legacy_rocm(g)
    return {
        "schema": 1,
        "about": "gfx target -> the ROCm llama.cpp build family as Lemonade's ROCm builds name them, whether a prebuilt exists (Lemonade stable lemonade-sdk/llama.cpp or nightly lemonade-sdk/llamacpp-rocm), and HSA_OVERRIDE_GFX_VERSION workarounds. Generated by scripts/gen-compat.py from ../shared/data/rocm-families.json.",
        "targets": dict(sorted(out.items())),
    }


# ---------------------------------------------------------------- NPUs -----

NPU_GEN = re.compile(r"^(npu[0-9]+)")


def gen_npus(shared):
    data = load(os.path.join(shared, "amd-npus.json"))
    devices = {}
    gens = set()
    for d in data["devices"]:
        for k in ("vendor", "device_id"):
            if not HEX4.match(d[k]):
                fail("amd-npus.json", "malformed %s %r" % (k, d[k]))
        if not HEX2.match(d["revision"]):
            fail("amd-npus.json", "malformed revision %r" % d["revision"])
        m = NPU_GEN.match(d["generation"])
        if not m:
            fail("amd-npus.json", "malformed generation %r" % d["generation"])
        gen = m.group(1)
        gens.add(gen)
        fw = d["firmware_dir"].split(" ")[0].rstrip("/")
        if not re.match(r"^amdnpu/[0-9a-f]{4}_[0-9a-f]{2}$", fw):
            fail("amd-npus.json %s" % gen, "malformed firmware_dir %r" % d["firmware_dir"])
        key = "%s:%s:%s" % (d["vendor"], d["device_id"], d["revision"])
        if key in devices:
            fail("amd-npus.json", "duplicate device %s" % key)
        ent = {"generation": gen, "xdna": d["xdna"]}
        if d.get("product_family"):
            ent["product"] = d["product_family"]
        ent["firmware_dir"] = fw
        ent["fastflowlm"] = bool(d.get("supported_by_fastflowlm", False))
        ent["confidence"] = d["confidence"]
        if d.get("note"):
            ent["note"] = d["note"]
        ent["source"] = d["source"]
        devices[key] = ent

    # driver protocol rules: restated from protocol_history + devices[].protocol
    hist = {h["kernels"]: h for h in data["protocol_history"]}
    if "6.14 - 6.19" not in hist or "7.0+" not in hist:
        fail("amd-npus.json", "protocol_history lacks the 6.14 - 6.19 or 7.0+ era")
    src614 = SRC_XDNA_K + " aie2_pci.c aie2_check_protocol (6.14-6.19: exact major, minimum minor); " + hist["6.14 - 6.19"]["source"]
    src70 = SRC_FIX7 + "; " + hist["7.0+"]["source"]
    srcoot = SRC_XD + " drivers/accel/amdxdna (upstream-track copy with the 7.0 per-device protocol table); src/driver/amdxdna"
    rules = {}

    def rule(key, gen, driver, kmin, kbelow, accepts, conf, src):
        if gen not in gens:
            fail("protocol rules", "unknown generation %s" % gen)
        r = {"generation": gen, "driver": driver}
        if kmin:
            r["kernel_min"] = kmin
        if kbelow:
            r["kernel_below"] = kbelow
        r["accepts"] = accepts
        r["confidence"] = conf
        r["source"] = src
        rules[key] = r

    for d in data["devices"]:
        gen = NPU_GEN.match(d["generation"]).group(1)
        p = d["protocol"]
        if "6.14-6.19" in p or "6.14 era" in p:
            txt = p.get("6.14-6.19") or p.get("6.14 era")
            m = re.match(r"major (\d+), minor >= (\d+)", txt)
            if not m:
                fail("amd-npus.json %s" % gen, "unparsed protocol %r" % txt)
            rule("in-tree-6.14/%s" % gen, gen, "in-tree", "6.14", "7.0",
                 ["%s.%s" % m.groups()], "high" if gen != "npu2" else "low", src614)
        if "7.0+" in p:
            txt = p["7.0+"]
            m = re.match(r"major (\d+),? minor >= (\d+)", txt)
            if not m:
                fail("amd-npus.json %s" % gen, "unparsed protocol %r" % txt)
            acc = ["%s.%s" % m.groups()]
            if "or major 7 any minor" in txt:
                acc.append("7.0")
            rule("in-tree-7.0/%s" % gen, gen, "in-tree", "7.0", None, acc, "medium", src70)
            rule("out-of-tree/%s" % gen, gen, "out-of-tree", None, None, acc, "medium", srcoot)
        if "xdna-driver HEAD" in p:
            m = re.match(r"NPU firmware major (\d+) minor >= (\d+)", p["xdna-driver HEAD"])
            if not m:
                fail("amd-npus.json %s" % gen, "unparsed protocol %r" % p["xdna-driver HEAD"])
            rule("out-of-tree/%s" % gen, gen, "out-of-tree", None, None,
                 ["%s.%s" % m.groups()], "medium", srcoot)

    lo = data["firmware"]["load_order"]
    names = {
        "in-tree-6.14": {"driver": "in-tree", "kernel_min": "6.14", "kernel_below": "7.0",
                         "names": ["npu.sbin"], "source": SRC_XDNA_K + " aie2_pci.c; " + lo["6.14-6.19 (mainline)"]},
        "in-tree-7.0": {"driver": "in-tree", "kernel_min": "7.0",
                        "names": ["npu_7.sbin", "npu.sbin"], "source": SRC_FIX7 + "; " + lo["7.0+ (mainline, after the npu_7.sbin fix)"]},
        "out-of-tree": {"driver": "out-of-tree",
                        "names": ["npu.dev.sbin", "npu_7.sbin", "npu.sbin"], "source": SRC_XD + "; " + lo["amd/xdna-driver / amdxdna-dkms"]},
    }
    for k, v in names.items():
        v["confidence"] = "high" if k == "in-tree-6.14" else "medium"

    fwv = {}
    for v in data["firmware"]["known_versions"]:
        if "protocol" in v:
            proto = v["protocol"]
        elif "protocol_major" in v:
            proto = str(v["protocol_major"])
        else:
            continue  # no protocol known: nothing to derive
        if not re.match(r"^\d+(\.\d+)?$", proto):
            fail("amd-npus.json", "malformed protocol %r" % proto)
        if not re.match(r"^\d+(\.\d+){3}$", v["version"]):
            fail("amd-npus.json", "malformed firmware version %r" % v["version"])
        key = "amdnpu/%s/%s" % (v["dir"], v["version"])
        fwv[key] = {"protocol": proto, "confidence": v["confidence"], "note": v["note"],
                    "source": "amd/xdna-driver issues #1074, #1257 and third-party linux-firmware reports (see ../shared/data/SOURCES.md); " + SRC_XD + " tools/WHENCE"}

    return {
        "schema": 1,
        "about": "AMD XDNA NPUs: PCI vendor:device:revision -> generation, firmware directory and FastFlowLM support; the firmware protocols each amdxdna driver accepts; the firmware names it tries, in order; known firmware versions -> protocol; what each amdxdna era does without an IOMMU. Generated by scripts/gen-compat.py from ../shared/data/amd-npus.json and, for iommu_rules, the amdxdna sources named in each rule.",
        "devices": dict(sorted(devices.items())),
        "driver_protocols": dict(sorted(rules.items())),
        "firmware_names": dict(sorted(names.items())),
        "firmware_versions": dict(sorted(fwv.items())),
        "iommu_rules": dict(sorted(IOMMU_RULES.items())),
    }


# what each amdxdna era does without an IOMMU (issue 12 item 8). Published
# reports disagree because the driver changed: the mainline driver of 6.14
# binds every opening process with iommu_sva_bind_device() and fails the
# open when that fails; the IOVA/force_iova rework (dri-devel, Lizhi Hou,
# "[PATCH V2] accel/amdxdna: Allow forcing IOVA-based DMA via module
# parameter", reviewed 2026-01-26, so in mainline from 7.1 at the earliest:
# hence confidence low on the boundary) lets an open without PASID go on
# to a carveout configured through debugfs and fails it otherwise
# ("PASID unavailable and carveout not configured"); the out-of-tree
# xdna-driver picks its mode at probe (amdxdna_iommu_mode_setup): carveout
# or CMA memory -> physical/IOVA address mode, a translating IOMMU -> IOVA
# mode, passthrough (iommu=pt) -> PASID mode, IOMMU off without carveout ->
# probe fails ("IOMMU is off, require carveout memory").
SRC_XDNA_OPEN_614 = SRC_XDNA_K + " amdxdna_pci_drv.c amdxdna_drm_open (6.14: iommu_sva_bind_device(), the open fails with 'SVA bind device failed')"
SRC_XDNA_IOVA = "dri-devel: '[PATCH V2] accel/amdxdna: Allow forcing IOVA-based DMA via module parameter' (Lizhi Hou, reviewed by Mario Limonciello 2026-01-26; adds amdxdna_iommu.c, force_iova); " + SRC_XDNA_K + " amdxdna_pci_drv.c amdxdna_drm_open after it ('PASID not available for pid', 'PASID unavailable and carveout not configured')"
SRC_XDNA_OOT_IOMMU = SRC_XD + " src/driver/amdxdna/amdxdna_devel.c amdxdna_iommu_mode_setup ('IOMMU is off, require carveout memory', 'IOVA address mode enabled w/o carveout', 'PASID address mode enabled')"
IOMMU_RULES = {
    "in-tree-6.14": {
        "driver": "in-tree", "kernel_min": "6.14", "kernel_below": "7.1",
        "without_iommu": "fails",
        "message": "this kernel's amdxdna binds every process that opens the NPU through SVA (PASID), which needs the IOMMU: with it off the open fails ('SVA bind device failed')",
        "fix": "remove amd_iommu=off / iommu=off from the kernel command line and enable the IOMMU in the firmware setup",
        "confidence": "high", "source": SRC_XDNA_OPEN_614},
    "in-tree-7.1": {
        "driver": "in-tree", "kernel_min": "7.1",
        "without_iommu": "needs-carveout",
        "message": "this kernel's amdxdna uses SVA (PASID) and without it opens the NPU only when a carveout is configured ('PASID unavailable and carveout not configured'); amdxdna.force_iova=1 needs the IOMMU on",
        "fix": "enable the IOMMU (remove amd_iommu=off / iommu=off), or reserve memory (memmap=) and set it as the carveout in /sys/kernel/debug/accel/<BDF>/carveout",
        "confidence": "low", "source": SRC_XDNA_IOVA},
    "out-of-tree": {
        "driver": "out-of-tree",
        "without_iommu": "needs-carveout",
        "message": "the out-of-tree amdxdna runs without an IOMMU only in physical-address mode with carveout or CMA memory ('IOMMU is off, require carveout memory'); with the IOMMU translating it uses IOVA mode, in passthrough (iommu=pt) SVA",
        "fix": "enable the IOMMU (remove amd_iommu=off / iommu=off), or configure the driver's carveout or CMA memory",
        "confidence": "medium", "source": SRC_XDNA_OOT_IOMMU},
}


# ------------------------------------------------------- kernel log lines --

# how each upstream dmesg pattern (keyed by its function and a fragment of its
# text) becomes a lemon id, a match template and a fix; the templates use
# {major} {minor} {int} {hex} {any} (see compat/SCHEMA.md)
KMSG = [
    ("Incompatible firmware protocol", "npu-protocol-mismatch",
     ["aie2_check_protocol: Incompatible firmware protocol major {major} minor {minor}"],
     "install kernel 7.0+ (or amdxdna-dkms), or pin linux-firmware's protocol-6 npu.sbin"),
    ("Firmware minor version smaller", "npu-fw-too-old",
     ["aie2_check_protocol: Firmware minor version smaller than supported"],
     "update linux-firmware (the amdnpu/ firmware is older than the driver needs)"),
    ("Invalid mbox magic", "npu-mbox-magic",
     ["aie2_get_mgmt_chann_info: Invalid mbox magic 0x{hex}"],
     "install the firmware that matches this kernel's amdxdna (update linux-firmware)"),
    ("firmware is not alive", "npu-fw-not-alive",
     ["aie2_hw_start: firmware is not alive"],
     "check that the NPU firmware protocol matches the driver: lemon doctor shows both"),
    ("smu cmd", "npu-smu-failed",
     ["aie2_smu_exec: smu cmd {int} failed", "aie2_smu_fini: Power off failed, ret {int}"],
     "use firmware of the protocol this kernel accepts (npu.sbin for 6.x kernels, npu_7.sbin needs 7.0+)"),
    ("start npu failed", "npu-start-failed",
     ["aie2_init: start npu failed, ret {int}"],
     "see the amdxdna lines before this one in the kernel log: sudo dmesg | grep amdxdna"),
    ("Hardware init failed", "npu-probe-failed",
     ["amdxdna_probe: Hardware init failed, ret {int}", "probe with driver amdxdna failed with error {int}"],
     "see the amdxdna lines before this one in the kernel log: sudo dmesg | grep amdxdna"),
    ("failed to request_firmware", "npu-fw-missing",
     ["aie2_init: failed to request_firmware {any}, ret {int}"],
     "install the NPU firmware (amdnpu/ in linux-firmware); update the linux-firmware package"),
    ("Running under hypervisor", "npu-hypervisor",
     ["aie2_init: Running under hypervisor not supported"],
     "run on bare metal: amdxdna refuses to start inside a virtual machine"),
    ("amdxdna_drm_open: SVA bind device failed", "npu-sva",
     ["amdxdna_drm_open: SVA bind device failed, ret {int}"],
     "enable the AMD IOMMU: remove amd_iommu=off / iommu=off from the kernel command line and enable IOMMU in the firmware setup"),
    ("SVA get pasid failed", "npu-sva-pasid",
     ["amdxdna_drm_open: SVA get pasid failed"],
     "enable the AMD IOMMU: remove amd_iommu=off / iommu=off from the kernel command line and enable IOMMU in the firmware setup"),
    ("PASID not available for pid", "npu-pasid-unavailable",
     ["amdxdna_sva_init: SVA bind device failed, ret {int}", "amdxdna_drm_open: PASID not available for pid {int}",
      "amdxdna_drm_open: PASID unavailable and carveout not configured"],
     "enable the AMD IOMMU with PASID support: remove amd_iommu=off from the kernel command line"),
    ("Initialized amdxdna_accel_driver", "npu-initialized",
     ["Initialized amdxdna_accel_driver {int}.{int}.{int} for {any} on minor {int}"], ""),
    ("Load firmware", "npu-fw-loaded",
     ["[drm] Load firmware amdnpu/{any}"], ""),
]


def gen_kmsg(shared):
    data = load(os.path.join(shared, "amd-npus.json"))
    out = {}
    used = set()
    for p in data["dmesg_patterns"]:
        hit = [k for k in KMSG if k[0] in p["pattern"]]
        if len(hit) != 1:
            fail("amd-npus.json dmesg_patterns", "no single lemon id for %r" % p["pattern"])
        frag, pid, tmpl, fix = hit[0]
        if pid in out:
            fail("kmsg", "duplicate id %s" % pid)
        used.add(frag)
        ent = {"match": tmpl, "meaning": p["meaning"].split(" Fix: ")[0],
               "severity": "info" if fix == "" else "error"}
        if fix:
            ent["fix"] = fix
        ent["confidence"] = p["confidence"]
        ent["source"] = p["source"] + "; " + SRC_XDNA_K
        out[pid] = ent
    for k in KMSG:
        if k[0] not in used:
            fail("kmsg", "pattern %r is not in the shared data" % k[0])
    return {
        "schema": 1,
        "about": "kernel-log (dmesg) lines that show an NPU failure or state -> id, meaning and fix. Generated by scripts/gen-compat.py from ../shared/data/amd-npus.json dmesg_patterns; GPU and IOMMU lines are hand-edited in kmsg-local.json.",
        "patterns": dict(sorted(out.items())),
    }


def dump(doc):
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    shared = args[0] if args else os.path.join(ROOT, "..", "shared", "data")
    try:
        gc_doc, gc_map = gen_gc(shared)
        gpus = gen_gpus(shared, gc_map)
        local = load(os.path.join(OUT, "gpus-local.json"))["gpus"]
        gfx_all = {e["gfx"] for e in list(gpus["gpus"].values()) + list(local.values())}
        files = {
            "gpus.json": gpus,
            "gc-ip.json": gc_doc,
            "rocm.json": gen_rocm(shared, gfx_all),
            "npus.json": gen_npus(shared),
            "kmsg.json": gen_kmsg(shared),
        }
    except (DataError, KeyError, OSError, ValueError) as e:
        print("gen-compat: %s" % e, file=sys.stderr)
        return 1
    drift = 0
    for name, doc in files.items():
        path = os.path.join(OUT, name)
        text = dump(doc)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except OSError:
                same = False
            if not same:
                print("gen-compat: %s differs from the generated output" % path, file=sys.stderr)
                drift = 1
            continue
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    return drift


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
