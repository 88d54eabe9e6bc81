"""Start real servers for the test suite, each on 127.0.0.1, a free port and a throw-away dir.

Every server runs as a child process in the foreground, so its PID is known; readiness is
polled with a deadline, and the server is stopped by PID (SIGTERM, then SIGKILL). The
``start_*`` functions return frozen handles whose ``stop``, ``start``, ``restart`` and
``down`` let a fault-injection test take a server away and bring it back on the same port
and data dir. The programs come from Debian's packages, which ``./scripts/test`` installs.
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import http.client
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_POLL_INTERVAL_S = 0.05
_LOG_TAIL_CHARS = 3000


class ServerNotInstalled(RuntimeError):
    """A server's program is missing from this machine."""


class ServerFailedToStart(RuntimeError):
    """A server exited early or did not answer in time; the message ends with its log."""


def find_program(name: str, *, package: str, extra_dirs: Sequence[str] = ()) -> str:
    """Return the path of a server's program, or say which package brings it."""
    found = shutil.which(name)
    if found:
        return found
    # Non-root users often lack the sbin dirs (mosquitto, snmpd) on their PATH.
    for directory in (*extra_dirs, "/usr/local/sbin", "/usr/sbin", "/sbin"):
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServerNotInstalled(
        f"{name} is not installed (Debian package {package!r}). Run ./scripts/test, or "
        "./scripts/setup --with-servers, which installs the servers the tests need."
    )


def free_tcp_ports(count: int) -> list[int]:
    """Return distinct TCP ports of 127.0.0.1 that nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_udp_port() -> int:
    """Return a UDP port of 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_accepts(port: int, host: str = HOST) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_status(port: int, path: str, host: str = HOST) -> int | None:
    """Return the status of GET path on host:port, or None when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _child_pids(pid: int) -> list[int]:
    """Return the PIDs of a process's direct children (Linux /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def _identity(user: str | None) -> tuple[int | None, int | None, list[int] | None]:
    """Return uid, gid and (no) extra groups for subprocess to run as user; None: as we are."""
    if user is None:
        return None, None, None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid, []


