//! IPVS TCP state tracking as a direct-routing director sees it: only the
//! client's packets, so the kernel's INPUT-ONLY table (`ip_vs_proto_tcp.c`,
//! docs/SEMANTICS.md §6.2).

use lb_common::{
    CONN_S_CLOSE as CL, CONN_S_CLOSE_WAIT as CW, CONN_S_COUNT, CONN_S_ESTABLISHED as ES,
    CONN_S_FIN_WAIT as FW, CONN_S_LAST_ACK as LA, CONN_S_LISTEN as LI, CONN_S_SYN_RECV as SR,
    CONN_S_SYN_SENT as SS, CONN_S_TIME_WAIT as TW,
};

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Rows: the packet's event (syn, fin, ack, rst); columns: the current state
/// (NONE, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA).
const INPUT_ONLY: [[u8; 11]; 4] = [
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /* ack */ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// The state after a client packet with TCP `flags` in state `cur`. Flags are
/// ranked RST > SYN > FIN > ACK; a segment with none of them closes the entry,
/// as in the kernel.
#[inline(always)]
pub fn next_state(cur: u8, flags: u8) -> u8 {
    let event = if flags & TCP_RST != 0 {
        3
    } else if flags & TCP_SYN != 0 {
        0
    } else if flags & TCP_FIN != 0 {
        1
    } else if flags & TCP_ACK != 0 {
        2
    } else {
        return CL;
    };
    let col = cur as usize;
    if col >= CONN_S_COUNT - 1 {
        return CL;
    }
    match INPUT_ONLY.get(event).and_then(|row| row.get(col)) {
        Some(s) => *s,
        None => CL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::CONN_S_NONE as NO;

    #[test]
    fn direct_routing_lifecycle() {
        let s = next_state(NO, TCP_SYN);
        assert_eq!(s, SR);
        let s = next_state(s, TCP_ACK);
        assert_eq!(s, ES);
        let s = next_state(s, TCP_ACK | TCP_FIN);
        assert_eq!(s, FW);
        let s = next_state(s, TCP_ACK);
        assert_eq!(s, FW);
        assert_eq!(next_state(ES, TCP_RST | TCP_ACK), CL);
        assert_eq!(next_state(ES, 0), CL);
    }

    #[test]
    fn rows_of_the_spec_table() {
        // docs/SEMANTICS.md §6.2, INPUT-ONLY: (state, [syn, fin, ack, rst]).
        let rows = [
            (NO, [SR, CL, CL, CL]),
            (ES, [ES, FW, ES, CL]),
            (SR, [SR, TW, ES, SR]),
            (FW, [SR, FW, FW, CL]),
            (TW, [SR, TW, TW, CL]),
            (CL, [SR, CL, CL, CL]),
        ];
        for (state, expect) in rows {
            let got = [
                next_state(state, TCP_SYN),
                next_state(state, TCP_FIN),
                next_state(state, TCP_ACK),
                next_state(state, TCP_RST),
            ];
            assert_eq!(got, expect, "state {state}");
        }
    }
}
