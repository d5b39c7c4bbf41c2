"""Turns segctl's plain flow descriptions into OpenFlow 1.3 messages for one datapath.

The only module that builds OpenFlow messages. It also orders a batch the way a switch should
see it: deletions before additions on each switch, duplicates dropped, barriers last.
"""

from __future__ import annotations

from .core.flows import Barrier, FlowAdd, FlowDelete, PacketOut


def build(datapath, message):
    """One OpenFlow message for `datapath` from a FlowAdd, FlowDelete, PacketOut or Barrier."""
    ofp, parser = datapath.ofproto, datapath.ofproto_parser
    if isinstance(message, FlowAdd):
        actions = []
        for action in message.actions:
            if action[0] == "output":
                actions.append(parser.OFPActionOutput(action[1], 0))
            elif action[0] == "controller":
                actions.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
        instructions = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
        return parser.OFPFlowMod(
            datapath=datapath,
            cookie=message.cookie,
            command=ofp.OFPFC_ADD,
            idle_timeout=message.idle_timeout,
            hard_timeout=message.hard_timeout,
            priority=message.priority,
            buffer_id=ofp.OFP_NO_BUFFER,
            flags=ofp.OFPFF_SEND_FLOW_REM if message.notify_removed else 0,
            match=parser.OFPMatch(**message.match_dict()),
            instructions=instructions,
        )
    if isinstance(message, FlowDelete):
        return parser.OFPFlowMod(
            datapath=datapath,
            cookie=message.cookie,
            cookie_mask=message.cookie_mask,
            table_id=ofp.OFPTT_ALL,
            command=ofp.OFPFC_DELETE,
            out_port=ofp.OFPP_ANY,
            out_group=ofp.OFPG_ANY,
            match=parser.OFPMatch(**message.match_dict()),
        )
    if isinstance(message, PacketOut):
        in_port = ofp.OFPP_CONTROLLER if message.in_port is None else message.in_port
        out_port = ofp.OFPP_IN_PORT if message.port == in_port else message.port
        return parser.OFPPacketOut(
            datapath=datapath,
            buffer_id=ofp.OFP_NO_BUFFER,
            in_port=in_port,
            actions=[parser.OFPActionOutput(out_port, 0)],
            data=message.data,
        )
    if isinstance(message, Barrier):
        return parser.OFPBarrierRequest(datapath)
    raise TypeError(f"not a segctl message: {message!r}")


def order(messages: list) -> list:
    """Per switch: deletions first, then additions and packet-outs in the order planned,
    duplicate entries dropped, and at most one barrier, at the end."""
    by_switch: dict[int, tuple[list, list, list]] = {}
    seen: set = set()
    for message in messages:
        deletes, rest, barrier = by_switch.setdefault(message.dpid, ([], [], []))
        if isinstance(message, Barrier):
            barrier[:] = [message]
        elif isinstance(message, FlowDelete):
            if message not in seen:
                seen.add(message)
                deletes.append(message)
        elif isinstance(message, FlowAdd):
            if message not in seen:
                seen.add(message)
                rest.append(message)
        else:
            rest.append(message)
    ordered = []
    for deletes, rest, barrier in by_switch.values():
        ordered.extend(deletes + rest + barrier)
    return ordered
