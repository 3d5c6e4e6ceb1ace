"""The environment that points programs at the proxy, and ``inspector env`` that prints it.

``inspector run`` gives this environment to the command it runs; ``inspector env`` prints
it as shell lines (``eval "$(inspector env)"``) for a proxy running elsewhere, say the UI
in another terminal. ``NO_PROXY`` is left as the user set it. Node, which ignores the proxy
variables before 22.21/24, gets a preload in ``NODE_OPTIONS`` (env_node.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

from certs import CAError, CertificateAuthority
from inspector.config import ConfigError, default_confdir
from inspector.env_bundle import ensure_bundle
from inspector.env_node import ensure_preload, node_options
from protocol.authority import host_port

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
# Each names a file of CAs its readers trust instead of the system's: Python's ssl and
# OpenSSL, requests, curl, git, the AWS SDKs and CLI, pip, and gRPC (grpcio and the other
# gRPC core languages: bundled roots otherwise, neither the system store nor SSL_CERT_FILE).
BUNDLE_VARS = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "PIP_CERT",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
)
NODE_CA_VAR = "NODE_EXTRA_CA_CERTS"  # Node adds these to its own CAs: the inspector CA alone
# Node ignores the proxy variables before 22.21/24: a preload routes it (env_node.py).
NODE_VARS = ("NODE_OPTIONS", "NODE_USE_ENV_PROXY")
NODE_COMMENT = (
    "# Node before 22.21/24 ignores the proxy variables: NODE_OPTIONS preloads "
    "node-proxy.cjs, which routes fetch and http/https"
)


def proxy_url(host: str, port: int, auth: tuple[str, str] | None = None) -> str:
    """The URL clients reach a proxy listening on ``host:port`` at (credentials included)."""
    userinfo = ""
    if auth is not None:
        userinfo = f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}@"
    return f"http://{userinfo}{host_port(_reachable(host), port)}"


def _reachable(host: str) -> str:
    """A proxy listening on every address is reached on loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


def proxy_environment(
    url: str, bundle: Path, ca_cert: Path, node_preload: Path | None = None
) -> dict[str, str]:
    """The variables, in SPEC.md's order: the proxy URL, the CA bundle, Node's extra CA;
    then, with ``node_preload``, Node's options (after the NODE_OPTIONS of our own
    environment, which is the shell's for ``eval "$(inspector env)"``)."""
    env = dict.fromkeys(PROXY_VARS, url)
    env.update(dict.fromkeys(BUNDLE_VARS, str(bundle)))
    env[NODE_CA_VAR] = str(ca_cert)
    if node_preload is not None:
        env["NODE_OPTIONS"] = node_options(os.environ.get("NODE_OPTIONS", ""), node_preload)
        env["NODE_USE_ENV_PROXY"] = "1"
    return env


def environment_for(confdir: Path, url: str) -> dict[str, str]:
    """The environment for the proxy at ``url`` whose CA lives in ``confdir``."""
    try:
        ca = CertificateAuthority.load_or_create(confdir.expanduser())
    except CAError as e:
        raise ConfigError(str(e)) from None
    return proxy_environment(url, *confdir_files(ca))


def confdir_files(ca: CertificateAuthority) -> tuple[Path, Path, Path]:
    """The CA bundle, the CA certificate and Node's preload, written into the CA's confdir."""
    confdir = ca.cert_path.parent
    try:
        return ensure_bundle(ca), ca.cert_path, ensure_preload(confdir)
    except OSError as e:
        raise ConfigError(
            f"cannot write the CA bundle or Node's preload in {confdir}: {e}"
        ) from None


# --- shell syntax ------------------------------------------------------------------------------


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _powershell_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_SHELLS = {  # each line's syntax, and how the shell applies them ({} holds the options)
    "sh": (lambda k, v: f"export {k}={_sh_quote(v)}", 'eval "$(inspector env{})"'),
    "fish": (lambda k, v: f"set -gx {k} {_fish_quote(v)}", "inspector env{} --shell fish | source"),
    "powershell": (
        lambda k, v: f"$env:{k} = {_powershell_quote(v)}",
        "inspector env{} --shell powershell | Invoke-Expression",
    ),
}


def shell_lines(env: dict[str, str], shell: str, url: str, options: str = "") -> str:
    """``env`` as lines for ``shell`` (sh, fish or powershell), with a comment on top saying
    how to apply them (``options``: those given, such as `` --proxy URL``, so it is the same)."""
    line, usage = _SHELLS[shell]
    usage = usage.format(options)
    comments = [f"# points this shell at the proxy {_without_password(url)}: {usage}"]
    if "NODE_OPTIONS" in env:
        comments.append(NODE_COMMENT)
    return "\n".join([*comments, *(line(k, v) for k, v in env.items())]) + "\n"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _checked_proxy(text: str) -> str:
    parts = urlsplit(text if "://" in text else f"http://{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ConfigError(
            f"bad --proxy {text!r}: use http://HOST:PORT (e.g. http://127.0.0.1:8080)"
        )
    return parts.geturl()


def main(args: argparse.Namespace) -> int:
    """``inspector env``: print the lines; ``args.listen`` holds the configured listen options."""
    listen = args.listen
    if args.proxy is not None:
        url = _checked_proxy(args.proxy)
    else:
        url = proxy_url(listen.listen_host, listen.listen_port, listen.proxy_auth)
    env = environment_for(args.confdir, url)
    sys.stdout.write(shell_lines(env, args.shell, url, _given_options(args)))
    return 0


def _given_options(args: argparse.Namespace) -> str:
    """`` --proxy URL --confdir DIR`` as given (the password masked), for the usage comment."""
    given = []
    if args.proxy is not None:
        given += ["--proxy", _without_password(args.proxy)]
    if Path(args.confdir).expanduser() != default_confdir():
        given += ["--confdir", str(args.confdir)]
    return "".join(f" {shlex.quote(word)}" for word in given)
