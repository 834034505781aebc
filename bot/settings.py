"""Settings: one pydantic-settings class, built once by the entry point and passed down.

Every variable starts with ``BOT_``; a group's fields follow its name with one underscore,
e.g. ``BOT_DATABASE_URL``, ``BOT_CONTENT_DIR``, ``BOT_FAQ_ANSWER_THRESHOLD``. Nothing reads
the environment at import time: tests build ``Settings(...)`` themselves.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseModel):
    # The embedded default: a SQLite file under ./var, created on first start.
    url: str = "sqlite+aiosqlite:///var/bot.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the URLs people paste (postgres://, postgresql://, sqlite:///) and pick the
        async driver the code uses."""
        for prefix, replacement in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(prefix):
                return replacement + value[len(prefix) :]
        return value


class ContentSettings(BaseModel):
    # None means the pack bundled with the code (content/pack).
    dir: Path | None = None
    # Where the engine keeps its calibration of a pack (content.calibration), so restarts and
    # other workers skip it; None: recompute in every process.
    cache_dir: Path | None = Path("var/cache")


class FaqSettings(BaseModel):
    """The FAQ engine's decision. By default its thresholds are derived from the loaded pack
    (content.calibration); a value set here overrides the calibrated one."""

    answer_threshold: float | None = Field(None, ge=0, le=1)
    clarify_threshold: float | None = Field(None, ge=0, le=1)
    margin: float | None = Field(None, ge=0, le=1)
    strong_margin: float | None = Field(None, ge=0, le=1)
    suggestions: int = Field(3, ge=2, le=5)

    @model_validator(mode="after")
    def _ordered(self) -> FaqSettings:
        answer, clarify = self.answer_threshold, self.clarify_threshold
        if answer is not None and clarify is not None and clarify > answer:
            raise ValueError("clarify_threshold must not exceed answer_threshold")
        return self

    def overrides(self) -> dict[str, float]:
        """The thresholds set by hand, by their name in content.search.Thresholds."""
        named = {
            "answer": self.answer_threshold,
            "clarify": self.clarify_threshold,
            "margin": self.margin,
            "strong_margin": self.strong_margin,
        }
        return {name: value for name, value in named.items() if value is not None}


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class PrivacySettings(BaseModel):
    """Retention of what citizens typed (Decree 13/2023: keep personal data no longer than
    needed). Conversation logs and the unanswered-question log are purged after these many
    days, at start-up and daily."""

    conversation_retention_days: int = Field(90, ge=1)
    gap_retention_days: int = Field(365, ge=1)
    # The broadcast ledger (who got which campaign) of sendings finished this long ago.
    delivery_retention_days: int = Field(365, ge=1)


class TelegramSettings(BaseModel):
    """The province's Telegram bot. Without a token the Telegram route is simply absent."""

    token: SecretStr | None = None
    # Checked against X-Telegram-Bot-Api-Secret-Token on every webhook call.
    webhook_secret: SecretStr | None = None
    # A local Bot API server (or the tests' fake) can stand in for Telegram's.
    api_url: str = "https://api.telegram.org"


class ZaloSettings(BaseModel):
    """The province's Zalo Official Account. Without an app id the Zalo route is absent."""

    app_id: str | None = None
    # Signs webhook events (X-ZEvent-Signature); not the app secret.
    oa_secret_key: SecretStr | None = None
    # Authenticates token refreshes (the secret_key header of /v4/oa/access_token).
    app_secret: SecretStr | None = None
    # Seed the token store on first start; afterwards the database holds the current pair.
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    api_url: str = "https://openapi.zalo.me"
    oauth_url: str = "https://oauth.zaloapp.com"
    # Events older than this are replays. Zalo redelivers for hours when the webhook fails,
    # so the default covers its whole retry ladder (up to 24 h in some accounts of it).
    event_max_age_seconds: int = Field(26 * 3600, ge=60)


