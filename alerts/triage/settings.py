"""Settings of triage (section ``triage`` of socflow's settings model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Circular 20/2017/TT-BTTTT (Ministry of Information and Communications, 12 Sep 2017, on
# coordinating the response to cyber-security incidents nationwide), Article 11: the operator
# of an information system reports an incident to the national coordinating authority (VNCERT)
# within 5 days of discovering it. Summary: https://lawnet.vn/thong-tin-phap-luat/en/chinh-sach-moi/
# vietnam-cyber-information-security-incident-must-be-reported-within-5-days-from-the-date-on-which-
# the-incident-is-discovered-137686.html
REGULATION_REPORTING_HOURS = 5 * 24


class TriageSettings(BaseModel):
    """The analysts' console: where incidents and saved filters live, the reporting deadline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incidents_index: str = Field("socflow-incidents", description="Index of incidents.")
    filters_index: str = Field("socflow-saved-filters", description="Index of analysts' saved queue filters.")
    events_alias: str = Field("socflow-events", description="Alias of the event store (alert pages' context).")
    reporting_deadline_h: float = Field(
        REGULATION_REPORTING_HOURS, gt=0,
        description="Hours from an incident's detection to its report to the coordinating authority; "
                    "default 120 h: Circular 20/2017/TT-BTTTT, Article 11 (within 5 days of discovery).")
    context_minutes: int = Field(30, ge=1, le=1440, description="Entity events shown this long around an alert.")
    related_hours: int = Field(24, ge=1, le=720, description="Other alerts of the same entity within this window.")
    page_size: int = Field(50, ge=1, le=200, description="Alerts per queue page.")
    poll_interval_s: float = Field(15, ge=2, description="How often an open queue page looks for changes.")
    refresh_on_write: bool = Field(
        False, description="Wait until a triage write is visible to searches before answering (the queue "
                           "shows it at once; costs up to the index refresh interval, 1 s).")
