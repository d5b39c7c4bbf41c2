"""Which OpenFlow framework segctl runs on (segctl/framework.py: SEGCTL_FRAMEWORK, else what is
installed), and `segctl run` refusing a framework that is not there."""

import importlib.util
import os
import subprocess
import sys

import pytest

from segctl import framework

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def installed(monkeypatch):
    """Pretend only the given Python packages of the two frameworks are installed."""

    def only(*packages):
        real = importlib.util.find_spec
        frameworks = set(framework.PACKAGES.values())

        def find_spec(name, *args):
            if name not in frameworks:
                return real(name, *args)
            return object() if name in packages else None

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return only


@pytest.mark.parametrize(
    ("packages", "wanted", "chosen"),
    [
        (("ryu", "os_ken"), "", "ryu"),  # both: Ryu, unless told
        (("ryu", "os_ken"), "os-ken", "os-ken"),
        (("ryu", "os_ken"), " ryu ", "ryu"),
        (("os_ken",), "", "os-ken"),  # what is installed
        (("ryu",), "", "ryu"),
    ],
)
def test_the_framework_named_or_else_the_one_installed_ryu_first(installed, packages, wanted, chosen):
    installed(*packages)
    assert framework.choose(wanted) == chosen


@pytest.mark.parametrize(
    ("packages", "wanted", "why"),
    [
        (("ryu",), "os-ken", "SEGCTL_FRAMEWORK=os-ken, but os-ken is not installed"),
        (("os_ken",), "ryu", "SEGCTL_FRAMEWORK=ryu, but ryu is not installed"),
        (("ryu", "os_ken"), "os_ken", "SEGCTL_FRAMEWORK is ryu or os-ken, not 'os_ken'"),
        ((), "", "neither is installed"),
    ],
)
def test_a_framework_named_but_missing_or_none_at_all_is_refused(installed, packages, wanted, why):
    installed(*packages)
    with pytest.raises(framework.FrameworkMissing, match=why):
        framework.choose(wanted)


def test_segctl_run_refuses_a_framework_it_does_not_have_in_one_line():
    env = {**os.environ, "SEGCTL_FRAMEWORK": "floodlight"}
    policy, directory = (os.path.join(ROOT, "policies", name) for name in ("policy.yaml", "directory.yaml"))
    result = subprocess.run(
        [sys.executable, "-m", "segctl", "run", "--directory", directory, "--policy", policy],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "segctl: cannot load the OpenFlow framework: SEGCTL_FRAMEWORK is ryu or os-ken, not 'floodlight'\n"
    )
