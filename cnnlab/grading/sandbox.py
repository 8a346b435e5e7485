"""Run one submission's runner under bubblewrap, with limits, a wall timeout and capped logs.

Inside the sandbox: no network, its own PID/IPC/UTS namespaces, a scrubbed environment,
read-only binds of the system (/usr), of the grader's own Python environment (a venv as the venv,
with the interpreter behind it and every folder on its isolated ``sys.path``) and of the cnnlab
package only (of a home folder, just those paths show), a fresh small /tmp, and one writable
scratch directory (the copy of the submission and the plan).
Limits are set by util-linux's ``prlimit`` before bwrap starts (address space per process,
file size, CPU seconds, core dumps, and the number of tasks), so nothing runs between fork and
exec in the grader's threads; a wall timeout kills the sandbox's whole process tree. When the
grader runs as root, the student's code runs as an unprivileged uid (one per worker slot, never
one that another grader on the machine holds at the same time) so that the task limit binds
and nothing of root's is readable. Without root the task limit is the user's current task
count plus ``Limits.processes`` (the limit counts all of the user's
tasks), which stops a fork bomb without touching what the user already runs.

How student code is confined is one strategy object (``Confinement``): ``BWRAP`` (the
default), ``DROPPED_UID`` (Gradescope's container, where bwrap cannot create namespaces: the
runner runs unsandboxed but, as root, under the same unprivileged uid, and every process of
that uid is killed afterwards) and ``UNCONFINED`` (``--no-sandbox``, trusted code only). Each
owns its uid, command line, environment, scratch ownership and clean-up; moving to another
mechanism (cgroups) means one more such object.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cnnlab

RUNNER = Path(__file__).with_name("runner.py")
PACKAGE_DIR = Path(cnnlab.__file__).resolve().parent
INSTALL_HINT = ("bubblewrap (bwrap) is needed to grade safely and was not found or does not "
                "work here. Install it: `sudo apt-get install bubblewrap` (Debian/Ubuntu), "
                "`sudo dnf install bubblewrap` (Fedora), `sudo pacman -S bubblewrap` (Arch). "
                "Or pass --no-sandbox to run student code unconfined (only for code you trust).")
LOG_CAP = 64 * 1024  # bytes of the runner's output kept for the reason column
FILE_CAP = 64 * 2**20  # largest file the sandbox may write
BASE_UID = 61000  # the first of the uids student code runs as, when the grader runs as root
UID_COUNT = 4096  # how many of them graders on one machine share
UID_LOCKS = Path("/run/cnnlab-grade")  # root-only: one lock file per uid in use
ENV_KEEP = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": "/scratch", "TMPDIR": "/tmp", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp/matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0"}


@dataclass
class Limits:
    """Resource limits for one sandboxed run."""

    timeout: float = 120.0  # wall seconds
    memory: int = 6 * 2**30  # address-space bytes (torch alone reserves about 3.7 GB)
    threads: int = 1  # OMP/MKL threads for NumPy and torch
    processes: int = 256  # processes+threads of the sandbox's uid


@dataclass
class RunResult:
    """What happened to one sandboxed run (the scratch dir holds any results)."""

    status: str  # "done" or "timeout"
    returncode: int | None
    log_tail: str
    seconds: float


def parse_size(text: str) -> int:
    """'4G', '512M', '2000000' -> bytes; ValueError with the expected form otherwise."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    text = str(text).strip().upper().removesuffix("B")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ValueError(f"--memory expects a size such as 4G or 512M, got {text!r}") from None


def python_executable() -> str:
    """The grader's interpreter as it was started: a venv's ``bin/python`` stays the venv's
    (resolving its symlink would give the base interpreter, without the venv's packages)."""
    return os.path.abspath(sys.executable) if sys.executable else sys.executable


