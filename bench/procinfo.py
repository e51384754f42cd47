# SPDX-License-Identifier: GPL-2.0-or-later
"""procinfo.py: what /proc says about a process, for the benchmark modules (run.py, scale.py)."""


def proc_status(pid, key):
    """The number on the KEY: line of /proc/PID/status (kB for VmRSS), or 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
