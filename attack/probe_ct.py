import sys; sys.path.insert(0, "/work/wt-attack/attack"); sys.path.insert(0, "/work/wt-attack")
from ofprobe import *
setup()
try:
    c = Conn()
    for extra in ["ct_tp_dst=1", "ct_tp_src=1", "ct_state=-trk,ct_tp_dst=1", "ip,ct_tp_dst=1", "ct_mark=0"]:
        sh("ovs-ofctl", "-O", "OpenFlow13", "del-flows", BR)
        print("==", extra, ofctl("add-flow", BR, f"cookie=0x5e50000100000000,priority=40000,dl_src=00:00:00:00:00:09,{extra},actions=drop"))
        print(ofctl("dump-flows", BR)[1].strip().splitlines()[1:])
        for e in c.dump(): print("  decoded:", e.describe())
finally:
    teardown()
