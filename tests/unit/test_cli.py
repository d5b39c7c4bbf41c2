import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = ["--directory", f"{ROOT}/policies/directory.yaml", "--policy", f"{ROOT}/policies/policy.yaml"]


def segctl(*args):
    return subprocess.run([sys.executable, "-m", "segctl", *args], capture_output=True, text=True, cwd=ROOT)


def test_check_accepts_the_shipped_files():
    result = segctl("check", *SHIPPED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 hosts" in result.stderr


def test_check_prints_one_file_line_message_per_problem(tmp_path):
    (tmp_path / "d.yaml").write_text('hosts:\n  a: {mac: "bad"}\n')
    (tmp_path / "p.yaml").write_text("rules:\n  - {name: r, from: web, to: any, proto: tcp}\n")
    result = segctl("check", "--directory", str(tmp_path / "d.yaml"), "--policy", str(tmp_path / "p.yaml"))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{tmp_path}/d.yaml:2: host a: 'bad' is not a MAC address (write it quoted, like \"02:00:00:00:01:01\")",
        f"{tmp_path}/p.yaml:2: rule r from: unknown group 'web'",
    ]


def test_explain_says_allow_or_deny_and_which_rule():
    allow = segctl("explain", *SHIPPED, "web1", "app1", "--proto", "tcp", "--port", "8080")
    assert allow.returncode == 0 and allow.stdout.splitlines()[0] == "allow"
    assert "web-to-app" in allow.stdout and "policy.yaml:" in allow.stdout
    wrong_way = segctl("explain", *SHIPPED, "app1", "web1", "--port", "8080")
    assert wrong_way.stdout.splitlines()[0] == "deny" and "default deny" in wrong_way.stdout
    by_mac = segctl("explain", *SHIPPED, "02:00:00:00:05:02", "db1", "--proto", "icmp")
    assert by_mac.stdout.splitlines()[0] == "allow" and "monitoring-ping" in by_mac.stdout
    unknown = segctl("explain", *SHIPPED, "rogue", "db1")
    assert unknown.stdout.splitlines()[0] == "deny" and "not in the directory" in unknown.stdout
