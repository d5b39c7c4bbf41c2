"""The quick Mininet check that segctl works on its OpenFlow framework (`make smoke`; with
FRAMEWORK=os-ken, on os-ken): the access matrix on the default topology, then a quarantine
through the CLI and REST API that cuts a host off, and its release. About 15 s."""

from segctl import framework

from .test_forwarding import assert_outcomes, assert_policy_enforced
from .test_quarantine import flows_by_switch

LAB_TOPOLOGY = "leaf-spine"  # `make lab`'s: two spines, three leaves, redundant paths

# web1's traffic both ways, and a bystander's (app1 -> db1), each allowed by the policy.
CUT_OFF = [("web1", "app1", "tcp", 8080), ("jump1", "web1", "tcp", 22)]
BYSTANDER = ("app1", "db1", "tcp", 5432)
WEB1_DROPS = ("priority=40000,dl_src=02:00:00:00:01:01", "priority=40000,dl_dst=02:00:00:00:01:01")


def drops_per_switch(lab) -> dict[str, int]:
    """How many of web1's quarantine drops each switch holds."""
    found = [flows_by_switch(lab, needle) for needle in WEB1_DROPS]
    return {switch: sum(len(by_switch[switch]) for by_switch in found) for switch in lab.topology.switches}


def test_the_access_matrix_holds(module_lab):
    # On the framework chosen (SEGCTL_FRAMEWORK, or what is installed), not merely some framework.
    assert f"OpenFlow framework: {framework.FRAMEWORK} {framework.VERSION}" in module_lab.controller.log()
    assert_policy_enforced(module_lab)


def test_a_quarantine_cuts_a_host_off_and_its_release_brings_it_back(module_lab):
    cli = module_lab.controller.cli
    assert_outcomes(module_lab, dict.fromkeys([*CUT_OFF, BYSTANDER], "allow"))

    quarantined = cli("quarantine", "web1", "--reason", "smoke test")
    assert quarantined.returncode == 0 and "confirmed by switches" in quarantined.stdout, quarantined
    assert "quarantined" in cli("hosts", "web1").stdout
    assert_outcomes(module_lab, {**dict.fromkeys(CUT_OFF, "deny"), BYSTANDER: "allow"})
    drops = drops_per_switch(module_lab)
    assert set(drops.values()) == {2}, f"web1's two drops are not on every switch: {drops}"

    released = cli("release", "web1")
    assert released.returncode == 0, released
    assert "quarantined" not in cli("hosts", "web1").stdout
    assert_outcomes(module_lab, dict.fromkeys([*CUT_OFF, BYSTANDER], "allow"))
    drops = drops_per_switch(module_lab)
    assert set(drops.values()) == {0}, f"web1's drops outlived the release: {drops}"
