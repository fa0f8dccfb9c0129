#!/usr/bin/env python3
"""Summarises chaos runs: one row per scenario with the passes run, the violations found and
the median unavailability windows (ms) of its faults, from the reports under DIR/pass-*/."""
import json
import pathlib
import statistics
import sys


def median(values):
    values = [v for v in values if v is not None]
    return int(statistics.median(values)) if values else None


def main(root):
    scenarios = {}
    for report_path in sorted(pathlib.Path(root).glob("pass-*/*.report.json")):
        report = json.loads(report_path.read_text())
        entry = scenarios.setdefault(report["scenario"], {"passes": 0, "violations": 0, "acked": [], "windows": {}, "measurements": {}})
        entry["passes"] += 1
        entry["violations"] += report["violations"]
        entry["acked"].append(report["acknowledged"])
        for window in report["unavailability"]:
            # Round numbers differ per run; group faults by their name without the broker.
            key = window["fault"].split(" (")[0]
            slot = entry["windows"].setdefault(key, {"send": [], "read": [], "assign": [], "commit": []})
            for kind in slot:
                slot[kind].append(window.get(f"{kind}_ms"))
        for name, ms in report.get("measurements", {}).items():
            entry["measurements"].setdefault(name, []).append(ms)
    if not scenarios:
        print(f"no reports under {root}")
        return 1
    print(f"{'scenario':58} {'passes':>6} {'violations':>10} {'acked (median)':>15}")
    for name, entry in sorted(scenarios.items()):
        print(f"{name:58} {entry['passes']:>6} {entry['violations']:>10} {median(entry['acked']):>15}")
        for fault, slot in entry["windows"].items():
            medians = ", ".join(f"{kind} {median(values)}" for kind, values in slot.items() if median(values) is not None)
            print(f"    {fault}: median ms until {medians}")
        for measurement, values in entry["measurements"].items():
            print(f"    {measurement}: median {median(values)} ms")
    return 1 if any(e["violations"] for e in scenarios.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "target/chaos"))
