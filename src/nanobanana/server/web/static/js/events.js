// Following a generation's server-sent events with fetch streaming.
//
// EventSource cannot send an Authorization header, so the stream is read by hand: the body is
// decoded as text and split into events by the SSE rules (fields per line, blank line ends one).

import { api } from "./api.js";

/** Parse SSE text incrementally; calls onEvent(type, data, id) for every complete event. */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.reset();
    this.lastId = null;
  }

  reset() {
    this.type = "";
    this.data = [];
    this.id = null;
  }

  push(chunk) {
    this.buffer += chunk;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.data.length) {
        if (this.id !== null) this.lastId = this.id;
        const text = this.data.join("\n");
        let data = text;
        try {
          data = JSON.parse(text);
        } catch {
          /* a plain-text event: pass it through as a string */
        }
        this.onEvent(this.type || "message", data, this.lastId);
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
  }
}

/**
 * Read /api/generations/{id}/events until the server closes it or `signal` aborts.
 * Resolves with the last event id seen (to resume with Last-Event-ID).
 */
export async function readEvents(generationId, { signal, onEvent, lastEventId = null }) {
  const headers = { Accept: "text/event-stream" };
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const res = await api(`/api/generations/${encodeURIComponent(generationId)}/events`, {
    raw: true,
    signal,
    headers,
  });
  const parser = new SseParser(onEvent);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
    parser.push("\n\n"); // flush an event the server ended without a blank line
  } finally {
    reader.releaseLock();
  }
  return parser.lastId;
}
