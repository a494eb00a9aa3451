#!/usr/bin/env python3
"""The layers of docs/architecture.md, checked from Package.swift and the sources.

1. Every `import` in a target's sources names a module the target depends on (directly or
   through its own dependencies) or a system module: SwiftPM builds every module into one
   directory, so an undeclared import can compile by accident, and the map would lie.
2. What each layer may reach: the core reaches no broker connection (AMQP), no process code
   and no SwiftNIO; supervision no broker; the worker no web framework; the unit tests neither
   the broker side nor SwiftNIO.

Run by scripts/lint.sh (so by CI). Exit 1 with one line per breach.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM = {"Foundation", "FoundationEssentials", "Glibc", "Musl", "Dispatch", "Synchronization", "XCTest", "Testing", "_Concurrency"}
# Products of other packages that bring SwiftNIO with them.
NIO = re.compile(r"^(NIO.*|Hummingbird.*|AsyncHTTPClient|Prometheus?NIO.*)$")
# For each layer, modules it must never reach (directly or not).
FORBIDDEN = {
    "GenWorkerCore": {"AMQP", "CRabbitMQ", "Supervision", "CProcessShims", "GenWorker", "GenWorkerWeb"},
    "Supervision": {"AMQP", "CRabbitMQ", "GenWorker", "GenWorkerWeb"},
    "GenWorker": {"GenWorkerWeb"},
    "GenWorkerUnitTests": {"AMQP", "GenWorker", "GenWorkerWeb"},
}
NO_NIO = {"GenWorkerCore", "Supervision", "GenWorker", "GenWorkerUnitTests", "AMQP", "AMQPTypes"}


def main():
    package = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True,
                                        capture_output=True, text=True).stdout)
    targets = {t["name"]: t for t in package["targets"]}

    def direct(name):
        out = []
        for dep in targets[name]["dependencies"]:
            (kind, value), = dep.items()
            out.append(value[0])  # byName / target: the target's name; product: the product's name
        return out

    def closure(name, seen=None):
        seen = set() if seen is None else seen
        for dep in direct(name):
            if dep not in seen:
                seen.add(dep)
                if dep in targets:
                    closure(dep, seen)
        return seen

    problems = []
    for name, target in sorted(targets.items()):
        reach = closure(name)
        for bad in sorted(FORBIDDEN.get(name, set()) & reach):
            problems.append("%s reaches %s (Package.swift)" % (name, bad))
        if name in NO_NIO:
            for bad in sorted(d for d in reach if NIO.match(d)):
                problems.append("%s reaches %s, so SwiftNIO (Package.swift)" % (name, bad))
        if target["type"] == "system":
            continue
        path = target.get("path") or os.path.join("Tests" if target["type"] == "test" else "Sources", name)
        allowed = reach | SYSTEM | {name}
        for directory, _, files in os.walk(os.path.join(ROOT, path)):
            for file in sorted(f for f in files if f.endswith(".swift")):
                full = os.path.join(directory, file)
                in_literal = False  # inside a multi-line string literal (a Python script, ...)
                for number, line in enumerate(open(full, encoding="utf-8"), 1):
                    if line.count('"""') % 2 == 1:
                        in_literal = not in_literal
                        continue
                    if in_literal:
                        continue
                    m = re.match(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*import\s+(?:(?:struct|enum|class|func|var|protocol)\s+)?(\w+)", line)
                    if m and m.group(1) not in allowed:
                        problems.append("%s:%d: imports %s, which target %s does not depend on" % (
                            os.path.relpath(full, ROOT), number, m.group(1), name))
    for p in problems:
        print("check-layers: " + p)
    if problems:
        return 1
    print("check-layers: %d targets hold their layers" % len(targets), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
