"""The operating-system sandbox every submission runs in: bubblewrap.

A submission's worker and kernel run inside ``bwrap`` (Debian package
``bubblewrap``), started as::

    bwrap --unshare-pid --unshare-net --unshare-ipc --unshare-uts --unshare-cgroup-try
          [--unshare-user]                 # only when the grader is not root
          --die-with-parent --new-session --clearenv --setenv NAME VALUE ...
          --ro-bind /usr /usr --symlink usr/lib /lib ...   # the system, read-only
          --ro-bind <python installation> ... --ro-bind <venv> ...
          --ro-bind <staged lmelib copy> /opt/lmelib-grading
          --proc /proc --dev /dev
          --size <scratch> --perms 1777 --tmpfs /sandbox  # the only writable place
          --symlink /sandbox/tmp /tmp
          --chdir /sandbox --
        [setpriv --reuid U --regid U --clear-groups --inh-caps=-all
                 --bounding-set=-all --no-new-privs --]   # only when the grader is root
        prlimit --as=... --cpu=... --nproc=... --fsize=... --nofile=... --
        python -I /opt/lmelib-grading/lmelib/grading/worker.py

So inside: its own PID namespace (the worker's init is PID 1; the grader and
other submissions are invisible and cannot be signalled; when the sandbox
ends, the kernel kills every process in it, including those that called
``setsid()``), its own mount namespace built from nothing (only the paths
above exist; the answer key, gradebook, feedback, submissions and the
instructor's checkout are simply absent), no network, a private tmpfs of
bounded size as the only writable directory, and when the grader runs as
root an unprivileged uid (one per concurrent slot, from Debian's reserved
range 65100-65499, so that the process limit of one submission cannot starve
another) with no capabilities.  Resource limits (``prlimit``): address
space, CPU seconds, processes and threads, file size, open files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Limits", "Sandbox", "SandboxUnavailable", "find_sandbox", "INSTALL_HINT"]

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`), or run the "
                "grader with --no-sandbox to grade without isolation (not for untrusted notebooks)")

#: where the sandbox sees its writable scratch space and the staged lmelib
ROOT = "/sandbox"
LIB = "/opt/lmelib-grading"
#: unprivileged uids used when the grader runs as root (Debian reserves 65000-65533)
UID_BASE = 65100
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf",
        "passwd", "group", "mime.types")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create the sandbox on this machine."""


@dataclass(frozen=True)
class Limits:
    """Per-submission resource limits."""

    memory_mb: int = 4096      # address space of each process (RLIMIT_AS)
    cpu_seconds: int = 3600    # CPU time of each process (RLIMIT_CPU)
    processes: int = 256       # processes and threads of the sandbox's uid (RLIMIT_NPROC)
    file_mb: int = 64          # largest file it may write (RLIMIT_FSIZE)
    open_files: int = 1024     # RLIMIT_NOFILE
    scratch_mb: int = 512      # its writable tmpfs /sandbox
    output_mb: int = 64        # largest result record the grader reads back

    def prlimit(self, processes: int) -> list[str]:
        mb = 1024 * 1024
        return ["prlimit", f"--as={self.memory_mb * mb}", f"--cpu={self.cpu_seconds}",
                f"--nproc={processes}", f"--fsize={self.file_mb * mb}", f"--nofile={self.open_files}",
                "--"]


def _checkout() -> Path:
    """The folder lmelib was imported from (the instructor's checkout): lmelib/grading/ is two
    levels below it."""
    return Path(__file__).resolve().parents[2]


