"""Raw OpenFlow 1.3 over an OVS bridge's mgmt socket: send segctl-encoded messages, read the
table back as segctl decodes it. Run under flock /work/ovs.lock."""
import socket, struct, subprocess, sys, time
sys.path.insert(0, "/work/wt-attack")
from segctl import ofmsg
from segctl.core.flows import entry_key, EntryDelete

BR = "atkprobe"

def sh(*a, check=True):
    return subprocess.run(a, check=check, capture_output=True, text=True).stdout

def setup():
    sh("ovs-vsctl", "--if-exists", "del-br", BR)
    sh("ovs-vsctl", "add-br", BR, "--", "set", "bridge", BR, "datapath_type=netdev", "fail_mode=secure",
       "protocols=OpenFlow13")
    sh("ovs-ofctl", "-O", "OpenFlow13", "del-flows", BR)

def teardown():
    sh("ovs-vsctl", "--if-exists", "del-br", BR)

class Conn:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(f"/var/run/openvswitch/{BR}.mgmt")
        self.s.sendall(struct.pack("!BBHI", 4, 0, 8, 1))
        self.recv()
    def recv(self):
        head = self._n(8)
        v, t, l, x = struct.unpack("!BBHI", head)
        return t, x, head + self._n(l - 8)
    def _n(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c: raise EOFError
            b += c
        return b
    def send(self, data):
        self.s.sendall(data)
    def sync(self):
        """barrier; return errors seen before it"""
        xid, b = ofmsg.encode_barrier()
        self.send(b)
        errs = []
        while True:
            t, x, m = self.recv()
            if t == 1:
                errs.append(struct.unpack_from("!HH", m, 8))
            if t == 21 and x == xid:
                return errs
    def dump(self):
        xid, b = ofmsg.encode_flow_stats_request()
        self.send(b)
        out = []
        while True:
            t, x, m = self.recv()
            if t == 19 and x == xid:
                more, entries = ofmsg.decode_flow_stats(m)
                out += entries
                if not more:
                    return out

def ofctl(*args):
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr
