"""Compares two csi-sanity JUnit reports: every test that passed against the upstream alone must
pass through the proxy, unless sanity-known.txt lists it for this mode with a reason.
Usage: compare.py ALONE.xml PROXY.xml KNOWN.txt MODE"""
import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    """Test name -> passed, failed or skipped."""
    result = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            result[case.get("name")] = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            result[case.get("name")] = "failed"
        else:
            result[case.get("name")] = "passed"
    return result


def known(path, mode):
    """Lines `MODE | test name | reason`; # starts a comment."""
    listed = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m, name, reason = (part.strip() for part in line.split("|", 2))
        if m in (mode, "both"):
            listed[name] = reason
    return listed


def main():
    alone, proxied, listed = outcomes(sys.argv[1]), outcomes(sys.argv[2]), known(sys.argv[3], sys.argv[4])
    passed_alone = {n for n, o in alone.items() if o == "passed"}
    lost = sorted(n for n in passed_alone if proxied.get(n) != "passed")
    unexplained = [n for n in lost if n not in listed]
    stale = sorted(n for n in listed if n in passed_alone and proxied.get(n) == "passed")
    count = lambda r, o: sum(1 for v in r.values() if v == o)
    # Worded unlike a test runner's closing line: the upstream's own failures are not ours.
    print(f"alone: specs passing {count(alone, 'passed')}, failing {count(alone, 'failed')}, skipped {count(alone, 'skipped')}")
    print(f"proxy: specs passing {count(proxied, 'passed')}, failing {count(proxied, 'failed')}, skipped {count(proxied, 'skipped')}")
    for n in sorted(n for n, o in alone.items() if o == "failed"):
        print(f"  fails against the upstream alone ({'passes' if proxied.get(n) == 'passed' else 'fails'} through the proxy): {n}")
    for n in lost:
        print(f"  passes alone, not through the proxy: {n}: {listed.get(n, 'NOT EXPLAINED')}")
    for n in stale:
        print(f"  listed in sanity-known.txt but passes now; remove it: {n}")
    sys.exit(1 if unexplained or stale else 0)


main()
