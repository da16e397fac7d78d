"""The tamper-evident audit trail: hash-chained records in ``socflow-audit`` (see ``trail``)."""
