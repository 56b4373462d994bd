"""``condo docs``: generate the dbt documentation site and serve it on 127.0.0.1, offline.

``dbt docs generate`` writes ``target/index.html`` (the whole app, scripts and styles inline),
``manifest.json`` and ``catalog.json``; this command checks that the page fetches nothing
from another host, then serves the directory on the loopback interface only.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import re
import subprocess
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from spark_loaders.dbt_env import dbt_environment
from spark_loaders.domain import TARGETS
from spark_loaders.errors import CondoError
from spark_loaders.paths import project_root

HOST = "127.0.0.1"

# Markup and CSS that make a browser fetch a URL as soon as the page loads.
_FETCHING = re.compile(
    r"""<(?:script|img|iframe|audio|video|source|embed)\b[^>]*?\bsrc\s*=\s*["']?(?P<src>[^"'\s>]+)"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?(?P<href>[^"'\s>]+)"""
    r"""|@import\s+(?:url\()?\s*["']?(?P<import>[^"')\s;]+)"""
    r"""|url\(\s*["']?(?P<url>(?:https?:)?//[^"')\s]+)""",
    re.IGNORECASE,
)


def external_references(html: str) -> list[str]:
    """URLs on another host that the page would fetch while loading (scripts, styles,
    images, frames, fonts). Links the user may click are not fetches and are ignored."""
    found = []
    for match in _FETCHING.finditer(html):
        url = next(v for v in match.groupdict().values() if v)
        if url.lower().startswith(("http://", "https://", "//")):
            found.append(url)
    return found


def tracking_enabled(manifest: dict) -> bool:
    """dbt's docs app loads a third-party tracker only when the manifest says so."""
    return bool(manifest.get("metadata", {}).get("send_anonymous_usage_stats", True))


def check_offline(target_dir: Path) -> None:
    index = target_dir / "index.html"
    if not index.is_file():
        raise CondoError(f"{index} is missing: `dbt docs generate` did not produce the site")
    external = external_references(index.read_text(encoding="utf-8"))
    if external:
        raise CondoError(f"the docs site would load {external[0]} from the internet")
    manifest = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))
    if tracking_enabled(manifest):
        raise CondoError(
            "the docs site would load dbt's usage tracker: set DBT_SEND_ANONYMOUS_USAGE_STATS=false"
        )


def generate(target: str | None, target_dir: Path) -> None:
    env = dbt_environment(target)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [str(dbt), "docs", "generate", "--target-path", str(target_dir)]
    if target:
        cmd += ["--target", target]
    print(f"==> {' '.join(['dbt', *cmd[1:]])}", flush=True)
    result = subprocess.run(cmd, cwd=project_root(), env=env)
    if result.returncode != 0:
        raise CondoError("`dbt docs generate` failed (see its output above)")


def make_server(directory: Path, port: int) -> ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CondoError(f"port {port} is already in use: pick another with --port") from None
        raise CondoError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "docs",
        help="generate the dbt docs and serve them on 127.0.0.1 (works offline)",
        description="Run `dbt docs generate`, check the site loads nothing from the internet, "
        "and serve it on http://127.0.0.1:PORT until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default=None,
        help="dbt target whose catalog is documented (default: the profile's, postgres)",
    )
    parser.add_argument(
        "--target-path",
        type=Path,
        default=None,
        help="where dbt writes the site (default: the project's target/)",
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="generate and check the site, do not serve it"
    )
    parser.add_argument(
        "--no-generate", action="store_true", help="serve the site already in target/"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise CondoError(f"--port must be between 1 and 65535, got {args.port}")
    target_dir = (args.target_path or project_root() / "target").resolve()
    if not args.no_generate:
        generate(args.target, target_dir)
    check_offline(target_dir)
    if args.no_serve:
        print(f"docs generated in {target_dir}")
        return 0
    server = make_server(target_dir, args.port)
    print(f"serving the dbt docs on http://{HOST}:{args.port}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0
