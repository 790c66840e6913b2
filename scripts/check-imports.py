#!/usr/bin/env python3
"""Fails when a source file imports a module of this package that its target does not
declare: the dependency graph in Package.swift is the data flow, and an undeclared
import can build by luck of the build order (then a clean build fails)."""
import glob, json, re, subprocess, sys

package = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True, check=True, text=True).stdout)
ours = {t["name"].replace("-", "_") for t in package["targets"]}
problems = []
for target in package["targets"]:
    declared = set()
    for dependency in target.get("dependencies", []):
        for kind in ("byName", "product", "target"):
            if kind in dependency:
                declared.add(dependency[kind][0].replace("-", "_"))
    folder = target.get("path") or ("Tests/" if target["type"] == "test" else "Sources/") + target["name"]
    for path in glob.glob(f"{folder}/**/*.swift", recursive=True):
        for module in re.findall(r"^(?:@testable )?import (\w+)", open(path, encoding="utf-8").read(), re.M):
            if module in ours and module not in declared and module != target["name"].replace("-", "_"):
                problems.append(f"{path}: imports {module}, which target {target['name']} does not declare")
for problem in problems:
    print(problem)
print(f"imports: {len(problems)} undeclared")
sys.exit(1 if problems else 0)
