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


# A reason as an attacker would write it: a forged line after a newline, a line separator (U+2028)
# and a terminal escape.
EVIL = "EDR alert\n12:00:00.000  release  host=web1\u2028by=soc\x1b[2J"


def test_events_table_has_one_row_per_event_whatever_a_value_holds():
    from segctl.client import render

    body = {"events": [{"time": 0.0, "kind": "quarantine", "host": "web1", "reason": EVIL}, {"time": 1.0, "kind": "x"}]}
    lines = render("events", body).splitlines()
    assert len(lines) == 3
    assert lines[1].endswith('host=web1 reason="EDR alert\\n12:00:00.000  release  host=web1\\u2028by=soc\\x1b[2J"')


def test_hosts_table_and_quarantine_answer_escape_control_characters():
    from segctl.client import render

    host = {"name": "web1", "mac": "m", "ip": None, "state": "quarantined", "location": None, "labels": {"n": EVIL}}
    assert len(render("hosts", {"hosts": [host]}).splitlines()) == 2
    answer = {"host": "web1", "mac": "m", "reason": EVIL, "switches": {"confirmed": [1]}, "seconds": 0.1}
    assert len(render("quarantine", answer).splitlines()) == 2


def test_an_error_from_the_api_is_printed_on_one_line(monkeypatch, capsys):
    from segctl import client
    from segctl.cli import build_parser

    monkeypatch.setattr(client, "call", lambda *_: (404, {"error": f"unknown host {EVIL}", "errors": [EVIL]}))
    assert client.run_client(build_parser().parse_args(["release", "web1"])) == 1
    assert len(capsys.readouterr().err.splitlines()) == 2


def test_check_and_explain_print_an_ldap_value_on_one_line(monkeypatch, capsys):
    from segctl import cli
    from segctl.core.errors import ConfigError, ConfigProblem

    problem = ConfigProblem(f"cn={EVIL},ou=devices", None, "no macAddress (MAC address)")

    def load_sources(_sources, warn=None):
        if warn is not None:
            warn(problem)  # explain warns of an entry left out, then answers
        raise ConfigError([problem])

    monkeypatch.setattr(cli, "load_sources", load_sources)
    assert cli.main(["check", *SHIPPED]) == 1
    assert cli.main(["explain", *SHIPPED, "web1", "db1"]) == 1
    printed = capsys.readouterr()
    assert len(printed.out.splitlines()) == 2 and len(printed.err.splitlines()) == 1


def test_explain_says_when_a_destinations_group_is_monitored(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "mode: enforce\nmodes: {db: monitor}\ngroups: {web: {role: web}, db: {role: db}}\n"
        "rules:\n  - {name: web-to-db, from: web, to: db, proto: tcp, ports: [5432]}\n"
    )
    files = ["--directory", f"{ROOT}/policies/directory.yaml", "--policy", str(policy)]
    monitored = segctl("explain", *files, "web1", "db1", "--port", "22").stdout.splitlines()
    assert monitored[:2] == [
        "allow",
        "db1 is in monitor mode (modes: db): forwarded and logged; enforced, it would be denied:",
    ]
    allowed = segctl("explain", *files, "web1", "db1", "--port", "5432").stdout.splitlines()
    assert (
        allowed[0] == "allow"
        and allowed[2] == "db1 is in monitor mode (modes: db): its connections are logged, not enforced"
    )
    enforced = segctl("explain", *files, "db1", "web1", "--port", "5432").stdout.splitlines()
    assert enforced[0] == "deny"
