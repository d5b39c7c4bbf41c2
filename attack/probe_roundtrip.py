import sys; sys.path.insert(0, "/work/wt-attack/attack"); sys.path.insert(0, "/work/wt-attack")
from ofprobe import *
from segctl.core.flows import match_of
from segctl.core.pipeline import *
A = dict(eth_src="00:00:00:00:00:01", eth_dst="00:00:00:00:00:02", eth_type=0x800, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2")
entries = [
  CONNECTION.entry(1, match_of(in_port=1, ip_proto=6, tcp_src=1000, tcp_dst=80, **A), (("output", 2),), 3, 7, idle=60, notify=True),
  CONNECTION.entry(1, match_of(in_port=1, ip_proto=1, icmpv4_type=8, icmpv4_code=0, ip_frag=(0, 1), **A), (("output", 2),), 3, 8, idle=10),
  CONNECTION.entry(1, match_of(in_port=1, ip_proto=17, udp_src=1000, udp_dst=53, **A), (("output", 2),), 3, 9, idle=30),
  FRAGMENTS.entry(1, match_of(in_port=1, ip_proto=17, ip_frag=(3, 3), **A), (("output", 2),), 3, 9, idle=30),
  SERVER_DROP.entry(1, match_of(in_port=2, ip_proto=6, tcp_src=80, tcp_dst=1000, tcp_flags_nxm=(0, 0x14), **A), (), 3, 7),
  DENY.entry(1, match_of(in_port=1, ip_proto=6, tcp_src=1, tcp_dst=22, **A)),
  GUARD.entry(1, match_of(in_port=1, eth_src="00:00:00:00:00:09", eth_type=0x800, ipv4_src="10.0.0.9")),
  FLOOD.entry(1, match_of(in_port=1), hard=10),
  QUARANTINE.entry(1, match_of(eth_src="00:00:00:00:00:09"), host_id=4),
  PUNT.entry(1, match_of(eth_type=0x806)), MISS.entry(1),
]
setup()
try:
    c = Conn()
    for e in entries:
        c.send(ofmsg.encode(e))
    print("errors", c.sync())
    got = {o.key(): o for o in c.dump()}
    for e in entries:
        k = entry_key(e)
        if k in got:
            print("OK   ", e.match)
        else:
            cands = [o for o in got.values() if o.priority == e.priority and o.cookie == e.cookie]
            print("DIFF ", e.match, "\n   got", [o.match for o in cands])
finally:
    teardown()
