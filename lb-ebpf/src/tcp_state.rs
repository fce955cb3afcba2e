//! IPVS TCP state tracking (`ip_vs_proto_tcp.c`, `set_tcp_state`). A
//! direct-routing or tunnelling director sees only the client's packets,
//! so its conns use the kernel's INPUT-ONLY table (docs/SEMANTICS.md §6.2);
//! a masquerading one sees both sides and uses the INPUT table for the
//! client's packets and the OUTPUT table for the real server's replies
//! (§19).

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

/// `tcp_states`' INPUT rows: a client packet of a masqueraded conn.
const INPUT: [[u8; 11]; 4] = [
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];

/// `tcp_states`' OUTPUT rows: a real server's reply of a masqueraded conn.
const OUTPUT: [[u8; 11]; 4] = [
    /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];

/// Which of the kernel's tables a packet goes through.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dir {
    /// A client packet of a `-g`/`-i` conn (the kernel's
    /// `IP_VS_CONN_F_NOOUTPUT` conns).
    InputOnly,
    /// A client packet of a `-m` conn.
    Input,
    /// A real server's reply of a `-m` conn.
    Output,
}

/// The state after a client packet with TCP `flags` in state `cur`, for a
/// direct-routing or tunnelled conn (INPUT-ONLY).
#[inline(always)]
pub fn next_state(cur: u8, flags: u8) -> u8 {
    next_state_in(Dir::InputOnly, cur, flags)
}

/// The state after a packet with TCP `flags` in state `cur` through the
/// table of `dir`. Flags are ranked RST > SYN > FIN > ACK; a segment with
/// none of them closes the entry, as in the kernel.
#[inline(always)]
pub fn next_state_in(dir: Dir, cur: u8, flags: u8) -> u8 {
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
    let table = match dir {
        Dir::InputOnly => &INPUT_ONLY,
        Dir::Input => &INPUT,
        Dir::Output => &OUTPUT,
    };
    match table.get(event).and_then(|row| row.get(col)) {
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

    /// Every cell of the INPUT and OUTPUT tables, from the kernel's
    /// `tcp_states` (docs/SEMANTICS.md §19): (state, [syn, fin, ack, rst]).
    #[test]
    fn masquerading_tables_cell_by_cell() {
        use lb_common::{CONN_S_SYN_SENT as SS, CONN_S_SYNACK as SA};
        let input = [
            (NO, [SR, CL, ES, CL]),
            (ES, [ES, CW, ES, CL]),
            (SS, [ES, SS, SS, CL]),
            (SR, [SR, TW, ES, SR]),
            (FW, [SR, TW, FW, CL]),
            (TW, [SR, TW, TW, CL]),
            (CL, [SR, CL, CL, CL]),
            (CW, [SR, CW, CW, CL]),
            (LA, [SR, LA, CL, LA]),
            (LI, [SR, LI, LI, LI]),
            (SA, [SR, TW, ES, SR]),
        ];
        let output = [
            (NO, [SS, TW, ES, CL]),
            (ES, [ES, FW, ES, CL]),
            (SS, [SS, SS, SS, SS]),
            (SR, [SR, TW, ES, CL]),
            (FW, [SS, FW, FW, CL]),
            (TW, [SS, TW, TW, TW]),
            (CL, [SS, CL, CL, CL]),
            (CW, [SS, TW, CW, CL]),
            (LA, [SS, LA, LA, CL]),
            (LI, [LI, LI, ES, CL]),
            (SA, [SR, TW, ES, CL]),
        ];
        for (dir, rows) in [(Dir::Input, input), (Dir::Output, output)] {
            for (state, expect) in rows {
                let got =
                    [TCP_SYN, TCP_FIN, TCP_ACK, TCP_RST].map(|f| next_state_in(dir, state, f));
                assert_eq!(got, expect, "{dir:?} state {state}");
            }
        }
    }

    /// A masqueraded connection's life (docs/SEMANTICS.md §19): the client
    /// closes first, so the conn goes through CLOSE_WAIT (direct routing
    /// would say FIN_WAIT); then the real server closes first.
    #[test]
    fn masquerading_lifecycles() {
        let walk = |steps: &[(Dir, u8, u8)]| {
            let mut s = NO;
            for (i, (dir, flags, want)) in steps.iter().enumerate() {
                s = next_state_in(*dir, s, *flags);
                assert_eq!(s, *want, "step {i}");
            }
        };
        use Dir::{Input as I, Output as O};
        walk(&[
            (I, TCP_SYN, SR),
            (O, TCP_SYN | TCP_ACK, SR),
            (I, TCP_ACK, ES),
            (O, TCP_ACK, ES),
            (I, TCP_FIN | TCP_ACK, CW),
            (O, TCP_ACK, CW),
            (O, TCP_FIN | TCP_ACK, TW),
            (I, TCP_ACK, TW),
        ]);
        walk(&[
            (I, TCP_SYN, SR),
            (O, TCP_SYN | TCP_ACK, SR),
            (I, TCP_ACK, ES),
            (O, TCP_FIN | TCP_ACK, FW),
            (I, TCP_FIN | TCP_ACK, TW),
        ]);
        // RST either way closes, but a client RST in SYN_RECV stays and a
        // real server's RST in TIME_WAIT stays.
        assert_eq!(next_state_in(I, ES, TCP_RST), CL);
        assert_eq!(next_state_in(O, ES, TCP_RST | TCP_ACK), CL);
        assert_eq!(next_state_in(I, SR, TCP_RST), SR);
        assert_eq!(next_state_in(O, TW, TCP_RST), TW);
        assert_eq!(next_state_in(O, ES, 0), CL);
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
