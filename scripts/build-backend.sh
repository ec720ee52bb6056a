#!/bin/sh
# Build a real llama.cpp backend bundle (llama-server + rpc-server) for
# lemon's tests and benchmarks, from the llama.cpp source that the npm
# package node-llama-cpp ships as a git bundle, and package it the way
# upstream packages its Linux release archives: a tar.gz named
# llama-<tag>-bin-ubuntu[-vulkan]-x64.tar.gz with one top directory
# llama-<tag>/ holding the executables and their shared libraries (RPATH
# $ORIGIN). Next to the archive it writes <asset>.sha256 and manifest.json
# (asset name -> sha256, size), the format lemon's --mirror reads.
#
# The result is cached in ~/.cache/lemon-build/<npm version>/<backend>/; a
# rerun with a complete cache only checks it. The last line of output is
# always the directory holding the archive and manifest.json.
#
# usage: scripts/build-backend.sh cpu|vulkan
set -eu

NLC_VERSION=3.22.1
# Registry integrity of node-llama-cpp@3.22.1 (npm view ... dist.integrity).
NLC_INTEGRITY='sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=='
# The single (squashed) commit in its llama/gitRelease.bundle.
LLAMA_COMMIT=de3ff815ea7d559ee917f063901b8986f038abc6
JOBS=${JOBS:-2}

die() { echo "build-backend: $*" >&2; exit 1; }

backend=${1:-}
case $backend in
cpu) suffix= ;;
vulkan) suffix=-vulkan ;;
*) die "usage: $0 cpu|vulkan" ;;
esac

cache=${LEMON_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lemon-build}
top=$cache/$NLC_VERSION
out=$top/$backend

# A complete cache has the manifest written last; check the archive
# still matches it before trusting it.
if [ -f "$out/manifest.json" ] && [ -f "$out/asset" ]; then
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
	rm -rf "$work"
	touch "$src/.lemon-ready"
fi
tag=$(cat "$src/.lemon-tag")
asset=llama-$tag-bin-ubuntu$suffix-x64.tar.gz

extra=
if [ "$backend" = vulkan ]; then
	command -v glslc >/dev/null || die "vulkan build needs glslc (apt install glslc)"
	extra=-DGGML_VULKAN=ON
fi

build=$top/build-$backend
# -DGGML_NATIVE=OFF: the bundle must run on other x86-64 machines.
# LLAMA_CURL is gone in this llama.cpp but harmless; OpenSSL and the
# prebuilt web UI are off so the build needs no network.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_INSTALL_RPATH='$ORIGIN' -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
	-DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF -DGGML_RPC=ON \
	-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_NUMBER=0 $extra >&2
cmake --build "$build" --config Release -j "$JOBS" \
	--target llama-server ggml-rpc-server >&2

stage=$top/stage-$backend
rm -rf "$stage"
mkdir -p "$stage"
cp -P "$build"/bin/llama-server "$stage/"
cp -P "$build"/bin/ggml-rpc-server "$stage/rpc-server"
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
tar -czf "$out/$asset" --owner=0 --group=0 --numeric-owner \
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
