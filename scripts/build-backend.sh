#!/bin/sh
# Build a real llama.cpp backend bundle (llama-server + rpc-server) for
# lemon's tests and benchmarks, from the llama.cpp source that the npm
# package node-llama-cpp ships as a git bundle, and package it the way
# upstream packages its Linux release archives: a tar.gz named
# llama-<tag>-bin-ubuntu[-vulkan]-x64.tar.gz with one top directory
# llama-<tag>/ holding the executables and their shared libraries (RPATH
# $ORIGIN). CUDA bundles are named the way Lemonade's CUDA recipe names
# them (compat/backends.json llamacpp:cuda:sm_NN):
# llama-<tag>-ubuntu-cuda-sm_NN-x64.tar.xz, one compute capability each.
# Next to the archive it writes <asset>.sha256 and manifest.json (asset
# name -> sha256, size), the format lemon's --mirror reads.
#
# The result is cached in ~/.cache/lemon-build/<npm version>/<target>/
# (target: cpu, vulkan, cuda-sm_NN); a rerun with a complete cache only
# checks it. The last line of output is always the directory holding the
# archive and manifest.json.
#
# A machine without the npm registry (the GPU machine) builds from a
# trimmed source tarball made here with `pack-src FILE` and named in
# LEMON_LLAMA_SRC. LEMON_CMAKE_EXTRA adds CMake flags (the Vulkan
# toolchain paths of ../shared/gpu-build.md, say).
#
# usage: scripts/build-backend.sh cpu|vulkan|cuda [SM]|pack-src FILE
set -eu

NLC_VERSION=3.22.1
# Registry integrity of node-llama-cpp@3.22.1 (npm view ... dist.integrity).
NLC_INTEGRITY='sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=='
# The single (squashed) commit in its llama/gitRelease.bundle.
LLAMA_COMMIT=de3ff815ea7d559ee917f063901b8986f038abc6
JOBS=${JOBS:-2}

die() { echo "build-backend: $*" >&2; exit 1; }

usage="usage: $0 cpu|vulkan|cuda [SM]|pack-src FILE"
backend=${1:-}
target=$backend
ext=tar.gz
case $backend in
cpu) [ $# -le 1 ] || die "$usage"; suffix= ;;
vulkan) [ $# -le 1 ] || die "$usage"; suffix=-vulkan ;;
cuda)
	[ $# -le 2 ] || die "$usage"
	sm=${2:-90}
	case $sm in
	'' | *[!0-9]* | 0* | ????*) die "SM must be a compute capability like 90, not '$sm'" ;;
	esac
	target=cuda-sm_$sm
	ext=tar.xz
	;;
pack-src)
	[ $# -eq 2 ] || die "$usage"
	;;
*) die "$usage" ;;
esac

cache=${LEMON_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lemon-build}
top=$cache/$NLC_VERSION
out=$top/$target

# A complete cache has the manifest written last; check the archive
# still matches it before trusting it.
if [ "$backend" != pack-src ] && [ -f "$out/manifest.json" ] &&
   [ -f "$out/asset" ]; then
	asset=$(cat "$out/asset")
	if [ -f "$out/$asset" ] &&
	   (cd "$out" && sha256sum -c --status "$asset.sha256"); then
		echo "build-backend: cached $out/$asset" >&2
		echo "$out"
		exit 0
	fi
	echo "build-backend: cache in $out is stale, rebuilding" >&2
fi

mkdir -p "$top"
src=$top/src
if [ ! -f "$src/.lemon-ready" ] && [ -n "${LEMON_LLAMA_SRC:-}" ]; then
	# A tarball from `pack-src`: it carries .lemon-tag and .lemon-commit.
	rm -rf "$src"
	mkdir -p "$src"
	tar -xf "$LEMON_LLAMA_SRC" -C "$src" ||
		die "cannot unpack $LEMON_LLAMA_SRC"
	[ "$(cat "$src/.lemon-commit" 2>/dev/null)" = "$LLAMA_COMMIT" ] ||
		die "$LEMON_LLAMA_SRC is not llama.cpp $LLAMA_COMMIT"
	touch "$src/.lemon-ready"
fi
if [ ! -f "$src/.lemon-ready" ]; then
	work=$top/npm
	rm -rf "$work" "$src"
	mkdir -p "$work"
	(cd "$work" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null) ||
		die "npm pack node-llama-cpp@$NLC_VERSION failed"
	tgz=$work/node-llama-cpp-$NLC_VERSION.tgz
	[ -f "$tgz" ] || die "npm pack did not produce $tgz"
	# npm pack verifies too, but check the pinned value ourselves so a
	# changed registry answer cannot slip through.
	got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
	[ "$got" = "$NLC_INTEGRITY" ] ||
		die "integrity mismatch for $tgz: expected $NLC_INTEGRITY, got $got"
	tar -xzf "$tgz" -C "$work" package/llama/gitRelease.bundle \
		package/llama/llama.cpp.info.json
	git clone -q "$work/package/llama/gitRelease.bundle" "$src"
	# The bundle carries one squashed commit (no tags); the release
	# tag it corresponds to is recorded in llama.cpp.info.json.
	tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' \
		"$work/package/llama/llama.cpp.info.json")
	[ -n "$tag" ] || die "no tag in llama.cpp.info.json"
	head=$(git -C "$src" rev-parse HEAD)
	[ "$head" = "$LLAMA_COMMIT" ] ||
		die "bundle HEAD is $head, expected $LLAMA_COMMIT"
	echo "$tag" > "$src/.lemon-tag"
	echo "$head" > "$src/.lemon-commit"
	rm -rf "$work"
	touch "$src/.lemon-ready"
