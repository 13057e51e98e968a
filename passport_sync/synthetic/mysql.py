"""A MySQL/MariaDB server given as ``mysql://user[:password]@host[:port]``, where the demo and the
benchmark create their throwaway OpenMRS databases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql

from passport_sync.errors import UsageError

DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306"


@dataclass(frozen=True, slots=True)
class MySQLTarget:
    """A MySQL/MariaDB server and a user that may create and drop databases."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)

    def describe(self) -> str:
        """For messages: never the password."""
        return f"{self.user}@{self.host}:{self.port}"

    def connect(self, database: str | None = None, **options: Any) -> Any:
        """A pymysql connection (autocommit unless ``options`` say otherwise); driver errors as raised."""
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            **{"autocommit": True, "connect_timeout": 10, **options},
        )


def parse_mysql_url(url: str) -> MySQLTarget:
    """``mysql://user[:password]@host[:port]`` (``mariadb://`` too); the password may be %-escaped."""
    try:
        parts = urlsplit(url)
        port = parts.port or 3306
    except ValueError:
        raise UsageError(
            "--mysql-url is not a URL", hint=f"use e.g. {DEFAULT_MYSQL_URL} or mysql://user:password@host:3306"
        ) from None
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise UsageError(
            "--mysql-url must look like mysql://user:password@host:port",
            hint=f"the default is {DEFAULT_MYSQL_URL}",
        )
    if parts.path not in ("", "/") or parts.query:
        raise UsageError(
            "--mysql-url names a database or options; the demo creates its own databases",
            hint="give only user, password, host and port; choose the database names with --prefix",
        )
    return MySQLTarget(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
    )
