"""nginx started by the tests with the shipped configuration, ``deploy/nginx/lngate.conf``.

The shipped file is the template: :func:`render` replaces only its lines marked
``# rendered: <what>`` (instance addresses, listen addresses, certificate and log paths) and
leaves every other directive as shipped. nginx then runs as an ordinary process, root or not:
``nginx -p <dir> -c <dir>/nginx.conf -g 'daemon off;'``, with its pid file, logs and temporary
files in that directory, on free loopback ports, with a throwaway self-signed certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "nginx" / "lngate.conf"
_MARK = re.compile(r"^(?P<indent>\s*)(?P<directive>.*?)\s*#\s*rendered:\s*(?P<what>[\w ]+?)\s*$")
_ACCESS = re.compile(r'"(?P<method>\w+) (?P<uri>\S+)" (?P<status>\d+) .* upstream=(?P<up>.*?) '
                     r'status=')
INSTALL_NGINX = ("install it with `apt-get install -y --no-install-recommends nginx` "
                 "(as .ci/run does)")


class NginxError(RuntimeError):
    """nginx is missing, refused the configuration, or did not start."""


def nginx_binary() -> str:
    """The nginx executable (``PATH``, then ``/usr/sbin``), or :class:`NginxError`."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise NginxError(f"nginx is not installed: {INSTALL_NGINX}")
    return found


@dataclass(frozen=True)
class Rendering:
    """What the template's marked lines become."""

    instances: Sequence[int]
    """Ports of the gateway instances on 127.0.0.1."""
    https_port: int
    http_port: int
    certificate: Path
    key: Path
    log_dir: Path


def render(template: str, rendering: Rendering) -> str:
    """The template with its ``# rendered:`` lines replaced; everything else is kept."""
    out: list[str] = []
    instances_done = False
    seen: set[str] = set()
    for line in template.splitlines():
        match = _MARK.match(line)
        if match is None:
            out.append(line)
            continue
        indent, directive, what = match["indent"], match["directive"], match["what"]
        seen.add(what)
        if what == "instances":
            if not instances_done:  # all the instance lines become ours, with their options
                options = directive.split(None, 2)[2] if len(directive.split()) > 2 else ";"
                for port in rendering.instances:
                    out.append(f"{indent}server 127.0.0.1:{port} {options}".rstrip())
                instances_done = True
            continue
        replacement = {
            "http": f"listen 127.0.0.1:{rendering.http_port};",
            "https": f"listen 127.0.0.1:{rendering.https_port} ssl;",
            "certificate": f"ssl_certificate {rendering.certificate};",
            "key": f"ssl_certificate_key {rendering.key};",
            "access log": f"access_log {rendering.log_dir / 'access.log'} lngate;",
            "error log": f"error_log {rendering.log_dir / 'error.log'} warn;",
        }.get(what)
        if replacement is None:
            raise NginxError(f"the template marks a line `rendered: {what}` the tests do not know")
        out.append(indent + replacement)
    missing = {"instances", "http", "https", "certificate", "key", "access log",
               "error log"} - seen
    if missing:
        raise NginxError(f"the template has no `# rendered:` line for {sorted(missing)}")
    return "\n".join(out) + "\n"