fi
tag=$(cat "$src/.lemon-tag")

if [ "$backend" = pack-src ]; then
	# The trimmed source for a machine without the registry: no .git,
	# no docs/, no top-level models/ (vocab files; CMake needs neither).
	# --anchored, or --exclude=./models would also drop src/models.
	[ -f "$src/.lemon-commit" ] ||
		git -C "$src" rev-parse HEAD > "$src/.lemon-commit"
	tar -cJf "$2" --owner=0 --group=0 --numeric-owner --anchored \
		--exclude=./.git --exclude=./docs --exclude=./models \
		--exclude=./.lemon-ready -C "$src" .
	echo "build-backend: packed $2 ($(stat -c %s "$2") bytes)" >&2
	echo "$2"
	exit 0
fi

extra=
targets="llama-server ggml-rpc-server"
case $backend in
cpu)
	asset=llama-$tag-bin-ubuntu-x64.tar.gz
	;;
vulkan)
	asset=llama-$tag-bin-ubuntu$suffix-x64.tar.gz
	[ -n "${LEMON_CMAKE_EXTRA:-}" ] || command -v glslc >/dev/null ||
		die "vulkan build needs glslc (apt install glslc)"
	extra=-DGGML_VULKAN=ON
	targets="$targets llama-bench"
	;;
cuda)
	asset=llama-$tag-ubuntu-cuda-sm_$sm-x64.tar.xz
	if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
		PATH=/usr/local/cuda/bin:$PATH
	fi
	command -v nvcc >/dev/null || die "cuda build needs nvcc (the CUDA toolkit)"
	extra="-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$sm"
	# llama-bench: the reference figure every lemon measurement is
	# compared against, from the same libraries.
	targets="$targets llama-bench"
	;;
esac
extra="$extra ${LEMON_CMAKE_EXTRA:-}"

build=$top/build-$target
# Ninja for a fresh GPU build dir (a CUDA build is minutes on 16 cores);
# an existing build dir keeps the generator it was made with.
gen=
if [ "$backend" != cpu ] && [ ! -f "$build/CMakeCache.txt" ] &&
   command -v ninja >/dev/null; then
	gen="-G Ninja"
fi
# -DGGML_NATIVE=OFF: the bundle must run on other x86-64 machines.
# LLAMA_CURL is gone in this llama.cpp but harmless; OpenSSL and the
# prebuilt web UI are off so the build needs no network.
cmake $gen -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_INSTALL_RPATH='$ORIGIN' -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
	-DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF -DGGML_RPC=ON \
	-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_NUMBER=0 $extra >&2
cmake --build "$build" --config Release -j "$JOBS" \
	--target $targets >&2

stage=$top/stage-$target
rm -rf "$stage"
mkdir -p "$stage"
cp -P "$build"/bin/llama-server "$stage/"
cp -P "$build"/bin/ggml-rpc-server "$stage/rpc-server"
[ ! -f "$build/bin/llama-bench" ] || [ "$backend" = cpu ] ||
	cp -P "$build/bin/llama-bench" "$stage/"
# Shared libraries with their version symlinks, as upstream keeps them.
find "$build/bin" "$build/src" "$build/ggml/src" "$build/common" \
	"$build/tools" -maxdepth 3 -name 'lib*.so*' \
	\( -type f -o -type l \) -exec cp -P {} "$stage/" \; 2>/dev/null || true
cp "$src/LICENSE" "$stage/"
for exe in llama-server rpc-server; do
	"$stage/$exe" --version >/dev/null 2>&1 ||
		LD_LIBRARY_PATH= "$stage/$exe" --help >/dev/null 2>&1 ||
		die "$stage/$exe does not run from the staging directory"
done

mkdir -p "$out"
rm -f "$out/manifest.json" "$out/asset"
if [ "$ext" = tar.xz ]; then
	comp="xz -T0"
else
	comp=gzip
fi
tar -I "$comp" -cf "$out/$asset" --owner=0 --group=0 --numeric-owner \
	--transform "s,^\.,llama-$tag," -C "$stage" .
(cd "$out" && sha256sum "$asset" > "$asset.sha256")
sum=$(cut -d' ' -f1 "$out/$asset.sha256")
size=$(stat -c %s "$out/$asset")
printf '{\n  "version": "%s",\n  "assets": {\n    "%s": {"sha256": "%s", "size": %s}\n  }\n}\n' \
	"$tag" "$asset" "$sum" "$size" > "$out/manifest.json.tmp"
echo "$asset" > "$out/asset"
mv "$out/manifest.json.tmp" "$out/manifest.json"
rm -rf "$stage"
echo "build-backend: built $out/$asset ($size bytes)" >&2
echo "$out"
