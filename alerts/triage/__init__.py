"""Triage: the analysts' work on alerts and incidents, shared by the console's API and the CLI.

``model`` is the pure core (statuses, verdicts, transitions, incidents' reporting deadlines),
``queue`` turns a queue filter into an Elasticsearch query, ``store`` reads and writes alerts
and incidents (every write conditional on the document's sequence number), ``context`` finds
what an alert page shows beside the alert, ``suppressions`` writes the admins' suppressions
where the detection job reads them. Time, ids and the audit sink are passed in.
"""
