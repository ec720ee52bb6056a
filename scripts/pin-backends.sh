#!/bin/sh
# Refreshes the pins of compat/backends.json from the publishers: for each
# target whose url is a GitHub release download, reads the pinned release
# through GitHub's REST API (the same request lemon makes:
# GET $LEMON_GITHUB_API/repos/<owner>/<repo>/releases/tags/<version>, Accept
# application/vnd.github+json, X-GitHub-Api-Version 2022-11-28, GITHUB_TOKEN
# when set) and writes the asset's digest ("sha256:<hex>", computed by GitHub
# at upload) and size into the target's sha256 and size, with pin_source
# naming the request and the date. Nothing else in the file changes.
#
# usage: scripts/pin-backends.sh [--check] [--only NAME]... [--file PATH]
#   --check      report what differs from the publisher, write nothing;
#                exit 1 when anything differs or cannot be read
#   --only NAME  only this target (llamacpp:cpu, llamacpp:rocm:gfx110X, ...)
#   --file PATH  the manifest (default compat/backends.json)
# Exit status: 0 done (or in sync), 1 drift or a target that could not be
# pinned (named on stderr), 2 usage or a rate limit (with its reset time).
set -eu
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'EOF'
import datetime, json, os, sys, time, urllib.error, urllib.request

def usage(msg):
    sys.stderr.write("pin-backends: %s\nusage: scripts/pin-backends.sh [--check] [--only NAME]... [--file PATH]\n" % msg)
    sys.exit(2)

check, only, path = False, [], "compat/backends.json"
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "--check":
        check = True
    elif a == "--only" and args:
        only.append(args.pop(0))
    elif a == "--file" and args:
        path = args.pop(0)
    else:
        usage("unknown or incomplete option '%s'" % a)

api = os.environ.get("LEMON_GITHUB_API") or "https://api.github.com"
api = api.rstrip("/")
if api == "none":
    usage("LEMON_GITHUB_API=none: no publisher to ask")
PREFIX = "https://github.com/"

def repo_of(url):
    if not url.startswith(PREFIX):
        return None
    parts = url[len(PREFIX):].split("/")
    if len(parts) < 4 or parts[2:4] != ["releases", "download"]:
        return None
    return parts[0] + "/" + parts[1]

def name_of(backend, t):
    if t["kind"] == "npu":  # FastFlowLM: named by its backend alone
        return backend
    return "%s:%s%s" % (backend, t["kind"], ":" + t["family"] if t.get("family") else "")

listings = {}
def release(repo, tag):
    url = "%s/repos/%s/releases/tags/%s" % (api, repo, tag)
    if url in listings:
        return url, listings[url]
    req = urllib.request.Request(url, headers={
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "lemon-pin-backends"})
    if os.environ.get("GITHUB_TOKEN"):
        req.add_header("Authorization", "Bearer " + os.environ["GITHUB_TOKEN"])
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read(8 << 20)
    except urllib.error.HTTPError as e:
        if e.code in (403, 429) and (e.headers.get("Retry-After") or
                                     e.headers.get("X-RateLimit-Remaining") == "0"):
            reset = int(e.headers.get("X-RateLimit-Reset") or
                        time.time() + int(e.headers.get("Retry-After") or 60))
            when = datetime.datetime.fromtimestamp(reset, datetime.timezone.utc)
            sys.stderr.write("pin-backends: GitHub API rate limit reached (HTTP %d): it resets at %s; "
                             "set GITHUB_TOKEN for a higher limit (%s)\n"
                             % (e.code, when.strftime("%Y-%m-%d %H:%M:%S UTC"), url))
            sys.exit(2)
        listings[url] = ("HTTP %d" % e.code, None)
        return url, listings[url]
    except (urllib.error.URLError, OSError) as e:
        listings[url] = (str(e), None)
        return url, listings[url]
    try:
        doc = json.loads(body)
        assets = {a["name"]: a for a in doc["assets"]}
        if doc["tag_name"] != tag:
            raise ValueError("another tag")
    except (ValueError, KeyError, TypeError) as e:
        listings[url] = ("not a release listing (%s)" % e, None)
        return url, listings[url]
    listings[url] = (None, assets)
    return url, listings[url]

text = open(path).read()
doc = json.loads(text)
today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
problems = changes = 0
for backend, b in doc["backends"].items():
    for key, t in b["targets"].items():
        name = name_of(backend, t)
        if only and name not in only:
            continue
        repo = repo_of(t["url"])
        if repo is None:
            print("%s: not a GitHub release URL, skipped" % name)
            continue
        asset = t["asset"].replace("{version}", t["version"])
        # the release tag: FastFlowLM tags v<version> ("tag": "v{version}")
        tag = t.get("tag", "{version}").replace("{version}", t["version"])
        url, (err, assets) = release(repo, tag)
        if err:
            sys.stderr.write("pin-backends: %s: %s: %s\n" % (name, url, err))
            problems += 1
            continue
        a = assets.get(asset)
        if a is None:
            sys.stderr.write("pin-backends: %s: release %s of %s has no asset %s (it has: %s)\n"
                             % (name, t["version"], repo, asset, ", ".join(sorted(assets))))
            problems += 1
            continue
        digest = a.get("digest") or ""
        if not digest.startswith("sha256:") or len(digest) != 71:
            sys.stderr.write("pin-backends: %s: the publisher lists no sha256 digest for %s\n"
                             % (name, asset))
            problems += 1
            continue
        sha, size = digest[7:], int(a["size"])
        if t.get("sha256") == sha and t.get("size") == size:
            print("%s: %s in sync (sha256 %s, %d bytes)" % (name, asset, sha, size))
            continue
        changes += 1
        print("%s: %s: sha256 %s -> %s, size %s -> %d"
              % (name, asset, t.get("sha256"), sha, t.get("size"), size))
        if check:
            continue
        new = {}
        for k, v in t.items():
            if k in ("size", "pin_source"):
                continue
            new[k] = v
            if k == "sha256":
                new["sha256"] = sha
                new["size"] = size
                new["pin_source"] = "%s asset digest, %s" % (url, today)
        b["targets"][key] = new

if changes and not check:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    print("wrote %s (%d target%s)" % (path, changes, "" if changes == 1 else "s"))
if check and changes:
    sys.stderr.write("pin-backends: %d target%s differ from the publisher\n"
                     % (changes, "" if changes == 1 else "s"))
sys.exit(1 if problems or (check and changes) else 0)
EOF
