// Following a job: server-sent events read with fetch (they carry the API key), polling when
// a stream cannot be had; progress in words (queued with position, adapting, measuring).
"use strict";

import { ApiFailure, api, duration } from "./core.js";

const FINISHED = ["succeeded", "failed", "cancelled", "evicted"];

export function describe(job) {
  const progress = job.progress || {};
  let text = progress.phase || job.state;
  if (job.state === "running" && progress.total) text += ` (${Math.floor((100 * progress.step) / progress.total)}%)`;
  if (progress.seconds_left) text += `, about ${duration(progress.seconds_left)} left`;
  if (job.cancel_requested && !FINISHED.includes(job.state)) text += "; cancelling";
  if (FINISHED.includes(job.state)) text = job.state;
  return text;
}

async function poll(jobId, onUpdate) {
  for (;;) {
    const job = await (await api("GET", `/v1/jobs/${jobId}`)).json();
    onUpdate(job);
    if (FINISHED.includes(job.state)) return job;
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

async function stream(jobId, onUpdate) {
  const response = await api("GET", `/v1/jobs/${jobId}/events`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    for (let cut = buffer.indexOf("\n\n"); cut >= 0; cut = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block);
      const data = /^data: (.*)$/m.exec(block);
      if (!data) continue;  // a keep-alive comment
      if (event && event[1] === "gone") throw new ApiFailure(404, "job_not_found", "the job is gone: it expired or was deleted");
      last = JSON.parse(data[1]);
      onUpdate(last);
    }
  }
  return last;
}

// The job's last state once finished; onUpdate(job) at every change on the way.
export async function followJob(jobId, onUpdate) {
  let last = null;
  try {
    last = await stream(jobId, onUpdate);
  } catch (_) {
    // no stream (an older server, too many streams, a proxy): polling says the same, or the
    // real error (a job that is gone answers 404 there too)
  }
  if (last && FINISHED.includes(last.state)) return last;
  return poll(jobId, onUpdate);  // no stream, or it ended early (a proxy, a restart)
}

export async function cancelJob(jobId) {
  return (await api("POST", `/v1/jobs/${jobId}/cancel`)).json();
}
