"""Redis, PostgreSQL and RabbitMQ servers for `make run` and the test suite.

Stdlib only on purpose: this runs before the project's dependencies are
installed, and the test suite must be able to take a broker down and bring it
back without going through the client libraries it is testing.

Use an external server when one is configured or already listens on the
default port; otherwise start a private, throwaway one on a free port.

    python -m scripts.servers redis|postgres|rabbitmq [--configured URL] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_START_TIMEOUT = 10.0
POSTGRES_START_TIMEOUT = 30.0
RABBITMQ_START_TIMEOUT = 60.0  # an Erlang node boots in 5-10 s on two busy cores
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # the package's, without its su wrapper
STOP_TIMEOUT = 10.0
PG_SYSTEM_USER = "postgres"
PG_FALLBACK_USER = "ordersaga-pg"
# sun_path holds 108 bytes; PostgreSQL refuses a socket path of 108 or more.
_UNIX_SOCKET_MAX = 107


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on right now.

    The kernel picks it, so parallel test runs don't collide on a fixed port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port.

    SO_REUSEADDR mirrors what redis and postgres do, so connections left in
    TIME_WAIT by a server we just stopped don't count as "busy".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def redact(url: str) -> str:
    """The URL with its password replaced, for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _say(message: str) -> None:
    """One line on stderr: stdout of the CLI carries only the URL."""
    print(f"servers: {message}", file=sys.stderr, flush=True)


def _tail(path: Path | None, lines: int = 15) -> str:
    """The end of a server log, so a failed start explains itself."""
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


def _is_root() -> bool:
    return os.geteuid() == 0


def apt_install(package: str, missing: str) -> None:
    """Install a Debian package when we can (root with apt-get), else explain.

    `apt-get update` only runs when the plain install fails: it is slow and
    usually unnecessary on a machine whose package lists are fresh.
    """
    if not (_is_root() and shutil.which("apt-get")):
        raise RuntimeError(f"{missing} not found: install it (Debian/Ubuntu: apt-get install {package})")
    _say(f"{missing} not found; running apt-get install -y {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *package.split()]  # one package or several

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)

    result = run(install)
    if result.returncode != 0:
        run(["apt-get", "update", "-q"])
        result = run(install)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"apt-get install {package} failed: {' '.join(detail) or 'no output'}")


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<version>/bin by version, 9.6 < 15 < 16."""
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)


def _pg_bin_dirs() -> list[Path]:
    """Debian keeps server binaries off PATH, one directory per version."""
    dirs = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.is_dir()]
    return sorted(dirs, key=_version_key, reverse=True)


def _find_pg_tool(name: str) -> str | None:
    """A PostgreSQL program from PATH, else from the newest Debian version."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _pg_bin_dirs():
        candidate = directory / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _find_pg_server() -> Path | None:
    """The directory holding both initdb and postgres of one version.

    Taking both from one directory avoids pairing an initdb of one major
    version with a postgres of another (their data formats differ).
    PATH entries are resolved, since they are often symlinks into
    /usr/lib/postgresql/<version>/bin.
    """
    candidates: list[Path] = []
    for name in ("postgres", "initdb", "pg_ctl"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found).resolve().parent)
            candidates.append(Path(found).parent)
    candidates.extend(_pg_bin_dirs())
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return directory
    return None


def _wait_until(
    check: Callable[[], bool],
    deadline: float,
    proc: subprocess.Popen[bytes] | None = None,
) -> bool:
    """Poll `check` at short intervals until it holds or the deadline passes.

    Gives up early when `proc` exits: a server that died won't come up.
    """
    delay = 0.02
    while True:
        if proc is not None and proc.poll() is not None:
            return False
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.2)


# --------------------------------------------------------------------------
# Liveness checks
# --------------------------------------------------------------------------


def _resp(*args: str) -> bytes:
    """Encode a command as a RESP array of bulk strings."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether the Redis at `url` answers PING with +PONG.

    A bare TCP connect would accept any process on the port (or a Redis that
    wants a password we don't have), so this speaks RESP and sends AUTH when
    the URL carries a password.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"not a redis:// URL: {redact(url)}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            with sock.makefile("rb") as reader:
                if parts.password is not None:
                    auth = ["AUTH"]
                    if parts.username:
                        auth.append(unquote(parts.username))
                    auth.append(unquote(parts.password))
                    sock.sendall(_resp(*auth))
                    if not reader.readline(1024).startswith(b"+OK"):
                        return False
                sock.sendall(_resp("PING"))
                return reader.readline(1024).startswith(b"+PONG")
    except OSError:
        return False


def amqp_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether an AMQP 0-9-1 broker listens at `url`: it answers the protocol header with a
    Connection.Start method frame (frame type 1)."""
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "pyamqp"):
        raise ValueError(f"not an amqp:// URL: {redact(url)}")
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 5672), timeout=timeout
        ) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(7)[:1] == b"\x01"
    except OSError:
        return False


