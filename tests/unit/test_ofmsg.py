"""The OpenFlow translation, serialised by the framework's own OpenFlow 1.3 encoder."""

from segctl import framework, ofmsg
from segctl.core.flows import Barrier, FlowAdd, FlowDelete, Kind, PacketOut, make_cookie, match_of


class Datapath:
    ofproto = framework.ofproto_v1_3
    ofproto_parser = framework.ofproto_v1_3_parser
    id = 1

    def set_xid(self, msg):
        msg.xid = 1
        return 1


def encode(message):
    msg = ofmsg.build(Datapath(), message)
    msg.serialize()
    return msg


def test_every_message_kind_encodes():
    cookie = make_cookie(Kind.CONNECTION, 3, 7)
    add = encode(
        FlowAdd(
            1,
            20000,
            match_of(in_port=1, eth_type=0x0800, ipv4_src="10.0.0.1", tcp_dst=22, ip_proto=6),
            (("output", 2),),
            cookie,
            idle_timeout=60,
            notify_removed=True,
        )
    )
    assert add.cookie == cookie and add.flags == 1 and add.idle_timeout == 60 and add.match["tcp_dst"] == 22
    drop = encode(FlowAdd(1, 0, (), (), make_cookie(Kind.BASE)))
    assert drop.instructions == []
    delete = encode(FlowDelete(1, cookie, (1 << 64) - 1, match_of(eth_src="02:00:00:00:00:01")))
    assert delete.command == Datapath.ofproto.OFPFC_DELETE and delete.table_id == Datapath.ofproto.OFPTT_ALL
    out = encode(PacketOut(1, 3, b"\xff" * 60, None))
    assert out.in_port == Datapath.ofproto.OFPP_CONTROLLER and out.actions[0].port == 3
    hairpin = encode(PacketOut(1, 3, b"\xff" * 60, 3))
    assert hairpin.actions[0].port == Datapath.ofproto.OFPP_IN_PORT
    encode(Barrier(1))


def test_batches_are_ordered_deletes_first_and_deduplicated():
    a = FlowAdd(1, 1, (), (), 1)
    d = FlowDelete(1, 1, 1)
    batch = ofmsg.order([a, Barrier(1), d, a, FlowAdd(2, 1, (), (), 1), d, Barrier(2)])
    assert batch == [d, a, Barrier(1), FlowAdd(2, 1, (), (), 1), Barrier(2)]
