//! Socket filters (classic BPF) for route notification sockets: the kernel drops what a watcher
//! never looks at before it is queued, instead of every watcher receiving, parsing and throwing
//! away each notification. With 100,000 routes written at once the unfiltered sockets overflowed
//! (lost notifications) and their parsing competed with the writes for the CPU.
//!
//! The programs read the fixed headers only: `nlmsghdr` (16 bytes: length, type, flags, seq,
//! port) and then `rtmsg` (family, dst_len, src_len, tos, table, protocol, scope, type). Every
//! rtnetlink notification is one message in its own packet.

use std::os::fd::RawFd;

/// `RTM_NEWROUTE`.
const RTM_NEWROUTE: u32 = 24;
/// `RTM_DELROUTE`.
const RTM_DELROUTE: u32 = 25;
/// `RT_TABLE_COMPAT`: the header's table for tables above 255 (the real id is in `RTA_TABLE`).
const RT_TABLE_COMPAT: u32 = 252;
/// The low byte of `nlmsg_type` (a host-order u16 at offset 4; rtnetlink types are < 256).
#[cfg(target_endian = "little")]
const TYPE_BYTE: u32 = 4;
#[cfg(target_endian = "big")]
const TYPE_BYTE: u32 = 5;
/// `rtmsg.rtm_table`.
const TABLE_BYTE: u32 = 20;
/// `rtmsg.rtm_protocol`.
const PROTOCOL_BYTE: u32 = 21;

const LDB_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const ACCEPT: u32 = u32::MAX;
const DROP: u32 = 0;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    }
}

/// Passes route messages of `table` only (plus, for any table, those whose header says
/// `RT_TABLE_COMPAT`: their table is checked in user space). Other messages pass.
pub(crate) fn only_table(table: u32) -> Vec<libc::sock_filter> {
    let header_table = if table < 256 { table } else { RT_TABLE_COMPAT };
    vec![
        /* 0 */ stmt(LDB_ABS, TYPE_BYTE),
        /* 1 */ jeq(RTM_NEWROUTE, 1, 0), // -> 3
        /* 2 */ jeq(RTM_DELROUTE, 0, 3), // -> 3 : 6 (accept)
        /* 3 */ stmt(LDB_ABS, TABLE_BYTE),
        /* 4 */ jeq(header_table, 1, 0), // -> 6 (accept)
        /* 5 */ jeq(RT_TABLE_COMPAT, 0, 1), // -> 6 : 7 (drop)
        /* 6 */ stmt(RET_K, ACCEPT),
        /* 7 */ stmt(RET_K, DROP),
    ]
}

/// Drops `RTM_NEWROUTE` messages (additions and replacements) of protocol `protocol`; everything
/// else passes.
pub(crate) fn drop_new_routes_of(protocol: u8) -> Vec<libc::sock_filter> {
    vec![
        /* 0 */ stmt(LDB_ABS, TYPE_BYTE),
        /* 1 */ jeq(RTM_NEWROUTE, 0, 2), // -> 2 : 4 (accept)
        /* 2 */ stmt(LDB_ABS, PROTOCOL_BYTE),
        /* 3 */ jeq(u32::from(protocol), 1, 0), // -> 5 (drop) : 4
        /* 4 */ stmt(RET_K, ACCEPT),
        /* 5 */ stmt(RET_K, DROP),
    ]
}

/// Attaches `program` to the socket `fd` (`SO_ATTACH_FILTER`).
pub(crate) fn attach(fd: RawFd, program: &[libc::sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `program`, alive for the call; the kernel copies it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs `program` over `packet` as the kernel does for these programs (loads of bytes,
/// equality jumps, returns): for the unit tests.
#[cfg(test)]
fn run(program: &[libc::sock_filter], packet: &[u8]) -> u32 {
    let mut a = 0u32;
    let mut pc = 0usize;
    loop {
        let i = program[pc];
        match i.code {
            LDB_ABS => match packet.get(i.k as usize) {
                Some(b) => a = u32::from(*b),
                None => return DROP,
            },
            JEQ_K => {
                pc += if a == i.k { i.jt } else { i.jf } as usize;
            }
            RET_K => return i.k,
            c => panic!("unexpected instruction {c}"),
        }
        pc += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route notification: nlmsghdr then rtmsg.
    fn msg(ty: u16, table: u8, protocol: u8) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0..4].copy_from_slice(&28u32.to_ne_bytes());
        p[4..6].copy_from_slice(&ty.to_ne_bytes());
        p[16] = 2; // AF_INET
        p[20] = table;
        p[21] = protocol;
        p
    }

    #[test]
    fn only_table_passes_its_table_and_compat() {
        let f = only_table(10);
        assert_eq!(run(&f, &msg(24, 10, 186)), ACCEPT);
        assert_eq!(run(&f, &msg(25, 10, 4)), ACCEPT);
        assert_eq!(run(&f, &msg(24, 252, 84)), ACCEPT);
        assert_eq!(run(&f, &msg(24, 254, 2)), DROP);
        assert_eq!(run(&f, &msg(25, 11, 201)), DROP);
        // Not a route message: passes.
        assert_eq!(run(&f, &msg(16, 0, 0)), ACCEPT);
        let big = only_table(10_000);
        assert_eq!(run(&big, &msg(24, 252, 84)), ACCEPT);
        assert_eq!(run(&big, &msg(24, 254, 2)), DROP);
    }

    #[test]
    fn drop_new_routes_of_keeps_deletions_and_other_protocols() {
        let f = drop_new_routes_of(84);
        assert_eq!(run(&f, &msg(24, 252, 84)), DROP);
        assert_eq!(run(&f, &msg(25, 252, 84)), ACCEPT);
        assert_eq!(run(&f, &msg(24, 252, 186)), ACCEPT);
        assert_eq!(run(&f, &msg(20, 0, 84)), ACCEPT);
    }
}