def _main_config(folder: Path, site: Path) -> str:
    """The few main-context lines a packaged nginx.conf has, pointing into ``folder``."""
    temp = {name: folder / "temp" / name for name in
            ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    return "\n".join([
        "worker_processes 1;",
        f"pid {folder / 'nginx.pid'};",
        f"error_log {folder / 'error.log'} warn;",
        "events { worker_connections 1024; }",
        "http {",
        "    default_type application/octet-stream;",
        f"    client_body_temp_path {temp['client_body']};",
        f"    proxy_temp_path {temp['proxy']};",
        f"    fastcgi_temp_path {temp['fastcgi']};",
        f"    uwsgi_temp_path {temp['uwsgi']};",
        f"    scgi_temp_path {temp['scgi']};",
        f"    include {site};",
        "}",
        "",
    ])


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost (openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise NginxError("the openssl command is needed for nginx's test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    key.chmod(0o644)  # nginx's master reads it; workers may run as another user
    return cert, key


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """One nginx process serving the rendered shipped configuration."""

    def __init__(self, folder: Path, instances: Sequence[int]) -> None:
        self.folder = folder
        self.instances = list(instances)
        self.https_port = free_port()
        self.http_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self.certificate: Path | None = None

    @property
    def url(self) -> str:
        """The HTTPS base URL clients use."""
        return f"https://127.0.0.1:{self.https_port}"

    def client_ssl(self) -> ssl.SSLContext:
        """A TLS context that trusts this nginx's certificate (and nothing else)."""
        assert self.certificate is not None
        return ssl.create_default_context(cafile=str(self.certificate))

    @property
    def access_log(self) -> Path:
        return self.folder / "logs" / "access.log"

    async def logged(self, uri: str, count: int, timeout: float = 5.0) -> list[re.Match[str]]:
        """:meth:`access_entries` for ``uri`` once there are at least ``count``: nginx writes a
        request's line after its answer is sent, so a client holding the answer can read the
        log before the line is in it (seen once in a loaded CI run)."""
        async with asyncio.timeout(timeout):
            while len(entries := self.access_entries(uri)) < count:
                await asyncio.sleep(0.05)
        return entries

    def access_entries(self, uri: str) -> list[re.Match[str]]:
        """Access log entries for ``uri`` (no query), oldest first: groups ``method``,
        ``status`` and ``up`` (the instances tried, comma-separated)."""
        text = self.access_log.read_text() if self.access_log.exists() else ""
        found = (_ACCESS.search(line) for line in text.splitlines())
        return [m for m in found if m and m["uri"] == uri]

    def error_log(self) -> str:
        """Everything nginx logged as errors (its own and the site's)."""
        return "".join(p.read_text(errors="replace") for p in
                       (self.folder / "error.log", self.folder / "logs" / "error.log")
                       if p.exists())

    def write_config(self) -> Path:
        """Render the template and the main configuration; returns the main file."""
        # Workers may run as another user (nginx started as root): they must reach the files.
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        for sub in ("logs", "temp"):
            (self.folder / sub).mkdir(exist_ok=True)
            (self.folder / sub).chmod(0o777)
        if self.certificate is None:
            self.certificate, self.key = make_certificate(self.folder)
        site = self.folder / "lngate.conf"
        site.write_text(render(TEMPLATE.read_text(), Rendering(
            instances=self.instances, https_port=self.https_port, http_port=self.http_port,
            certificate=self.certificate, key=self.key, log_dir=self.folder / "logs")))
        main = self.folder / "nginx.conf"
        main.write_text(_main_config(self.folder, site))
        return main

    def _command(self, *extra: str) -> list[str]:
        return [nginx_binary(), "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                "-e", str(self.folder / "error.log"), *extra]

    def test_config(self) -> str:
        """``nginx -t`` on the rendered configuration; its output, or :class:`NginxError`."""
        self.write_config()
        result = subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise NginxError(f"nginx -t refused the configuration:\n{result.stderr}")
        return result.stderr

    def start(self, timeout: float = 15.0) -> Nginx:
        """Start nginx in the foreground (``daemon off``) and wait until it accepts."""
        self.write_config()
        log = open(self.folder / "stderr.log", "ab")  # noqa: SIM115 - closed with the process
        self._process = subprocess.Popen(
            self._command("-g", "daemon off;"), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise NginxError(f"nginx exited with {self._process.returncode}:\n"
                                 f"{self.error_log()}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise NginxError(f"nginx did not listen within {timeout} s:\n{self.error_log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop nginx (fast shutdown, then KILL after 10 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_nginx(folder: Path, instances: Sequence[int]) -> Iterator[Nginx]:
    """An :class:`Nginx` for ``instances``, stopped at the end of the block."""
    with Nginx(folder, instances) as nginx:
        yield nginx
