#!/bin/sh
# No file of a layer folder calls into a file that (directly or through
# others) calls back into it, and no header includes itself round a loop:
# each file is a node, each call of (or pointer to) a function defined in
# another file of the folder an edge, and tsort(1) finds any loop.
# Comments are stripped first (gcc -fpreprocessed), so a name in a
# comment is no call. Usage: scripts/check-cycles.sh DIR...; exit 1 and
# the loop's files on stderr when there is one.
set -u
cd "$(dirname "$0")/.."
rc=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

for dir in "$@"; do
	: > "$t/defs"
	: > "$t/edges"
	for f in $(git ls-files "$dir/*.c"); do
		gcc -fpreprocessed -dD -E -P "$f" 2>/dev/null > "$t/$(basename "$f").i"
		# a definition: a line at column 0, not static, naming a layer
		# function, that does not end in ';' (a prototype)
		grep -E "^[a-z][^;]*[ *]${dir}_[a-z0-9_]+\(" "$t/$(basename "$f").i" | grep -v -E '^(static|extern)|;[[:space:]]*$' |
			grep -o -E "${dir}_[a-z0-9_]+\(" | head -n 1000 | sed "s/($/ $(basename "$f" .c)/" >> "$t/defs"
	done
	for f in $(git ls-files "$dir/*.c"); do
		b=$(basename "$f" .c)
		echo "$b $b" >> "$t/edges"
		grep -o -E "\b${dir}_[a-z0-9_]+\b" "$t/$b.c.i" | sort -u |
			awk -v me="$b" 'NR == FNR { def[$1] = $2; next } ($1 in def) && def[$1] != me { print me, def[$1] }' \
				"$t/defs" - >> "$t/edges"
	done
	if ! tsort "$t/edges" > /dev/null 2> "$t/loop"; then
		echo "check: $dir/ has a call cycle among its files:" $(grep -v "input contains a loop" "$t/loop" | sed "s/^tsort: //" | sort -u)
		rc=1
	fi
	# headers: "a.h b.h" when a.h includes b.h
	: > "$t/inc"
	for h in $(git ls-files "$dir/*.h"); do
		echo "$h $h" >> "$t/inc"
		grep -o -E "#include \"$dir/[a-z_-]+\.h\"" "$h" | sed "s|#include \"||; s|\"$||; s|^|$h |" >> "$t/inc"
	done
	if ! tsort "$t/inc" > /dev/null 2> "$t/loop"; then
		echo "check: $dir/ headers include each other in a loop:" $(grep -v 'input contains a loop' "$t/loop" | sed 's/^tsort: //')
		rc=1
	fi
done
exit $rc
