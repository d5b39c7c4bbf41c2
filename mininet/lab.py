#!/usr/bin/env python3
"""The segctl lab: builds a topology file in Mininet, attaches a segctl controller and runs the
demo. Run it as root from the project's virtualenv, or through `make lab`."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab.demo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
