"""Settings of reports (section ``reports`` of socflow's settings model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ScheduleEntry(BaseModel):
    """One report issued on a schedule by ``socflow scheduler``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description="periodic or operations.")
    period: str = Field(description="yearly, monthly or weekly: the last complete period is reported.")
    formats: tuple[str, ...] = Field(("json", "html"), description="Formats written to the archive.")
    scope: str = Field("province", description="province, or agency:ID / district:ID / node:ID.")
    lang: str = Field("vi", description="vi or en.")


class ReportSettings(BaseModel):
    """Where reports read from, the regulatory figures they use, and their schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = Field("Asia/Ho_Chi_Minh", description="Time zone of dates in reports (the province's).")
    audit_index: str = Field("socflow-audit", description="Index of the hash-chained audit trail.")
    incidents_index: str = Field("socflow-incidents", description="Index of the triage console's incidents.")
    yearly_start: str = Field(
        "12-15", description="MM-DD the yearly period starts (in the previous year); it ends the day before in "
        "the report's year. Decree 09/2019/ND-CP Art. 12(4) sets 15 Dec - 14 Dec for yearly reports, which "
        "Circular 12/2022/TT-BTTTT's yearly report follows.")
    yearly_due: tuple[tuple[str, str], ...] = Field(
        (("owner_to_specialised_unit", "12-18"), ("province_to_ministry", "12-20")),
        description="Due dates (MM-DD, the period's end year) of the yearly report: NOT CONFIRMED against the "
        "official text of Circular 12/2022/TT-BTTTT (its reporting article); check and set before an audit.")
    reporting_deadline_h: float = Field(
        120.0, gt=0, description="Hours from detection to an incident's report (Circular 20/2017/TT-BTTTT Art. 11: "
        "5 days); the same figure as triage's setting.")
    silent_after_h: float = Field(
        24.0, gt=0, description="A source not seen this long before the period's end is silent.")
    top_rules: int = Field(15, ge=1, le=200, description="Rules listed in the noisy-rules table.")
    max_response_buckets: int = Field(
        2_000_000, ge=1000, description="Cap of the composite aggregation behind response times (one bucket per "
        "distinct opened-slot/closed-slot/level/security-level, counted page by page); beyond it the section says "
        "partly.")
    concurrency: int = Field(
        3, ge=1, le=16, description="Requests to Elasticsearch a report runs at once (independent sections, and the "
        "chunks of the response section's composite aggregations); 1 runs them one after another.")
    schedule: tuple[ScheduleEntry, ...] = Field(
        (ScheduleEntry(kind="periodic", period="yearly", formats=("json", "html", "pdf"), scope="province", lang="vi"),
         ScheduleEntry(kind="operations", period="monthly", formats=("json", "html"), scope="province", lang="vi")),
        description="Reports issued by `socflow scheduler` (the last complete period each time).")
