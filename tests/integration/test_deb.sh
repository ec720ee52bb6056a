#!/bin/sh
# The Debian package (debian/, issue 14), built from a copy of the tree's
# tracked files so its build directories are left alone: dpkg-buildpackage
# -b -us -uc builds lemon_*.deb, whose Depends are computed by
# dpkg-shlibdeps (plus the two dlopen'ed libraries); lintian reports no
# error; the package holds the binary, the compat data, man page,
# completions and user unit; extracted into a fresh root it runs with that
# root's data; and as root on a machine without lemon installed (CI), it
# installs with apt, `lemon doctor` and `lemon serve --help` run from
# /usr/bin with /usr/share/lemon, and it is purged again. Prints "ok NAME"
# or "FAIL NAME: why"; exits non-zero on failure.
set -u

T=$(mktemp -d /tmp/lemon-deb.XXXXXX)
FAILS=0
INSTALLED=

. tests/integration/lib.sh

cleanup() {
	[ -n "$INSTALLED" ] && dpkg --purge lemon > /dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# the package is built from the sources whatever LEMON is: the sanitizer
# pass of `make test-asan` would only build the same package again
case ${BUILD:-build} in
*asan*)
	echo "skip: the package does not depend on the sanitizer build"
	exit 0
	;;
esac
for t in dpkg-buildpackage dh lintian; do
	command -v $t > /dev/null || { echo "FAIL setup: $t is not installed (scripts/install-deps.sh)"; exit 1; }
done
V=$(cat VERSION)
mkdir -p "$T/lemon-$V"
git ls-files -c -z |
	xargs -0 cp -a --parents -t "$T/lemon-$V" 2>/dev/null
if (cd "$T/lemon-$V" && dpkg-buildpackage -b -us -uc -j2 > "$T/build.log" 2>&1); then
	ok "dpkg-buildpackage -b -us -uc"
else
	fail "dpkg-buildpackage -b -us -uc" "$(tail -n 5 "$T/build.log")"
	exit 1
fi
DEB=$(ls "$T"/lemon_"$V"_*.deb)
[ -f "$DEB" ] && ok "built $(basename "$DEB")" || { fail "built the .deb" "none in $T"; exit 1; }

dep=$(dpkg-deb -f "$DEB" Depends)
case $dep in
*libc6*libcjson*libcurl4*libarchive13*) ok "computed Depends" ;;
*) fail "computed Depends" "$dep" ;;
esac
lintian --fail-on error "$DEB" > "$T/lintian" 2>&1
lrc=$?
grep -E "^[EW]:" "$T/lintian" | head -n 10
if [ "$lrc" -eq 0 ]; then
	ok "lintian: no errors"
else
	fail "lintian: no errors" "$(grep '^E:' "$T/lintian" | head -n 5)"
fi
dpkg-deb -c "$DEB" > "$T/list"
for f in ./usr/bin/lemon ./usr/share/lemon/gpus.json ./usr/share/man/man1/lemon.1.gz \
	./usr/share/bash-completion/completions/lemon ./usr/share/zsh/vendor-completions/_lemon \
	./usr/lib/systemd/user/lemon.service ./usr/share/doc/lemon/copyright; do
	grep -q " $f\$" "$T/list" && ok "package holds $f" || fail "package holds $f" "missing"
done

# a fresh root: the extracted binary with that root's data
dpkg-deb -x "$DEB" "$T/root"
R=$T/root
v=$("$R/usr/bin/lemon" --version)
[ "$v" = "lemon $V" ] && ok "extracted --version" || fail "extracted --version" "$v"
(cd / && "$R/usr/bin/lemon" doctor --json --compat-dir "$R/usr/share/lemon" > "$T/d.json" 2> "$T/d.err")
jq -e '.schema == 1 and (.checks | length > 0)' "$T/d.json" > /dev/null && ok "extracted doctor" ||
	fail "extracted doctor" "$(head -c 300 "$T/d.err")"

# installed for real, where that harms nothing: root, and no lemon yet
if [ "$(id -u)" -eq 0 ] && ! dpkg -s lemon > /dev/null 2>&1 && [ ! -e /usr/bin/lemon ]; then
	if apt-get install -y -q "$DEB" > "$T/apt.log" 2>&1; then
		INSTALLED=1
		ok "apt install ./$(basename "$DEB")"
		(cd / && /usr/bin/lemon doctor --json > "$T/d2.json" 2> "$T/d2.err")
		rc=$?
		{ [ $rc -eq 0 ] || [ $rc -eq 1 ]; } && jq -e '.schema == 1 and (.checks | length > 0)' "$T/d2.json" > /dev/null &&
			ok "/usr/bin/lemon doctor with /usr/share/lemon" ||
			fail "/usr/bin/lemon doctor with /usr/share/lemon" "rc $rc: $(head -c 300 "$T/d2.err")"
		/usr/bin/lemon serve --help 2>&1 | grep -q "usage: lemon serve" && ok "/usr/bin/lemon serve --help" ||
			fail "/usr/bin/lemon serve --help" "no usage"
		man -w lemon > /dev/null 2>&1 && ok "man lemon" || fail "man lemon" "not found by man"
		dpkg --purge lemon > /dev/null 2>&1 && [ ! -e /usr/bin/lemon ] && INSTALLED= && ok "dpkg --purge" ||
			fail "dpkg --purge" "lemon still installed"
	else
		fail "apt install ./$(basename "$DEB")" "$(tail -n 3 "$T/apt.log")"
	fi
else
	echo "skip apt install: not root, or lemon already installed on this machine"
fi

[ "$FAILS" -eq 0 ] || exit 1
