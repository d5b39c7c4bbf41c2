"""`make bench`: every benchmark, then the results block of BENCHMARKS.md rewritten with the
figures, the machine and the date, and the whole output kept in bench/results/ (one file per
run, named by its date), so that every figure BENCHMARKS.md quotes can be traced to its run.
The text around the block is kept.

    python -m bench [--runs 5] [--duration 4]"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import sys
import time

from . import flowsetup, micro, operations, reach, replay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "BENCHMARKS.md")
RESULTS = os.path.join(ROOT, "bench", "results")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from segctl import framework

    name = {"ryu": "Ryu"}.get(framework.FRAMEWORK, framework.FRAMEWORK)
    return (
        f"{os.cpu_count()} × {model}, Linux {platform.release()}, Python {platform.python_version()}, "
        f"{name} {framework.VERSION}"
    )


def captured(function, *args) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        function(*args)
    return out.getvalue().strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args(argv)
    started = time.time()
    print("core micro-benchmarks ...", flush=True)
    micro_table = captured(micro.main)
    print(micro_table, flush=True)
    print("operations ...", flush=True)
    operations_table = captured(operations.main)
    print(operations_table, flush=True)
    print("blast radius ...", flush=True)
    reach_table = captured(reach.main, [])
    print(reach_table, flush=True)
    print("what-if replay of a million recorded flows ...", flush=True)
    replay_table = captured(replay.main, [])
    print(replay_table, flush=True)
    print("flow setups: segctl and simple_switch_13 ...", flush=True)
    flow_out = captured(flowsetup.main, ["--runs", str(args.runs), "--duration", str(args.duration)])
    flow_table = flow_out[flow_out.index("Emulator against") :]
    print(flow_out, flush=True)
    block = "\n".join(
        [
            START,
            f"Produced by `make bench` (`python -m bench --runs {args.runs} --duration {args.duration}`) on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, in {time.time() - started:.0f} s.",
            f"Machine: {machine()}.",
            "",
            "### Flow setup: segctl vs ryu.app.simple_switch_13 (`python -m bench.flowsetup`)",
            "",
            "16 emulated switches, 1,000 hosts, 1,000 rules; medians of "
            f"{args.runs} runs of {args.duration:g} s, each with a fresh controller process, the cases' runs "
            "alternated round by round. Throughput mode keeps 64 packet-ins outstanding per switch, latency mode one.",
            "",
            flow_table,
            "",
            "### Core (`python -m bench.micro`)",
            "",
            micro_table,
            "",
            "### Operations (`python -m bench.operations`)",
            "",
            operations_table,
            "",
            "### Blast radius (`python -m bench.reach`)",
            "",
            reach_table,
            "### What-if replay (`python -m bench.replay`)",
            "",
            replay_table,
            END,
        ]
    )
    os.makedirs(RESULTS, exist_ok=True)
    stored = os.path.join(RESULTS, time.strftime("%Y-%m-%dT%H%MZ.txt", time.gmtime(started)))
    with open(stored, "w") as handle:
        handle.write(f"{block}\n\nFull output of the flow-setup runs:\n\n{flow_out}\n")
    block = block.replace(END, f"\nThis run's whole output: `{os.path.relpath(stored, ROOT)}`.\n{END}")
    with open(REPORT) as handle:
        text = handle.read()
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    with open(REPORT, "w") as handle:
        handle.write(text)
    print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
