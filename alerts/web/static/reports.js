// socflow console, reports page: follow a generation job until the report is in the archive.
// The page works without script (a reload shows the job's state); with it, the status updates
// by itself and the page reloads once, to list the new report, when the job has finished.
"use strict";

function socflowFollowReportJob() {
  const status = document.getElementById("job-status");
  if (!status) return;
  if (status.dataset.state !== "running") {
    status.focus();  // a finished job's outcome is the first thing read after the reload
    return;
  }
  const id = status.dataset.job;
  const poll = async () => {
    try {
      const answer = await socflowFetch(`/api/reports/jobs/${encodeURIComponent(id)}`);
      if (answer.ok) {
        const job = await answer.json();
        if (job.status !== "running") {
          window.location.replace(`/reports?job=${encodeURIComponent(id)}`);
          return;
        }
      }
    } catch (error) {
      // The console is briefly unreachable: keep polling.
    }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", socflowFollowReportJob);
