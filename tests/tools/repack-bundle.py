#!/usr/bin/env python3
"""Repacks a llama.cpp bundle (a .tar.gz whose top directory is
llama-<tag>/) under another tag: every member's top directory becomes
llama-<TAG>/, as the publisher's own archive of that tag is laid out, so
the real CPU bundle that scripts/build-backend.sh builds can be served under
a pinned tag and asset name (tests/integration/test_github.sh,
test_pin_backends.sh, bench/provision.sh).

usage: repack-bundle.py SRC.tar.gz DST.tar.gz TAG
"""
import sys
import tarfile


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    src, dst, tag = sys.argv[1:4]
    top = "llama-" + tag
    with tarfile.open(src, "r:gz") as s, tarfile.open(dst, "w:gz", compresslevel=6) as d:
        for m in s.getmembers():
            f = s.extractfile(m) if m.isfile() else None
            m.name = top + "/" + m.name.partition("/")[2] if "/" in m.name else top
            if m.islnk():
                m.linkname = top + "/" + m.linkname.partition("/")[2]
            d.addfile(m, f)


if __name__ == "__main__":
    main()
