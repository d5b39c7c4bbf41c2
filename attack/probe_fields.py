import sys, traceback; sys.path.insert(0, "/work/wt-attack/attack"); sys.path.insert(0, "/work/wt-attack")
from ofprobe import *
BASE = "cookie=0x5e80000300000007,priority=20000,idle_timeout=60,in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_src=1000,tp_dst=80"
EXTRA = ["vlan_tci=0x1000/0x1000", "dl_vlan=5", "vlan_tci=0", "metadata=0x1", "reg0=1", "xreg0=1", "xxreg0=1",
 "ct_state=+trk", "ct_mark=1", "ct_label=1", "ct_zone=1", "tun_id=5", "tun_metadata0=1", "tun_metadata1=0x1234567890", "tcp_flags=+syn", "tcp_flags=0x2/0xfff",
 "ip_frag=no", "ip_frag=first", "ip_frag=later", "ip_frag=not_later", "ip_frag=yes", "nw_tos=4", "nw_ecn=1", "nw_ttl=3",
 "pkt_mark=1", "dp_hash=1", "recirc_id=1", "actset_output=1", "conj_id=1", "ct_nw_src=1.1.1.1", "ct_tp_src=1",
 "tun_flags=+oam", "tun_gbp_id=1", "tun_src=1.1.1.1", "tun_ipv6_src=::1", "in_port_oxm=1", "ct_nw_proto=6",
 "nw_src=10.0.0.1/32", "dl_src=00:00:00:00:00:01/ff:ff:ff:ff:ff:ff", "tp_dst=80/0xffff", "tun_erspan_ver=1",
 "nsh_mdtype=1", "ipv6_label=1", "dl_type=0x0800", "ct_ipv6_src=::1", "ct_tp_dst=1", "tun_gtpu_flags=1", "packet_type=(0,0)",
 "ct_label=0x1/0x1", "tun_metadata2=0x1/0x1"]
ACT = ["output:2", "output:2,output:3", "write_actions(output:2)", "goto_table:1", "meter:1,output:2", "set_field:1->reg0,output:2",
  "output:NORMAL", "clear_actions,output:2", "write_metadata:1", "resubmit(,1)", "mod_vlan_vid:5,output:2", "push_vlan:0x8100,output:2",
  "output(port=2,max_len=100)", "enqueue:2:1", "group:1", "learn(table=1,output:NXM_OF_IN_PORT[])", "ct(commit),output:2", "note:abcd,output:2"]
setup()
try:
    c = Conn()
    ofctl("add-meter", BR, "meter=1,pktps,band=type=drop,rate=10")
    ofctl("add-group", BR, "group_id=1,type=all,bucket=output:2")
    for i, x in enumerate(EXTRA):
        rc, out = ofctl("add-flow", BR, BASE.replace("tp_dst=80", f"tp_dst={100+i}") + "," + x + ",actions=output:2")
        if rc: print("REJ", x, out.strip()[:100])
    for i, a in enumerate(ACT):
        rc, out = ofctl("add-flow", BR, BASE.replace("tp_dst=80", f"tp_dst={200+i}") + f",actions={a}")
        if rc: print("REJ", a, out.strip()[:100])
    try:
        entries = c.dump()
    except Exception:
        traceback.print_exc(); raise
    for e in entries:
        d = dict(e.match)
        odd = {k: v for k, v in e.match if k not in ("eth_src","eth_dst","eth_type","ipv4_src","ipv4_dst","ip_proto","tcp_src","in_port")}
        print(e.describe()[-160:] if False else "", odd, e.actions, e.meter)
    # strict delete every entry as the audit would
    for e in entries:
        c.send(ofmsg.encode(EntryDelete(1, e.table_id, e.priority, e.raw_match)))
    print("delete errors", c.sync())
    left = c.dump()
    print("left after EntryDelete:", len(left))
    for e in left: print("  LEFT", e.describe())
finally:
    teardown()
