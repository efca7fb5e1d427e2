"""A real WordPress (Debian's package) on PHP's built-in server over a throwaway MariaDB
database, with the plugin of integrations/wordpress/ in its plugins folder.

The core files are hard-linked (else copied) from /usr/share/wordpress into a temp dir, whose own
wp-config.php names the database; WordPress is installed by its own installer
(wp-admin/install.php), and may reach nothing but 127.0.0.1 (WP_HTTP_BLOCK_EXTERNAL).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.helpers import REPO
from tests.support.managed_service import ManagedService
from tests.support.redis_server import _die_with_parent, free_port

WORDPRESS = Path("/usr/share/wordpress")
PLUGIN = REPO / "integrations" / "wordpress" / "related-articles"
MYSQL = ["mysql", "--host=127.0.0.1", "--port=3306", "--user=root"]
ADMIN_USER = "editor"
ADMIN_PASSWORD = "correct-horse-battery-staple"

#: PHP's built-in server sends every path that is not a file or a folder to WordPress, as
#: Apache's rewrite rules would (pretty permalinks, /wp-json/).
ROUTER = """<?php
$path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path !== '/' && file_exists(__DIR__ . $path)) {
    return false;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = __DIR__ . '/index.php';
require __DIR__ . '/index.php';
"""


def wp_config(database: str, extra: str) -> str:
    keys = "".join(
        f"define('{name}', '{secrets.token_hex(24)}');\n"
        for name in (
            "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
            "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
        )
    )  # fmt: skip
    return f"""<?php
define('DB_NAME', '{database}');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', '127.0.0.1:3306');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
{keys}$table_prefix = 'wp_';
// A closed network: WordPress reaches only this machine, and never asks wordpress.org.
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_ACCESSIBLE_HOSTS', '127.0.0.1,localhost');
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
define('WP_ENVIRONMENT_TYPE', 'local');
define('WP_DEBUG', true);
define('WP_DEBUG_DISPLAY', false);
define('WP_DEBUG_LOG', __DIR__ . '/debug.log');
{extra}
if (!defined('ABSPATH')) {{
    define('ABSPATH', __DIR__ . '/');
}}
require_once ABSPATH . 'wp-settings.php';
"""


def _link_tree(source: Path, target: Path) -> None:
    try:
        shutil.copytree(source, target, symlinks=True, copy_function=os.link)
    except OSError:  # another filesystem: copy
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)


class WordPressSite(ManagedService):
    """One WordPress site: its database, its files in `root`, and `php -S` on `url`."""

    def __init__(
        self, root: Path, *, extra_config: str = "", mu_plugins: tuple[Path, ...] = ()
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = f"wp_test_{secrets.token_hex(6)}"
        self._extra_config = extra_config
        self._mu_plugins = mu_plugins
        self._process: subprocess.Popen[bytes] | None = None
        self._created = False

    @property
    def pid(self) -> int:
        """The server's process id: also its process group's, which its workers share."""
        assert self._process is not None
        return self._process.pid

    def sql(self, statement: str) -> str:
        """Run SQL on this site's database; its output, tab-separated, without headers."""
        done = subprocess.run(
            [*MYSQL, "--batch", "--skip-column-names", self.database, "-e", statement],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    def start(self) -> None:
        if not self._created:
            subprocess.run([*MYSQL, "-e", f"CREATE DATABASE {self.database}"], check=True)
            self._created = True
            _link_tree(WORDPRESS, self.root)
            (self.root / "wp-config.php").unlink()
            (self.root / "wp-config.php").write_text(wp_config(self.database, self._extra_config))
            (self.root / "router.php").write_text(ROUTER)
            shutil.copytree(PLUGIN, self.root / "wp-content" / "plugins" / PLUGIN.name)
            must_use = self.root / "wp-content" / "mu-plugins"
            for mu_plugin in self._mu_plugins:  # loaded by WordPress on every request
                must_use.mkdir(exist_ok=True)
                shutil.copy(mu_plugin, must_use / mu_plugin.name)
        env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}
        log = (self.root / "server.log").open("ab")
        self._process = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(self.root), "router.php"],
            cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while True:
            assert self._process.poll() is None, f"php -S exited:\n{self.log_tail()}"
            try:
                httpx.get(f"{self.url}/wp-login.php", timeout=5)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"php -S not up:\n{self.log_tail()}"
                time.sleep(0.05)

    def install(self) -> None:
        """WordPress's own installer, then pretty permalinks (so that /wp-json/ answers)."""
        answer = httpx.post(
            f"{self.url}/wp-admin/install.php?step=2",
            data={
                "weblog_title": "The Daily Example",
                "user_name": ADMIN_USER,
                "admin_password": ADMIN_PASSWORD,
                "admin_password2": ADMIN_PASSWORD,
                "pw_weak": "1",
                "admin_email": "editor@example.com",
                "blog_public": "0",
                "language": "",
            },
            timeout=120,
        )
        assert answer.status_code == 200 and "Success!" in answer.text, answer.text[-2000:]
        # No gravatars: the admin pages would ask gravatar.com for them.
        self.sql(
            "UPDATE wp_options SET option_value = '/%postname%/' WHERE option_name = "
            "'permalink_structure'; UPDATE wp_options SET option_value = '0' WHERE "
            "option_name = 'show_avatars'; DELETE FROM wp_options WHERE option_name = "
            "'rewrite_rules'"
        )

    def stop(self) -> None:
        """End the server and its workers: `php -S` forks PHP_CLI_SERVER_WORKERS of them into the
        session it leads, and they outlived a signal to it alone (holding the port)."""
        if self._process is not None:
            self._signal_all(signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._signal_all(signal.SIGKILL)
                self._process.wait()
            self._process = None

    def _signal_all(self, signum: int) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)  # its own session: the group is its pid

    def close(self) -> None:
        self.stop()
        if self._created:
            subprocess.run([*MYSQL, "-e", f"DROP DATABASE IF EXISTS {self.database}"], check=True)
            self._created = False

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("server.log", "debug.log"):
            path = self.root / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text


class AdminClient:
    """The REST API as the admin user: a logged-in cookie and the REST nonce."""

    def __init__(self, site: WordPressSite) -> None:
        self.site = site
        self.http = httpx.Client(base_url=site.url, timeout=30)
        self.http.cookies.set("wordpress_test_cookie", "WP Cookie check")
        login = self.http.post(
            "/wp-login.php",
            data={"log": ADMIN_USER, "pwd": ADMIN_PASSWORD, "wp-submit": "Log In",
                  "testcookie": "1", "redirect_to": f"{site.url}/wp-admin/"},
        )  # fmt: skip
        assert login.status_code in (200, 302), login.text[-1000:]
        nonce = self.http.get("/wp-admin/admin-ajax.php", params={"action": "rest-nonce"})
        assert nonce.status_code == 200 and nonce.text.strip() not in ("", "0"), nonce.text
        self.http.headers["X-WP-Nonce"] = nonce.text.strip()

    def rest(self, method: str, route: str, **json: Any) -> Any:
        answer = self.http.request(method, f"/wp-json/wp/v2/{route}", json=json or None)
        assert answer.status_code < 300, f"{method} {route}: {answer.status_code} {answer.text}"
        return answer.json()

    def publish(self, **fields: Any) -> dict[str, Any]:
        post: dict[str, Any] = self.rest("POST", "posts", status="publish", **fields)
        return post

    def close(self) -> None:
        self.http.close()
