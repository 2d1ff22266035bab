// Settings written into PNG files: nanobanana's provenance (an iTXt chunk "nanobanana" holding
// JSON) and the A1111 "parameters" text that Stable Diffusion tools write (and nanobanana too):
//
//   a lighthouse at dusk
//   Negative prompt: blurry
//   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 1344x768, Model: sdxl
//
// Read from the file's bytes in the browser: nothing is uploaded to find them.

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Text chunks are near the start; a file's pixels are never read past this many bytes. */
const MAX_SCAN = 8 * 1024 * 1024;

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The text chunks (tEXt, zTXt, iTXt) of a PNG as {keyword: text}; null when not a PNG. */
export async function readPngText(blob) {
  const bytes = new Uint8Array(await blob.slice(0, MAX_SCAN).arrayBuffer());
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = {};
  let pos = 8;
  while (pos + 8 <= bytes.length) {
    const length = view.getUint32(pos);
    const kind = latin1.decode(bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (kind === "IEND" || kind === "IDAT") break; // text chunks written by tools come first
    try {
      if (kind === "tEXt") {
        const nul = data.indexOf(0);
        out[latin1.decode(data.subarray(0, nul))] = latin1.decode(data.subarray(nul + 1));
      } else if (kind === "zTXt") {
        const nul = data.indexOf(0);
        out[latin1.decode(data.subarray(0, nul))] = latin1.decode(await inflate(data.subarray(nul + 2)));
      } else if (kind === "iTXt") {
        const nul = data.indexOf(0);
        const key = latin1.decode(data.subarray(0, nul));
        const compressed = data[nul + 1] === 1;
        let rest = data.subarray(nul + 3);
        rest = rest.subarray(rest.indexOf(0) + 1); // language tag
        rest = rest.subarray(rest.indexOf(0) + 1); // translated keyword
        out[key] = utf8.decode(compressed ? await inflate(rest) : rest);
      }
    } catch {
      /* a damaged chunk: skip it */
    }
    pos += 12 + length;
  }
  return out;
}

/** A1111 infotext -> {prompt, negative_prompt, fields: {Seed: "42", Size: "1344x768", ...}}. */
export function parseInfotext(text) {
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  let fieldsLine = "";
  // The last line holding "Key: value, Key: value" pairs is the settings line.
  if (lines.length > 1 && /^(\s*[\w ]+: [^,]*)(, [\w ]+: [^,]*)*$/.test(lines[lines.length - 1])) {
    fieldsLine = lines.pop();
  }
  const prompt = [];
  const negative = [];
  let target = prompt;
  for (const line of lines) {
    if (line.startsWith("Negative prompt:")) {
      target = negative;
      target.push(line.slice("Negative prompt:".length).trim());
    } else {
      target.push(line);
    }
  }
  const fields = {};
  for (const m of fieldsLine.matchAll(/\s*([\w ]+?): ("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g)) {
    fields[m[1].trim()] = m[2].trim().replace(/^"(.*)"$/, "$1");
  }
  return { prompt: prompt.join("\n").trim(), negative_prompt: negative.join("\n").trim(), fields };
}

/** The nearest of ``ratios`` ("16:9") to a width x height shape. */
export function nearestRatio(ratios, width, height) {
  const shape = Math.log(width / height);
  let best = null;
  let bestDistance = Infinity;
  for (const r of ratios) {
    const [w, h] = r.split(":").map(Number);
    const d = Math.abs(Math.log(w / h) - shape);
    if (d < bestDistance) {
      best = r;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * The generator's settings found in a PNG's text chunks:
 * {source: "nanobanana" | "a1111", params: {prompt, negative_prompt, model, provider,
 *  aspect_ratio, image_size, seed, ...}, size: [w, h] | null}, or null when it has none.
 */
export function settingsFromText(texts) {
  if (!texts) return null;
  if (texts.nanobanana) {
    try {
      const meta = JSON.parse(texts.nanobanana);
      if (meta && typeof meta === "object" && typeof meta.prompt === "string") {
        const keep = ["prompt", "negative_prompt", "model", "provider", "aspect_ratio", "image_size", "seed", "thinking", "google_search", "image_options"];
        const params = {};
        for (const k of keep) if (meta[k] !== undefined && meta[k] !== null) params[k] = meta[k];
        return { source: "nanobanana", params, size: null };
      }
    } catch {
      /* not our JSON: try the infotext */
    }
  }
  if (typeof texts.parameters === "string" && texts.parameters.trim()) {
    const { prompt, negative_prompt: negative, fields } = parseInfotext(texts.parameters);
    const params = { prompt };
    if (negative) params.negative_prompt = negative;
    if (/^\d{1,10}$/.test(fields.Seed || "")) params.seed = Number(fields.Seed);
    if (/^\d+:\d+$/.test(fields["Aspect ratio"] || "")) params.aspect_ratio = fields["Aspect ratio"];
    let size = null;
    const pixels = /^(\d+)x(\d+)$/.exec(fields.Size || "");
    if (pixels) size = [Number(pixels[1]), Number(pixels[2])];
    else if (/^(0\.5|[124])K$/i.test(fields.Size || "")) params.image_size = fields.Size.toUpperCase();
    if (fields.Provider === "openrouter" || fields.Provider === "google") params.provider = fields.Provider;
    if (fields.Model && fields.Provider) params.model = fields.Model; // only nanobanana's own
    return { source: fields.Provider ? "nanobanana" : "a1111", params, size, model: fields.Model || null };
  }
  return null;
}
