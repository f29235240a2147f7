"""The render jail's seccomp filter (see t2m/jail/bwrap.py), as a classic BPF program for bwrap."""

from __future__ import annotations

import platform
import struct

# A seccomp filter (x86_64) against kernel attack surface a render never needs: creating or joining
# namespaces (a user namespace would hand the jail capabilities over a fresh set of namespaces),
# keyrings, eBPF, perf, userfaultfd, io_uring, ptrace, mounting, modules, kexec; and memory no
# limit sees: memfds and SysV shared memory outlive every mapping (RSS drops to nothing while the
# host's memory stays taken), so the watchdog's RSS sum would miss them; and sockets: a render
# needs none (its network namespace has only loopback), and each socketpair queues megabytes of
# kernel memory in its buffers (7.8 MB each measured, 128 per process within RLIMIT_NOFILE) that
# no RSS shows. fallocate answers EOPNOTSUPP: it reserves disk in one call, past RLIMIT_FSIZE with
# FALLOC_FL_KEEP_SIZE (a 50 MB reservation under a 1 MB limit, measured) and before the
# watchdog's next look at the work dir; libc's posix_fallocate falls back to writing, which the
# limits see. Numbers are the x86_64 ones; x32 syscalls (nr >= 0x40000000) are refused too. clone3
# answers ENOSYS so libc falls back to clone, whose flags can be checked.
_SYSCALLS_X86_64 = {
    "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "kexec_load": 246, "kexec_file_load": 320, "mount": 165, "umount2": 166, "pivot_root": 155,
    "chroot": 161, "open_by_handle_at": 304, "name_to_handle_at": 303, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "quotactl": 179, "acct": 163, "swapon": 167, "swapoff": 168, "reboot": 169,
    "memfd_create": 319, "memfd_secret": 447, "shmget": 29, "socket": 41, "socketpair": 53,
}  # fmt: skip
_FALLOCATE = 285
_CLONE, _CLONE3 = 56, 435
_CLONE_NAMESPACES = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_AUDIT_ARCH_X86_64 = 0xC000003E


def seccomp_filter() -> bytes | None:
    """The filter as a classic BPF program for bwrap's `--seccomp`; None off x86_64 (the jail's
    namespaces and uid are the boundary; the filter only narrows the kernel surface)."""
    if platform.machine() != "x86_64":
        return None
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    # Labels are strings; instructions are (code, jump-if-true label, jump-if-false label, k).
    prog: list[str | tuple[int, str, str, int]] = [
        (ld, "", "", 4),  # seccomp_data.arch
        (jeq, "", "kill", _AUDIT_ARCH_X86_64),
        (ld, "", "", 0),  # seccomp_data.nr
        (jge, "deny", "", 0x40000000),
        *[(jeq, "deny", "", nr) for nr in _SYSCALLS_X86_64.values()],
        (jeq, "nosys", "", _CLONE3),
        (jeq, "unsupported", "", _FALLOCATE),
        (jeq, "", "allow", _CLONE),
        (ld, "", "", 16),  # the low word of args[0]: clone's flags
        (jset, "deny", "allow", _CLONE_NAMESPACES),
        "allow",
        (ret, "", "", 0x7FFF0000),
        "deny",
        (ret, "", "", 0x00050000 | 1),  # EPERM
        "nosys",
        (ret, "", "", 0x00050000 | 38),  # ENOSYS
        "unsupported",
        (ret, "", "", 0x00050000 | 95),  # EOPNOTSUPP
        "kill",
        (ret, "", "", 0x80000000),  # KILL_PROCESS
    ]
    labels: dict[str, int] = {}
    code: list[tuple[int, str, str, int]] = []
    for item in prog:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)
    out = b""
    for i, (op, true, false, k) in enumerate(code):
        jt = labels[true] - i - 1 if true else 0
        jf = labels[false] - i - 1 if false else 0
        out += struct.pack("=HBBI", op, jt, jf, k)
    return out