def _python_paths() -> list[Path]:
    """Folders the interpreter needs: its installation, the venv, site-packages.

    Other entries of ``sys.path`` (the script's folder, the current folder)
    are not bound, nor is the checkout or any folder holding it: a venv inside
    the checkout is bound on its own.
    """
    import site

    checkout = _checkout()
    candidates = [sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix,
                  *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    out: list[Path] = []
    for c in candidates:
        p = Path(c).resolve()
        if not p.is_dir() or p == Path("/") or checkout.is_relative_to(p) or \
                any(p.is_relative_to(o) for o in out):
            continue
        if p.is_relative_to(checkout) and not (p / "pyvenv.cfg").exists():
            continue  # inside the checkout, only a venv
        out = [o for o in out if not o.is_relative_to(p)] + [p]
    return out


@dataclass(frozen=True)
class Sandbox:
    """How to start a command inside bubblewrap (see the module docstring)."""

    bwrap: str
    limits: Limits = field(default_factory=Limits)
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    python_paths: tuple[Path, ...] = field(default_factory=lambda: tuple(_python_paths()))

    name = "bubblewrap"

    def visible(self) -> list[Path]:
        """Host folders that the sandbox sees (read-only)."""
        return [Path(p) for p in _SYSTEM if os.path.isdir(p) and not os.path.islink(p)] + \
            list(self.python_paths)

    def exposes(self, path: Path) -> bool:
        """Whether ``path`` would be readable inside the sandbox."""
        path = Path(path).resolve()
        return any(path.is_relative_to(v) for v in self.visible())

    def _mounts(self, lib: Path) -> list[str]:
        args: list[str] = []
        for p in _SYSTEM:
            if os.path.islink(p):
                args += ["--symlink", os.readlink(p), p]
            elif os.path.isdir(p):
                args += ["--ro-bind", p, p]
        for name in _ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        made: set[str] = set()
        system = [Path(d).resolve() for d in _SYSTEM if os.path.isdir(d)]
        for p in self.python_paths:
            if any(p.is_relative_to(d) for d in system):
                continue  # already there, read-only, with /usr
            for parent in reversed(p.parents):  # bwrap would make them 0700
                if str(parent) != "/" and str(parent) not in made:
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            args += ["--ro-bind", str(p), str(p)]
        args += ["--perms", "0755", "--dir", os.path.dirname(LIB), "--ro-bind", str(lib), LIB,
                 "--proc", "/proc", "--dev", "/dev",
                 "--size", str(self.limits.scratch_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", ROOT]
        if "/tmp" not in made:  # the worker makes /sandbox/tmp (TMPDIR points there in any case)
            args += ["--symlink", f"{ROOT}/tmp", "/tmp"]
        # else a Python installation lives under /tmp (e.g. a checkout cloned there): /tmp is then
        # a read-only path to it, and temporary files go to $TMPDIR alone
        return args

    def _processes(self) -> int:
        """RLIMIT_NPROC counts every process of the uid: as root the sandbox
        has a uid of its own; otherwise the user's other processes count too."""
        if self.as_root:
            return self.limits.processes
        uid = os.getuid()
        mine = 0
        for entry in os.scandir("/proc"):
            try:
                mine += entry.name.isdigit() and entry.stat().st_uid == uid
            except OSError:
                pass
        return self.limits.processes + mine

    def command(self, argv: list[str], *, lib: Path, env: dict[str, str], slot: int = 0) -> list[str]:
        """The command line that runs ``argv`` in a fresh sandbox."""
        cmd = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
               "--unshare-cgroup-try"]
        if not self.as_root:
            cmd.append("--unshare-user")
        cmd += ["--die-with-parent", "--new-session", "--clearenv"]
        for k, v in env.items():
            cmd += ["--setenv", k, v]
        cmd += self._mounts(lib) + ["--chdir", ROOT, "--"]
        if self.as_root:
            uid = str(UID_BASE + slot)
            cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all", "--no-new-privs", "--"]
        return cmd + self.limits.prlimit(self._processes()) + list(argv)

    def check(self, lib: Path) -> None:
        """Run a trivial command inside; raise SandboxUnavailable if it fails."""
        probe = ("import os, json, zmq, nbclient; "
                 f"assert os.path.isfile('{LIB}/lmelib/grading/worker.py'); "
                 "assert os.getpid() <= 3 and not os.access('/', os.W_OK); "
                 f"open('{ROOT}/probe', 'w').write('ok'); print('sandbox ok')")
        cmd = self.command([sys.executable, "-c", probe], lib=lib,
                           env={"PYTHONPATH": LIB, "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"the sandbox could not be started ({exc}); {INSTALL_HINT}") from None
        if out.returncode != 0 or b"sandbox ok" not in out.stdout:
            why = (out.stderr or out.stdout).decode("utf-8", "replace").strip().splitlines()
            raise SandboxUnavailable(f"bubblewrap is installed but the sandbox does not work here "
                                     f"({why[-1] if why else f'exit status {out.returncode}'}); "
                                     f"{INSTALL_HINT}")


def find_sandbox(lib: Path, limits: Limits | None = None) -> Sandbox:
    """The sandbox, checked to work on this machine; SandboxUnavailable if not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap (`bwrap`) is not installed: {INSTALL_HINT}")
    sb = Sandbox(bwrap, limits or Limits())
    sb.check(lib)
    return sb