def _pg_target(url: str) -> tuple[str, int, str | None, str | None]:
    """Host (or socket directory), port, user and database of a libpq URL."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise ValueError(f"not a postgresql:// URL: {redact(url)}")
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["127.0.0.1"])[0]
    port = parts.port or int((query.get("port") or ["5432"])[0])
    user = unquote(parts.username) if parts.username else None
    dbname = unquote(parts.path.lstrip("/")) or None
    return host, port, user, dbname


def _pg_ssl_request(host: str, port: int, timeout: float) -> bool:
    """Send PostgreSQL's SSLRequest and expect its one-byte S/N reply.

    Used when pg_isready is missing; stronger than a TCP connect because only
    a PostgreSQL server replies that way, and it needs no credentials.
    """
    try:
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(f"{host}/.s.PGSQL.{port}")
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        with sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack("!ii", 8, 80877103))
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


def postgres_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether the PostgreSQL at `url` accepts connections.

    pg_isready tells "accepting" from "starting up" (exit 0 vs 1), which a
    socket check can't, so it is preferred when installed.
    """
    host, port, user, dbname = _pg_target(url)
    pg_isready = _find_pg_tool("pg_isready")
    if pg_isready is None:
        return _pg_ssl_request(host, port, timeout)
    seconds = max(1, int(timeout + 0.999))
    argv = [pg_isready, "-q", "-h", host, "-p", str(port), "-t", str(seconds)]
    if user:
        argv += ["-U", user]
    if dbname:
        argv += ["-d", dbname]
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=seconds + 2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


# --------------------------------------------------------------------------
# Server handle
# --------------------------------------------------------------------------


