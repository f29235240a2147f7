"""The jail every untrusted program runs in (bubblewrap, an unprivileged uid, seccomp, limits, a watchdog)."""