class ServerProcess:
    """One server program run as a child process in the foreground, stopped by its PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        is_ready: Callable[[int], bool],
        env: dict[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._is_ready = is_ready
        self._env = env
        self._user = user
        self._cwd = cwd
        self._stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The PID of the running server."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._popen.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._popen is not None and self._popen.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server unless it runs, and return once it answers."""
        if self.running:
            return
        self._popen = None
        uid, gid, groups = _identity(self._user)
        with self.log_path.open("ab") as log:
            log.write(f"---- {time.strftime('%H:%M:%S')} starting {self.argv}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        try:
            self._wait_until_ready(popen, timeout_s)
        except BaseException:
            self._end(popen, kill=True)
            raise
        self._popen = popen

    def _wait_until_ready(self, popen: subprocess.Popen[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._is_ready(popen.pid):
            if popen.poll() is not None:
                raise ServerFailedToStart(
                    f"{self.name} exited with status {popen.returncode}.\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ServerFailedToStart(
                    f"{self.name} did not answer within {timeout_s:.0f} s.\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: its stop signal, or with kill=True a SIGKILL, as in a crash."""
        if self._popen is not None:
            self._end(self._popen, kill=kill)
            self._popen = None

    def _end(self, popen: subprocess.Popen[bytes], *, kill: bool) -> None:
        if popen.poll() is not None:
            return
        if kill:
            # A crash takes the server's worker processes (PostgreSQL's) with it.
            for pid in [popen.pid, *_child_pids(popen.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        else:
            popen.send_signal(self._stop_signal)
        try:
            popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self) -> str:
        """Return the end of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"---- end of {self.log_path}:\n{text[-_LOG_TAIL_CHARS:]}"


@dataclass(frozen=True, kw_only=True)
class Server:
    """Where a server listens, its data dir, and control of its process.

    ``pid`` follows the process: it changes when the server is restarted.
    """

    host: str
    port: int
    data_dir: Path
    process: ServerProcess = field(repr=False, compare=False)

    @property
    def pid(self) -> int:
        """The PID of the running server."""
        return self.process.pid

    def start(self) -> None:
        """Start the server again (same port and data dir) if it is stopped."""
        self.process.start()

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server; with kill=True by SIGKILL, as in a crash."""
        self.process.stop(kill=kill)

    def restart(self, *, kill: bool = False) -> None:
        """Stop the server (kill=True: SIGKILL) and start it on the same port and data dir."""
        self.stop(kill=kill)
        self.start()

    @contextlib.contextmanager
    def down(self, *, kill: bool = False) -> Iterator[None]:
        """Keep the server stopped inside the with-block, and start it again after."""
        self.stop(kill=kill)
        try:
            yield
        finally:
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


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


# --- Mosquitto ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """Write a throw-away CA and the server (CN and SAN 127.0.0.1) and client certificates it signs."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Gronkoll test CA"))
        .issuer_name(name("Gronkoll test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        common: str, usage: x509.ObjectIdentifier, san: bool
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256()), key

    server, server_key = issue(HOST, ExtendedKeyUsageOID.SERVER_AUTH, san=True)
    client, client_key = issue("gronkoll-collector", ExtendedKeyUsageOID.CLIENT_AUTH, san=False)
    return TlsFiles(
        ca_file=write_cert(ca, folder / "ca.pem"),
        server_cert=write_cert(server, folder / "server.pem"),
        server_key=write_key(server_key, folder / "server.key"),
        client_cert=write_cert(client, folder / "client.pem"),
        client_key=write_key(client_key, folder / "client.key"),
    )


@dataclass(frozen=True, kw_only=True)
class Mosquitto(Server):
    """A Mosquitto broker: anonymous on ``port``, user and password on ``auth_port``.

    Over TLS (certificates in ``tls``, signed by the test CA ``tls.ca_file``): user and
    password on ``tls_port``; a client certificate the CA signed, and nothing else, on
    ``mtls_port``.
    """

    auth_port: int
    username: str
    password: str
    tls_port: int
    mtls_port: int
    tls: TlsFiles


def start_mosquitto(
    data_dir: Path, *, username: str = "gronkoll", password: str = "gronkoll-test"
) -> Mosquitto:
    """Start Mosquitto with anonymous, password and TLS listeners, and persistence."""
    program = find_program("mosquitto", package="mosquitto")
    passwd_tool = find_program("mosquitto_passwd", package="mosquitto")
    port, auth_port, tls_port, mtls_port = free_tcp_ports(4)
    tls = make_tls_files(data_dir / "tls")
    (data_dir / "persist").mkdir(exist_ok=True)
    passwd = data_dir / "passwd"
    passwd.touch(mode=0o600)
    subprocess.run(
        [passwd_tool, "-b", str(passwd), username, password], check=True, capture_output=True
    )
    config = data_dir / "mosquitto.conf"
    # Run as root, mosquitto 2 drops to user "mosquitto", which cannot write our dir.
    config.write_text(
        f"""\
user {_current_user()}
per_listener_settings true
persistence true
persistence_location {data_dir / "persist"}/
autosave_interval 30
log_dest stderr
connection_messages false
max_queued_messages 100000

listener {port} {HOST}
allow_anonymous true

listener {auth_port} {HOST}
allow_anonymous false
password_file {passwd}

listener {tls_port} {HOST}
allow_anonymous false
password_file {passwd}
cafile {tls.ca_file}
certfile {tls.server_cert}
keyfile {tls.server_key}

listener {mtls_port} {HOST}
allow_anonymous true
require_certificate true
cafile {tls.ca_file}
certfile {tls.server_cert}
keyfile {tls.server_key}
"""
    )
    ports = (port, auth_port, tls_port, mtls_port)
    process = ServerProcess(
        "mosquitto",
        [program, "-c", str(config)],
        log_path=data_dir / "mosquitto.log",
        is_ready=lambda pid: all(tcp_accepts(p) for p in ports),
    )
    process.start()
    return Mosquitto(
        host=HOST,
        port=port,
        data_dir=data_dir,
        process=process,
        auth_port=auth_port,
        username=username,
        password=password,
        tls_port=tls_port,
        mtls_port=mtls_port,
        tls=tls,
    )


# --- InfluxDB 1.x --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InfluxDB(Server):
    """An InfluxDB 1.x server: HTTP API (``/write``, ``/query``, ``/ping``) on ``port``."""

    rpc_port: int

    @property
    def url(self) -> str:
        """The base URL of the HTTP API."""
        return f"http://{self.host}:{self.port}"


def start_influxdb(data_dir: Path, *, auth: bool = False) -> InfluxDB:
    """Start InfluxDB 1.x with its data, meta and WAL dirs in data_dir; with auth=True it
    asks for credentials (create the first admin user while none exists)."""
    program = find_program("influxd", package="influxdb")
    port, rpc_port = free_tcp_ports(2)
    config = data_dir / "influxdb.conf"
    # Every bind address is set: the defaults listen on all interfaces.
    config.write_text(
        f"""\
reporting-enabled = false
bind-address = "{HOST}:{rpc_port}"

[meta]
  dir = "{data_dir / "meta"}"

[data]
  dir = "{data_dir / "data"}"
  wal-dir = "{data_dir / "wal"}"
  query-log-enabled = false
  index-version = "inmem"

[monitor]
  store-enabled = false

[http]
  bind-address = "{HOST}:{port}"
  log-enabled = false
  pprof-enabled = false
  auth-enabled = {"true" if auth else "false"}

[continuous_queries]
  enabled = false
"""
    )
    process = ServerProcess(
        "influxd",
        [program, "run", "-config", str(config)],
        log_path=data_dir / "influxd.log",
        is_ready=lambda pid: http_status(port, "/ping") == 204,
    )
    process.start()
    return InfluxDB(host=HOST, port=port, data_dir=data_dir, process=process, rpc_port=rpc_port)


# --- VictoriaMetrics -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VictoriaMetrics(Server):
    """A VictoriaMetrics server: InfluxDB v1/v2 writes, ``/api/v1/export`` reads."""

    @property
    def url(self) -> str:
        """The base URL of the HTTP API."""
        return f"http://{self.host}:{self.port}"


def start_victoriametrics(data_dir: Path) -> VictoriaMetrics:
    """Start VictoriaMetrics keeping points of any age and showing new ones at once."""
    program = find_program("victoria-metrics", package="victoria-metrics")
    (port,) = free_tcp_ports(1)
    argv = [
        program,
        f"-httpListenAddr={HOST}:{port}",
        f"-storageDataPath={data_dir / 'storage'}",
        "-retentionPeriod=100y",  # the default, 1 month, drops fixed test dates silently
        "-search.latencyOffset=0s",  # the default, 30 s, hides the newest points
        "-search.disableCache",
        "-selfScrapeInterval=0",
        "-loggerLevel=WARN",
    ]
    process = ServerProcess(
        "victoria-metrics",
        argv,
        log_path=data_dir / "victoria-metrics.log",
        is_ready=lambda pid: http_status(port, "/health") == 200,
    )
    process.start()
    return VictoriaMetrics(host=HOST, port=port, data_dir=data_dir, process=process)


# --- net-snmp snmpd ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SnmpUser:
    """A further SNMP v3 user of the test agent; protocols as net-snmp's createUser spells them."""

    name: str
    auth_protocol: str | None = None  # MD5 | SHA | SHA-256 | SHA-512
    auth_password: str = ""
    priv_protocol: str | None = None  # DES | AES | AES-192 | AES-256 (Blumenthal key extension)
    priv_password: str = ""

    def config(self) -> str:
        """The snmpd.conf lines that create this user with read-only access at its level."""
        create = f"createUser {self.name}"
        level = "noauth"
        if self.auth_protocol is not None:
            create += f' {self.auth_protocol} "{self.auth_password}"'
            level = "auth"
        if self.priv_protocol is not None:
            create += f' {self.priv_protocol} "{self.priv_password}"'
            level = "priv"
        return f"{create}\nrouser {self.name} {level}\n"


# One user per protocol pair Debian's net-snmp 5.9.3 accepts that the main user does not cover.
# SHA and MD5 with AES-192/256 need the key extension, where Blumenthal and Reeder differ.
SNMPD_EXTRA_USERS = (
    SnmpUser(
        name="gk-sha256-aes256",
        auth_protocol="SHA-256",
        auth_password="gronkoll-auth-256",
        priv_protocol="AES-256",
        priv_password="gronkoll-priv-256",
    ),
    SnmpUser(
        name="gk-sha512-aes192",
        auth_protocol="SHA-512",
        auth_password="gronkoll-auth-512",
        priv_protocol="AES-192",
        priv_password="gronkoll-priv-192",
    ),
    SnmpUser(
        name="gk-sha-aes256",
        auth_protocol="SHA",
        auth_password="gronkoll-auth-sha",
        priv_protocol="AES-256",
        priv_password="gronkoll-priv-256",
    ),
    SnmpUser(
        name="gk-md5-aes192",
        auth_protocol="MD5",
        auth_password="gronkoll-auth-md5",
        priv_protocol="AES-192",
        priv_password="gronkoll-priv-192",
    ),
    SnmpUser(
        name="gk-md5-des",
        auth_protocol="MD5",
        auth_password="gronkoll-auth-md5",
        priv_protocol="DES",
        priv_password="gronkoll-priv-des",
    ),
    SnmpUser(
        name="gk-sha-aes192c",
        auth_protocol="SHA",
        auth_password="gronkoll-auth-sha",
        priv_protocol="AES-192-C",
        priv_password="gronkoll-priv-192c",
    ),
    SnmpUser(
        name="gk-md5-aes256c",
        auth_protocol="MD5",
        auth_password="gronkoll-auth-md5",
        priv_protocol="AES-256-C",
        priv_password="gronkoll-priv-256c",
    ),
    SnmpUser(name="gk-sha-auth", auth_protocol="SHA", auth_password="gronkoll-auth-only"),
    SnmpUser(name="gk-noauth"),
)


@dataclass(frozen=True, kw_only=True)
class Snmpd(Server):
    """A net-snmp agent on UDP ``port``: v2c ``community``, a v3 SHA/AES authPriv user, and
    ``extra_users`` for the other v3 protocols and security levels."""

    community: str
    v3_user: str
    auth_password: str  # HMAC-SHA-96
    priv_password: str  # AES-128 (CFB)
    sys_name: str
    extra_users: tuple[SnmpUser, ...] = ()  # more v3 users, one per protocol pair


def _ber(tag: int, payload: bytes) -> bytes:
    if len(payload) > 127:
        raise ValueError("only short BER lengths are needed here")
    return bytes([tag, len(payload)]) + payload


def snmp_v2c_get_sysuptime(community: str) -> bytes:
    """Return an SNMPv2c GET request for sysUpTime.0, enough to see an agent answer."""
    oid = bytes.fromhex("2b06010201010300")  # 1.3.6.1.2.1.1.3.0
    varbind = _ber(0x30, _ber(0x06, oid) + b"\x05\x00")
    pdu = _ber(
        0xA0, _ber(0x02, b"\x01") + _ber(0x02, b"\x00") + _ber(0x02, b"\x00") + _ber(0x30, varbind)
    )
    return _ber(0x30, _ber(0x02, b"\x01") + _ber(0x04, community.encode()) + pdu)


def snmp_answers(port: int, community: str, host: str = HOST) -> bool:
    """Tell whether an SNMP agent on host:port answers a v2c GET."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        try:
            # Connected, so "port unreachable" fails recv at once instead of timing out.
            sock.connect((host, port))
            sock.send(snmp_v2c_get_sysuptime(community))
            return bool(sock.recv(4096))
        except OSError:
            return False


def start_snmpd(
    data_dir: Path,
    *,
    community: str = "gronkoll",
    v3_user: str = "gkuser",
    auth_password: str = "gronkoll-auth",
    priv_password: str = "gronkoll-priv",
    sys_name: str = "gronkoll-snmpd",
    extra_users: Sequence[SnmpUser] = SNMPD_EXTRA_USERS,
) -> Snmpd:
    """Start snmpd reading only our config, with its persistent state in data_dir."""
    program = find_program("snmpd", package="snmpd")
    port = free_udp_port()
    (data_dir / "persist").mkdir(exist_ok=True)
    config = data_dir / "snmpd.conf"
    # Passphrases must be at least 8 characters. "master no": no AgentX socket in /var.
    config.write_text(
        f"""\
agentAddress udp:{HOST}:{port}
master no
dontLogTCPWrappersConnects yes
rocommunity {community} {HOST}
createUser {v3_user} SHA "{auth_password}" AES "{priv_password}"
rouser {v3_user} priv
{"".join(user.config() for user in extra_users)}sysLocation gronkoll-test
sysName {sys_name}
"""
    )
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(data_dir / "persist"), "MIBS": ""}
    process = ServerProcess(
        "snmpd",
        # -f: foreground; -C: none of /etc/snmp; -Le: log to stderr (our log file).
        [program, "-f", "-C", "-c", str(config), "-Le"],
        log_path=data_dir / "snmpd.log",
        is_ready=lambda pid: snmp_answers(port, community),
        env=env,
    )
    process.start()
    return Snmpd(
        host=HOST,
        port=port,
        data_dir=data_dir,
        process=process,
        community=community,
        v3_user=v3_user,
        auth_password=auth_password,
        priv_password=priv_password,
        sys_name=sys_name,
        extra_users=tuple(extra_users),
    )


# --- PostgreSQL ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PostgreSQL(Server):
    """A PostgreSQL cluster: password login over TCP, trust over the unix socket."""

    socket_dir: Path
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """A SQLAlchemy URL (psycopg 3) for the superuser over TCP."""
        return (
            f"postgresql+psycopg://{self.user}:{self.password}"
            f"@{self.host}:{self.port}/{self.database}"
        )


def _postgres_bindir() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    # Debian keeps the server programs out of PATH, one folder per major version.
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if not found:
        raise ServerNotInstalled(
            "PostgreSQL is not installed (Debian package 'postgresql'). Run ./scripts/test, "
            "or ./scripts/setup --with-servers, which installs the servers the tests need."
        )
    return found[-1].parent


def _let_user_reach(path: Path, owner: str) -> None:
    """Give owner the folder and let it search (not list) the private temp dirs above it."""
    entry = pwd.getpwnam(owner)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    temp_root = Path(tempfile.gettempdir()).resolve()
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & stat.S_IXOTH:
            continue
        # pytest's temp dirs are 0700; only open those, never a home directory.
        if temp_root not in parent.parents or parent.stat().st_uid != os.geteuid():
            raise ServerFailedToStart(
                f"user {owner!r} cannot reach {path}: {parent} is private. "
                f"Keep pytest's temp dir under {temp_root} (no --basetemp elsewhere)."
            )
        os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)


def _postmaster_ready(pid_file: Path, pid: int) -> bool:
    # postmaster.pid: line 1 the PID, line 8 the status, "ready" once it takes connections.
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"


def start_postgresql(
    data_dir: Path,
    *,
    user: str = "gronkoll",
    password: str = "gronkoll-test",
    database: str = "postgres",
) -> PostgreSQL:
    """Create a throw-away cluster in data_dir and start PostgreSQL on it.

    initdb refuses to run as root, so as root both run as the ``postgres`` user, which
    then owns data_dir.
    """
    bindir = _postgres_bindir()
    run_as = "postgres" if os.geteuid() == 0 else None
    if run_as is not None:
        try:
            _let_user_reach(data_dir, run_as)
        except KeyError as err:
            raise ServerNotInstalled(
                "no 'postgres' user: install Debian's 'postgresql' with ./scripts/test"
            ) from err
    pgdata = data_dir / "pgdata"
    socket_dir = data_dir / "sockets"
    socket_dir.mkdir(exist_ok=True)
    pwfile = data_dir / "pwfile"
    pwfile.write_text(password + "\n")
    uid, gid, groups = _identity(run_as)
    if uid is not None and gid is not None:
        for path in (socket_dir, pwfile):
            os.chown(path, uid, gid)
    initdb = subprocess.run(
        [
            str(bindir / "initdb"),
            f"--pgdata={pgdata}",
            f"--username={user}",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ],
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        user=uid,
        group=gid,
        extra_groups=groups,
    )
    if initdb.returncode != 0:
        raise ServerFailedToStart(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
    (port,) = free_tcp_ports(1)
    argv = [
        str(bindir / "postgres"),
        "-D",
        str(pgdata),
        "-p",
        str(port),
        "-k",
        str(socket_dir),
        "-c",
        f"listen_addresses={HOST}",
        # Throw-away data: durability only costs time here.
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
    ]
    process = ServerProcess(
        "postgres",
        argv,
        log_path=data_dir / "postgres.log",
        is_ready=lambda pid: _postmaster_ready(pgdata / "postmaster.pid", pid),
        user=run_as,
        cwd=data_dir,
        # SIGTERM waits for every client to leave; SIGINT ("fast") disconnects them.
        stop_signal=signal.SIGINT,
    )
    process.start()
    return PostgreSQL(
        host=HOST,
        port=port,
        data_dir=data_dir,
        process=process,
        socket_dir=socket_dir,
        user=user,
        password=password,
        database=database,
    )


# --- snmpsim -------------------------------------------------------------------------------

SIM_VENV = Path(__file__).resolve().parent.parent / ".venv-sim"
SIM_PROGRAM = "snmpsim-command-responder"


@dataclass(frozen=True, kw_only=True)
class Snmpsim(Server):
    """snmpsim on UDP ``port``: one v2c community per recording, named after its file."""

    communities: tuple[str, ...]


def _nobody_can_reach(path: Path) -> Path | None:
    """The first folder on the way to path that other users cannot enter, if any."""
    for folder in [*reversed(path.resolve().parents), path.resolve()]:
        if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


def start_snmpsim(data_dir: Path, *, recordings: Path, venv: Path = SIM_VENV) -> Snmpsim:
    """Start snmpsim serving copies of the ``.snmprec`` files in recordings.

    As root, snmpsim insists on dropping to ``nobody``, who must then read its Python, the
    copied recordings and write its cache: data_dir is handed to nobody and the private
    temp dirs above it opened for search, as for PostgreSQL.
    """
    program = venv / "bin" / SIM_PROGRAM
    if not os.access(program, os.X_OK):
        raise ServerNotInstalled(
            f"snmpsim is not installed ({program} is missing). Run ./scripts/test, or "
            "./scripts/setup --with-servers, which makes .venv-sim with snmpsim in it."
        )
    communities = tuple(sorted(p.stem for p in recordings.glob("*.snmprec")))
    if not communities:
        raise ServerFailedToStart(f"no .snmprec recordings in {recordings}")
    data, cache = data_dir / "data", data_dir / "cache"
    data.mkdir(exist_ok=True)
    cache.mkdir(exist_ok=True)
    for name in communities:
        copy = data / f"{name}.snmprec"
        shutil.copyfile(recordings / f"{name}.snmprec", copy)
        copy.chmod(0o644)
    port = free_udp_port()
    argv = [
        str(program),
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint={HOST}:{port}",
        "--logging-method=null",  # otherwise every request is logged, which is slow
    ]
    if os.geteuid() == 0:
        # snmpsim refuses to run as root; after the drop, nobody reads all of this.
        blocked = _nobody_can_reach(venv)
        if blocked is not None:
            raise ServerFailedToStart(
                f"snmpsim drops to user 'nobody', who cannot enter {blocked} to reach {venv}; "
                "keep the work tree where other users can read it"
            )
        _let_user_reach(data_dir, "nobody")
        nobody = pwd.getpwnam("nobody")
        for path in (data, cache, *data.iterdir()):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        argv += ["--process-user=nobody", f"--process-group={grp.getgrgid(nobody.pw_gid).gr_name}"]
    process = ServerProcess(
        "snmpsim",
        argv,
        log_path=data_dir / "snmpsim.log",
        # Every recording answers: snmpsim has indexed them all (first start builds the cache).
        is_ready=lambda pid: all(snmp_answers(port, c) for c in communities),
        cwd=data_dir,
    )
    process.start()
    return Snmpsim(
        host=HOST, port=port, data_dir=data_dir, process=process, communities=communities
    )