@dataclass
class Server:
    """A Redis or PostgreSQL server that the caller can use via `url`.

    `proc` is None for someone else's server: then stop() does nothing and
    kill()/start()/restart() refuse, so a test can't take down a shared one.
    Private servers run in their own session, so a Ctrl-C meant for
    `make run` reaches us and we stop them in order, not all at once.
    """

    url: str
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    kind: str = "external"
    argv: list[str] = field(default_factory=list, repr=False)
    log: Path | None = field(default=None, repr=False)
    datadir: Path | None = field(default=None, repr=False)
    run_as: tuple[int, int] | None = field(default=None, repr=False)
    start_timeout: float = field(default=REDIS_START_TIMEOUT, repr=False)
    stop_signal: int = field(default=signal.SIGTERM, repr=False)
    _owner_pid: int = field(default_factory=os.getpid, repr=False)

    @property
    def private(self) -> bool:
        """Whether this process started the server (and may stop it)."""
        return bool(self.argv)

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or {"redis": 6379, "amqp": 5672}.get(parts.scheme, 5432)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers(self, timeout: float = 1.0) -> bool:
        """Whether the server answers right now."""
        if self.kind == "redis" or self.url.startswith("redis"):
            return redis_answers(self.url, timeout)
        if self.kind == "rabbitmq" or self.url.startswith("amqp"):
            return amqp_answers(self.url, timeout)
        return postgres_answers(self.url, timeout)

    def _require_private(self, action: str) -> None:
        if not self.private:
            raise RuntimeError(f"cannot {action} {redact(self.url)}: not started by us")

    def _kill_tree(self) -> None:
        """SIGKILL the server, its process group and its direct children.

        PostgreSQL's backends call setsid(), so killing the postmaster's
        group misses them; they are found by parent pid instead. Called
        while the leader is unreaped, so none of these pids can be reused.
        """
        if self.proc is None:
            return
        children = _children(self.proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _halt(self, graceful: bool) -> None:
        """Stop the process; graceful lets it shut down by itself first.

        Nothing is signalled once the leader has been reaped: its pid could
        belong to an unrelated process by then.
        """
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if graceful:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
                return
            except subprocess.TimeoutExpired:
                pass
        self._kill_tree()
        proc.wait()

    def stop(self) -> None:
        """Shut a private server down and discard its data; no-op for external.

        Safe to call twice. A PostgreSQL cluster's directory is removed here
        (it is throwaway); its log stays in `workdir`.
        """
        if not self.private or os.getpid() != self._owner_pid:
            return
        self._halt(graceful=True)
        if self.kind in ("postgres", "rabbitmq") and self.datadir is not None:
            # A cluster's directory holds only the cluster; a node's holds its logs too.
            data = self.datadir.parent if self.kind == "postgres" else self.datadir
            shutil.rmtree(data, ignore_errors=True)
            self.datadir = None

    def kill(self) -> None:
        """SIGKILL the server without a graceful shutdown, to simulate a crash.

        The data directory stays, so start() can bring it back.
        """
        self._require_private("kill")
        self._halt(graceful=False)

    def start(self) -> None:
        """Start the server again on the same port and wait until it answers."""
        self._require_private("start")
        if self.running:
            return
        if self.kind in ("postgres", "rabbitmq") and self.datadir is None:
            raise RuntimeError(f"this {self.kind} was stopped and its data removed")
        _launch(self, fixed_port=True)

    def restart(self) -> None:
        """Stop gracefully and start again on the same port.

        A private Redis keeps nothing on disk, so it comes back empty; a
        private PostgreSQL or RabbitMQ comes back with its data.
        """
        self._require_private("restart")
        self._halt(graceful=True)
        self.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid`, read from /proc (Linux; [] elsewhere)."""
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which may hold spaces.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry))
    return found


def _launch(server: Server, fixed_port: bool) -> None:
    """Run server.argv and poll until it answers, else raise with its log.

    With a port we picked ourselves, a lost race for it (someone bound it
    between free_port() and the server's bind) is retried on a new port.
    With a fixed port, a server that exits early is retried on the same port
    until the deadline: after kill(), dying backends may briefly hold
    PostgreSQL's lock files.
    """
    deadline = time.monotonic() + server.start_timeout
    # A port someone else holds won't come free; don't wait the whole deadline.
    busy_deadline = min(deadline, time.monotonic() + 2.0)
    while True:
        if fixed_port and not _port_is_free(server.port):
            if time.monotonic() >= busy_deadline:
                raise RuntimeError(f"cannot start {server.kind}: port {server.port} is in use")
            time.sleep(0.05)
            continue
        if server.log is not None:
            server.log.parent.mkdir(parents=True, exist_ok=True)
        with open(server.log or os.devnull, "ab") as log:
            # The child keeps its own copy of the descriptor.
            uid_gid = server.run_as
            server.proc = subprocess.Popen(
                server.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=server.datadir.parent if server.datadir else server.workdir,
                env=_server_env(),
                start_new_session=True,
                user=uid_gid[0] if uid_gid else None,
                group=uid_gid[1] if uid_gid else None,
                extra_groups=[] if uid_gid else None,
            )
        if _wait_until(server.answers, deadline, server.proc):
            return
        server._halt(graceful=False)
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"{server.kind} on port {server.port} did not answer within "
                f"{server.start_timeout:.0f} s; log {server.log}:\n{_tail(server.log)}"
            )
        if not fixed_port:
            _set_port(server, free_port())
        time.sleep(0.05)


def _set_port(server: Server, port: int) -> None:
    """Move a not-yet-running private server to another port."""
    old = str(server.port)
    server.url = server.url.replace(f"127.0.0.1:{old}", f"127.0.0.1:{port}", 1)
    if server.kind == "rabbitmq":  # its port is in its environment (see start_rabbitmq)
        i = server.argv.index(f"RABBITMQ_NODE_PORT={old}")
        server.argv[i] = f"RABBITMQ_NODE_PORT={port}"
        return
    flag = "--port" if server.kind == "redis" else "-p"
    i = server.argv.index(flag)
    server.argv[i + 1] = str(port)


def _server_env() -> dict[str, str]:
    """Environment for server processes: no PG* overrides, a locale that exists."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _register(server: Server) -> Server:
    """Stop the server when the interpreter exits, if the caller forgot.

    Only in the process that started it: a forked child (a Celery worker,
    say) exiting must not take the parent's server with it.
    """
    atexit.register(server.stop)
    return server


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        apt_install("redis-server", "redis-server")
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server still not on PATH after apt-get install")
    return found


def start_redis(workdir: Path, port: int | None = None) -> Server:
    """Start a private redis-server on 127.0.0.1 that keeps nothing on disk.

    No persistence means restart() gives an empty broker and leaves no files
    behind to confuse the next run.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = port if port is not None else free_port()
    log = workdir / "redis.log"
    server = Server(
        url=f"redis://127.0.0.1:{chosen}/0",
        workdir=workdir,
        kind="redis",
        argv=[
            _redis_binary(),
            "--port",
            str(chosen),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--logfile",
            str(log),
        ],
        log=log,
        start_timeout=REDIS_START_TIMEOUT,
        stop_signal=signal.SIGTERM,
    )
    _launch(server, fixed_port=port is not None)
    return _register(server)


def ensure_redis(configured: str | None, workdir: Path, default: str = DEFAULT_REDIS_URL) -> Server:
    """The configured Redis, else one on the default URL, else a private one."""
    return _ensure("Redis", redis_answers, lambda: start_redis(workdir), configured, default)


def _ensure(
    name: str,
    answers: Callable[[str], bool],
    start: Callable[[], Server],
    configured: str | None,
    default: str,
) -> Server:
    """The configured server (which must answer), else the one on `default`, else `start()`."""
    if configured:
        if not answers(configured):
            raise RuntimeError(f"ordersaga: configured {name} {redact(configured)} does not answer")
        return Server(url=configured)
    if answers(default):
        return Server(url=default)
    return start()


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def _pg_user() -> tuple[int, int] | None:
    """uid/gid to run PostgreSQL as, or None to run as ourselves.

    PostgreSQL refuses to run as root. The Debian package creates `postgres`;
    without it we create a system user of our own.
    """
    if not _is_root():
        return None
    for name in (PG_SYSTEM_USER, PG_FALLBACK_USER):
        try:
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
        except KeyError:
            continue
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
            PG_FALLBACK_USER,
        ],
        check=True,
        capture_output=True,
    )
    entry = pwd.getpwnam(PG_FALLBACK_USER)
    return entry.pw_uid, entry.pw_gid


def _writable_by(path: Path, uid_gid: tuple[int, int]) -> bool:
    """Whether that user can create files in `path` (parents traversable).

    Asked of the kernel as that user: os.access() as root says yes to all.
    """
    test = shutil.which("test") or "/usr/bin/test"
    try:
        result = subprocess.run(
            [test, "-w", str(path), "-a", "-x", str(path)],
            user=uid_gid[0],
            group=uid_gid[1],
            extra_groups=[],
            cwd="/",
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0


def _cluster_dir(workdir: Path, uid_gid: tuple[int, int] | None) -> Path:
    """A fresh directory for the cluster's data and Unix socket.

    Inside workdir when the server user can reach it and the socket path
    fits; else in /tmp (pytest's tmp dirs are 0700 root, and long paths
    exceed the Unix-socket limit).
    """
    socket_tail = len("/.s.PGSQL.65535")
    base = Path(tempfile.mkdtemp(prefix="pg-", dir=workdir))
    usable = len(str(base)) + socket_tail <= _UNIX_SOCKET_MAX
    if usable and uid_gid is not None:
        os.chown(base, *uid_gid)
        usable = _writable_by(base, uid_gid)
    if usable:
        return base
    shutil.rmtree(base, ignore_errors=True)
    base = Path(tempfile.mkdtemp(prefix="ordersaga-pg-", dir="/tmp"))
    if uid_gid is not None:
        os.chown(base, *uid_gid)
    return base


def _pg_binaries() -> Path:
    found = _find_pg_server()
    if found is None:
        apt_install("postgresql", "PostgreSQL server (initdb/postgres)")
        found = _find_pg_server()
        if found is None:
            raise RuntimeError("initdb/postgres still not found after apt-get install")
    return found


def start_postgres(workdir: Path, crash_safe: bool = False) -> Server:
    """Start a throwaway PostgreSQL cluster on a free port, trust auth.

    Durability is switched off (fsync, full_page_writes, synchronous_commit):
    the data is thrown away anyway and tests run much faster without it.
    `crash_safe` keeps synchronous_commit on, so that a server killed with
    SIGKILL loses no commit it acknowledged (fsync stays off: the machine
    itself does not crash).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = _pg_binaries()
    uid_gid = _pg_user()
    base = _cluster_dir(workdir, uid_gid)
    datadir = base / "data"
    log = workdir / "postgres.log"
    init = subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        cwd=base,
        env=_server_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        user=uid_gid[0] if uid_gid else None,
        group=uid_gid[1] if uid_gid else None,
        extra_groups=[] if uid_gid else None,
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        detail = (init.stderr or init.stdout).strip()
        raise RuntimeError(f"initdb failed: {detail}")
    port = free_port()
    server = Server(
        url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
        workdir=workdir,
        kind="postgres",
        argv=[
            str(bindir / "postgres"),
            "-D",
            str(datadir),
            "-p",
            str(port),
            "-k",
            str(base),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            f"synchronous_commit={'on' if crash_safe else 'off'}",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        log=log,
        datadir=datadir,
        run_as=uid_gid,
        start_timeout=POSTGRES_START_TIMEOUT,
        # SIGINT is "fast" shutdown; SIGTERM would wait for clients to leave.
        stop_signal=signal.SIGINT,
    )
    try:
        _launch(server, fixed_port=False)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return _register(server)


def ensure_postgres(configured: str | None, workdir: Path, default: str = DEFAULT_POSTGRES_URL) -> Server:
    """The configured PostgreSQL, else the default URL, else a private one."""
    return _ensure("PostgreSQL", postgres_answers, lambda: start_postgres(workdir), configured, default)


# --------------------------------------------------------------------------
# RabbitMQ
# --------------------------------------------------------------------------


def _rabbitmq_server() -> Path:
    if not RABBITMQ_SERVER.exists():
        try:
            apt_install("rabbitmq-server", "rabbitmq-server")
        except RuntimeError:
            # Its post-install script starts the system's node, which fails where no init
            # system runs; the files this needs are unpacked by then.
            if not RABBITMQ_SERVER.exists():
                raise
    return RABBITMQ_SERVER


def start_rabbitmq(workdir: Path, port: int | None = None) -> Server:
    """Start a private RabbitMQ node on 127.0.0.1, its data, logs, Erlang cookie and settings in
    `workdir` (none of the system's /etc/rabbitmq), no plugins, its own distribution port.

    Unlike the private Redis it keeps its data across kill() and start(), as a real broker's
    durable queues do; stop() removes it."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = port if port is not None else free_port()
    node = f"ordersaga-{os.getpid()}-{chosen}@localhost"
    data = workdir / "mnesia"
    (workdir / "rabbitmq-env.conf").write_text("")
    (workdir / "rabbitmq.conf").write_text("log.console = false\nlog.file.level = warning\n")
    (workdir / "enabled_plugins").write_text("[].\n")
    log = workdir / "rabbitmq.out"
    environment = {
        "HOME": str(workdir),  # the Erlang cookie goes here
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(chosen),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_CONF_ENV_FILE": str(workdir / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(data),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
    }
    server = Server(
        url=f"amqp://guest:guest@127.0.0.1:{chosen}//",
        workdir=workdir,
        kind="rabbitmq",
        argv=["/usr/bin/env", *(f"{k}={v}" for k, v in environment.items()), str(_rabbitmq_server())],
        log=log,
        datadir=data,
        start_timeout=RABBITMQ_START_TIMEOUT,
        stop_signal=signal.SIGTERM,
    )
    _launch(server, fixed_port=port is not None)
    return _register(server)


def ensure_rabbitmq(configured: str | None, workdir: Path, default: str = DEFAULT_RABBITMQ_URL) -> Server:
    """The configured RabbitMQ, else one on the default URL, else a private one."""
    return _ensure("RabbitMQ", amqp_answers, lambda: start_rabbitmq(workdir), configured, default)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Print the server's URL; hold a private one until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.servers",
        description="Ensure a Redis, PostgreSQL or RabbitMQ server and print its URL.",
    )
    parser.add_argument("kind", choices=["redis", "postgres", "rabbitmq"])
    parser.add_argument(
        "--configured",
        metavar="URL",
        default=None,
        help="use this server; fail if it does not answer",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        type=Path,
        default=None,
        help="where a private server keeps its log (default: a temp dir)",
    )
    args = parser.parse_args(argv)

    own_workdir = args.workdir is None
    workdir: Path = args.workdir or Path(tempfile.mkdtemp(prefix=f"ordersaga-{args.kind}-"))
    ensure = {"redis": ensure_redis, "postgres": ensure_postgres, "rabbitmq": ensure_rabbitmq}[args.kind]
    try:
        try:
            server = ensure(args.configured, workdir)
        except (RuntimeError, ValueError) as exc:
            print(f"servers: {exc}", file=sys.stderr)
            return 1
        print(server.url, flush=True)
        if not server.private:
            return 0
        _say(f"private {args.kind} running (log {server.log}); Ctrl-C stops it")
        stopping = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stopping.wait(0.5):
                if not server.running:
                    _say(f"{args.kind} exited unexpectedly; log {server.log}")
                    return 1
        finally:
            server.stop()
        return 0
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