@functools.cache
def python_paths() -> tuple[Path, ...]:
    """Every folder the runner's Python reads, named as that Python names them: its prefixes
    (a venv and the interpreter behind it) and the folders on its isolated ``sys.path``
    (standard library, site-packages, and folders that ``.pth`` files add). Outermost only,
    without ``/usr`` (bound as a whole)."""
    found = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                               sys.base_exec_prefix)}
    try:  # -I as in the sandbox: no current folder, no PYTHONPATH, no user site
        done = subprocess.run(
            [python_executable(), "-I", "-c", "import json, sys; print(json.dumps(sys.path))"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"})
        found |= {Path(p) for p in json.loads(done.stdout) if isinstance(p, str)}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass  # the prefixes alone: site-packages lie inside them
    keep: list[Path] = []
    for path in sorted(p for p in found if p.is_absolute() and p.exists()):
        if Path("/usr") in (path, *path.parents):
            continue
        if not any(k == path or k in path.parents for k in keep):
            keep.append(path)
    return tuple(keep)


def _ancestors(paths: list[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        for parent in reversed(path.parents):
            if parent != Path("/") and parent not in seen:
                seen.append(parent)
    return seen


def bwrap_command(scratch: Path, slot: int, limits: Limits) -> list[str]:
    """The bwrap command line that runs the runner on ``scratch`` (see the module docstring)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    binds = [*python_paths(), PACKAGE_DIR]
    command = [bwrap, "--die-with-parent", "--new-session", "--clearenv",
               "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
               "--unshare-cgroup-try", "--ro-bind", "/usr", "/usr"]
    root = os.geteuid() == 0
    if not root:
        command.insert(1, "--unshare-user")
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        link = Path("/") / name
        if link.is_symlink():
            command += ["--symlink", os.readlink(link), str(link)]
        elif link.is_dir():
            command += ["--ro-bind", str(link), str(link)]
    # mounts first: a later --tmpfs /tmp would hide binds below /tmp
    # /tmp and /dev/shm writable by the student's uid (sticky, as on any Linux machine): a
    # temp file or a multiprocessing.Pool must work whoever runs the grader
    command += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(256 * 2**20), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm"]
    for folder in _ancestors(binds):
        if not any(folder == b or b in folder.parents for b in binds):
            command += ["--perms", "0755", "--dir", str(folder)]
    for path in binds:  # at the path Python uses, from wherever a symlink there leads
        command += ["--ro-bind", str(path.resolve()), str(path)]
    command += ["--bind", str(scratch), "/scratch", "--chdir", "/scratch"]
    for key, value in sorted(runner_env("/scratch", "/tmp", limits.threads).items()):
        command += ["--setenv", key, value]
    command.append("--")
    if root:
        command += _as_uid(slot_uid(slot))
    return command + [python_executable(), "-I", str(RUNNER), "/scratch"]


def _as_uid(uid: int) -> list[str]:
    """setpriv options that run the command that follows as ``uid``, with no privileges."""
    return ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]


_CLAIMED: dict[int, tuple[int, int]] = {}  # worker slot -> (uid, fd of its held lock)
_CLAIM_LOCK = threading.Lock()


def slot_uid(slot: int) -> int:
    """The uid of a worker slot, as root: one no other grader on this machine holds (a lock
    file per uid, held until this process ends), so that two `cnnlab grade` runs at once
    never share a task limit or kill each other's processes."""
    with _CLAIM_LOCK:
        if slot in _CLAIMED:
            return _CLAIMED[slot][0]
        try:
            UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
        except OSError:  # no /run to share: this grader alone, one uid per slot
            _CLAIMED[slot] = (BASE_UID + slot, -1)
            return BASE_UID + slot
        taken = {uid for uid, _ in _CLAIMED.values()}
        for uid in range(BASE_UID, BASE_UID + UID_COUNT):
            if uid in taken:
                continue
            fd = os.open(UID_LOCKS / f"uid-{uid}.lock",
                         os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _CLAIMED[slot] = (uid, fd)
            return uid
    raise RuntimeError(f"all {UID_COUNT} grading uids from {BASE_UID} are held by other "
                       f"graders (lock files in {UID_LOCKS})")


def runner_env(home: str, tmp: str, threads: int) -> dict[str, str]:
    """The whole environment the runner gets, wherever it runs (an allowlist: nothing of the
    grader's own environment but two machine facts that BLAS needs)."""
    env = dict(ENV_KEEP, HOME=home, TMPDIR=tmp, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine facts, not secrets
        if key in os.environ:
            env[key] = os.environ[key]
    return env


@dataclass(frozen=True)
class Confinement:
    """How one kind of run confines student code (see the module docstring)."""

    name: str
    bwrap: bool  # namespaces, read-only system, private /tmp
    drop_root: bool  # as root, run as the slot's unprivileged uid (bwrap does this too)

    def uid(self, slot: int) -> int | None:
        """The unprivileged uid student code runs as, or None: the grader's own user."""
        return slot_uid(slot) if os.geteuid() == 0 and (self.bwrap or self.drop_root) else None

    def command(self, scratch: Path, slot: int, limits: Limits) -> list[str]:
        """The command line that runs the runner on ``scratch``, limits first."""
        uid = self.uid(slot)
        inner = bwrap_command(scratch, slot, limits) if self.bwrap else \
            plain_command(scratch, uid)
        return limit_prefix(limits, uid) + inner

    def env(self, scratch: Path, limits: Limits) -> dict[str, str]:
        """The environment of the command (bwrap sets the sandbox's own with --setenv)."""
        if self.bwrap:
            return {"PATH": "/usr/bin:/bin"}
        return runner_env(str(scratch), str(scratch), limits.threads)

    def prepare(self, work: Path, scratch: Path, slot: int) -> None:
        """Give the scratch folder to the uid that runs the code (it must write there)."""
        uid = self.uid(slot)
        if uid is None:
            return
        for item in (scratch, *scratch.iterdir()):
            os.chown(item, uid, uid)
        if not self.bwrap:
            work.chmod(0o711)  # the uid reaches its scratch by path: traverse, not list

    def clean_up(self, slot: int) -> None:
        """After the run: without a PID namespace, kill whatever the uid left running."""
        uid = self.uid(slot)
        if uid is not None and not self.bwrap:
            kill_uid(uid)


BWRAP = Confinement("bwrap", bwrap=True, drop_root=True)
DROPPED_UID = Confinement("dropped uid", bwrap=False, drop_root=True)
UNCONFINED = Confinement("none", bwrap=False, drop_root=False)


def plain_command(scratch: Path, uid: int | None = None) -> list[str]:
    """No bwrap: the runner as a plain child process (limits still apply), as ``uid`` if given."""
    return [*(_as_uid(uid) if uid is not None else []), python_executable(), "-I",
            str(RUNNER), str(scratch)]


def others_can_run_python() -> bool:
    """Whether a user other than the owner can reach this Python and the cnnlab package (every
    folder above them searchable by others), as an unprivileged uid must to run the runner."""
    for path in [*python_paths(), PACKAGE_DIR]:
        for folder in (path, *path.parents):
            if not folder.stat().st_mode & 0o001:
                return False
    return True


def _processes_of(uid: int) -> list[tuple[int, int]]:
    """(pid, number of threads) of every process whose real uid is ``uid``, from /proc."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines()
                          if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                found.append((int(status.parent.name), int(fields.get("Threads", "1"))))
        except (OSError, ValueError, KeyError):
            continue  # the process ended while we read it
    return found


def limit_prefix(limits: Limits, uid: int | None) -> list[str]:
    """``prlimit`` options that apply ``limits`` to the command that follows. RLIMIT_NPROC
    counts per uid: the whole budget for the run's own ``uid``, else on top of what the
    grader's user already runs."""
    tasks = limits.processes if uid is not None else \
        sum(n for _, n in _processes_of(os.getuid())) + limits.processes
    cpu = int(limits.timeout) + 5
    return [shutil.which("prlimit") or "prlimit", f"--as={limits.memory}", f"--fsize={FILE_CAP}",
            f"--cpu={cpu}:{cpu + 5}", "--core=0", f"--nproc={tasks}", "--"]


def kill_uid(uid: int, rounds: int = 20) -> None:
    """Kill every process of ``uid`` (as root; a fork bomb is bounded by the task limit)."""
    for _ in range(rounds):
        found = _processes_of(uid)
        if not found:
            return
        for pid, _ in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _kill(process: subprocess.Popen) -> None:
    """Kill the sandbox: bwrap's session (its PID namespace dies with its init)."""
    for target in (lambda: os.killpg(process.pid, signal.SIGKILL),
                   lambda: process.kill()):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    process.wait()


def read_tail(path: Path, cap: int = LOG_CAP) -> str:
    """The last ``cap`` bytes of a log file, read without loading the rest."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - cap))
            return f.read(cap).decode("utf-8", errors="replace")
    except OSError:
        return ""


def run(scratch: Path, limits: Limits, slot: int = 0,
        confinement: Confinement = BWRAP) -> RunResult:
    """Run the runner on ``scratch`` as ``confinement`` says; wait at most the timeout."""
    start = time.monotonic()
    log = scratch.parent / "log.txt"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            confinement.command(scratch, slot, limits), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, cwd=scratch, env=confinement.env(scratch, limits),
            start_new_session=True)
        RUNNING.add(process)
        try:
            process.wait(timeout=limits.timeout)
            status = "done"
        except subprocess.TimeoutExpired:
            status = "timeout"
        finally:
            _kill(process)
            confinement.clean_up(slot)
            RUNNING.discard(process)
    return RunResult(status, process.returncode, read_tail(log), time.monotonic() - start)


_WORKS: dict[str, bool] = {}
RUNNING: set[subprocess.Popen] = set()  # live sandboxes, killed by kill_running()


def kill_running() -> None:
    """Kill every sandbox still running (the grader was interrupted)."""
    for process in list(RUNNING):
        _kill(process)


def check_bwrap() -> tuple[bool, str]:
    """Whether bwrap runs `true` in a sandbox like the grader's here, and why not if not."""
    if "ok" in _WORKS:
        return _WORKS["ok"], "" if _WORKS["ok"] else INSTALL_HINT
    path = shutil.which("bwrap")
    if path is None:
        return False, INSTALL_HINT
    command = bwrap_command(Path("/tmp"), 0, Limits())
    command = command[:command.index("--") + 1] + ["/usr/bin/true"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"{path} failed ({error}). {INSTALL_HINT}"
    _WORKS["ok"] = done.returncode == 0
    if done.returncode:
        detail = done.stderr.decode(errors="replace").strip()[:200]
        return False, f"{path} is installed but cannot create a sandbox here ({detail}); " \
                      "unprivileged user namespaces may be disabled"
    return True, ""
