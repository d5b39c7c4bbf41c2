"""Run a stock Ryu application (the baseline, ryu.app.simple_switch_13) with the same framework
set-up segctl uses: segctl.framework applies the eventlet fix before Ryu is imported.

    python -m bench.ryuapp ryu.app.simple_switch_13 --ofp-tcp-listen-port 6653"""

from __future__ import annotations

import sys

from segctl import framework  # the eventlet fix, before the first Ryu import

if __name__ == "__main__":
    if framework.FRAMEWORK != "ryu":
        sys.exit("bench.ryuapp needs Ryu: os-ken 4.2 ships neither osken-manager nor simple_switch_13")
    from ryu.cmd import manager

    sys.argv = ["ryu-manager", *sys.argv[1:]]
    manager.main()
