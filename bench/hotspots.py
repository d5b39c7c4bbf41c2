"""Where a controller's time goes, from a py-spy raw (collapsed stacks) profile:

    python -m bench.hotspots PROFILE [--top 30]

Prints the functions with the most samples on top of the stack (self) and anywhere in it
(inclusive), as shares of all samples."""

from __future__ import annotations

import argparse
import collections
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    own, inclusive, total = collections.Counter(), collections.Counter(), 0
    with open(args.profile) as handle:
        for line in handle:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            samples = int(count)
            total += samples
            own[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"-- {title} --")
        for frame, samples in counter.most_common(args.top):
            print(f"{samples / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
