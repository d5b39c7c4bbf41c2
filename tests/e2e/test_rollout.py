"""From visibility to enforcement, end to end (issue 10): the leaf-spine lab starts with every
group in monitor mode and no rule; its hosts use the shipped policy's services (and a little
stray traffic); the recorded flows are mapped, a policy is suggested and replayed, then enforced
for one group while another stays monitored (in the same run), then for all. Every outcome is
judged at the destination (lab.outcomes counts what arrives there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lab.demo import matrix
from lab.rollout import STRAY, expected_checks, groups_for_roles, monitor_everything, run_traffic, with_modes
from segctl.core.policy import load_policy

from .conftest import POLICY, ROOT

# Stray traffic by its destination's group: db gets enforced first, web stays monitored.
TO_DB = ("hr1", "db1", "tcp", 5432)
TO_WEB = ("printer1", "web1", "tcp", 80)
EXPECTED_TO_DB = ("app1", "db1", "tcp", 5432)


def cli(lab, *args):
    return lab.controller.cli(*args)


def reload_with(lab, policy_path: str, text: str) -> None:
    with open(policy_path, "w", encoding="utf-8") as handle:
        handle.write(text)
    result = cli(lab, "reload")
    assert result.returncode == 0, result.stdout + result.stderr


def assert_matrix(lab, policy_path: str) -> None:
    rows, wrong = matrix(lab, load_policy(policy_path))
    assert wrong == 0, "\n".join(" ".join(map(str, row)) for row in rows if row[-1] != "\u2713")


def test_monitor_record_suggest_replay_and_enforce_group_by_group(make_lab, tmp_path):
    assert TO_DB in STRAY and TO_WEB in STRAY
    shipped = load_policy(POLICY)
    policy_path = str(tmp_path / "policy.yaml")
    with open(policy_path, "w", encoding="utf-8") as handle:
        handle.write(monitor_everything(shipped))
    lab = make_lab("leaf-spine", policy=policy_path)

    # 1. monitor: everything between directory hosts forwarded, the rogue device still denied
    assert_matrix(lab, policy_path)
    expected = expected_checks(lab, shipped)
    assert EXPECTED_TO_DB in expected and len(expected) > 20
    # (rounds further apart than ICMP's 10 s idle timeout: pings between two hosts within it are one flow)
    run_traffic(lab, expected, rounds=2, gap=11)
    run_traffic(lab, STRAY, rounds=1, gap=0)

    # 2. the map: app -> db on tcp/5432, forwarded only because db is monitored
    answer = cli(lab, "map", "--by", "role", "--json")
    assert answer.returncode == 0, answer.stderr
    flow_map = json.loads(answer.stdout)
    label = {node["id"]: node["label"] for node in flow_map["nodes"]}
    edges = {(label[e["src"]], label[e["dst"]], e["proto"], e["port"]): e for e in flow_map["edges"]}
    app_db = edges[("role=app", "role=db", "tcp", 5432)]
    assert app_db["flows"] >= 2 and app_db["observed"]["monitored"] == app_db["flows"]
    assert app_db["policy"]["status"] == "monitor"
    assert edges[("role=workstation", "role=db", "tcp", 5432)]["flows"] == 1  # the stray one
    dot = cli(lab, "map", "--by", "role", "--dot")
    assert dot.returncode == 0 and dot.stdout.startswith("digraph")

    # 3. the suggestion: a valid policy that rules what was seen twice, not the stray traffic
    suggested = cli(lab, "suggest", "--by", "role", "--min-flows", "2")
    assert suggested.returncode == 0, suggested.stderr
    draft = suggested.stdout
    draft_path = str(tmp_path / "draft.yaml")
    with open(draft_path, "w", encoding="utf-8") as handle:
        handle.write(draft)
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "segctl",
            "check",
            "--directory",
            os.path.join(ROOT, "policies", "directory.yaml"),
            "--policy",
            draft_path,
        ],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    drafted = load_policy(draft_path)
    assert not any(r.src_text == "workstation" and r.dst_text == "db" for r in drafted.rules), draft

    # 4. the replay: the stray flows, forwarded in monitor mode, would be denied: exit 3
    # (and the matrix's one-off pings); nothing the traffic mix used twice would break
    replayed = cli(lab, "replay", "--policy", draft_path, "--json", "--top", "100")
    assert replayed.returncode == 3, replayed.stdout + replayed.stderr
    report = json.loads(replayed.stdout)
    broken = {(p["src"], p["dst"], p["proto"], p["port"]): p["flows"] for p in report["newly_denied"]["top"]}
    assert set(STRAY) <= set(broken) and set(broken.values()) == {1}, broken
    assert report["newly_denied"]["flows"] == len(broken)

    # 5. enforce db only; web stays monitored, in the same run
    (db_group,) = groups_for_roles(draft, ("db",))
    reload_with(lab, policy_path, with_modes(draft, "monitor", {db_group: "enforce"}))
    assert_matrix(lab, policy_path)
    assert lab.outcomes([TO_DB, TO_WEB, EXPECTED_TO_DB]) == ["deny", "allow", "allow"]
    events = [e for e in lab.controller.events() if e["kind"] in ("allow", "deny") and e.get("dst") in ("db1", "web1")]
    last_to = {e["dst"]: e for e in events if e.get("src") in ("hr1", "printer1")}
    assert last_to["db1"]["enforced"] is True and "would_deny" not in last_to["db1"]
    assert last_to["web1"]["enforced"] is False and last_to["web1"]["would_deny"] is True

    # 6. enforce everything: the expected services pass, every stray connection is denied
    reload_with(lab, policy_path, with_modes(draft, "enforce", {}))
    assert_matrix(lab, policy_path)
    seen = lab.outcomes(expected + STRAY)
    assert seen == ["allow"] * len(expected) + ["deny"] * len(STRAY), list(zip(expected + STRAY, seen))
    again = cli(lab, "replay", "--policy", draft_path)
    assert again.returncode == 0, again.stdout  # running == draft now: nothing newly denied
