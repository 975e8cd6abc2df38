"""Keeps the vendored copies identical to their canonical files (ci/vendored.toml).

    python ci/vendor.py check   # lists every copy that differs from its canonical file; exit 1 if any
    python ci/vendor.py sync    # writes the canonical bytes over every copy

Each model folder is self-contained (a user copies one folder and it works), so the pieces the models
share exist once per folder. They are edited in one place only: the canonical file named in the manifest.
"""
import os
import sys
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(REPO, "ci", "vendored.toml")


def pieces(manifest=MANIFEST):
    """[(canonical, [copies])] with paths relative to the repository root."""
    with open(manifest, "rb") as handle:
        return [(p["canonical"], list(p["copies"])) for p in tomllib.load(handle)["piece"]]


def read(path):
    with open(os.path.join(REPO, path), "rb") as handle:
        return handle.read()


def differing(manifest=MANIFEST):
    """[(copy, canonical, reason)] for every copy that is missing or not byte-identical."""
    problems = []
    for canonical, copies in pieces(manifest):
        want = read(canonical)
        for copy in copies:
            if not os.path.isfile(os.path.join(REPO, copy)):
                problems.append((copy, canonical, "missing"))
            elif read(copy) != want:
                problems.append((copy, canonical, "differs"))
    return problems


def sync(manifest=MANIFEST):
    for canonical, copies in pieces(manifest):
        want = read(canonical)
        for copy in copies:
            target = os.path.join(REPO, copy)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(want)
            os.chmod(target, os.stat(os.path.join(REPO, canonical)).st_mode & 0o777)


def main(argv):
    if argv not in (["check"], ["sync"]):
        print(__doc__.strip())
        return 2
    if argv == ["sync"]:
        sync()
    problems = differing()
    for copy, canonical, reason in problems:
        print(f"[Error] {copy} {reason} from its canonical {canonical}; edit the canonical, then "
              "python ci/vendor.py sync")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
