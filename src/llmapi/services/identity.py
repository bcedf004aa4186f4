"""Everything identity needs at run time, built from settings: database, key ring, authenticator, the
client-credentials grant, the admin service and usage accounting, with their background upkeep."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from llmapi.auth.access_tokens import AccessTokens
from llmapi.auth.authenticator import Authenticator
from llmapi.auth.external_idp import ExternalIdP
from llmapi.auth.invalidation import RedisInvalidation
from llmapi.auth.key_encryption import KeyEncryption
from llmapi.auth.key_ring import KeyRing
from llmapi.auth.oauth import ClientCredentialsGrant
from llmapi.auth.principal import Principal
from llmapi.auth.secret_key import key_encryption
from llmapi.auth.secrets import new_secret
from llmapi.config import ConfigError, Settings
from llmapi.db.database import Database
from llmapi.db.engine import sqlite_file
from llmapi.db.migrate import upgrade
from llmapi.db.repositories.api_keys import ApiKeyRepository
from llmapi.db.repositories.audit_log import AuditLog
from llmapi.db.repositories.signing_keys import SigningKeyRepository
from llmapi.db.repositories.usage import UsageRecordData, UsageRepository
from llmapi.protocol.admin import UsageReport, UsageRow
from llmapi.services.admin import AdminService
from llmapi.services.identity_stores import ApiKeysInDatabase, OAuthClientsInDatabase, SigningKeysInDatabase
from llmapi.services.usage import UsageRecorder
from llmapi.types import RateLimits

logger = logging.getLogger(__name__)

UPKEEP_INTERVAL_S = 30.0


class Identity:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self._api_keys = ApiKeysInDatabase(self.db)
        clients = OAuthClientsInDatabase(self.db)
        self.key_ring = KeyRing(SigningKeysInDatabase(self.db), encryption=_key_encryption(settings))
        self.tokens = AccessTokens(
            self.key_ring,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            max_lifetime_seconds=settings.access_token_ttl_seconds,
        )
        self._external = ExternalIdP(settings.oidc) if settings.oidc else None
        admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        self.authenticator = Authenticator(
            api_keys=self._api_keys,
            clients=clients,
            tokens=self.tokens,
            external=self._external,
            admin_key=admin_key,
            cache_ttl=settings.auth_cache_ttl_seconds,
            invalidation=RedisInvalidation(settings.redis_url) if settings.redis_url else None,
        )
        self.grant = ClientCredentialsGrant(
            clients=clients,
            tokens=self.tokens,
            ttl_seconds=settings.access_token_ttl_seconds,
        )
        self.admin = AdminService(self.db, self.authenticator)
        self.usage = UsageRecorder(self._write_usage)
        self._upkeep: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await upgrade(self.settings.database_url)
        await self.key_ring.load()
        await self.authenticator.start()
        if self.settings.auth == "on":
            await self._bootstrap_admin()
        self.usage.start()
        self._upkeep = asyncio.create_task(self._run_upkeep(), name="identity-upkeep")

    async def close(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.gather(self._upkeep, return_exceptions=True)
        await self.usage.close()
        await self._write_last_used()
        await self.authenticator.close()
        await self.db.dispose()

    async def usage_report(
        self, *, principal_id: str | None, since: datetime | None, until: datetime | None
    ) -> UsageReport:
        await self.usage.flush()
        async with self.db.session() as session:
            rows = await UsageRepository(session).summary(principal_id=principal_id, since=since, until=until)
        return UsageReport(
            principal_id=principal_id,
            data=[
                UsageRow(
                    day=row.day.isoformat(),
                    model=row.model,
                    requests=row.requests,
                    prompt_tokens=row.prompt_tokens,
                    completion_tokens=row.completion_tokens,
                    cached_requests=row.cached,
                )
                for row in rows
            ],
        )

    async def rotate_signing_key(self, *, actor: Principal, retire_previous: bool = False) -> str:
        """A new signing key; with `retire_previous`, the old keys' tokens stop verifying everywhere."""
        key = await self.key_ring.rotate(retire_previous=retire_previous)
        async with self.db.session() as session:
            await AuditLog(session).record(
                actor_id=actor.id,
                action="signing_key.rotate",
                target_type="signing_key",
                target_id=key.kid,
                details={"retire_previous": retire_previous},
            )
        await self.authenticator.announce_signing_keys()
        return key.kid

    async def _bootstrap_admin(self) -> None:
        """With auth on and no admin anywhere, make one key and show it once, on the console (never a log)."""
        if self.settings.admin_key is not None:
            return
        async with self.db.session() as session:
            repository = ApiKeyRepository(session)
            if await repository.any_active_admin():
                return
            secret = new_secret()
            await repository.create(
                name="bootstrap admin",
                key_hash=secret.hash,
                display_prefix=secret.display_prefix,
                role="admin",
                scopes=None,
                rate_limits=RateLimits(),
                expires_at=None,
                created_by="bootstrap",
            )
        print(
            "\nNo admin API key existed, so one was created. It is shown this once:\n\n"
            f"    {secret.plaintext}\n\n"
            "Keep it safe; make more with POST /v1/admin/keys or `llmapi keys create`.\n",
            file=sys.stderr,
            flush=True,
        )

    async def _write_usage(self, events: Sequence[UsageRecordData]) -> None:
        async with self.db.session() as session:
            await UsageRepository(session).add_many(events)

    async def _write_last_used(self) -> None:
        used = self.authenticator.drain_last_used()
        if used:
            await self._api_keys.touch_last_used(used)

    async def _run_upkeep(self) -> None:
        """Last-used times, other instances' key rotations, retired signing keys past every token's life."""
        while True:
            await asyncio.sleep(UPKEEP_INTERVAL_S)
            try:
                await self._write_last_used()
                await self.key_ring.refresh(force=True)
                keep_for = timedelta(seconds=self.settings.access_token_ttl_seconds + 2 * UPKEEP_INTERVAL_S)
                async with self.db.session() as session:
                    await SigningKeyRepository(session).delete_retired_before(datetime.now(UTC) - keep_for)
            except Exception:
                logger.exception("identity upkeep failed; retrying in %.0f s", UPKEEP_INTERVAL_S)


def _key_encryption(settings: Settings) -> KeyEncryption:
    """LLMAPI_SECRET_KEY, else its file: by default beside a SQLite database (llmapi.secret for llmapi.db),
    never named like the database's own files, so that copying `llmapi.db*` leaves it behind."""
    database_file = sqlite_file(settings.database_url)
    key_file = settings.secret_key_file
    if key_file is None and database_file is not None:
        key_file = database_file.with_suffix(".secret")
        if key_file == database_file:
            raise ConfigError(
                f"the database file {database_file} ends in .secret, where its secret key file would go; "
                "set LLMAPI_SECRET_KEY_FILE (or LLMAPI_SECRET_KEY)"
            )
    return key_encryption(
        secret=settings.secret_key.get_secret_value() if settings.secret_key else None,
        previous=settings.secret_key_previous.get_secret_value() if settings.secret_key_previous else None,
        key_file=key_file,
        shared_database=settings.database_url.startswith("postgresql"),
    )
