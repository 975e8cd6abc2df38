"""Adds up the pytest junit XML files of all suites into one closing line: 'total: N passed, N failed, N skipped'."""
import sys
import xml.etree.ElementTree as ET


def totals(paths):
    passed = failed = skipped = 0
    for path in paths:
        for suite in ET.parse(path).getroot().iter("testsuite"):
            tests, skips = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            passed += tests - skips - bad
            failed += bad
            skipped += skips
    return passed, failed, skipped


def main(paths):
    passed, failed, skipped = totals(paths)
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    # A run in which nothing executed is a broken run, not a green one.
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
