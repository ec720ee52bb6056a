#!/bin/sh
# record-sysroot.sh OUT: copies, from this machine, exactly the files lemon
# reads (docs/sysroot.md) into OUT, so that `lemon doctor --sysroot OUT`
# replays this machine's diagnosis elsewhere (bug reports, tests).
#
# sysfs attributes become regular files; the PCI device links, `driver`,
# `GC`, the KFD class link and firmware links stay symlinks, rewritten to be
# relative and to point inside OUT. Device nodes become empty files and their
# permissions go to OUT/dev/.lemon-stat. The kernel log goes to OUT/dev/kmsg
# as plain `dmesg` text when dmesg is permitted.
#
# Environment: SRC (default /) is the tree to record; it exists for tests.
set -eu

usage() {
	echo "usage: $0 OUT" >&2
	exit 2
}

[ $# -eq 1 ] || usage
OUT=$1
SRC=${SRC:-/}
SRC=${SRC%/}

if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
	echo "record-sysroot: $OUT exists and is not empty" >&2
	exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# relpath TARGET BASE: TARGET (absolute) relative to the directory BASE
relpath() {
	rp_t=$1
	rp_b=$2
	rp_up=
	while [ "$rp_b" != / ]; do
		case $rp_t in "$rp_b" | "$rp_b"/*) break ;; esac
		rp_b=$(dirname "$rp_b")
		rp_up="../$rp_up"
	done
	if [ "$rp_b" = / ]; then
		rp_rest=${rp_t#/}
	else
		rp_rest=${rp_t#"$rp_b"}
		rp_rest=${rp_rest#/}
	fi
	rp_r="$rp_up$rp_rest"
	rp_r=${rp_r%/}
	echo "${rp_r:-.}"
}

# copy_file REL: a readable regular file (or sysfs attribute) as a regular file
copy_file() {
	[ -f "$SRC/$1" ] && [ -r "$SRC/$1" ] || return 0
	mkdir -p "$OUT/$(dirname "$1")"
	# sysfs attributes report a size of 4096 but may fail to read: skip those
	cat "$SRC/$1" > "$OUT/$1" 2>/dev/null || rm -f "$OUT/$1"
}

# copy_link REL: a symlink, rewritten relative to OUT when it is absolute
copy_link() {
	[ -L "$SRC/$1" ] || return 0
	target=$(readlink "$SRC/$1")
	case $target in
	/*)
		# absolute: make it relative from the link's directory
		dir=$(dirname "/$1")
		target=$(relpath "$target" "$dir")
		;;
	esac
	mkdir -p "$OUT/$(dirname "$1")"
	ln -sfn "$target" "$OUT/$1"
}

# copy_dir_marker REL: a directory lemon lists; kept with its `dev` attribute
# so that an archive or git keeps it
copy_dir_marker() {
	[ -d "$SRC/$1" ] || return 0
	mkdir -p "$OUT/$1"
	copy_file "$1/dev"
}

# resolve REL: the physical path of a sysfs link, as a path relative to SRC
resolve() {
	p=$(cd "$SRC/$1" 2>/dev/null && pwd -P) || return 1
	echo "${p#"$SRC"}" | sed 's|^/||'
}

# ---- proc and etc ------------------------------------------------------
for f in proc/sys/kernel/osrelease proc/cmdline proc/cpuinfo proc/meminfo \
	proc/self/status proc/self/limits etc/group; do
	copy_file "$f"
done

# ---- PCI devices ---------------------------------------------------------
drivers=""
if [ -d "$SRC/sys/bus/pci/devices" ]; then
	for link in "$SRC"/sys/bus/pci/devices/*; do
		[ -e "$link" ] || continue
		bdf=$(basename "$link")
		rel="sys/bus/pci/devices/$bdf"
		if [ -L "$link" ] && phys=$(resolve "$rel"); then
			mkdir -p "$OUT/sys/bus/pci/devices" "$OUT/$phys"
			ln -sfn "$(relpath "/$phys" /sys/bus/pci/devices)" "$OUT/$rel"
			dev=$phys
		else
			dev=$rel
		fi
		for a in vendor device subsystem_vendor subsystem_device class revision \
			mem_info_vram_total mem_info_gtt_total fw_version vbnv; do
			copy_file "$dev/$a"
		done
		if [ -L "$SRC/$dev/driver" ]; then
			drv=$(basename "$(readlink "$SRC/$dev/driver")")
			mkdir -p "$OUT/sys/bus/pci/drivers/$drv"
			ln -sfn "$(relpath "/sys/bus/pci/drivers/$drv" "/$dev")" "$OUT/$dev/driver"
			drivers="$drivers $drv"
		fi
		for n in "$SRC/$dev"/drm/card* "$SRC/$dev"/drm/renderD*; do
			[ -d "$n" ] && copy_dir_marker "$dev/drm/$(basename "$n")"
		done
		for n in "$SRC/$dev"/accel/accel*; do
			[ -d "$n" ] && copy_dir_marker "$dev/accel/$(basename "$n")"
		done
		gc="$dev/ip_discovery/die/0/GC"
		if [ -L "$SRC/$gc" ]; then
			hwid=$(basename "$(readlink "$SRC/$gc")")
			for a in major minor revision; do
				copy_file "$dev/ip_discovery/die/0/$hwid/0/$a"
			done
			mkdir -p "$OUT/$dev/ip_discovery/die/0"
			ln -sfn "$hwid" "$OUT/$gc"
		fi
	done
fi
# a driver directory must exist for the `driver` links to resolve (libpci
# follows them); `module` keeps it non-empty and names the module
for drv in $(printf '%s\n' $drivers | sort -u); do
	d="sys/bus/pci/drivers/$drv"
	if [ -L "$SRC/$d/module" ]; then
		mod=$(basename "$(readlink "$SRC/$d/module")")
		ln -sfn "../../../../module/$mod" "$OUT/$d/module"
	else
		: > "$OUT/$d/new_id"
	fi
done

# ---- KFD topology ------------------------------------------------------
if [ -e "$SRC/sys/class/kfd/kfd/topology/nodes" ]; then
	if phys=$(resolve sys/class/kfd/kfd) && [ "$phys" != sys/class/kfd/kfd ]; then
		kfd=$phys
		mkdir -p "$OUT/sys/class/kfd"
		ln -sfn "$(relpath "/$phys" /sys/class/kfd)" "$OUT/sys/class/kfd/kfd"
	else
		kfd=sys/class/kfd/kfd
	fi
	for n in "$SRC/$kfd"/topology/nodes/*; do
		copy_file "$kfd/topology/nodes/$(basename "$n")/properties"
	done
fi

# ---- modules, IOMMU ----------------------------------------------------
for m in amdgpu amdxdna nvidia nvidia_uvm nouveau; do
	copy_file "sys/module/$m/initstate"
	copy_file "sys/module/$m/version"
done
if [ -d "$SRC/sys/class/iommu" ]; then
	mkdir -p "$OUT/sys/class/iommu"
	for u in "$SRC"/sys/class/iommu/*; do
		[ -e "$u" ] || [ -L "$u" ] || continue
		copy_link "sys/class/iommu/$(basename "$u")"
	done
fi
if [ -d "$SRC/sys/kernel/iommu_groups" ]; then
	for grp in "$SRC"/sys/kernel/iommu_groups/*; do
		[ -d "$grp" ] || continue
		copy_file "sys/kernel/iommu_groups/$(basename "$grp")/type"
		mkdir -p "$OUT/sys/kernel/iommu_groups/$(basename "$grp")"
	done
fi

# ---- NPU firmware, libdrm names ----------------------------------------
if [ -d "$SRC/lib/firmware/amdnpu" ]; then
	for d in "$SRC"/lib/firmware/amdnpu/*; do
		[ -d "$d" ] || continue
		for f in "$d"/*; do
			rel="lib/firmware/amdnpu/$(basename "$d")/$(basename "$f")"
			if [ -L "$f" ]; then
				copy_link "$rel"
			elif [ -f "$f" ]; then
				# the blob itself is not redistributable: keep only its
				# version tag, which is what lemon reads
				mkdir -p "$OUT/$(dirname "$rel")"
				tag=$(grep -a -o -m1 'Release [0-9][0-9.]*' "$f" 2>/dev/null || true)
				printf 'PLACEHOLDER recorded by record-sysroot.sh\n%s\n' "$tag" > "$OUT/$rel"
			fi
		done
	done
fi
copy_file usr/share/libdrm/amdgpu.ids

# ---- device nodes ------------------------------------------------------
: > "$OUT/.lemon-stat.tmp"
for n in "$SRC"/dev/kfd "$SRC"/dev/dri/renderD* "$SRC"/dev/dri/card* "$SRC"/dev/accel/accel* \
	"$SRC"/dev/nvidiactl "$SRC"/dev/nvidia-uvm "$SRC"/dev/nvidia[0-9]*; do
	[ -e "$n" ] || continue
	rel=${n#"$SRC"/}
	mkdir -p "$OUT/$(dirname "$rel")"
	: > "$OUT/$rel"
	stat -c '%n %a %u %g' "$n" | sed "s|^$SRC||; s|^\([^/]\)|/\1|" >> "$OUT/.lemon-stat.tmp"
done
if [ -s "$OUT/.lemon-stat.tmp" ]; then
	mkdir -p "$OUT/dev"
	mv "$OUT/.lemon-stat.tmp" "$OUT/dev/.lemon-stat"
else
	rm -f "$OUT/.lemon-stat.tmp"
fi

# ---- kernel log --------------------------------------------------------
if [ "$SRC" = "" ]; then
	mkdir -p "$OUT/dev"
	if ! dmesg > "$OUT/dev/kmsg" 2>/dev/null; then
		rm -f "$OUT/dev/kmsg"
		echo "record-sysroot: dmesg not permitted; no kernel log recorded" >&2
	fi
elif [ -f "$SRC/dev/kmsg" ]; then
	copy_file dev/kmsg
fi

echo "recorded into $OUT"
