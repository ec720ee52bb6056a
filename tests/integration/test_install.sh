#!/bin/sh
# lemon installed like a tool (issue 14): `make install PREFIX=... DESTDIR=...`
# lays out the binary, the compat data under share/lemon, the man page, the
# bash and zsh completions and the systemd user unit; an install without
# DESTDIR runs from outside the tree and finds its data there (doctor and
# serve --help), `lemon --version` and `lemon help COMMAND` answer for
# every command, the man page renders without warnings, the completions
# complete, the unit passes systemd-analyze verify. Prints "ok NAME" or
# "FAIL NAME: why"; exits non-zero on failure.
set -u

BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lemon-install.XXXXXX)
FAILS=0

. tests/integration/lib.sh

trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

# 1. the layout under DESTDIR for PREFIX=/usr
if make -s -j2 BUILD="$BUILD" PREFIX=/usr DESTDIR="$T/dest" install > "$T/make.log" 2>&1; then
	ok "make install DESTDIR"
else
	fail "make install DESTDIR" "$(tail -n 5 "$T/make.log")"
	exit 1
fi
for f in usr/bin/lemon usr/share/lemon/gpus.json usr/share/lemon/backends.json usr/share/lemon/models.json \
	usr/share/man/man1/lemon.1 usr/share/bash-completion/completions/lemon \
	usr/share/zsh/vendor-completions/_lemon usr/lib/systemd/user/lemon.service; do
	[ -s "$T/dest/$f" ] && ok "installed $f" || fail "installed $f" "missing"
done
n=$(ls compat/*.json | wc -l)
m=$(ls "$T/dest/usr/share/lemon/"*.json | wc -l)
[ "$n" -eq "$m" ] && ok "every compat file installed" || fail "every compat file installed" "$m of $n"
grep -q '^ExecStart=/usr/bin/lemon serve$' "$T/dest/usr/lib/systemd/user/lemon.service" &&
	ok "unit runs /usr/bin/lemon" || fail "unit runs /usr/bin/lemon" "$(grep ExecStart "$T/dest/usr/lib/systemd/user/lemon.service")"
strings "$T/dest/usr/bin/lemon" | grep -qx /usr/share/lemon && ok "binary looks in /usr/share/lemon" ||
	fail "binary looks in /usr/share/lemon" "no such string"
strings "$T/dest/usr/bin/lemon" | grep -q "$PWD/compat" && fail "no tree path in the binary" "$PWD/compat" ||
	ok "no tree path in the binary"

# 2. an install without DESTDIR runs from elsewhere with its own data
make -s -j2 BUILD="$BUILD" PREFIX="$T/prefix" install > "$T/make2.log" 2>&1 ||
	{ fail "make install PREFIX" "$(tail -n 5 "$T/make2.log")"; exit 1; }
L=$T/prefix/bin/lemon
(cd / && "$L" doctor --json > "$T/doctor.json" 2> "$T/doctor.err")
rc=$?
{ [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; } && jq -e '.schema == 1 and (.checks | length > 0) and
	(.backend.recommended | length > 0)' "$T/doctor.json" > /dev/null &&
	ok "installed doctor runs from / with its data" ||
	fail "installed doctor runs from / with its data" "rc $rc: $(head -c 300 "$T/doctor.err")"
# the data it read is the installed copy: without it, doctor cannot run
mv "$T/prefix/share/lemon" "$T/moved"
(cd / && "$L" doctor --json > /dev/null 2> "$T/doctor2.err")
rc=$?
[ "$rc" -gt 1 ] || grep -q "$T/prefix/share/lemon" "$T/doctor2.err" &&
	ok "doctor reads share/lemon" || fail "doctor reads share/lemon" "rc $rc without the data"
mv "$T/moved" "$T/prefix/share/lemon"

v=$("$L" --version)
[ "$v" = "lemon $(cat VERSION)" ] && ok "--version" || fail "--version" "$v"
"$L" serve --help > "$T/h" 2>&1 && grep -q "usage: lemon serve" "$T/h" && ok "serve --help" ||
	fail "serve --help" "$(head -n 2 "$T/h")"
for c in $("$L" --help | awk '/^commands:/ { on = 1; next } on && !NF { exit } on { print $1 }'); do
	if "$L" help "$c" > "$T/h" 2>&1 && grep -q "usage: lemon $c" "$T/h"; then
		ok "help $c"
	else
		fail "help $c" "$(head -n 2 "$T/h")"
	fi
done
"$L" help no-such-command > /dev/null 2>&1
[ $? -eq 2 ] && ok "help of an unknown command is a usage error" ||
	fail "help of an unknown command is a usage error" "exit $?"

# 3. the man page renders without a warning
groff -man -Tutf8 -ww -z "$T/dest/usr/share/man/man1/lemon.1" > "$T/groff" 2>&1
[ ! -s "$T/groff" ] && ok "man page renders" || fail "man page renders" "$(head -n 3 "$T/groff")"

# 4. completions: bash completes commands and a command's options
out=$(PATH=$T/prefix/bin:$PATH bash -c '. "$1"; COMP_WORDS=(lemon do); COMP_CWORD=1; _lemon;
	echo "${COMPREPLY[*]}"; COMP_WORDS=(lemon serve --ap); COMP_CWORD=2; _lemon; echo "${COMPREPLY[*]}"' \
	sh "$T/dest/usr/share/bash-completion/completions/lemon")
echo "$out" | head -n 1 | grep -qx doctor && echo "$out" | tail -n 1 | grep -q -- --api-key-file &&
	ok "bash completion" || fail "bash completion" "$out"
if command -v zsh > /dev/null; then
	zsh -n "$T/dest/usr/share/zsh/vendor-completions/_lemon" 2> "$T/zsh" && ok "zsh completion parses" ||
		fail "zsh completion parses" "$(head -n 2 "$T/zsh")"
fi

# 5. the unit: systemd's own checker, with ExecStart's binary present
if command -v systemd-analyze > /dev/null; then
	sed "s|^ExecStart=/usr/bin/lemon|ExecStart=$L|" "$T/dest/usr/lib/systemd/user/lemon.service" > "$T/lemon.service"
	systemd-analyze verify --man=no "$T/lemon.service" > "$T/sa" 2>&1 && ok "systemd-analyze verify" ||
		fail "systemd-analyze verify" "$(head -n 3 "$T/sa")"
fi

[ "$FAILS" -eq 0 ] || exit 1