class BroadcastSettings(BaseModel):
    """Campaign approval, quiet hours and delivery pacing (``BOT_BROADCAST_*``)."""

    # Four-eyes approval: the approver must differ from the author. Small deployments with a
    # single communicator may turn it off.
    four_eyes: bool = True
    timezone: str = "Asia/Ho_Chi_Minh"
    # Local times "HH:MM"; sending stops at the start and resumes at the end (an urgent
    # campaign ignores them). Equal values mean no quiet hours.
    quiet_start: str = "21:00"
    quiet_end: str = "07:00"
    # Messages per second, all chats together (0 = no limit, for benchmarks only).
    telegram_rate: float = Field(25.0, ge=0)
    # Telegram: at most one message per chat per this many seconds.
    telegram_per_chat_seconds: float = Field(1.0, ge=0)
    # Zalo documents 4,000 requests per minute per OA.
    zalo_rate: float = Field(4000 / 60, ge=0)
    # Zalo lets an OA write only within 7 days of the citizen's last message.
    zalo_window_days: int = Field(7, ge=1)
    # Transient failures are retried this many times in all, with exponential backoff.
    max_attempts: int = Field(5, ge=1)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(600.0, gt=0)
    # A run pauses itself when more than this share of its last attempts failed (after at
    # least error_window attempts), and says why.
    error_rate_threshold: float = Field(0.5, gt=0, le=1)
    error_window: int = Field(50, ge=5)
    # A row claimed for sending longer ago than this belongs to a sender that died: it is
    # marked uncertain (see the README's crash policy) and never sent twice.
    claim_lease_seconds: float = Field(60.0, gt=0)
    # How many rows a sender claims at once (also the most that can be uncertain per sender
    # after a crash).
    claim_batch: int = Field(50, ge=1, le=1000)
    # APScheduler: how late a scheduled run may still start (after downtime, say).
    misfire_grace_seconds: int = Field(3600, ge=1)
    # Run the scheduler and the senders inside 'bot serve'.
    enabled: bool = True


class FeedbackSettings(BaseModel):
    """Satisfaction surveys, complaints and their handling (``BOT_FEEDBACK_*``)."""

    # A survey or complaint left unanswered this long lapses (a survey is kept as partial).
    flow_minutes: int = Field(60, ge=1)
    # Handling deadlines per kind, from filing; the complaint's is told to the citizen and
    # 'bot feedback list --overdue' shows open items past theirs.
    complaint_days: int = Field(10, ge=1)
    survey_days: int = Field(15, ge=1)
    # At most this many surveys, and as many complaints, per citizen in 24 hours: one person
    # cannot flood the staff or tilt the satisfaction index.
    daily_limit: int = Field(5, ge=1)
    # Contact fields (phone, dossier code) of closed items are erased this long after closing.
    contact_retention_days: int = Field(90, ge=1)
    # How often 'bot serve' looks for staff answers to push to citizens.
    notify_interval_seconds: float = Field(5.0, gt=0)
    # Dates shown to citizens and staff, and the months of 'bot feedback stats'.
    timezone: str = "Asia/Ho_Chi_Minh"


class AdminSettings(BaseModel):
    """The staff console under ``/admin`` (``BOT_ADMIN_*``): where it listens, how long a
    sign-in lasts, how failed sign-ins are throttled, how long the audit log is kept."""

    enabled: bool = True
    # A port: the console gets a listener of its own (on ``host``, default the server's
    # host; say, an intranet address) and the public server answers 404 under /admin.
    # No port: the console is served by 'bot serve' itself.
    host: str | None = None
    port: int | None = Field(None, ge=0, le=65535)
    # A session ends after this long without a request, and this long after sign-in anyway.
    idle_minutes: float = Field(30, gt=0)
    absolute_hours: float = Field(12, gt=0)
    # Failed sign-ins in a row that lock a user name, and for how long.
    lockout_failures: int = Field(5, ge=1)
    lockout_minutes: float = Field(15, gt=0)
    # Failed sign-ins from one address (within lockout_minutes) after which each further
    # attempt from it must wait, 2 s at first and doubling up to 60 s.
    address_failures: int = Field(10, ge=1)
    # The session cookie's Secure flag. None: set unless the console listens on loopback
    # (behind a TLS-terminating proxy on the same machine, set it to true).
    cookie_secure: bool | None = None
    # Take the client address from the last X-Forwarded-For hop (only behind a proxy that
    # sets it; otherwise anyone could claim any address).
    trust_forwarded_for: bool = False
    # Audit log rows (sign-ins, actions) are deleted after this many days.
    audit_retention_days: int = Field(730, ge=1)

    @model_validator(mode="after")
    def _listener(self) -> AdminSettings:
        if self.host is not None and self.port is None:
            raise ValueError("BOT_ADMIN_HOST needs BOT_ADMIN_PORT (the console's own listener)")
        return self


class LogSettings(BaseModel):
    level: str = "INFO"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    database: DatabaseSettings = DatabaseSettings()
    content: ContentSettings = ContentSettings()
    faq: FaqSettings = FaqSettings()
    server: ServerSettings = ServerSettings()
    privacy: PrivacySettings = PrivacySettings()
    telegram: TelegramSettings = TelegramSettings()
    zalo: ZaloSettings = ZaloSettings()
    broadcast: BroadcastSettings = BroadcastSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    admin: AdminSettings = AdminSettings()
    log: LogSettings = LogSettings()
